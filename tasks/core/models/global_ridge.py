"""One ridge regression per horizon across every station of a run (model ``global_ridge``).

A *global* model: at each cutoff it pools the training rows of all the parts of the system the
run forecasts (stations, routes, ``rail_entries``: every column of the history but the system
totals) and fits one robust ridge per horizon on them, where ``ridge`` fits one per series. The
rows are ``ridge``'s own (:mod:`tasks.core.features.direct`): every regressor and target is a log
difference from the series' own four-week baseline, which is the per-station scaling that lets a
station of 300 rides a day and one of 20,000 share coefficients. Intervals come from the pooled
fit's residuals on the station's own rows, so a noisy small station gets wide bands.

Measured (docs/models-and-accuracy.md, "Stations"): on the 2019 station backtest it trails the
per-station ``ridge`` (and the global LightGBM peer of the issue trailed it too): with seven
years of one station's rows, a per-station fit has data enough, and what pooling adds (a common
holiday or weather response) ``ridge`` already learns from each station's own years.

Pure: frames in, forecasts out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from schemas.series import TOTAL_SERIES
from tasks.core.features.direct import HISTORY_FOR_BASELINES, DirectFeatures, Prepared
from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast
from tasks.core.models.ridge import (
    MIN_ROWS, LinearModel, closed, closed_forecast, coefficients_version, fit_huber_ridge, quantile_forecast,
)  # fmt: skip
from tasks.core.models.sarima import series_values

MODEL_NAME = "global_ridge"
MIN_OWN_RESIDUALS = 20


@dataclass(frozen=True)
class GlobalRidgeForecaster:
    """Model family ``global_ridge``: fitted once per cutoff on every part of the run."""

    features: DirectFeatures = field(default_factory=DirectFeatures)
    penalty: float = 10.0
    huber: float = 1.0
    max_horizon: int = 14
    name: str = MODEL_NAME

    def spec(self) -> dict[str, Any]:
        return {
            "model": self.name, "features": self.features.spec(), "penalty": self.penalty, "huber": self.huber,
            "max_horizon": self.max_horizon, "pool": "every column but the system totals",
        }  # fmt: skip

    def fit_panel(self, history: pd.DataFrame, unique_ids: Sequence[str]) -> dict[str, "GlobalRidgeFitted"]:
        """One fit over the pool (``unique_ids`` and every other part in ``history``), then one
        fitted view per requested series. A series alone in the pool is an ordinary ridge."""
        pool = pool_of(history, unique_ids)
        confirmations = {_kind(uid): self.features.confirmations(history, uid) for uid in _one_per_kind(pool)}
        rows: dict[int, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = {
            h: ([], [], []) for h in range(1, self.max_horizon + 1)
        }
        for position, uid in enumerate(pool):
            values = series_values(history, uid)
            prepared = self.features.prepare(
                values, history.index[0], 0, confirmations[_kind(uid)], unique_id=uid
            )
            last = len(values) - 1
            for h, (xs, ys, owners) in rows.items():
                anchors = np.arange(HISTORY_FOR_BASELINES, last - h + 1)
                X, base = self.features.design(prepared, anchors, h)
                target = prepared.log_values[anchors + h] - base
                usable = np.isfinite(target)
                xs.append(X[usable])
                ys.append(target[usable])
                owners.append(np.full(int(usable.sum()), position))
        models = []
        owner_rows = []
        for h, (xs, ys, owners) in rows.items():
            y = np.concatenate(ys)
            if len(y) < MIN_ROWS:
                raise ValueError(f"{self.name}: {len(y)} usable rows for h={h} over {len(pool)} series")
            models.append(fit_huber_ridge(np.vstack(xs), y, self.penalty, self.huber))
            owner_rows.append(np.concatenate(owners))
        version = coefficients_version(self.spec(), np.stack([m.coefficients for m in models]))
        fitted = {}
        for uid in unique_ids:
            position = pool.index(uid)
            own = [m.residuals[owner == position] for m, owner in zip(models, owner_rows)]
            # Too few rows of its own (a station opened last month): the pool's residuals.
            residuals = tuple(r if len(r) >= MIN_OWN_RESIDUALS else m.residuals for r, m in zip(own, models))
            fitted[uid] = GlobalRidgeFitted(self, uid, tuple(models), residuals, version)
        return fitted

    def fit(self, history: pd.DataFrame, unique_id: str) -> "GlobalRidgeFitted":
        return self.fit_panel(history, [unique_id])[unique_id]


@dataclass(frozen=True, eq=False)
class GlobalRidgeFitted:
    forecaster: GlobalRidgeForecaster
    unique_id: str
    models: tuple[LinearModel, ...]
    residuals: tuple[np.ndarray, ...]
    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        if not 1 <= horizon <= len(self.models):
            raise ValueError(f"{self.forecaster.name} was fitted for horizons 1..{len(self.models)}, asked for {horizon}")
        features = self.forecaster.features
        values = series_values(history, self.unique_id)
        if closed(values):
            return closed_forecast(horizon, levels)
        confirmations = features.confirmations(history, self.unique_id)
        prepared: Prepared = features.prepare(values, history.index[0], horizon, confirmations, unique_id=self.unique_id)
        cutoff = np.array([len(values) - 1])
        log_mean = np.empty(horizon)
        for h in range(1, horizon + 1):
            X, base = features.design(prepared, cutoff, h)
            log_mean[h - 1] = base[0] + self.models[h - 1].predict(X)[0]
        return quantile_forecast(log_mean, self.residuals[:horizon], levels)


def pool_of(history: pd.DataFrame, unique_ids: Sequence[str]) -> list[str]:
    """The series a global fit pools: the requested ones and every other part of the system in
    ``history`` (not the totals, whose days are the sum of everything else), in a fixed order so
    that the fit does not depend on how a run groups its series."""
    parts = [c for c in history.columns if c != "day_type" and c not in TOTAL_SERIES]
    return sorted(set(parts) | set(unique_ids))


def _kind(unique_id: str) -> str:
    return unique_id if unique_id in TOTAL_SERIES else "part"


def _one_per_kind(pool: Sequence[str]) -> list[str]:
    """One series per kind of confirmation: every part is confirmed by both totals alike, so
    their shifts are computed once, not once per station."""
    chosen: dict[str, str] = {}
    for uid in pool:
        chosen.setdefault(_kind(uid), uid)
    return list(chosen.values())
