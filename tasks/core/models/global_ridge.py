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
from tasks.core.features.direct import DirectFeatures
from tasks.core.models.ridge import (
    MIN_ROWS, RidgeFitted, RidgeForecaster, coefficients_version, fit_huber_ridge, training_rows,
)  # fmt: skip
from tasks.core.models.sarima import series_values

MODEL_NAME = "global_ridge"
MIN_OWN_RESIDUALS = 20


@dataclass(frozen=True)
class GlobalRidgeForecaster(RidgeForecaster):
    """Model family ``global_ridge``: ``ridge``'s settings, fitted once per cutoff on every part
    of the run."""

    # Measured (0.0721) with the totals' outlier rule on stations too; the stations' wider rule
    # was chosen on the per-station ridge and not tried on the pooled fit.
    features: DirectFeatures = field(default_factory=lambda: DirectFeatures(station_outlier_threshold=0.25))
    name: str = MODEL_NAME

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "pool": "every column but the system totals"}

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
            for h, (xs, ys, owners) in rows.items():
                X, target = training_rows(self.features, prepared, len(values), h)
                xs.append(X)
                ys.append(target)
                owners.append(np.full(len(target), position))
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
            fitted[uid] = GlobalRidgeFitted(self, uid, tuple(models), version, residuals=residuals)
        return fitted

    def fit(self, history: pd.DataFrame, unique_id: str) -> "GlobalRidgeFitted":
        return self.fit_panel(history, [unique_id])[unique_id]


@dataclass(frozen=True, eq=False)
class GlobalRidgeFitted(RidgeFitted):
    """One series' view of the pooled fit: ``ridge``'s forecast, bands from its own rows."""

    residuals: tuple[np.ndarray, ...] = ()

    def band_residuals(self, horizon: int) -> list[np.ndarray]:
        return list(self.residuals[:horizon])


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
