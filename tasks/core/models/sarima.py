"""SARIMA forecaster on statsmodels' state-space ``ARIMA``, defaulting to the book's model.

The seed (Géron, *Hands-On ML*, ch. 15) refits ``ARIMA(series, order=(1, 0, 0),
seasonal_order=(0, 1, 1, 7)).fit()`` every day and keeps ``forecast()[0]``. The defaults here give
the same forecasts (bit-identical on the book's 92 days, measured) with less work, using only
levers that leave the optimizer's path untouched:

* the series goes in as a plain float array, not a date-indexed Series: statsmodels' date
  handling costs ~10 ms per fit and changes no number;
* ``fit(return_params=True)`` stops after the optimizer, skipping the Kalman *smoother* and the
  parameter covariance (opg) that ``fit()`` computes and a forecast never reads;
* one Kalman filter pass with those parameters then gives the forecast mean *and* its variance
  (from the filter's predicted state covariance), so the intervals equal those of ``fit()``; the
  h-step recursion is run here (:func:`forecast_moments`) rather than through ``get_forecast``,
  which builds an extended model each time. ``cov_type="none"`` is enough for intervals;
  ``low_memory=True`` was measured and rejected: ``get_forecast`` then has no state covariance
  and every interval comes out NaN.

Known quirk kept on purpose: with the seed's settings the scale parameter (σ² ~ 1e10) is badly
scaled for L-BFGS, which stops short of the maximum likelihood. ``concentrate_scale=True``
profiles σ² out and reaches the true optimum, yet scored a worse MAE on the seed's window, so it
is an option, not the default.

Options that *change* forecasts and are never defaults: ``start_params`` (warm start the
optimizer), :meth:`SarimaFitted.refit` (warm start from a previous fit) and reusing one fit over
several cutoffs (the engine's ``refit_every``), which re-filters the new window with the old
parameters, i.e. statsmodels' ``results.apply(endog, refit=False)``; for an expanding window
that equals ``results.extend(new_days)`` in exact arithmetic.

Pure: arrays and frames in, :class:`~tasks.core.models.forecaster.Forecast` out; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.arima.model import ARIMA

from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast

MODEL_NAME = "sarima"
SEED_ORDER = (1, 0, 0)
SEED_SEASONAL_ORDER = (0, 1, 1, 7)


@dataclass(frozen=True)
class SarimaForecaster:
    """Model family ``sarima``: one configuration of statsmodels' ``ARIMA``.

    ``trend`` follows statsmodels (None: a constant only for models without differencing).
    ``start_params`` warm-starts every fit from the given (constrained) parameter vector.
    """

    order: tuple[int, int, int] = SEED_ORDER
    seasonal_order: tuple[int, int, int, int] = SEED_SEASONAL_ORDER
    trend: str | None = None
    concentrate_scale: bool = False
    start_params: tuple[float, ...] | None = None
    name: str = MODEL_NAME

    def spec(self) -> dict[str, Any]:
        """What defines the model's equations, as JSON-able values. ``start_params`` is left out:
        it changes where the optimizer starts, and the fitted parameters already record where it
        ended."""
        return {
            "model": self.name,
            "order": list(self.order),
            "seasonal_order": list(self.seasonal_order),
            "trend": self.trend,
            "concentrate_scale": self.concentrate_scale,
        }

    def build_model(self, values: np.ndarray) -> ARIMA:
        return ARIMA(
            values,
            order=self.order,
            seasonal_order=self.seasonal_order,
            trend=self.trend,
            concentrate_scale=self.concentrate_scale,
        )

    def fit(self, history: pd.DataFrame, unique_id: str) -> SarimaFitted:
        values = series_values(history, unique_id)
        return self._fit_values(values, unique_id, self.start_params)

    def _fit_values(
        self, values: np.ndarray, unique_id: str, start_params: Sequence[float] | None
    ) -> SarimaFitted:
        model = self.build_model(values)
        # return_params: the optimizer only; see the module docstring for what is skipped.
        start = None if start_params is None else np.asarray(start_params, dtype=np.float64)
        params = np.asarray(model.fit(start_params=start, return_params=True), dtype=np.float64)
        return SarimaFitted(
            forecaster=self,
            unique_id=unique_id,
            params=params,
            version=model_version(self.spec(), params),
            _train_values=values,
            _train_model=model,
        )


@dataclass(frozen=True, eq=False)
class SarimaFitted:
    """Fitted SARIMA parameters; forecasts any history window with them."""

    forecaster: SarimaForecaster
    unique_id: str
    params: np.ndarray
    version: str
    # The model built for fitting, kept so that forecasting the training window itself (the daily
    # refit case) does not rebuild it. Never compared, never shown; forecasting updates it in
    # place, so one fitted instance is not for concurrent threads.
    _train_values: np.ndarray | None = field(default=None, compare=False, repr=False)
    _train_model: ARIMA | None = field(default=None, compare=False, repr=False)

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        """Means and prediction intervals for h = 1..horizon after the last day of ``history``.

        The intervals are the model's Gaussian ones, ``mean ± z · sqrt(forecast variance)``; the
        variance comes from the Kalman filter and ignores parameter uncertainty, as in statsmodels.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        values = series_values(history, self.unique_id)
        means, variances = forecast_moments(self._model_for(values), self.params, horizon)
        lower, upper = gaussian_bounds(means, variances, levels)
        return Forecast(mean=means, lower=lower, upper=upper)

    def refit(self, history: pd.DataFrame) -> SarimaFitted:
        """A new fit on ``history`` whose optimizer starts from these parameters (a warm start).

        Faster than a cold fit when consecutive windows are alike, but it lands on a (slightly)
        different optimum, so its forecasts differ from the seed's: opt-in only.
        """
        values = series_values(history, self.unique_id)
        return self.forecaster._fit_values(values, self.unique_id, self.params)

    def _model_for(self, values: np.ndarray) -> ARIMA:
        if self._train_model is not None and self._train_values is not None:
            if np.array_equal(values, self._train_values, equal_nan=True):
                return self._train_model
        return self.forecaster.build_model(values)


def forecast_moments(model: ARIMA, params: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the next ``horizon`` values given ``params``, after one Kalman filter
    pass over the model's data.

    For a time-invariant model (every SARIMA without a time trend) the forecast is the filter's
    prediction step run on with no observations: ``a <- T a + c``, ``P <- T P T' + R Q R'``,
    ``y_hat = Z a + d``, ``var = Z P Z' + H``. That is what ``results.get_forecast`` computes too,
    at about half its cost per fit (measured bit-identical). Time-varying models, and a
    concentrated-out scale (whose filter output is rescaled after the fact), go through
    ``get_forecast`` itself.
    """
    model.update(params, transformed=True)
    ssm = model.ssm
    if not ssm.time_invariant or ssm.filter_concentrated:
        prediction = model.filter(params, cov_type="none").get_forecast(steps=horizon)
        return np.asarray(prediction.predicted_mean, np.float64), np.asarray(prediction.var_pred_mean, np.float64)
    filtered = ssm.filter()
    state = filtered.predicted_state[:, -1].copy()  # a_{T+1|T}
    state_cov = filtered.predicted_state_cov[:, :, -1].copy()  # P_{T+1|T}
    design, obs_intercept, obs_cov = ssm["design"], ssm["obs_intercept"], ssm["obs_cov"]
    transition, state_intercept = ssm["transition"], ssm["state_intercept"]
    selected_state_cov = ssm["selection"] @ ssm["state_cov"] @ ssm["selection"].T
    means, variances = np.empty(horizon), np.empty(horizon)
    for step in range(horizon):
        means[step] = (design @ state + obs_intercept)[0]
        variances[step] = (design @ state_cov @ design.T + obs_cov)[0, 0]
        state = transition @ state + state_intercept
        state_cov = transition @ state_cov @ transition.T + selected_state_cov
    return means, variances


def gaussian_bounds(
    means: np.ndarray, variances: np.ndarray, levels: Sequence[int]
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Lower and upper bounds per level: statsmodels' conf_int written out, mean ∓ q · se with
    q = norm.ppf(1 - alpha / 2)."""
    std_errors = np.sqrt(variances)
    lower: dict[int, np.ndarray] = {}
    upper: dict[int, np.ndarray] = {}
    for level in levels:
        q = norm.ppf(1.0 - (1.0 - level / 100.0) / 2.0)
        lower[level], upper[level] = means - q * std_errors, means + q * std_errors
    return lower, upper


def series_values(history: pd.DataFrame, unique_id: str) -> np.ndarray:
    """The series as a float64 array (NaN for missing days, which the Kalman filter skips)."""
    if unique_id not in history.columns:
        raise KeyError(f"history has no series {unique_id!r}; columns: {list(history.columns)}")
    return history[unique_id].to_numpy(dtype=np.float64, na_value=np.nan)


def model_version(spec: dict[str, Any], params: np.ndarray) -> str:
    """12 hex digits of SHA-256 over the model spec and the exact fitted parameter bits.

    Deterministic: the same window and configuration on the same platform give the same fit, so
    the same version; a different optimum (another window, a warm start) gives another.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(np.ascontiguousarray(params, dtype="<f8").tobytes())
    return digest.hexdigest()[:12]
