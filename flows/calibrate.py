"""The calibration step of the nightly, backfill and backtest runs: after every model stored its
forecasts of the run's cutoffs (and before reconciliation and scoring), the bands of each model's
forecasts of the calibrated series are rescaled from the model's own matured errors
(``tasks/core/calibration.py``); the bands as forecast stay in the store as ``<model>@raw``.

Cutoffs are calibrated in date order, chunk by chunk, because each one's bands depend on the
bands issued before it. A forecast is calibrated once (its ``<model>@raw`` twin, same ``y_hat``
and other bands, says so; :func:`tasks.core.calibration.needs_calibration`): a run that skips
stored cutoffs leaves them as they are, and a run killed between forecasting and calibrating
leaves raw rows the next run calibrates.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Mapping, Sequence

import pandas as pd
from prefect import get_run_logger

from flows.series import model_series
from flows.settings import Settings
from storage import Store
from tasks.calibrate import calibrate_model
from tasks.core.calibration import CalibrationSpec, is_raw
from tasks.core.models.reconcile import is_reconciled
from tasks.forecast import store_forecasts

CUTOFFS_PER_CHUNK = 91
"""Cutoffs calibrated per read of the stored forecasts (a quarter, as the models store them)."""


def calibrated_series(settings: Settings, series: Sequence[str]) -> list[str]:
    """The run's series whose bands are calibrated (``RIDERSHIP_CALIBRATION_SERIES`` patterns)."""
    return [s for s in series if any(fnmatch(s, pattern) for pattern in settings.calibration_series)]


def calibrate_cutoffs(
    store: Store, history: pd.DataFrame, settings: Settings, models: Sequence[str], series: Sequence[str],
    cutoffs: Sequence[pd.Timestamp], active: Mapping[str, Sequence[pd.Timestamp]], run_id: str,
    publication_lag: int = 0, many_series_models: Sequence[str] | None = None,
) -> dict[str, int]:
    """Calibrate every model's uncalibrated forecasts at ``cutoffs``; model → rows calibrated."""
    spec = CalibrationSpec(method=settings.calibration)  # type: ignore[arg-type]
    if spec.method == "none":
        return {}
    logger = get_run_logger()
    targets = calibrated_series(settings, series)
    calibrated: dict[str, int] = {}
    for model in (m for m in models if not is_reconciled(m) and not is_raw(m)):
        members = [s for s in model_series(model, targets, many_series_models) if active.get(s)]
        days = sorted(c for c in cutoffs if any(c in active[s] for s in members))
        calibrated[model] = 0
        for first in range(0, len(days), CUTOFFS_PER_CHUNK):
            chunk = days[first : first + CUTOFFS_PER_CHUNK]
            rows, raw = calibrate_model(store, history, spec, model, members, chunk, settings.horizon, publication_lag)
            # The bands as forecast first: a run killed in between leaves raw rows to calibrate
            # again, never calibrated ones whose raw bands are lost.
            store_forecasts(store, raw, run_id, keep_stamps=True)
            store_forecasts(store, rows, run_id)
            calibrated[model] += len(rows)
        if calibrated[model]:
            logger.info("%s: %d forecast row(s) calibrated (%s), bands as forecast kept as %s@raw", model, calibrated[model], spec.method, model)
    return calibrated
