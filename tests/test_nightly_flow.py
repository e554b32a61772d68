"""The nightly flow's date logic, idempotence, and a backfill killed midway then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows.backfill import backfill
from flows.nightly import logical_run_date, nightly, nightly_cutoff
from storage import Store
from tasks.core.evaluation.alerts import coverage_alerts
from tasks.core.models.catalog import STATISTICAL_MODELS
from tests.synthetic import as_raw_csv, synthetic_clean


def test_logical_run_date_prefers_parameter_then_schedule_in_chicago():
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    # 03:00 Chicago on 2026-03-09 is 08:00 UTC (CDT); a UTC date would be right here, but
    # 02:00 UTC on 2026-03-10 is still the 9th in Chicago.
    assert logical_run_date(date(2020, 1, 1), now, now) == date(2020, 1, 1)
    assert logical_run_date(None, datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc), now) == date(2026, 3, 9)
    assert logical_run_date(None, None, now) == date(2026, 3, 10)


def test_nightly_cutoff_and_lag():
    assert nightly_cutoff(date(2019, 4, 10), pd.Timestamp("2019-06-30")) == (pd.Timestamp("2019-04-09"), 0)
    assert nightly_cutoff(date(2019, 4, 10), pd.Timestamp("2019-04-06")) == (pd.Timestamp("2019-04-06"), 3)


BUS_BREAK = pd.Timestamp("2019-04-01")


@pytest.fixture
def synthetic_source(tmp_path: Path, storage_root: str, monkeypatch) -> Store:
    source = tmp_path / "snapshot.csv"
    clean = synthetic_clean(end="2019-04-06")
    # Bus halves from 2019-04-01: a level shift the nightly's detection finds (and the coverage
    # alert then judges bus on the days since it).
    clean.loc[clean["service_date"] >= BUS_BREAK, "bus"] //= 2
    source.write_text(as_raw_csv(clean))
    monkeypatch.setenv("RIDERSHIP_SOURCE", str(source))
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_RNN_MODELS", "")
    monkeypatch.setenv("RIDERSHIP_ENSEMBLE_MEMBERS", "")
    monkeypatch.setenv("RIDERSHIP_SARIMA_TRAIN_DAYS", "182")
    return Store.open(storage_root)


@pytest.mark.usefixtures("prefect_harness")
def test_nightly_twice_leaves_same_forecasts_and_metrics(synthetic_source: Store, monkeypatch):
    store = synthetic_source
    first = nightly(run_date=date(2019, 4, 10))
    assert (first.cutoff, first.lag_days) == ("2019-04-06", 3)
    forecasts = store.forecasts.read()
    assert set(forecasts["cutoff"]) == {pd.Timestamp("2019-04-06")}
    assert len(forecasts) == len(STATISTICAL_MODELS) * 2 * 14 * 2  # every statistical model and its @raw, bus + rail
    backfill(start=date(2019, 3, 20), end=date(2019, 4, 6), models=["naive", "sarima"])  # matured targets to score
    # Any miss alerts at 1.0, so the coverage alerts of the 17 scored days show in every output.
    monkeypatch.setenv("RIDERSHIP_COVERAGE_ALERT", "1.0")
    first = nightly(run_date=date(2019, 4, 10))
    metrics_file = next(Path(store.metrics.path).rglob("*.parquet"))
    first_files = {p: p.read_bytes() for p in Path(store.forecasts.path).rglob("*.parquet")}
    first_metrics = metrics_file.read_bytes()
    report = store.reports.read_text(pd.Timestamp("2019-04-10"), "report.md")
    assert "3 day(s)" in report
    assert "Forecasts from cutoff 2019-04-06" in report  # the run's own 14-day forecasts are listed

    assert not store.metrics.read(eval_date=pd.Timestamp("2019-04-06")).empty
    actuals = store.ridership.read_series().rename(columns={"service_date": "ds"})
    production = store.forecasts.read()
    production = production[~production["model"].astype(str).str.endswith("@raw")]  # the bands as forecast never alert
    breaks = store.regimes.read()
    assert list(breaks["unique_id"]) == ["bus"] and breaks["start"].min() == BUS_BREAK
    alerts = coverage_alerts(production, actuals, pd.Timestamp("2019-04-06"), threshold=1.0, breaks=breaks)
    assert alerts and first.report.alerts == [alert.message for alert in alerts]
    assert {alert.since_break for alert in alerts if alert.unique_id == "bus"} == {BUS_BREAK}
    assert {alert.since_break for alert in alerts if alert.unique_id == "rail"} == {None}
    assert all(alert.message in report for alert in alerts)
    with get_client(sync_client=True) as client:
        key = ArtifactFilter(key=ArtifactFilterKey(any_=["ridership-coverage-alerts"]))
        (artifact,) = client.read_artifacts(artifact_filter=key, sort=ArtifactSort.CREATED_DESC, limit=1)
    assert json.loads(artifact.data) == [alert.as_record() for alert in alerts]
    second = nightly(run_date=date(2019, 4, 10))
    assert second.progress.stored == {model: 0 for model in STATISTICAL_MODELS}
    assert {p: p.read_bytes() for p in Path(store.forecasts.path).rglob("*.parquet")} == first_files
    assert metrics_file.read_bytes() == first_metrics


def stored_complete_cutoffs(store: Store, model: str, series: list[str]) -> set[pd.Timestamp]:
    done = [store.forecasts.stored(model, s) for s in series]
    return set.intersection(*done)


def test_killed_backfill_resumes_without_recomputing(storage_root: str, prefect_api_url: str):
    store = Store.open(storage_root)
    store.ridership.write_clean(synthetic_clean())
    env = {
        **os.environ, "PREFECT_API_URL": prefect_api_url, "RIDERSHIP_STORAGE": storage_root,
        "RIDERSHIP_RNN_MODELS": "", "RIDERSHIP_WORKERS": "2",
    }
    command = [
        str(Path(sys.executable).parent / "ridership"), "backfill", "--start", "2019-03-01",
        "--end", "2019-05-31", "--models", "sarima", "--series", "rail,bus", "--train-days", "182",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not stored_complete_cutoffs(store, "sarima", ["rail", "bus"]):
            assert process.poll() is None, "the backfill ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = stored_complete_cutoffs(store, "sarima", ["rail", "bus"])
    assert 0 < len(finished) < 92
    # The killed run stored these cutoffs' forecasts, but was killed before calibrating them.
    before = store.forecasts.read(models=["sarima"])
    before = before[before["cutoff"].isin(finished)].reset_index(drop=True)

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"already stored {len(finished):>5}" in resumed.stdout
    assert stored_complete_cutoffs(store, "sarima", ["rail", "bus"]) == set(pd.date_range("2019-02-28", "2019-05-30"))
    # Not refitted: the resumed run calibrated them, keeping them as they were as sarima@raw
    # (the same rows, stamps and all).
    kept = store.forecasts.read(models=["sarima@raw"])
    kept = kept[kept["cutoff"].isin(finished)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept.drop(columns="model"), before.drop(columns="model"))
    # A write cut by SIGKILL may leave a hidden `.tmp-*.partial` file: readers never see it.
    leftovers = [p for p in Path(store.forecasts.path).rglob("*") if p.name.startswith(".tmp-")]
    assert all(p.suffix == ".partial" for p in leftovers)
    assert len(pd.read_parquet(store.forecasts.path)) == 92 * 2 * 14 * 2  # sarima and sarima@raw
    assert not [p for p in Path(store.forecasts.path).glob("**/*.parquet") if p.name.startswith(".")]
