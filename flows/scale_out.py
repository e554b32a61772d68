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
"""

from __future__ import annotations

import math
from typing import Callable

import pandas as pd
from prefect import get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner

from flows.settings import Settings
from storage import Store
from tasks.core.walk_forward import TrainingWindow
from tasks.forecast import UnitOutcome, forecast_unit

DASK_CUTOFFS_PER_UNIT = 23
"""At most this many cutoffs of one series per work unit (chunks are then split evenly: a
quarter's 92 cutoffs make 4 units of 23 per series). Small enough that 2 × 92 cutoffs give 8
units to balance over the workers and a lost worker costs a few seconds of fits; large enough that
a unit's fixed costs (a Prefect task run, reading the clean store: ~0.1 s) stay a few percent of
its ~1.5 s of SARIMA fits."""


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
        self.pending: list[tuple[str, int, int, int, list[tuple[list[pd.Timestamp], PrefectFuture[UnitOutcome]]]]] = []

    def submit(
        self, model: str, series: list[str], cutoffs: list[pd.Timestamp], skipped: int, window: TrainingWindow,
        active: dict[str, list[pd.Timestamp]] | None = None,
    ) -> None:
        futures = [
            (chunk, self.runner.submit(forecast_unit, parameters={
                "store": self.store, "model": model, "unique_id": unique_id, "cutoffs": chunk, "as_of": self.as_of,
                "horizon": self.settings.horizon, "window": window, "run_id": self.run_id,
                "publication_lag": self.publication_lag,
            }))
            for unique_id, chunk in work_units(series, cutoffs, active)
        ]  # fmt: skip
        self.pending.append((model, len(cutoffs), skipped, len(series), futures))

    def collect(self, progress) -> None:
        """Wait for every submitted unit; note what was stored, fallbacks included."""
        logger = get_run_logger()
        for model, cutoff_count, skipped, series_count, futures in self.pending:
            for chunk, future in futures:
                outcome = future.result()
                progress.record_fallbacks(outcome.fallbacks)
                self.advance(len(chunk) / series_count)
            progress.stored[model] = cutoff_count
            logger.info("%s: %d cutoff(s) forecast on the cluster, %d already stored", model, cutoff_count, skipped)
        self.pending = []
