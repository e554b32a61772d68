"""End to end: a real `prefect server`, `prefect deploy --all` from prefect.yaml, a process
worker, and a backfill triggered the way the UI does it. Everything is shut down afterwards,
also on failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from storage import Store
from tests.conftest import REPO
from tests.synthetic import synthetic_clean

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 180
RUN_TIMEOUT = 900


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class PrefectStack:
    """A server and a worker on 127.0.0.1 with their own PREFECT_HOME."""

    def __init__(self, tmp: Path, storage: str) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "RIDERSHIP_STORAGE": storage,
            "RIDERSHIP_RNN_MODELS": "",
            "RIDERSHIP_WORKERS": "2",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str, log: str) -> subprocess.Popen:
        handle = open(self.logs / log, "w")
        process = subprocess.Popen(
            [str(BIN / "prefect"), *args], cwd=REPO, env=self.env, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", *args], cwd=REPO, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"prefect server not healthy after {SERVER_START_TIMEOUT}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.iterdir()))

    def shutdown(self) -> None:
        for process in reversed(self.processes):
            stop(process)


@pytest.fixture
def stack(tmp_path: Path):
    storage = str(tmp_path / "storage")
    Store.open(storage).ridership.write_clean(synthetic_clean())
    prefect = PrefectStack(tmp_path, storage)
    try:
        prefect.start("server", "start", "--host", "127.0.0.1", "--port", prefect.env["PREFECT_SERVER_API_PORT"], log="server.log")
        prefect.wait_healthy()
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
