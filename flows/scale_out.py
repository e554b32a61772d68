"""Scale-out: the statistical fits of a run on a Dask cluster (``RIDERSHIP_TASK_RUNNER=dask``).

The flow opens prefect-dask's ``DaskTaskRunner`` for its heavy tasks only — a temporary
``distributed.LocalCluster`` of ``RIDERSHIP_DASK_WORKERS`` processes (one thread each), or the
scheduler at ``RIDERSHIP_DASK_ADDRESS`` — and submits one work unit per (model, series, chunk of
cutoffs): ``tasks.forecast.forecast_unit``, which reads the clean store, fits the chunk's cutoffs
one after the other inside its worker (no process pool inside a Dask worker) and writes its
forecast files itself. The flow's process keeps the light steps (which cutoffs are due, progress,
the RNNs, the ensemble, scoring, the report).

The runner is chosen inside the flow from the settings rather than in the ``@flow`` decorator:
a deployment's worker imports the flow object as decorated, so a runner fixed there could not
follow the environment of the run; this way the CLI, every deployment and the tests read the same
``RIDERSHIP_*`` variables at run time.

A worker must import the project to run a unit: Dask deserializes a task by importing the
modules its function and arguments come from, and a worker that cannot leaves the cluster (it
closes its connection; its nanny does not restart it), so the scheduler would wait for a worker
that never comes and the flow with it. Before submitting anything, ``WorkerCheck`` imports the
project on every worker and fails the run with one line naming the worker and the error; while
collecting, it checks each worker that joins later, and fails the run when no worker is left.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import pandas as pd
from prefect import get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner

from flows.settings import Settings
from schemas.errors import Unavailable
from storage import Store
from tasks.core.walk_forward import TrainingWindow
from tasks.forecast import UnitOutcome, forecast_unit

DASK_CUTOFFS_PER_UNIT = 23
"""At most this many cutoffs of one series per work unit (chunks are then split evenly: a
quarter's 92 cutoffs make 4 units of 23 per series). Small enough that 2 × 92 cutoffs give 8
units to balance over the workers and a lost worker costs a few seconds of fits; large enough that
a unit's fixed costs (a Prefect task run, reading the clean store: ~0.1 s) stay a few percent of
its ~1.5 s of SARIMA fits."""

WORKER_MODULES = ("tasks.forecast",)
"""What a work unit imports on a worker (its task, the store, the models, Prefect)."""
FIRST_WORKER_WAIT_S = 30.0
"""How long a run waits for a first worker to join the scheduler before giving up."""
NO_WORKER_WAIT_S = 15.0
"""How long a run waits, once every worker has left, for one to join before giving up."""
CHECK_EVERY_S = 2.0
"""While collecting, how often the workers are looked at (a new one is checked, none left fails)."""


class ClusterUnavailable(Unavailable):
    """The Dask cluster cannot run the work units. Before any is submitted: no scheduler, no
    worker, or a worker that cannot import the project (nothing stored changed). While collecting:
    every worker left (the units that finished stored whole files; the same command resumes)."""


def cluster_runner(settings: Settings) -> TaskRunner | None:
    """The task runner for the heavy tasks, or None: the default (the flow's own runner)."""
    if settings.task_runner != "dask":
        return None
    from prefect_dask import DaskTaskRunner  # imports distributed: only when asked for

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,  # the fits are single-threaded; parallelism is processes
            "processes": True,
            "dashboard_address": None,
        },
    )


def _import_check(modules: tuple[str, ...]) -> Callable[[], str | None]:
    """A function for ``Client.run`` that imports ``modules`` in a worker and returns None, or the
    error in one line. A closure: cloudpickle sends it by value, so a worker that cannot import
    this module (or Prefect) still runs it and reports why."""

    def check() -> str | None:
        import importlib
        import sys

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 - ImportError, or whatever the import raised
                problem = f"{type(error).__name__}: {error}"
                shadow = sys.modules.get("storage")
                if shadow is not None and getattr(shadow, "__file__", None) is None:  # a bare folder
                    problem += (
                        f" (`storage` there is the folder {list(shadow.__path__)[0]}, not the project's "
                        "package: reinstall the project in the workers' environment, e.g. `make venv`)"
                    )
                return problem
        return None

    return check


class WorkerCheck:
    """The workers of the cluster a run submits to: each imports the project before it gets a
    unit (checked once per worker address), and at least one is there."""

    def __init__(self, client) -> None:
        self.client = client
        self.address = client.scheduler.address
        self.checked: set[str] = set()
        self.alone_since: float | None = None  # when the last worker left

    def start(self) -> None:
        """Wait for a first worker, then check every worker; raises ``ClusterUnavailable``."""
        try:
            self.client.wait_for_workers(1, timeout=FIRST_WORKER_WAIT_S)
        except TimeoutError:
            raise ClusterUnavailable(
                f"no Dask worker joined the scheduler at {self.address} within {FIRST_WORKER_WAIT_S:.0f} s"
            ) from None
        self.check()

    def check(self) -> None:
        """Check the workers that joined since the last call; fail when none has been left for
        ``NO_WORKER_WAIT_S``."""
        workers = set(self.client.nthreads())
        if not workers:
            self.alone_since = self.alone_since or time.monotonic()
            if time.monotonic() - self.alone_since > NO_WORKER_WAIT_S:
                raise ClusterUnavailable(
                    f"every Dask worker left the scheduler at {self.address} and none joined within "
                    f"{NO_WORKER_WAIT_S:.0f} s: a worker leaves when it is stopped or cannot import a task's "
                    "modules (see the workers' logs); the units done are stored, the same command resumes"
                )
            return
        self.alone_since = None
        new = sorted(workers - self.checked)
        if not new:
            return
        answers = self.client.run(_import_check(WORKER_MODULES), workers=new, on_error="return")
        self.checked.update(new)
        failed = {worker: answer for worker, answer in sorted(answers.items()) if answer is not None}
        if failed:
            worker, problem = next(iter(failed.items()))
            if isinstance(problem, BaseException):  # the check itself could not run there
                problem = f"{type(problem).__name__}: {problem}"
            others = f" (nor can {len(failed) - 1} other worker(s))" if len(failed) > 1 else ""
            line = f"Dask worker {worker} cannot import the project{others}: {problem}"
            raise ClusterUnavailable(" ".join(line.split()))


def work_units(
    series: list[str], cutoffs: list[pd.Timestamp], active: dict[str, list[pd.Timestamp]] | None = None
) -> list[tuple[str, list[pd.Timestamp]]]:
    """(series, chunk of cutoffs) pairs, each chunk at most ``DASK_CUTOFFS_PER_UNIT`` long and
    holding only the cutoffs at which the series is ``active`` (default: all)."""
    units = []
    for unique_id in series:
        days = cutoffs if active is None else [c for c in cutoffs if c in set(active.get(unique_id, ()))]
        if not days:
            continue
        parts = math.ceil(len(days) / DASK_CUTOFFS_PER_UNIT)
        size = math.ceil(len(days) / parts)
        units.extend((unique_id, days[first : first + size]) for first in range(0, len(days), size))
    return units


class ClusterForecasts:
    """Work units submitted to the cluster, collected later in submission order (so logs,
    fallbacks and the report read the same whatever order the workers finish in)."""

    def __init__(
        self, runner: TaskRunner, store: Store, history: pd.DataFrame, settings: Settings, run_id: str,
        advance: Callable[[float], None], publication_lag: int = 0,
    ) -> None:
        self.runner = runner
        self.store = store
        self.as_of = history.index.max()
        self.settings = settings
        self.run_id = run_id
        self.advance = advance  # progress: cutoffs × models done
        self.publication_lag = publication_lag
        try:
            client = runner.client  # connects (and starts a LocalCluster) now
        except OSError as error:
            raise ClusterUnavailable(f"cannot reach the Dask scheduler: {error}") from None
        self.workers = WorkerCheck(client)
        self.workers.start()
        self.pending: list[tuple[str, int, int, int, list[tuple[list[pd.Timestamp], PrefectFuture[UnitOutcome]]]]] = []

    def submit(
        self, model: str, series: list[str], cutoffs: list[pd.Timestamp], skipped: int, window: TrainingWindow,
        active: dict[str, list[pd.Timestamp]] | None = None,
    ) -> None:
        futures = [
            (chunk, self.runner.submit(forecast_unit, parameters={
                "store": self.store, "model": model, "unique_id": unique_id, "cutoffs": chunk, "as_of": self.as_of,
                "horizon": self.settings.horizon, "window": window, "run_id": self.run_id,
                "publication_lag": self.publication_lag, "event_schedule": self.settings.event_schedule,
            }))
            for unique_id, chunk in work_units(series, cutoffs, active)
        ]  # fmt: skip
        self.pending.append((model, len(cutoffs), skipped, len(series), futures))

    def collect(self, progress) -> None:
        """Wait for every submitted unit; note what was stored, fallbacks included."""
        logger = get_run_logger()
        for model, cutoff_count, skipped, series_count, futures in self.pending:
            for chunk, future in futures:
                outcome = self._result(future)
                progress.record_fallbacks(outcome.fallbacks)
                self.advance(len(chunk) / series_count)
            progress.stored[model] = cutoff_count
            logger.info("%s: %d cutoff(s) forecast on the cluster, %d already stored", model, cutoff_count, skipped)
        self.pending = []

    def _result(self, future: PrefectFuture[UnitOutcome]) -> UnitOutcome:
        """The unit's outcome; meanwhile the workers are checked, so a cluster that lost every
        worker (or gained one that cannot import the project) fails the run instead of hanging."""
        while not future.wrapped_future.done():
            future.wait(timeout=CHECK_EVERY_S)
            if not future.wrapped_future.done():
                self.workers.check()
        return future.result()
