"""Prefect artifact payloads as plain data: JSON-safe table rows and valid artifact keys.

Nothing imports Prefect: the task layer hands these values to ``prefect.artifacts``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd


def to_json_records(frame: pd.DataFrame, decimals: int | None = None) -> list[dict[str, Any]]:
    """Rows as dicts that ``json.dumps(..., allow_nan=False)`` accepts.

    Dates become ISO strings (``YYYY-MM-DD`` at midnight), NaN/NaT/NA and infinities ``None``,
    numpy scalars Python ones; floats are rounded to ``decimals`` when given.
    """
    columns = [str(c) for c in frame.columns]
    return [
        {column: _json_value(value, decimals) for column, value in zip(columns, row)}
        for row in frame.itertuples(index=False, name=None)
    ]


def leaderboard_artifact_rows(board: pd.DataFrame, decimals: int = 3) -> list[dict[str, Any]]:
    """The leaderboard (:func:`tasks.core.evaluation.scoring.leaderboard`) as a Prefect table artifact."""
    return to_json_records(board, decimals=decimals)


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from free text: lowercase ASCII letters, digits and single dashes.

    ``artifact_key("Leaderboard", "last_28", "2024-05-01")`` gives
    ``"leaderboard-last-28-2024-05-01"``. Accents are folded (``é`` → ``e``) rather than dropped.
    """
    text = "-".join(parts)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    key = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not key:
        raise ValueError(f"no letters or digits to build an artifact key from {parts!r}")
    return key



def _json_value(value: Any, decimals: int | None) -> Any:
    if pd.api.types.is_scalar(value) and pd.isna(value):  # None, NaN, NaT, pd.NA
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, np.datetime64)):
        stamp = pd.Timestamp(value)
        midnight = stamp.tzinfo is None and stamp == stamp.normalize()
        return stamp.date().isoformat() if midnight else stamp.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return bool(value) if isinstance(value, (bool, np.bool_)) else int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):  # strict JSON has no Infinity either
            return None
        return number if decimals is None else round(number, decimals)
    return value if isinstance(value, str) else str(value)
