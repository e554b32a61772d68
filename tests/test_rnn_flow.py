"""RNNs in the flows, on tiny configs: weekly retrain in walk-forward order, each cutoff
forecast by the champion as of that cutoff, and no leakage: every retrain and every forecast
gives the same result when the data after its own cutoff is perturbed."""

from __future__ import annotations

from datetime import date

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
FIRST_RUN, LAST_RUN = date(2019, 3, 1), date(2019, 3, 12)
CUTOFFS = pd.date_range(FIRST_RUN, LAST_RUN) - pd.Timedelta(days=1)
FORECAST_COLUMNS = ["unique_id", "cutoff", "ds", "h", "model", "y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "model_version"]


def run_backfill(storage_root: str, clean: pd.DataFrame, monkeypatch, start: date = FIRST_RUN, end: date = LAST_RUN) -> Store:
    for name, value in {**TINY, "RIDERSHIP_STORAGE": storage_root}.items():
        monkeypatch.setenv(name, value)
    store = Store.open(storage_root)
    store.ridership.write_clean(clean)
    backfill(start=start, end=end, models=["multitask_rnn"], series=["rail"])
    return store


def cards(store: Store) -> list[dict]:
    registry = store.registry
    found = [registry.read_card("multitask_rnn", "rail", v) for v in registry.versions("multitask_rnn", "rail")]
    return sorted(found, key=lambda c: c["cutoff"])


def forecast_rows(store: Store) -> pd.DataFrame:
    rows = store.forecasts.read()[FORECAST_COLUMNS]
    return rows.sort_values(["unique_id", "cutoff", "h"], ignore_index=True)


def test_weekly_retrain_champion_as_of_and_no_leakage(tmp_path, monkeypatch):
    clean = synthetic_clean()
    store = run_backfill(str(tmp_path / "a"), clean, monkeypatch)

    trained = cards(store)
    # The first cutoff (no champion yet), then the cutoffs whose run date is a Monday.
    assert [c["cutoff"] for c in trained] == ["2019-02-28", "2019-03-03", "2019-03-10"]
    assert all(c["promotion"] is not None for c in trained)

    forecasts = forecast_rows(store)
    assert set(forecasts["cutoff"]) == set(CUTOFFS)
    promoted = {c["version"]: pd.Timestamp(c["cutoff"]) for c in trained if c["promotion"]["promoted"]}
    for cutoff, rows in forecasts.groupby("cutoff"):
        version = rows["model_version"].iloc[0]
        assert version in promoted and promoted[version] <= cutoff  # never a model from later data
        newer = [v for v, at in promoted.items() if promoted[version] < at <= cutoff]
        assert not newer, f"{cutoff:%Y-%m-%d} used {version} though {newer} was champion by then"
    assert forecasts[["y_lo_95", "y_lo_80", "y_hat", "y_hi_80", "y_hi_95"]].notna().all().all()

    # The same range run as the nightly job meets it, one run date at a time, each on data whose
    # days after that run's cutoff are perturbed (x3): every retrain and every forecast sees
    # perturbed values from the day after its own cutoff on (the store carries the champions from
    # one run to the next, as in production). A retrain or forecast that read even one day past its
    # cutoff would change a version or a value.
    stepwise_root = str(tmp_path / "b")
    for cutoff in CUTOFFS:
        perturbed = clean.copy()
        perturbed.loc[perturbed["service_date"] > cutoff, ["bus", "rail"]] *= 3
        run_date = (cutoff + pd.Timedelta(days=1)).date()
        stepwise = run_backfill(stepwise_root, perturbed, monkeypatch, start=run_date, end=run_date)

    def decisions(found: list[dict]) -> list[tuple]:
        return [
            (c["cutoff"], c["version"], c["validation_mae"], c["promotion"]["promoted"],
             c["promotion"]["champion_version"], c["promotion"]["champion_mae_on_same_window"])
            for c in found
        ]  # fmt: skip

    assert decisions(cards(stepwise)) == decisions(trained)
    pd.testing.assert_frame_equal(forecast_rows(stepwise), forecasts, check_exact=True)
