"""End to end: a real `prefect server`, `prefect deploy --all` from prefect.yaml, a process
worker, and a backfill triggered the way the UI does it. Everything is shut down afterwards,
also on failure."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from storage import Store
from tests.prefect_stack import RUN_TIMEOUT, PrefectStack
from tests.synthetic import synthetic_clean

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path):
    storage = str(tmp_path / "storage")
    Store.open(storage).ridership.write_clean(synthetic_clean())
    prefect = PrefectStack(tmp_path, storage)
    try:
        prefect.start_server()
        yield prefect
    finally:
        prefect.shutdown()


def test_deployed_backfill_runs_on_a_worker_and_nightly_is_scheduled(stack: PrefectStack):
    stack.run("work-pool", "create", "ridership-local", "--type", "process")
    deployed = stack.run("deploy", "--all")
    assert "nightly" in deployed and "backfill" in deployed
    stack.start("worker", "start", "--pool", "ridership-local", log="worker.log")

    stack.run(
        "deployment", "run", "backfill/backfill", "-p", "start=2019-03-01", "-p", "end=2019-03-04",
        "-p", 'models=["naive", "sarima"]', "-p", 'series=["rail", "bus"]',
        "--watch", "--watch-timeout", str(RUN_TIMEOUT), timeout=RUN_TIMEOUT + 60,
    )

    store = Store.open(stack.env["RIDERSHIP_STORAGE"])
    forecasts = store.forecasts.read()
    expected = set(pd.date_range("2019-02-28", "2019-03-03"))
    for model in ("naive", "sarima"):
        for unique_id in ("rail", "bus"):
            rows = forecasts[(forecasts["model"] == model) & (forecasts["unique_id"] == unique_id)]
            assert set(rows["cutoff"]) == expected, (model, unique_id, stack.log_tail())
    assert not store.metrics.read().empty
    assert "report.md" in store.reports.files(pd.Timestamp("2019-03-04"))

    client = httpx.Client(base_url=stack.api, timeout=10)
    nightly = client.get("/deployments/name/nightly/nightly").json()
    backfill = client.get("/deployments/name/backfill/backfill").json()
    assert backfill["concurrency_limit"] == 1 or backfill.get("global_concurrency_limit", {}).get("limit") == 1
    deadline = time.monotonic() + 120
    scheduled = []
    while time.monotonic() < deadline and not scheduled:
        scheduled = client.post(
            "/flow_runs/filter",
            json={
                "deployments": {"id": {"any_": [nightly["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                "sort": "EXPECTED_START_TIME_ASC",
                "limit": 3,
            },
        ).json()
        time.sleep(2)
    assert scheduled, f"no scheduled nightly run: {stack.log_tail()}"
    next_start = pd.Timestamp(scheduled[0]["expected_start_time"]).tz_convert(ZoneInfo("America/Chicago"))
    assert (next_start.hour, next_start.minute) == (3, 0)
