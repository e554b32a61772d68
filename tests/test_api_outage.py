"""The Prefect API goes away: the server is stopped in the middle of a backfill running on a
worker, once some but not all forecasts are stored, and kept down until the flow-run process has
given up; then the worker is killed too (a host restart). Then the server comes back on the same
port and SQLite database, a new worker starts, and the backfill is rerun through the deployment.

Measured with Prefect 3.9's default client settings (the test itself runs with one client retry
per call, to keep CI short; the outcome is the same) and printed: the flow-run process goes on
computing and writing forecasts with the API gone, then blocks in its next API call (the client
retries a refused connection 5 times, 2 + 4 + 8 + 16 + 32 s), and after the retries of that call
and of the calls that report the failure it exits with status 1, minutes later. A worker that
survives the outage reports the run Crashed, but only if its report reaches the server: once the
process exited 47 s into the outage, the report failed, the server came back at 62 s and the run
stayed Running, holding the backfill's concurrency slot, so the rerun waited in Scheduled for
good. Nobody reports a run whose worker died too. ``automations.yaml`` (created by ``make
deploy``) marks a run Crashed once its heartbeats stop; here with heartbeats every 30 s and a
75 s window (production: 60 s and 300 s) to keep CI short. Asserted: every stored Parquet file
reads and validates throughout, the run ends Crashed by the automation, and the rerun completes
the range: each cutoff x model x series stored once, forecasts, metrics and report equal to an
uninterrupted run's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from storage import Store
from tests.conftest import REPO
from tests.prefect_stack import BIN, RUN_TIMEOUT, PrefectStack
from tests.prefect_stack import stop as stop_process
from tests.synthetic import synthetic_clean
from tests.test_crash_anywhere import check_every_file, outcome

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START, END = "2019-03-01", "2019-03-30"  # 30 run dates: naive is stored in seconds, sarima takes ~5-30 s more
MODELS, SERIES = ["naive", "sarima"], ["rail", "bus"]
OUTAGE_MAX_S = 420  # the flow-run process gave up after ~210 s here with Prefect's default retries
CLIENT_RETRIES = "1"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
HEARTBEAT_S, UNRESPONSIVE_S = "30", 75  # production: 60 s (prefect.yaml) and 300 s (automations.yaml)


def stored_files(storage: str, model: str) -> int:
    return len(list(Path(storage, "forecasts").glob(f"cutoff=*/model={model}/part-*.parquet")))


def engine_running(flow_run_id: str) -> bool:
    """Whether the process running the flow run is alive (the process worker starts
    `python -m prefect.engine` with PREFECT__FLOW_RUN_ID set)."""
    marker = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"prefect.engine" in (proc / "cmdline").read_bytes() and marker in (proc / "environ").read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


def state(client: httpx.Client, flow_run_id: str) -> str:
    return client.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"]


def wait_final(client: httpx.Client, flow_run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (seen := state(client, flow_run_id)) not in FINAL and time.monotonic() < deadline:
        time.sleep(2)
    return seen


def create_unresponsive_run_automation(stack: PrefectStack, tmp_path: Path) -> None:
    """The shipped automation (``automations.yaml``), its window shortened for CI."""
    shipped = yaml.safe_load((REPO / "automations.yaml").read_text())
    (automation,) = shipped["automations"]
    assert automation["trigger"]["within"] == 300
    automation["trigger"]["within"] = UNRESPONSIVE_S
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(shipped))
    stack.run("automation", "create", "--from-file", str(path))


def log_lines(log: Path, needle: str) -> list[str]:
    """Timestamped lines of a Prefect log that mention ``needle`` (tracebacks left out)."""
    return [line[:240] for line in log.read_text().splitlines() if re.match(r"\d\d:\d\d:\d\d", line) and needle in line]


def reference_run(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """The same backfill, never interrupted, on its own root, under a temporary local Prefect
    server (no PREFECT_API_URL): it runs while the stack's server is down."""
    Store.open(str(tmp_path / "reference")).ridership.write_clean(synthetic_clean())
    own = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    own.update(PREFECT_HOME=str(tmp_path / "reference-home"), RIDERSHIP_STORAGE=str(tmp_path / "reference"))
    return subprocess.Popen(
        [str(BIN / "ridership"), "backfill", "--start", START, "--end", END, "--models", ",".join(MODELS),
         "--series", ",".join(SERIES)],
        env=own, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def test_server_stopped_mid_backfill_then_a_rerun_completes_the_range(tmp_path: Path):
    storage = str(tmp_path / "storage")
    Store.open(storage).ridership.write_clean(synthetic_clean())
    clean_bytes = (tmp_path / "storage" / "clean" / "ridership.parquet").read_bytes()
    stack = PrefectStack(tmp_path, storage)  # SQLite under its PREFECT_HOME, kept across the restart
    # The suite must stay within CI's time: one retry per API call instead of Prefect's five
    # (2 + 4 + 8 + 16 + 32 s) shortens the wait for the run to give up by about two minutes and
    # changes nothing else; with the defaults the process exited 209-243 s into the outage (README).
    stack.env["PREFECT_CLIENT_MAX_RETRIES"] = CLIENT_RETRIES
    all_files = len(pd.date_range(START, END)) * len(SERIES)
    facts: list[str] = []
    reference = None
    try:
        server = stack.start_server()
        stack.run("work-pool", "create", "ridership-local", "--type", "process")
        stack.run("deploy", "--all")
        create_unresponsive_run_automation(stack, tmp_path)
        worker = stack.start("worker", "start", "--pool", "ridership-local", log="worker.log")
        client = httpx.Client(base_url=stack.api, timeout=10)
        deployment = client.get("/deployments/name/backfill/backfill").json()["id"]

        def run_backfill() -> tuple[str, str]:
            parameters = {"start": START, "end": END, "models": MODELS, "series": SERIES}
            job_variables = {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": HEARTBEAT_S}}
            body = {"parameters": parameters, "job_variables": job_variables}
            run = client.post(f"/deployments/{deployment}/create_flow_run", json=body).json()
            return run["id"], run["name"]

        outage_run, outage_name = run_backfill()
        deadline = time.monotonic() + RUN_TIMEOUT
        while stored_files(storage, "naive") < all_files:
            assert time.monotonic() < deadline, f"naive forecasts never stored: {stack.log_tail()}"
            time.sleep(0.5)
        # Some but not all: naive is stored, sarima's one chunk is being fitted.
        assert stored_files(storage, "sarima") == 0, "the run outpaced the stop: lengthen the range"
        assert state(client, outage_run) == "RUNNING" and engine_running(outage_run)

        stopped = time.monotonic()
        stop_process(server)  # SIGTERM to the server's process group
        since = lambda: time.monotonic() - stopped  # noqa: E731
        reference = reference_run(tmp_path, stack.env)
        sarima_at = engine_exit_at = None
        while since() < OUTAGE_MAX_S and engine_exit_at is None:
            if sarima_at is None and stored_files(storage, "sarima") == all_files:
                sarima_at = round(since())
            if not engine_running(outage_run):
                engine_exit_at = round(since())
            time.sleep(0.5)
        facts.append(f"API down at {since():.0f} s: sarima forecasts stored after {sarima_at} s, "
                     f"flow-run process exited after {engine_exit_at} s")
        assert sarima_at is not None, "the flow run stopped computing when the API went away"
        assert engine_exit_at is not None, f"the flow-run process still runs {OUTAGE_MAX_S} s into the outage"
        # Then the host goes down: the worker, alive so far (killing it earlier would break the pipe
        # its flow-run process logs through), reported nothing the server could receive.
        assert worker.poll() is None, "the worker exited during the outage"
        os.kill(worker.pid, signal.SIGKILL)
        check_every_file(Store.open(storage), clean_bytes)

        stack.start_server(log="server-restarted.log")
        facts.append(f"server back after {since():.0f} s: the run shows {state(client, outage_run)}")
        outage_final = wait_final(client, outage_run, timeout=UNRESPONSIVE_S + 90)
        message = client.get(f"/flow_runs/{outage_run}").json()["state"]["message"] or ""
        facts.append(f"{since():.0f} s: the run shows {outage_final}: {message}")
        facts += log_lines(stack.logs / "worker.log", outage_name)[-8:]
        stack.start("worker", "start", "--pool", "ridership-local", log="worker-restarted.log")
        check_every_file(Store.open(storage), clean_bytes)

        rerun, _ = run_backfill()
        rerun_final = wait_final(client, rerun, timeout=RUN_TIMEOUT)
        facts.append(f"rerun through the deployment: {rerun_final}")
        print("\n".join(["", *facts]))
        assert outage_final == "CRASHED", stack.log_tail()
        assert "ridership-crash-unresponsive-runs" in message, message
        assert rerun_final == "COMPLETED", stack.log_tail()
        reference_log = reference.communicate(timeout=RUN_TIMEOUT)[0]
        assert reference.returncode == 0, reference_log[-3000:]
    finally:
        if reference is not None:
            stop_process(reference)
        stack.shutdown()

    store = Store.open(storage)
    check_every_file(store, clean_bytes)
    forecasts, metrics, report = outcome(store, END)
    assert not forecasts.duplicated(["cutoff", "model", "unique_id", "h"]).any()
    assert len(forecasts.groupby(["cutoff", "model", "unique_id"], observed=True)) == all_files * len(MODELS) * 2  # and @raw
    expected = outcome(Store.open(str(tmp_path / "reference")), END)
    pd.testing.assert_frame_equal(forecasts, expected[0])
    pd.testing.assert_frame_equal(metrics, expected[1])
    assert report == expected[2]
