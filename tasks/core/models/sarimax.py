"""SARIMAX: the seed's SARIMA plus calendar regressors (model ``sarimax``).

Regression with SARIMA errors, ``z_t = x_t' beta + u_t`` with ``u`` the seed's (1,0,0)(0,1,1,7),
where ``x_t`` are 0/1 flags from :mod:`tasks.core.features.calendar_flags` (known for any future date,
so the forecast's regressors come from the calendar, never from data) and ``z`` is the series
or its log (``log``). statsmodels' ``ARIMA(z, exog=X)`` estimates ``beta`` with the ARMA
parameters in one likelihood. Forecasting reuses :func:`tasks.core.models.sarima.forecast_moments`
on the regression residual ``u = z - X beta`` with the ARMA parameters: filtering ``z`` with the
observation intercept ``X beta`` is filtering ``u`` with none, so the means and variances equal
statsmodels' ``get_forecast(exog=...)`` (checked in the tests), at the cost of the seed's path.

A flag that never occurs in the training window cannot be estimated and is left out of that fit
(its effect is taken as zero); so is one that is a linear combination of the flags before it in
the window (:func:`_estimable_columns`): in most 400-day windows no Sunday-service holiday falls
on a Sunday, and ``holiday_off_sunday`` is then the sum of each holiday's own flag and
``observed_holiday``. Dropping the last of each dependent set (usually ``christmas_day``, and
``bridge_day`` when Christmas Eve and New Year's Eve are the bridge days) keeps the regression of
full rank; the fitted effect on every day of the window is unchanged, so ``sarimax``'s forecasts
moved by at most 1.4e-9 (relative) on ten real windows (``bench/bench_sarimax_rank.py``). Intervals are the model's Gaussian ones (on the log scale when
``log``, then exponentiated: a monotone map keeps the quantiles).

Measured choices (``bench/bench_accuracy.py``, issue 10's protocols A and B, mean MAE over
h = 1..14 (h = 1 in brackets where it tells more), bus / rail):

* sarima, 182 days: A 45,384 / 42,561, B 53,422 / 51,611. Plus ``holiday_off_sunday``:
  A 35,983 / 32,555, B 43,457 / 41,999. Adding the Friday and Sunday before a Monday holiday on
  182 days: A +20 / +59, B +139 / -21 (no gain). The same single flag on 400 days:
  A 34,420 / 30,904, B 40,498 / 39,011.
* **every flag, 400 days**: A 27,333 / 26,259, B 33,329 / 31,652. A window of 400 days holds last
  year's occurrence of each annual flag (the horizon's dates a year back and a margin); on 182
  days those flags are never estimable and drop out.
* what each group of flags buys, as the rise when it alone is dropped (A | B):
  Sunday-service holidays (``holiday_off_sunday``, each holiday's own date, ``observed_holiday``)
  +5,573 / +6,072 | +10,654 / +11,061; Christmas to New Year (``christmas_eve``,
  ``christmas_week``, ``new_years_eve``, ``january_2``) +13 / +103 | +2,649 / +1,317 (A has no
  December); Thanksgiving week (the day before, the day after, the weekend after) +136 / +205 |
  +1,517 / +1,355; weekday-service federal holidays (``mlk_day``, ``presidents_day``,
  ``columbus_day``) +1,008 / +656 | +840 / +273; long weekends (``bridge_day``, the Friday and
  Sunday before a Monday holiday) -164 / +517 | -204 / +96 on the mean but +2,329 / +2,650 at
  B's h = 1, so kept; Easter (``good_friday``, ``holy_week``, ``easter_sunday``) +5,987 / +1,414 |
  +1,933 / +521; the parade and Marathon days (``st_patricks_parade``, ``marathon_sunday``,
  ``pride_sunday``) +160 / +2,743 | +61 / +2,284 (rail: crowds ride trains). Every group helps.
* tried, not kept: the log scale (the likelihood optimum there has a seasonal MA of ~-1, a fixed
  weekly profile that never adapts: A 48,517 / 48,754 with the holiday flag on 182 days, 35 %
  worse than the level scale, where the seed's optimizer stops short of that optimum).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.arima.model import ARIMA

from tasks.core.features.calendar_flags import OWN_DATE_HOLIDAYS, calendar_features
from tasks.core.features.direct import DIRECT_FLAGS
from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast
from tasks.core.models.sarima import (
    SEED_ORDER, SEED_SEASONAL_ORDER, forecast_moments, gaussian_bounds, model_version, series_values,
)

MODEL_NAME = "sarimax"
SARIMAX_FLAGS = DIRECT_FLAGS
"""Every flag the backtest kept for ``ridge``; dropping any one group made sarimax worse (module
docstring)."""
RANK_TOLERANCE = 1e-8
"""A column closer than this (relative to its norm) to the span of the kept ones adds nothing of
its own and is dropped (:func:`_estimable_columns`). The flags are far from that edge: over every
400-day window ending 2002-03-01..2026-12-31 (every 5th day) a dependent column lies within
~1e-15 of the span and every kept one at least half its norm away."""


@dataclass(frozen=True)
class SarimaxForecaster:
    """Model family ``sarimax``: ``ARIMA(z, exog=calendar flags)`` on the training window."""

    flags: tuple[str, ...] = SARIMAX_FLAGS
    log: bool = False  # the level scale: the log one measured 35 % worse (docstring)
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
            "own_date_holidays": "sunday_service_days_only",
        }

    def fit(self, history: pd.DataFrame, unique_id: str) -> SarimaxFitted:
        z = self._transform(series_values(history, unique_id))
        exog = holiday_regressors(history.index, self.flags)
        used = _estimable_columns(exog, np.isfinite(z))
        kept = tuple(self.flags[i] for i in used)
        model = ARIMA(z, exog=exog[:, used] if used else None, order=self.order, seasonal_order=self.seasonal_order)
        with warnings.catch_warnings():
            # The log-scale likelihood stops at L-BFGS's iteration cap (50) on most windows, of full
            # rank or not (bench/bench_sarimax_rank.py: 10 of 10 real 400-day windows; with the
            # cap raised it converges after 64-152 iterations): those last iterates are what the
            # backtest measured, so the warning is noise here.
            warnings.simplefilter("ignore", ConvergenceWarning)
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
        lower, upper = gaussian_bounds(means, variances, levels)
        if spec.log:
            means = np.exp(means)
            lower = {level: np.exp(b) for level, b in lower.items()}
            upper = {level: np.exp(b) for level, b in upper.items()}
        return Forecast(mean=means, lower=lower, upper=upper)

    def _effects(self, days: pd.DatetimeIndex) -> np.ndarray:
        if not self.flags:
            return np.zeros(len(days))
        return holiday_regressors(days, self.flags) @ self.beta


def holiday_regressors(days: pd.DatetimeIndex, flags: Sequence[str]) -> np.ndarray:
    """The calendar flags of ``days`` as sarimax's regressors: a holiday's own-date flag counts
    only on the days it has Sunday service. A holiday's own effect is estimated from its latest
    occurrence, which in a 400-day window is one day: July 4, 2019, a Thursday with Sunday service,
    gave ``independence_day`` +0.5 log on top of the holiday's drop, and on July 4, 2020, a
    Saturday on Saturday service (observed on the Friday), that alone put the forecast at twice
    the actual riders (bus +99 %). Where the date keeps its weekend service it is that weekend day."""
    frame = calendar_features(days, tuple(dict.fromkeys((*flags, "holiday_off_sunday"))))
    values = frame[list(flags)].to_numpy().copy()
    own = [i for i, flag in enumerate(flags) if flag in OWN_DATE_HOLIDAYS]
    values[:, own] *= frame[["holiday_off_sunday"]].to_numpy()
    return values


def _estimable_columns(exog: np.ndarray, observed: np.ndarray, tolerance: float = RANK_TOLERANCE) -> list[int]:
    """The columns kept for a fit, in order: each that adds a direction of its own to the earlier
    kept ones on the observed days. A column that never occurs there (all zero) has no likelihood
    information; one that is a linear combination of kept columns (a copy, or
    ``holiday_off_sunday`` = the sum of each holiday's own flag and ``observed_holiday`` when no
    holiday in the window falls on a Sunday) has none of its own: left in, it makes the regression
    rank-deficient, the likelihood flat along that combination, and the optimiser wanders along it.

    Rank-revealing, greedily in flag order (so the earlier flag of a dependent set is kept, however
    many days each counts): the QR of the kept columns plus the candidate gives, in its last
    diagonal entry of ``R``, the candidate's distance from the span of the kept ones; the
    candidate is kept when that is above ``tolerance`` times its own norm. The kept columns are
    of full column rank and span every column of ``exog`` on the observed days."""
    rows = exog[observed]
    norms = np.linalg.norm(rows, axis=0)
    kept: list[int] = []
    for j in range(rows.shape[1]):
        if len(kept) == rows.shape[0] or norms[j] == 0:
            continue  # full row rank already, or a flag that never occurs
        r = scipy.linalg.qr(rows[:, [*kept, j]], mode="r", check_finite=False)[0]
        if abs(r[len(kept), len(kept)]) > tolerance * norms[j]:
            kept.append(j)
    return kept
