"""Scale-out on Dask: the same backfill through prefect-dask's DaskTaskRunner on a real
``distributed.LocalCluster``, and on a scheduler and workers started as separate ``dask scheduler``
/ ``dask worker`` processes (``RIDERSHIP_DASK_ADDRESS``) the way a user starts them (the project's
environment, the checkout as working directory, no PYTHONPATH, default worker options), stores
exactly the default runner's forecasts: every value and version bit for bit (only ``run_id`` and
``created_at`` differ). A worker that cannot import the project fails the run within a minute in
one line; a SIGTERM ends a run within seconds, leaving no process, lease or partial file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from distributed import Client

import flows.scale_out
from flows.backfill import backfill
from flows.scale_out import ClusterUnavailable
from storage import Store
from tests.prefect_stack import BIN, free_port, stop
from tests.synthetic import synthetic_clean
from tests.test_crash_anywhere import check_every_file


REPO = Path(__file__).resolve().parent.parent
START, END = pd.Timestamp("2019-03-01").date(), pd.Timestamp("2019-03-12").date()  # 12 cutoffs
MODELS = ["naive", "sarima"]
SERIES = ["rail", "bus"]
COMPARED = ["unique_id", "cutoff", "model", "h", "ds", "y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "model_version"]


def run_backfill(root: Path, env: dict[str, str]):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIDERSHIP_STORAGE", str(root))
        patch.setenv("RIDERSHIP_WORKERS", "2")
        for name in ("RIDERSHIP_TASK_RUNNER", "RIDERSHIP_DASK_ADDRESS", "RIDERSHIP_DASK_WORKERS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        # 5 cutoffs per unit: 12 cutoffs make 3 chunks of 4 per series, 6 units per model.
        patch.setattr(flows.scale_out, "DASK_CUTOFFS_PER_UNIT", 5)
        Store.open(str(root)).ridership.write_clean(synthetic_clean())
        summary = backfill(start=START, end=END, models=MODELS, series=SERIES, train_days=182)
    stored = Store.open(str(root)).forecasts.read()
    return summary, stored[COMPARED].sort_values(["model", "unique_id", "cutoff", "h"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, prefect_harness):
    return run_backfill(tmp_path_factory.mktemp("default") / "storage", {})


def assert_same_forecasts(dask_run, default_run) -> None:
    summary, stored = dask_run
    expected_summary, expected = default_run
    assert len(expected) == 12 * len(MODELS) * len(SERIES) * 14 * 2  # each model and its bands as forecast (@raw)
    assert summary.progress.stored == expected_summary.progress.stored == {"naive": 12, "sarima": 12}
    # Bit for bit: exact float equality, not a tolerance.
    pd.testing.assert_frame_equal(stored, expected, check_exact=True, check_categorical=False)
    assert summary.report.leaderboard == expected_summary.report.leaderboard


def forecast_task_runs(flow_run_name_prefix: str = "forecast-") -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=flow_run_name_prefix)), limit=200
        )
    return [run.name for run in runs if run.state and run.state.is_completed()]


@pytest.mark.e2e
@pytest.mark.usefixtures("prefect_harness")
def test_backfill_on_a_local_cluster_stores_the_default_runners_forecasts(tmp_path: Path, default_run):
    before = len(forecast_task_runs())
    dask_run = run_backfill(tmp_path / "storage", {"RIDERSHIP_TASK_RUNNER": "dask", "RIDERSHIP_DASK_WORKERS": "2"})
    assert_same_forecasts(dask_run, default_run)
    # The fits ran as Prefect task runs through the DaskTaskRunner: 2 models × 2 series × 3 chunks.
    assert len(forecast_task_runs()) - before == 12


def start_dask(tmp_path: Path, name: str, args: list[str], python: Path | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """``dask ARGS`` as a user starts it: the environment's own ``dask`` command (or ``python -m
    dask`` of another environment) in ``cwd``, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [str(python), "-m", "dask"] if python else [str(BIN / "dask")]
    log = (tmp_path / "dask-logs")
    log.mkdir(exist_ok=True)
    return subprocess.Popen(
        [*command, *args], env=env, cwd=cwd, start_new_session=True,
        stdout=(log / f"{name}.log").open("w"), stderr=subprocess.STDOUT,
    )


@contextmanager
def dask_cluster_of(tmp_path: Path, workers: int, **worker_options) -> Iterator[str]:
    """``dask scheduler`` on 127.0.0.1 and ``dask worker ADDRESS --nworkers N --nthreads 1``:
    the project's environment, the checkout as working directory, Dask's default worker options."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [start_dask(tmp_path, "scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])]
    processes.append(start_dask(
        tmp_path, "worker", ["worker", address, "--nworkers", str(workers), "--nthreads", "1"], **worker_options
    ))  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    except BaseException:
        for log in sorted((tmp_path / "dask-logs").iterdir()):
            print(log.name, log.read_text()[-3000:])
        raise
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    with dask_cluster_of(tmp_path, workers=2) as address:
        yield address


def where_workers_import_the_project(address: str) -> dict[str, tuple[str, bool]]:
    """Each worker's ``storage`` package file, and whether its first ``sys.path`` entry (its local
    directory) holds Dask's spill folder ``storage``, the folder that used to shadow the package."""

    def look() -> tuple[str, bool]:
        import os
        import sys

        import storage

        return str(getattr(storage, "__file__", None)), os.path.isdir(os.path.join(sys.path[0], "storage"))

    with Client(address, timeout=30) as client:
        return client.run(look)


@pytest.mark.e2e
@pytest.mark.usefixtures("prefect_harness")
def test_backfill_on_a_separate_scheduler_and_workers_via_dask_address(tmp_path: Path, default_run, dask_cluster: str):
    # The workers run as `make venv` leaves them, from the checkout, no PYTHONPATH: they import
    # the project's `storage` package from the checkout although their local directory, first on
    # sys.path, holds Dask's spill folder of the same name (pyproject.toml, [tool.setuptools]).
    found = where_workers_import_the_project(dask_cluster)
    assert len(found) == 2 and all(
        file == str(REPO / "storage" / "__init__.py") and shadow for file, shadow in found.values()
    ), found
    started = time.monotonic()
    dask_run = run_backfill(tmp_path / "storage", {"RIDERSHIP_DASK_ADDRESS": dask_cluster})
    assert_same_forecasts(dask_run, default_run)
    with Client(dask_cluster, timeout=30) as client:
        # Both worker processes fitted SARIMA (imported the model) and the cluster kept running.
        fitted = client.run(lambda: __import__("sys").modules.get("tasks.core.models.sarima") is not None)
        assert list(fitted.values()) == [True, True], fitted
    assert time.monotonic() - started < 300


def cli_backfill(storage: Path, api: str, address: str, start: str, end: str, **popen) -> subprocess.Popen:
    Store.open(str(storage)).ridership.write_clean(synthetic_clean())
    env = {
        **os.environ, "PREFECT_API_URL": api, "RIDERSHIP_STORAGE": str(storage), "RIDERSHIP_DASK_ADDRESS": address,
        "RIDERSHIP_RNN_MODELS": "", "RIDERSHIP_ENSEMBLE_MEMBERS": "",
    }
    return subprocess.Popen(
        [str(BIN / "ridership"), "backfill", "--start", start, "--end", end, "--models", "naive,sarima", "--series", "rail,bus"],
        env=env, text=True, **popen,
    )


def bare_environment(tmp_path: Path) -> Path:
    """A Python environment with the project's dependencies (Dask, Prefect) but not the project:
    a virtual environment whose .pth names this process's import folders as plain paths, less
    those holding the project (the .pth files in them, the editable install's among them, are
    not read)."""
    folder = tmp_path / "bare-env"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (site,) = folder.glob("lib/python*/site-packages")
    folders = [p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "storage" / "__init__.py").exists()]
    (site / "project-dependencies.pth").write_text("".join(f"{p}\n" for p in folders))
    return folder / "bin" / "python"


@pytest.mark.e2e
def test_a_worker_that_cannot_import_the_project_fails_the_run_in_one_line(tmp_path: Path, prefect_api_url: str):
    python = bare_environment(tmp_path)
    with dask_cluster_of(tmp_path, workers=1, python=python, cwd=tmp_path) as address:
        started = time.monotonic()
        run = cli_backfill(tmp_path / "storage", prefect_api_url, address, str(START), str(END), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = run.communicate(timeout=120)
        elapsed = time.monotonic() - started
    print(f"failed after {elapsed:.1f} s:", err.strip().splitlines()[-1:])
    assert run.returncode == ClusterUnavailable.exit_code, err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("ridership backfill:")]
    assert len(lines) == 1, err[-3000:]
    assert re.fullmatch(
        r"ridership backfill: unavailable: Dask worker tcp://127\.0\.0\.1:\d+ cannot import the project: "
        r"ModuleNotFoundError: No module named '(tasks|storage|prefect)'", lines[0]
    ), lines[0]
    assert elapsed < 60
    assert not (tmp_path / "storage" / "forecasts").exists()  # nothing was submitted


@pytest.mark.e2e
def test_sigterm_ends_a_run_within_seconds_leaving_nothing_behind(tmp_path: Path, prefect_api_url: str, dask_cluster: str):
    storage = tmp_path / "storage"
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err_file:
        # 92 run dates: the units are still running when the signal comes.
        run = cli_backfill(storage, prefect_api_url, dask_cluster, "2019-03-01", "2019-05-31", stdout=subprocess.DEVNULL, stderr=err_file)
        deadline = time.monotonic() + 180
        while "cutoffs_to_run" not in err_path.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # units submitted, some running
        assert run.poll() is None, err_path.read_text()[-3000:]
        import psutil

        descendants = psutil.Process(run.pid).children(recursive=True)
        signalled = time.monotonic()
        run.send_signal(signal.SIGTERM)  # what `kill`, Kubernetes and a Prefect cancellation send
        run.wait(timeout=60)
        elapsed = time.monotonic() - signalled
    err = err_path.read_text()
    print(f"exited {elapsed:.1f} s after SIGTERM")
    assert run.returncode == 143, err[-3000:]
    assert elapsed < 15, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith("ridership backfill: terminated: stopped by SIGTERM"), err[-3000:]
    assert not [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    store = Store.open(str(storage))
    assert not list((storage / "locks").glob("*.lock"))  # leases released
    check_every_file(store, (storage / "clean" / "ridership.parquet").read_bytes())
    with Client(dask_cluster, timeout=30) as client:  # the cluster is unharmed
        assert len(client.nthreads()) == 2


@pytest.mark.parametrize(
    ("env", "runner", "address"),
    [
        ({}, "default", None),
        ({"RIDERSHIP_TASK_RUNNER": "dask"}, "dask", None),
        ({"RIDERSHIP_DASK_ADDRESS": "tcp://10.0.0.5:8786"}, "dask", "tcp://10.0.0.5:8786"),
        ({"RIDERSHIP_TASK_RUNNER": "dask", "RIDERSHIP_DASK_ADDRESS": "tcp://h:1"}, "dask", "tcp://h:1"),
    ],
)
def test_task_runner_settings(env, runner, address):
    from flows.settings import Settings

    settings = Settings.from_env(env)
    assert (settings.task_runner, settings.dask_address) == (runner, address)
    chosen = flows.scale_out.cluster_runner(settings)
    assert (chosen is None) == (runner == "default")
    if chosen is not None:
        assert chosen.address == address and (address or chosen.cluster_kwargs["threads_per_worker"] == 1)


@pytest.mark.parametrize("env", [{"RIDERSHIP_TASK_RUNNER": "ray"}, {"RIDERSHIP_TASK_RUNNER": "default", "RIDERSHIP_DASK_ADDRESS": "tcp://h:1"}])
def test_task_runner_settings_refused(env):
    from flows.settings import Settings
    from schemas.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Settings.from_env(env)


def test_work_units_split_each_series_evenly():
    cutoffs = list(pd.date_range("2019-01-01", periods=92))
    units = flows.scale_out.work_units(["rail", "bus"], cutoffs)
    assert [(uid, len(chunk)) for uid, chunk in units] == [("rail", 23)] * 4 + [("bus", 23)] * 4
    assert [c for uid, chunk in units if uid == "bus" for c in chunk] == cutoffs
    assert flows.scale_out.work_units(["rail"], []) == []


class FakeClient:
    """What ``WorkerCheck`` asks of a distributed client: the workers, and ``run``."""

    def __init__(self, workers: dict[str, str | None]) -> None:
        self.scheduler = type("Scheduler", (), {"address": "tcp://10.0.0.5:8786"})()
        self.workers = workers  # address -> what the import check answers there
        self.ran: list[list[str]] = []

    def wait_for_workers(self, n_workers: int, timeout: float) -> None:
        if len(self.workers) < n_workers:
            raise TimeoutError

    def nthreads(self) -> dict[str, int]:
        return {worker: 1 for worker in self.workers}

    def run(self, function, workers: list[str], on_error: str) -> dict[str, str | None]:
        assert on_error == "return" and function() is None  # the check itself imports the project here
        self.ran.append(workers)
        return {worker: self.workers[worker] for worker in workers}


def test_worker_check_names_the_worker_that_cannot_import_the_project():
    client = FakeClient({"tcp://a:1": None, "tcp://b:2": "ImportError: cannot import name 'Store' from 'storage' (unknown location)"})
    with pytest.raises(ClusterUnavailable) as raised:
        flows.scale_out.WorkerCheck(client).start()
    assert str(raised.value) == (
        "Dask worker tcp://b:2 cannot import the project: "
        "ImportError: cannot import name 'Store' from 'storage' (unknown location)"
    )


def test_worker_check_checks_each_worker_once_and_those_joining_later():
    client = FakeClient({"tcp://a:1": None})
    check = flows.scale_out.WorkerCheck(client)
    check.start()
    check.check()
    client.workers["tcp://c:3"] = "ModuleNotFoundError: No module named 'prefect'"
    with pytest.raises(ClusterUnavailable, match=r"^Dask worker tcp://c:3 cannot import the project: ModuleNotFoundError"):
        check.check()
    assert client.ran == [["tcp://a:1"], ["tcp://c:3"]]


def test_worker_check_fails_when_no_worker_is_left(monkeypatch):
    with pytest.raises(ClusterUnavailable, match="no Dask worker joined the scheduler at tcp://10.0.0.5:8786 within 30 s"):
        flows.scale_out.WorkerCheck(FakeClient({})).start()
    client = FakeClient({"tcp://a:1": None})
    check = flows.scale_out.WorkerCheck(client)
    check.start()
    client.workers.clear()  # every worker left (a worker that cannot deserialize a task leaves)
    monkeypatch.setattr(flows.scale_out, "NO_WORKER_WAIT_S", 0.2)
    check.check()  # not yet: a worker may join
    time.sleep(0.3)
    with pytest.raises(ClusterUnavailable, match="every Dask worker left the scheduler at tcp://10.0.0.5:8786 and none joined within 0 s"):
        check.check()
