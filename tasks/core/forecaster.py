"""The interface every model family implements, so one walk-forward engine serves them all.

``history`` is always the clean series cut at the cutoff: a DataFrame indexed by a daily
``DatetimeIndex`` (name ``ds``) with columns ``bus``, ``rail`` (float) and ``day_type``
(``W``/``A``/``U``), whose last row is the cutoff. Day types of future dates come from
:mod:`tasks.core.calendar`, never from data after the cutoff.
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
