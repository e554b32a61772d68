"""SARIMAX: the seed's SARIMA plus calendar regressors (model ``sarimax``).

Regression with SARIMA errors, ``z_t = x_t' beta + u_t`` with ``u`` the seed's (1,0,0)(0,1,1,7),
where ``x_t`` are 0/1 flags from :mod:`tasks.core.calendar_features` (known for any future date,
so the forecast's regressors come from the calendar, never from data) and ``z`` is the series
or its log (``log``). statsmodels' ``ARIMA(z, exog=X)`` estimates ``beta`` with the ARMA
parameters in one likelihood. Forecasting reuses :func:`tasks.core.sarima.forecast_moments`
on the regression residual ``u = z - X beta`` with the ARMA parameters: filtering ``z`` with the
observation intercept ``X beta`` is filtering ``u`` with none, so the means and variances equal
statsmodels' ``get_forecast(exog=...)`` (checked in the tests), at the cost of the seed's path.

A flag that never occurs in the training window cannot be estimated and is left out of that fit
(its effect is taken as zero). Intervals are the model's Gaussian ones (on the log scale when
``log``, then exponentiated: a monotone map keeps the quantiles).

Measured choices (backtest: ``bench/bench_accuracy.py``; figures in the README): see
``SARIMAX_FLAGS`` and the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.arima.model import ARIMA

from tasks.core.calendar_features import calendar_features
from tasks.core.forecaster import DEFAULT_LEVELS, Forecast
from tasks.core.sarima import SEED_ORDER, SEED_SEASONAL_ORDER, forecast_moments, model_version, series_values

MODEL_NAME = "sarimax"
SARIMAX_FLAGS = (
    "holiday_off_sunday",
    "day_after_thanksgiving",
    "christmas_eve",
    "christmas_week",
    "new_years_eve",
)


@dataclass(frozen=True)
class SarimaxForecaster:
    """Model family ``sarimax``: ``ARIMA(z, exog=calendar flags)`` on the training window."""

    flags: tuple[str, ...] = SARIMAX_FLAGS
    log: bool = True
    order: tuple[int, int, int] = SEED_ORDER
    seasonal_order: tuple[int, int, int, int] = SEED_SEASONAL_ORDER
    name: str = MODEL_NAME

    def spec(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "order": list(self.order),
            "seasonal_order": list(self.seasonal_order),
            "flags": list(self.flags),
            "log": self.log,
        }

    def fit(self, history: pd.DataFrame, unique_id: str) -> SarimaxFitted:
        z = self._transform(series_values(history, unique_id))
        exog = calendar_features(history.index, self.flags).to_numpy()
        used = _estimable_columns(exog, np.isfinite(z))
        kept = tuple(self.flags[i] for i in used)
        model = ARIMA(z, exog=exog[:, used] if used else None, order=self.order, seasonal_order=self.seasonal_order)
        params = np.asarray(model.fit(return_params=True), dtype=np.float64)
        beta, arma_params = params[: len(used)], params[len(used) :]
        return SarimaxFitted(
            forecaster=self,
            unique_id=unique_id,
            flags=kept,
            beta=beta,
            arma_params=arma_params,
            version=model_version({**self.spec(), "fitted_flags": list(kept)}, params),
        )

    def _transform(self, values: np.ndarray) -> np.ndarray:
        if not self.log:
            return values
        with np.errstate(divide="ignore", invalid="ignore"):
            # A day with no boardings recorded is a data fault, not a level: skip it like a gap.
            return np.where(values > 0, np.log(values), np.nan)


@dataclass(frozen=True, eq=False)
class SarimaxFitted:
    """Fitted regression coefficients (one per flag kept) and ARMA parameters."""

    forecaster: SarimaxForecaster
    unique_id: str
    flags: tuple[str, ...]
    beta: np.ndarray
    arma_params: np.ndarray
    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        spec = self.forecaster
        z = spec._transform(series_values(history, self.unique_id))
        future = pd.date_range(history.index[-1] + pd.Timedelta(days=1), periods=horizon, freq="D")
        effect_past, effect_future = self._effects(history.index), self._effects(future)
        residual_model = ARIMA(z - effect_past, order=spec.order, seasonal_order=spec.seasonal_order)
        means, variances = forecast_moments(residual_model, self.arma_params, horizon)
        means = means + effect_future
        std_errors = np.sqrt(variances)
        lower: dict[int, np.ndarray] = {}
        upper: dict[int, np.ndarray] = {}
        for level in levels:
            q = norm.ppf(1.0 - (1.0 - level / 100.0) / 2.0)
            lower[level], upper[level] = means - q * std_errors, means + q * std_errors
        if spec.log:
            means = np.exp(means)
            lower = {level: np.exp(b) for level, b in lower.items()}
            upper = {level: np.exp(b) for level, b in upper.items()}
        return Forecast(mean=means, lower=lower, upper=upper)

    def _effects(self, days: pd.DatetimeIndex) -> np.ndarray:
        if not self.flags:
            return np.zeros(len(days))
        return calendar_features(days, self.flags).to_numpy() @ self.beta


def _estimable_columns(exog: np.ndarray, observed: np.ndarray) -> list[int]:
    """Columns that occur on an observed day and are not a copy of an earlier kept column: the
    others have no likelihood information (an all-zero column) or none of their own."""
    kept: list[int] = []
    for j in range(exog.shape[1]):
        column = exog[observed, j]
        if not column.any():
            continue
        if any(np.array_equal(column, exog[observed, k]) for k in kept):
            continue
        kept.append(j)
    return kept
