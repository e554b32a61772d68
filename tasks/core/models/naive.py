"""Seasonal-naive forecaster: tomorrow looks like the same weekday last week.

The point forecast for horizon ``h`` is the value observed ``m = 7`` days before the target date,
carried forward a whole week at a time when ``h > m``: horizons 1..7 repeat the last seven values,
8..14 repeat them again, and so on. It is the reference every other model must beat (the book's
"naive forecast" of chapter 15), so it is kept deliberately plain.

Pure: arrays and frames in, :class:`~tasks.core.models.forecaster.Forecast` out; no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np
import pandas as pd

from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast

WEEK = 7
MODEL_NAME = "naive"


def normal_quantile(level: int) -> float:
    """The two-sided standard normal quantile of a ``level`` % interval (80 -> 1.2816)."""
    if not 0 < level < 100:
        raise ValueError(f"an interval level is a percentage strictly between 0 and 100, got {level}")
    return NormalDist().inv_cdf(0.5 + level / 200.0)


def seasonal_residual_std(values: np.ndarray, season_length: int = WEEK) -> float:
    """Root mean square of the seasonal-naive residuals ``y_t - y_{t-m}`` over ``values``.

    Mean-square rather than a centred standard deviation because the model asserts the seasonal
    difference is zero-mean noise: a drift in it is an error of the model and must widen the
    intervals, not be subtracted away. Missing days (NaN) are skipped; NaN when fewer than two
    residuals exist, so that no interval is reported rather than a made-up one.
    """
    residuals = values[season_length:] - values[:-season_length]
    residuals = residuals[np.isfinite(residuals)]
    if residuals.size < 2:
        return math.nan
    return float(np.sqrt(np.mean(residuals**2)))


def seasonal_naive_means(values: np.ndarray, horizon: int, season_length: int = WEEK) -> np.ndarray:
    """``y_hat[h] = y[T + h - m * ceil(h / m)]`` for h = 1..horizon (T = last observed index)."""
    if values.size < season_length:
        raise ValueError(f"seasonal naive needs at least {season_length} values, got {values.size}")
    last_season = values[-season_length:]
    # Horizon h (1-based) reads position (h - 1) mod m of the last observed season.
    return last_season[np.arange(horizon) % season_length].astype(np.float64)


def seasonal_naive_interval_scale(horizon: int, season_length: int = WEEK) -> np.ndarray:
    """``sqrt(ceil(h / m))`` for h = 1..horizon: how many seasonal steps the forecast chains."""
    steps = np.arange(1, horizon + 1)
    return np.sqrt(np.ceil(steps / season_length))


def _short_hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class SeasonalNaiveFitted:
    """The "trained" seasonal naive: only the residual scale of its training window.

    Point forecasts always come from the last ``season_length`` values of the history handed to
    :meth:`forecast`, so reusing one fit across cutoffs (``refit_every > 1``) only freezes the
    interval width, never the level.
    """

    unique_id: str
    season_length: int
    residual_std: float
    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        """Means and normal prediction intervals for h = 1..horizon.

        The standard seasonal-naive interval (Hyndman & Athanasopoulos, *Forecasting: Principles
        and Practice*, 3rd ed., §5.5): ``y_hat ± z · σ · sqrt(ceil(h / m))``, where σ is the RMS of
        ``y_t - y_{t-m}`` over the training window and ``z`` the normal quantile of the level.
        """
        values = history[self.unique_id].to_numpy(dtype=np.float64)
        means = seasonal_naive_means(values, horizon, self.season_length)
        spread = self.residual_std * seasonal_naive_interval_scale(horizon, self.season_length)
        lower = {level: means - normal_quantile(level) * spread for level in levels}
        upper = {level: means + normal_quantile(level) * spread for level in levels}
        return Forecast(mean=means, lower=lower, upper=upper)


@dataclass(frozen=True)
class SeasonalNaiveForecaster:
    """Model family ``naive``; ``season_length`` 7 for CTA's weekly pattern."""

    season_length: int = WEEK
    name: str = MODEL_NAME

    def fit(self, history: pd.DataFrame, unique_id: str) -> SeasonalNaiveFitted:
        values = history[unique_id].to_numpy(dtype=np.float64)
        if values.size < self.season_length:
            raise ValueError(
                f"{self.name}: {unique_id} has {values.size} days in its window, needs {self.season_length}"
            )
        residual_std = seasonal_residual_std(values, self.season_length)
        # The version names the method, not the window's σ: the same rule gives the same model.
        version = _short_hash({"model": self.name, "season_length": self.season_length})
        return SeasonalNaiveFitted(
            unique_id=unique_id, season_length=self.season_length, residual_std=residual_std, version=version
        )
