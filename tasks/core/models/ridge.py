"""Direct multi-horizon ridge regression on log ridership (model ``ridge``).

For each horizon h = 1..``max_horizon`` one linear model predicts ``log y(cutoff + h)`` minus a
four-week same-weekday baseline from the features of :mod:`tasks.core.features.direct` (recent
levels, last year's shape, calendar flags). Training rows are every past anchor day of the
window with that horizon's target observed, so a 3-year window gives ~1,000 rows per horizon;
the forecast row is the cutoff itself, built by the same code.

Fit: standardized regressors, an L2 penalty of ``penalty`` per 1,000 rows (the intercept is not
penalized), and a Huber loss by iteratively reweighted least squares (``huber`` robust standard
deviations, from the residuals' median absolute deviation): a snowstorm or strike in the training
targets is down-weighted instead of bending every coefficient. The forecast is
``exp(baseline + prediction)``, the median on the original scale if log errors are symmetric,
which is what MAE rewards.

Intervals: empirical quantiles, per horizon, of the training rows' residuals (log scale) around
the forecast. Those residuals are in-sample, but with ~50 coefficients on ~1,000 rows the optimism
is small (about p/n = 5 % of the variance); measured coverage is in docs/models-and-accuracy.md.

Measured choices (``bench/bench_accuracy.py``, protocols A / B of issue 10, mean MAE over
h = 1..14, bus / rail; each change against the configuration of its day, so the figures show
the direction and size, not one ladder):

* outlier days out of the baselines and a Huber loss: A 40,051 / 32,168 -> 26,791 / 22,468
  (least squares on raw baselines chased the 2019-01-30 polar vortex for a month);
* the ``holy_week`` flag: A bus 26,791 -> 23,823 (the public schools' spring break);
* per-holiday flags and Sunday baselines for holidays: B 29,334 / 25,672 -> 28,447 / 24,802;
* the last 5 and 10 weekdays' level: B 28,447 / 24,802 -> 27,467 / 24,457, B h=1 bus
  26,486 -> 24,136;
* last year's shape (``year_over_year``), 4-year window: dropping it costs A +846 / +1,458,
  B +1,084 / +1,310; 3 Fourier pairs against none: A -722 / -232, B -489 / -889 (6 pairs: B
  better, A worse by ~900: not kept);
* Huber 1.0 against 1.5: A -213 / -134, B -185 / -191; 2.5 is worse; penalty 10 against 1:
  A -142 / -17, B -168 / -12 (0.1: no change); outlier threshold 0.25 against 0.15 (mixed) and
  0.4 (A +2,116 / +592);
* training window (Huber 1.0, penalty 10): 5 years A 21,816 / 20,547, B 25,687 / 23,066, C
  17,622 / 15,481; 6 years A 22,066 / 20,105, B 25,419 / 22,767; **7 years** A 21,852 / 19,956,
  B 25,430 / 22,796, C 16,816 / 15,470 (4 years: A 22,540 / 21,564, B 26,408 / 23,822);
* the ``veterans_day`` flag: B -1.2 % / -1.1 %, C -1.5 % / -1.0 %; after a level shift in the
  window, the week's shape of the last 52 weeks in the weekday-level regressors
  (``weekday_shape_weeks``): C -0.5 % / -5.5 %, B bit-identical (no break), 2020-08..2021-02
  (held out) within 0.4 % (8 or 26 weeks, or the shape always on: B up to +2.4 %);
* tried, not kept: the other series' recent levels as regressors (B h=1 rail 19,379 -> 18,972,
  everything else within +-250); the raw (outlier-included) deviation of the last 1-2 days
  (A h=1 bus -581, rail +1,354); 4 Fourier pairs (A -269 / +117, B -305 / +220); recency
  weights with a one-year half-life (A +386 / -659).

Pure: arrays and frames in, :class:`~tasks.core.models.forecaster.Forecast` out; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tasks.core.features.direct import HISTORY_FOR_BASELINES, DirectFeatures, Prepared
from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast
from tasks.core.models.sarima import series_values

MODEL_NAME = "ridge"
HUBER_ITERATIONS = 4
MIN_ROWS = 20
CONSTANT_SCALE = 1e-9


@dataclass(frozen=True)
class RidgeForecaster:
    """Model family ``ridge``: one robust ridge regression per horizon."""

    features: DirectFeatures = field(default_factory=DirectFeatures)
    penalty: float = 10.0
    huber: float = 1.0
    max_horizon: int = 14
    name: str = MODEL_NAME

    def spec(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "features": self.features.spec(),
            "penalty": self.penalty,
            "huber": self.huber,
            "max_horizon": self.max_horizon,
            "clip_to_training_range": True,
        }

    def fit(self, history: pd.DataFrame, unique_id: str) -> RidgeFitted:
        values = series_values(history, unique_id)
        confirmations = self.features.confirmations(history, unique_id)
        prepared = self.features.prepare(values, history.index[0], 0, confirmations, unique_id=unique_id, covariates=history)
        models = []
        for h in range(1, self.max_horizon + 1):
            X, target = training_rows(self.features, prepared, len(values), h)
            if len(target) < MIN_ROWS:
                raise ValueError(
                    f"{self.name}: {unique_id} has {len(target)} usable rows for h={h} in a window of "
                    f"{len(values)} days; give it at least {HISTORY_FOR_BASELINES + MIN_ROWS + self.max_horizon} days"
                )
            models.append(fit_huber_ridge(X, target, self.penalty, self.huber))
        coefficients = np.stack([m.coefficients for m in models])
        return RidgeFitted(
            forecaster=self,
            unique_id=unique_id,
            models=tuple(models),
            version=coefficients_version(self.spec(), coefficients),
        )


def training_rows(features: DirectFeatures, prepared: Prepared, days: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizon ``h``'s training rows of a series of ``days`` prepared days: the regressors and
    the log target relative to its baseline, for every anchor whose target is observed."""
    anchors = np.arange(HISTORY_FOR_BASELINES, days - h)
    X, base = features.design(prepared, anchors, h)
    target = prepared.log_values[anchors + h] - base
    usable = np.isfinite(target)
    return X[usable], target[usable]


@dataclass(frozen=True)
class LinearModel:
    """``prediction = intercept_and_slopes @ [1, (x - center) / scale]`` with ``x`` clipped to the
    training range ``low .. high``, plus the training residuals."""

    center: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    residuals: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        # Each column held to the range it was trained on: a linear model extrapolating beyond its
        # data is how a station opened two years before forecast 9,018,058 rides (its two-year-ago
        # reference was the mean of its test-ride days: 7.3 log above the day it is compared with,
        # where training had seen 0 +- 0.009). For the totals it moves the calm years by < 1.5 %.
        X = np.clip(X, self.low, self.high)
        return self.coefficients[0] + ((X - self.center) / self.scale) @ self.coefficients[1:]


@dataclass(frozen=True, eq=False)
class RidgeFitted:
    forecaster: RidgeForecaster
    unique_id: str
    models: tuple[LinearModel, ...]
    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        if not 1 <= horizon <= len(self.models):
            raise ValueError(f"{self.forecaster.name} was fitted for horizons 1..{len(self.models)}, asked for {horizon}")
        features = self.forecaster.features
        values = series_values(history, self.unique_id)
        if closed(values):
            return closed_forecast(horizon, levels)
        confirmations = features.confirmations(history, self.unique_id)
        prepared = features.prepare(values, history.index[0], horizon, confirmations, unique_id=self.unique_id, covariates=history)
        cutoff = np.array([len(values) - 1])
        log_mean = np.empty(horizon)
        for h in range(1, horizon + 1):
            X, base = features.design(prepared, cutoff, h)
            log_mean[h - 1] = base[0] + self.models[h - 1].predict(X)[0]
        widen = young_regime_widening(prepared, features.young_regime_weeks)
        return quantile_forecast(log_mean, self.band_residuals(horizon), levels, widen)

    def band_residuals(self, horizon: int) -> list[np.ndarray]:
        """Per horizon, the log residuals whose quantiles make the bands: the fit's own."""
        return [m.residuals for m in self.models[:horizon]]


CLOSED_DAYS = 7
CLOSED_BELOW = 10
"""Fewer entries a day than this is a closed station: a closed one still records a few (staff,
test rides: Berwyn 0-3 a day for weeks after it closed on 2021-05-16), an open one hundreds."""


def closed(values: np.ndarray) -> bool:
    """Fewer than ``CLOSED_BELOW`` rides on every day of the last week that has a value (a
    closed station): ridge works on logs and has no level to start from, so it forecasts the
    closure to go on."""
    recent = values[-CLOSED_DAYS:]
    observed = recent[np.isfinite(recent)]
    return len(observed) > 0 and not (observed >= CLOSED_BELOW).any()


def closed_forecast(horizon: int, levels: Sequence[int]) -> Forecast:
    zeros = np.zeros(horizon)
    return Forecast(mean=zeros, lower={level: zeros for level in levels}, upper={level: zeros for level in levels})


def young_regime_widening(prepared: Prepared, young_regime_weeks: int) -> float:
    """Extra log half-width of the bands while a new level is young: half the latest shift's
    size, fading to nothing over ``young_regime_weeks``. Training residuals come from calm
    years (the break is removed from the history), so alone they would claim calm-year
    certainty about a level seen for a few days."""
    latest = prepared.shifts.latest() if prepared.shifts is not None else None
    if latest is None:
        return 0.0
    age = prepared.n_observed - 1 - latest.start
    return abs(latest.size) / 2.0 * max(0.0, 1.0 - age / (7.0 * young_regime_weeks))


def fit_huber_ridge(X: np.ndarray, y: np.ndarray, penalty: float, huber: float) -> LinearModel:
    """Ridge regression with a Huber loss (IRLS), on standardized columns.

    A column that does not vary (a flag absent from the window) gets scale 1 and, being
    constant, only the penalty acts on it: its coefficient is zero. "Does not vary" includes
    rounding noise (a log difference of equal values is ~1e-17, not 0): scaled to unit variance,
    it would turn a later, real difference into an enormous prediction.
    """
    center = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < CONSTANT_SCALE] = 1.0
    design = np.column_stack([np.ones(len(X)), (X - center) / scale])
    ridge = np.eye(design.shape[1]) * penalty * len(X) / 1000.0
    ridge[0, 0] = 0.0
    weights = np.ones(len(y))
    for _ in range(HUBER_ITERATIONS + 1):
        weighted = design * weights[:, None]
        coefficients = np.linalg.solve(design.T @ weighted + ridge, weighted.T @ y)
        residuals = y - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residuals))
        if huber <= 0 or spread == 0:
            break
        limit = huber * spread
        weights = np.minimum(1.0, limit / np.maximum(np.abs(residuals), 1e-12))
    return LinearModel(
        center=center, scale=scale, coefficients=coefficients, residuals=residuals, low=X.min(axis=0), high=X.max(axis=0)
    )


def quantile_forecast(
    log_mean: np.ndarray, residuals: Sequence[np.ndarray], levels: Sequence[int], widen: float = 0.0
) -> Forecast:
    """``exp(log_mean)`` with intervals from each horizon's residual quantiles (log scale),
    widened where needed so that each contains the point forecast, and by ``widen`` (log) on
    each side."""
    lower: dict[int, np.ndarray] = {}
    upper: dict[int, np.ndarray] = {}
    for level in levels:
        tail = (1.0 - level / 100.0) / 2.0
        lo = np.array([np.quantile(r, tail) for r in residuals])
        hi = np.array([np.quantile(r, 1.0 - tail) for r in residuals])
        lower[level] = np.exp(log_mean + np.minimum(lo, 0.0) - widen)
        upper[level] = np.exp(log_mean + np.maximum(hi, 0.0) + widen)
    return Forecast(mean=np.exp(log_mean), lower=lower, upper=upper)


def coefficients_version(spec: dict[str, Any], coefficients: np.ndarray) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(np.ascontiguousarray(coefficients, dtype="<f8").tobytes())
    return digest.hexdigest()[:12]
