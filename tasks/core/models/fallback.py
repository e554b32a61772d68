"""What stands in for a model that failed, and how the contract says so: pure string rules.

A forecast row whose model could not give one keeps the failing model's name, so that every
cutoff still has a row per model, and marks the substitute in ``model_version``:

* ``fallback:<naive version>:<reason>`` — the seasonal-naive forecast (a statistical fit that
  raised or forecast NaN/inf; an RNN with no champion at all);
* ``fallback:champion <version>:<reason>`` — an RNN's previous champion, kept because the
  retrain due for this cutoff failed (its network could not be trusted, so nothing was saved).

Readers split on the first two ``:`` only, so a reason may contain colons. No I/O, no Prefect.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

FALLBACK_PREFIX = "fallback:"
"""``model_version`` prefix of every row a substitute stood in for."""
CHAMPION_SUBSTITUTE = "champion "
"""The substitute field of a previous-champion fallback: ``champion <version>``."""
KEPT_CHAMPION = "kept previous champion"
"""How a previous-champion line of :func:`fallbacks` names its substitute (and how
:func:`fallback_note` tells those lines apart)."""
REASON_CHARS = 160


def failure_reason(error: BaseException) -> str:
    """The error as one short line (``Type: message``): it goes into ``model_version`` values,
    log lines and the report, so newlines and long tracebacks are folded away."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:REASON_CHARS]


def naive_fallback_version(naive_version: str, reason: str) -> str:
    return f"{FALLBACK_PREFIX}{naive_version}:{reason}"


def champion_fallback_version(champion_version: str, reason: str) -> str:
    return f"{FALLBACK_PREFIX}{CHAMPION_SUBSTITUTE}{champion_version}:{reason}"


def fallbacks(forecasts: pd.DataFrame) -> list[str]:
    """One line per (model, series, cutoff) whose forecast is a fallback, with its reason (and
    the previous champion's version where that stood in). A chunk with nothing to forecast may
    come as an empty frame without columns: no lines."""
    if forecasts.empty:
        return []
    rows = forecasts[(forecasts["h"] == 1) & forecasts["model_version"].str.startswith(FALLBACK_PREFIX)]
    lines = []
    for row in rows.itertuples():
        _, substitute, reason = row.model_version.split(":", 2)
        head = f"{row.model}/{row.unique_id} at cutoff {pd.Timestamp(row.cutoff).date()}"
        if substitute.startswith(CHAMPION_SUBSTITUTE):
            lines.append(f"{head}: {KEPT_CHAMPION} {substitute.removeprefix(CHAMPION_SUBSTITUTE)} ({reason})")
        else:
            lines.append(f"{head}: {reason}")
    return lines


def fallback_note(lines: Sequence[str]) -> str | None:
    """The fallbacks as sentences for the report, by substitute (None when there were none)."""
    kept = [line for line in lines if f": {KEPT_CHAMPION} " in line]
    naive = [line for line in lines if f": {KEPT_CHAMPION} " not in line]
    sentences = []
    if naive:
        sentences.append(f"{len(naive)} forecast(s) fell back to the seasonal naive: " + "; ".join(naive) + ".")
    if kept:
        sentences.append(f"{len(kept)} RNN forecast(s) fell back to the previous champion: " + "; ".join(kept) + ".")
    return " ".join(sentences) or None
