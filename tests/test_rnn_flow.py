"""RNNs in the flows, on tiny configs: weekly retrain in walk-forward order, each cutoff
forecast by the champion as of that cutoff, and no leakage from data after the range."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from flows.backfill import backfill
from storage import Store
from tests.synthetic import synthetic_clean

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

TINY = {
    "RIDERSHIP_RNN_MAX_EPOCHS": "2",
    "RIDERSHIP_RNN_TRAIN_DAYS": "150",
    "RIDERSHIP_RNN_VALIDATION_DAYS": "90",
    "RIDERSHIP_RETRAIN_WEEKDAY": "0",
}


def run_backfill(storage_root: str, clean: pd.DataFrame, monkeypatch) -> Store:
    for name, value in {**TINY, "RIDERSHIP_STORAGE": storage_root}.items():
        monkeypatch.setenv(name, value)
    store = Store.open(storage_root)
    store.ridership.write_clean(clean)
    backfill(start=date(2019, 3, 1), end=date(2019, 3, 12), models=["multitask_rnn"], series=["rail"])
    return store


def test_weekly_retrain_champion_as_of_and_no_leakage(tmp_path, monkeypatch):
    clean = synthetic_clean()
    store = run_backfill(str(tmp_path / "a"), clean, monkeypatch)

    registry = store.registry
    cards = [registry.read_card("multitask_rnn", "rail", v) for v in registry.versions("multitask_rnn", "rail")]
    trained_at = sorted(c["cutoff"] for c in cards)
    # The first cutoff (no champion yet), then the cutoffs whose run date is a Monday.
    assert trained_at == ["2019-02-28", "2019-03-03", "2019-03-10"]
    assert all(c["promotion"] is not None for c in cards)

    forecasts = store.forecasts.read()
    assert set(forecasts["cutoff"]) == set(pd.date_range("2019-02-28", "2019-03-11"))
    promoted = {c["version"]: pd.Timestamp(c["cutoff"]) for c in cards if c["promotion"]["promoted"]}
    for cutoff, rows in forecasts.groupby("cutoff"):
        version = rows["model_version"].iloc[0]
        assert version in promoted and promoted[version] <= cutoff  # never a model from later data
        newer = [v for v, at in promoted.items() if promoted[version] < at <= cutoff]
        assert not newer, f"{cutoff:%Y-%m-%d} used {version} though {newer} was champion by then"
    assert forecasts[["y_lo_95", "y_lo_80", "y_hat", "y_hi_80", "y_hi_95"]].notna().all().all()

    perturbed = clean.copy()
    after = perturbed["service_date"] > pd.Timestamp("2019-03-12")
    perturbed.loc[after, ["bus", "rail"]] *= 3
    other = run_backfill(str(tmp_path / "b"), perturbed, monkeypatch).forecasts.read()
    np.testing.assert_array_equal(other["y_hat"].to_numpy(), forecasts["y_hat"].to_numpy())
    assert list(other["model_version"]) == list(forecasts["model_version"])
