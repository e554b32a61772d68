"""Calibration through a backtest (issue 21 acceptance): the stored quantiles at a cutoff never
depend on a value after it, and the bands as forecast are kept as ``<model>@raw``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.backtest import backtest
from schemas.forecasts import QUANTILE_COLUMNS
from storage import Store
from tests.synthetic import synthetic_clean

pytestmark = pytest.mark.usefixtures("prefect_harness")

CUTOFF = pd.Timestamp("2019-04-03")
BANDS = ["y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", *QUANTILE_COLUMNS]


def stored_after_backtest(root: str, clean: pd.DataFrame, monkeypatch) -> pd.DataFrame:
    monkeypatch.setenv("RIDERSHIP_STORAGE", root)
    store = Store.open(root)
    store.ridership.write_clean(clean)
    backtest(name="leak", start=date(2019, 3, 1), end=date(2019, 4, 30), every=3, models=["naive"], series=["bus"])
    rows = store.backtest("leak").forecasts.read()
    return rows.sort_values(["model", "cutoff", "h"]).reset_index(drop=True)


def test_stored_quantiles_at_a_cutoff_ignore_every_later_value(storage_root: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RIDERSHIP_WORKERS", "1")
    monkeypatch.setenv("RIDERSHIP_RNN_MODELS", "")
    monkeypatch.setenv("RIDERSHIP_ENSEMBLE_MEMBERS", "")
    clean = synthetic_clean()
    honest = stored_after_backtest(storage_root, clean, monkeypatch)
    later = clean["service_date"] > CUTOFF
    perturbed = clean.assign(bus=np.where(later, clean["bus"] * 2, clean["bus"]))
    leaked = stored_after_backtest(str(tmp_path / "perturbed"), perturbed, monkeypatch)

    assert set(honest["model"]) == {"naive", "naive@raw"}
    calibrated, raw = (honest[honest["model"] == m].reset_index(drop=True) for m in ("naive", "naive@raw"))
    np.testing.assert_array_equal(calibrated["y_hat"], raw["y_hat"])
    assert not np.allclose(calibrated["y_hi_80"], raw["y_hi_80"])  # calibration moved the bands
    values = calibrated[list(QUANTILE_COLUMNS)].to_numpy()
    assert (np.diff(values, axis=1) >= 0).all()  # monotone in every stored row

    until = honest["cutoff"] <= CUTOFF
    assert until.sum() > 0 and (~until).sum() > 0
    pd.testing.assert_frame_equal(honest.loc[until, ["model", "cutoff", "h", *BANDS]], leaked.loc[until, ["model", "cutoff", "h", *BANDS]])
    # ... and the perturbation reached the later cutoffs (the comparison can fail).
    assert not np.allclose(honest.loc[~until, "y_hi_80"], leaked.loc[~until, "y_hi_80"])
