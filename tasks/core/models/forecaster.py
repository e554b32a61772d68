"""The interface every model family implements, so one walk-forward engine serves them all.

``history`` is always the clean series cut at the cutoff: a DataFrame indexed by a daily
``DatetimeIndex`` (name ``ds``) with columns ``bus``, ``rail`` (float) and ``day_type``
(``W``/``A``/``U``), whose last row is the cutoff. Day types of future dates come from
:mod:`tasks.core.features.calendar`, never from data after the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import pandas as pd

SERIES = ("bus", "rail")
DEFAULT_LEVELS = (80, 95)


@dataclass(frozen=True)
class Forecast:
    """Forecasts for horizons 1..H of one series from one cutoff."""

    mean: np.ndarray
    lower: dict[int, np.ndarray] = field(default_factory=dict)
    upper: dict[int, np.ndarray] = field(default_factory=dict)


class Fitted(Protocol):
    """A trained model instance; ``version`` identifies it (fit-params hash or registry id)."""

    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast: ...


class Forecaster(Protocol):
    """A model family with its configuration; ``fit`` trains on a window of history."""

    name: str

    def fit(self, history: pd.DataFrame, unique_id: str) -> Fitted: ...


def history_from_clean(clean: pd.DataFrame) -> pd.DataFrame:
    """The clean store's frame (``service_date, day_type, bus, rail``) as a model ``history``."""
    history = clean.set_index(pd.DatetimeIndex(clean["service_date"], name="ds"))
    history = history[["bus", "rail", "day_type"]].astype({"bus": "float64", "rail": "float64"})
    return history.sort_index()


def cutoffs_for_run_dates(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The cutoffs of the nightly runs on ``start``..``end``: each run date minus one day."""
    run_dates = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D")
    return run_dates - pd.Timedelta(days=1)
