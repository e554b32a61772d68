"""Parallel backfills against a Prefect server on PostgreSQL (SQLite locks under concurrent
writes from several flow runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from storage import Store
from tests.prefect_stack import BIN, PrefectStack, ThrowawayPostgres, postgres_bin
from tests.synthetic import synthetic_clean

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
    assert sorted(forecasts["model"].unique()) == ["naive", "sarima"]
