"""Parallel runs against a Prefect server on PostgreSQL (SQLite locks under concurrent writes
from several flow runs): disjoint backfills at once, and races on one storage root (overlapping
backfills, two nightly runs for one date) settled by the storage leases of storage/locks.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from storage import Store
from storage.fs import Root
from storage.locks import LOCKS
from tasks.core.models.catalog import STATISTICAL_MODELS
from tasks.core.evaluation.scoring import range_window, score_forecasts, trailing_windows
from tests.prefect_stack import BIN, PrefectStack, ThrowawayPostgres, postgres_bin
from tests.synthetic import as_raw_csv, synthetic_clean

pytestmark = pytest.mark.e2e


@pytest.fixture
def postgres_stack(tmp_path: Path):
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    if os.geteuid() != 0:
        pytest.skip("starting a throwaway PostgreSQL cluster needs root (to run it as the postgres user)")
    storage = str(tmp_path / "storage")
    Store.open(storage).ridership.write_clean(synthetic_clean())
    database = ThrowawayPostgres()
    prefect = PrefectStack(tmp_path, storage)
    prefect.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database.url
    try:
        database.start()
        prefect.start_server()
        yield prefect
    finally:
        prefect.shutdown()
        database.stop()


def test_two_backfills_run_at_once_on_a_postgres_backed_server(postgres_stack: PrefectStack):
    ranges = [("2019-03-01", "2019-03-06"), ("2019-03-07", "2019-03-12")]
    runs = [
        subprocess.Popen(
            [str(BIN / "ridership"), "backfill", "--start", start, "--end", end, "--models", "naive,sarima",
             "--series", "rail,bus", "--train-days", "182"],
            env={**postgres_stack.env, "RIDERSHIP_WORKERS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for start, end in ranges
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
    forecasts = Store.open(postgres_stack.env["RIDERSHIP_STORAGE"]).forecasts.read()
    expected = set(pd.date_range("2019-02-28", "2019-03-11"))
    for (model, unique_id), rows in forecasts.groupby(["model", "unique_id"]):
        assert set(rows["cutoff"]) == expected, (model, unique_id)
    assert sorted(forecasts["model"].unique()) == ["naive", "naive@raw", "sarima", "sarima@raw"]


def _start_all(commands: list[list[str]], env: dict[str, str]) -> list[str]:
    """Start every command at once; wait for all; each must exit 0."""
    runs = [
        subprocess.Popen([str(BIN / "ridership"), *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for command in commands
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for command, run, output in zip(commands, runs, outputs):
        assert run.returncode == 0, f"{command}: exit {run.returncode}\n{output[-3000:]}"
    return outputs


def _assert_metrics_match_what_is_stored(store: Store, eval_date: str, windows: list) -> None:
    """The stored metrics of ``eval_date`` are those the stored forecasts give, row for row."""
    stored = store.metrics.read(eval_date=pd.Timestamp(eval_date))
    assert set(stored["window"]) == {w.name for w in windows}
    recomputed = score_forecasts(store.forecasts.read(), store.ridership.read_clean(), pd.Timestamp(eval_date), windows)
    key = ["window", "unique_id", "model", "h"]
    pd.testing.assert_frame_equal(
        stored.sort_values(key).reset_index(drop=True), recomputed.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_overlapping_backfills_then_two_nightlies_for_one_date_share_a_root(postgres_stack: PrefectStack, tmp_path: Path):
    """Issue 11 (2): races on one root and one server end with one row per forecast key,
    complete metrics and a report; the clean store gets every row of the two concurrent ingests."""
    storage = postgres_stack.env["RIDERSHIP_STORAGE"]
    store = Store.open(storage)
    published = synthetic_clean(end="2019-03-20")
    store.ridership.write_clean(published[published["service_date"] <= "2019-03-12"])
    source = tmp_path / "portal.csv"
    source.write_text(as_raw_csv(published))
    env = {**postgres_stack.env, "RIDERSHIP_WORKERS": "1", "RIDERSHIP_ENSEMBLE_MEMBERS": "", "RIDERSHIP_SOURCE": str(source)}

    backfill = ["backfill", "--models", "naive,sarima", "--series", "rail,bus", "--train-days", "182", "--end", "2019-03-12"]
    _start_all([[*backfill, "--start", "2019-03-01"], [*backfill, "--start", "2019-03-05"]], env)
    _start_all([["nightly", "--run-date", "2019-03-21"]] * 2, env)

    forecasts = store.forecasts.read()
    key = ["unique_id", "cutoff", "model", "h"]
    assert not forecasts.duplicated(key).any()
    backfilled = set(pd.date_range("2019-02-28", "2019-03-11"))
    for (model, unique_id), rows in forecasts.groupby(["model", "unique_id"]):
        backfilled_model = model.removesuffix("@raw") in ("naive", "sarima")  # a model and its bands as forecast
        expected = backfilled | {pd.Timestamp("2019-03-20")} if backfilled_model else {pd.Timestamp("2019-03-20")}
        assert set(rows["cutoff"]) == expected, (model, unique_id)
        assert (rows.groupby("cutoff").size() == 14).all(), (model, unique_id)
    assert set(forecasts["model"]) == set(STATISTICAL_MODELS) | {f"{m}@raw" for m in STATISTICAL_MODELS}

    clean = store.ridership.read_clean()
    pd.testing.assert_frame_equal(clean.reset_index(drop=True), published.reset_index(drop=True), check_dtype=False)
    assert store.ridership.read_revisions().empty

    _assert_metrics_match_what_is_stored(
        store, "2019-03-12",
        [*trailing_windows("2019-03-12"), range_window("2019-03-01", "2019-03-12"), range_window("2019-03-05", "2019-03-12")],
    )
    _assert_metrics_match_what_is_stored(store, "2019-03-20", trailing_windows("2019-03-20"))
    for run_date in ("2019-03-12", "2019-03-21"):
        report = store.reports.read_text(pd.Timestamp(run_date), "report.md")
        assert report.startswith(f"# Ridership forecast report {run_date}") and "## Series bus" in report
    assert Root.from_url(storage).listdir(Root.from_url(storage).join(LOCKS)) == []
