"""Scale-out: the default runner (in-process / process pool) against a 2-worker Dask LocalCluster,
side by side in one run; wall time, fits per second, peak memory (this process and its children:
pool workers, Dask scheduler and workers; the Prefect server is left out) and the ratios.

    PYTHONPATH=. python bench/bench_scale.py [--skip-large]

(A) the production path: ``backfill`` flow, sarima, (series × cutoffs) = (2 × 92) (run dates
    2019-03-01..05-31 on synthetic bus and rail), ``RIDERSHIP_TASK_RUNNER`` default vs dask.
(B) below the flow, a synthetic (50 × 28) set (50 series cannot live in the clean store, which
    holds bus and rail): sarima and naive, (default) one ``walk_forward`` task with a pool of 2 and
    the flow writing, as the default runner does; (write) one Dask unit per (series, chunk) that
    fits and writes its own files, as ``RIDERSHIP_TASK_RUNNER=dask`` does; (return) the same units
    returning their forecasts for the flow to write. (write) vs (return) is the measurement behind
    the choice that workers write (README, "Scale-out on Dask").

Each configuration runs once (2 shared cores): read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PYTHONPATH", str(REPO))


class PeakMemory:
    """Peak of the summed RSS of this process and its descendants, sampled every 0.1 s."""

    def __init__(self) -> None:
        me = psutil.Process()
        self.excluded = {child.pid for child in me.children(recursive=True)}  # the Prefect server
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                if child.pid not in self.excluded:
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(label: str, fits: int, run) -> dict:
    with PeakMemory() as memory:
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
    row = {"label": label, "wall_s": wall, "fits_per_s": fits / wall, "peak_mib": memory.peak / 2**20}
    print(f"  {label:<34} {wall:8.1f} s {row['fits_per_s']:8.1f} fits/s {row['peak_mib']:8.0f} MiB peak", flush=True)
    return row


def ratio(name: str, slow: dict, fast: dict) -> None:
    print(f"  ratio {name}: wall {slow['wall_s'] / fast['wall_s']:.2f}x, peak memory {fast['peak_mib'] / slow['peak_mib']:.2f}x")


def production_path(tmp: Path) -> None:
    from flows.backfill import backfill
    from storage import Store
    from tests.synthetic import synthetic_clean

    print("(A) backfill flow, sarima, 2 series x 92 cutoffs", flush=True)
    rows = {}
    for runner in ("default", "dask"):
        root = tmp / f"a-{runner}"
        Store.open(str(root)).ridership.write_clean(synthetic_clean())
        os.environ.update(RIDERSHIP_STORAGE=str(root), RIDERSHIP_TASK_RUNNER=runner, RIDERSHIP_WORKERS="2", RIDERSHIP_DASK_WORKERS="2")
        start, end = pd.Timestamp("2019-03-01").date(), pd.Timestamp("2019-05-31").date()
        rows[runner] = measure(
            f"{runner}", 2 * 92, lambda: backfill(start=start, end=end, models=["sarima"], series=["bus", "rail"])
        )
    ratio("default / dask", rows["default"], rows["dask"])


def synthetic_history(series: int, seed: int = 11) -> pd.DataFrame:
    from tests.synthetic import WEEKLY_BUS

    dates = pd.date_range("2018-01-01", "2019-06-30", freq="D")
    rng = np.random.default_rng(seed)
    weekly = WEEKLY_BUS[dates.day_of_week.to_numpy()]
    columns = {f"s{n:02d}": weekly * rng.uniform(0.2, 1.5) + rng.normal(0, 15_000, len(dates)) for n in range(series)}
    return pd.DataFrame(columns, index=pd.DatetimeIndex(dates, name="ds"))


def below_the_flow(tmp: Path, series: int, cutoff_count: int) -> None:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    from flows.scale_out import work_units
    from storage import Store
    from tasks.core.models import SarimaOptions
    from tasks.core.walk_forward import DEFAULT_WINDOW
    from tasks.forecast import _store_forecasts, _walk_forward, store_forecasts, walk_forward

    history = synthetic_history(series)
    names = list(history.columns)
    cutoffs = list(pd.date_range("2019-03-01", periods=cutoff_count, freq="D"))

    @task(cache_policy=NO_CACHE)
    def unit_writes(store, history, model, unique_id, chunk) -> int:
        forecasts = _walk_forward(history, model, [unique_id], chunk, 14, DEFAULT_WINDOW, 1, SarimaOptions())
        return _store_forecasts(store, forecasts, "bench")

    @flow
    def default_flow(store, model):
        store_forecasts(store, walk_forward(history, model, names, cutoffs, 14, DEFAULT_WINDOW, 2), "bench")

    @flow
    def dask_flow(store, model, write: bool):
        with DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None}) as runner:
            futures = [
                runner.submit(unit_writes, {"store": store, "history": history, "model": model, "unique_id": u, "chunk": c})
                if write else
                runner.submit(walk_forward, {"history": history, "model": model, "series": [u], "cutoffs": c, "horizon": 14,
                                             "window": DEFAULT_WINDOW, "workers": 1})
                for u, c in work_units(names, cutoffs)
            ]  # fmt: skip
            for future in futures:
                result = future.result()
                if not write:
                    store_forecasts(store, result, "bench")

    for model in ("sarima", "naive"):
        print(f"(B) {model}, {series} series x {cutoff_count} cutoffs", flush=True)
        rows = {}
        for variant in ("default", "write", "return"):
            store = Store.open(str(tmp / f"b-{model}-{series}x{cutoff_count}-{variant}"))
            run = (lambda: default_flow(store, model)) if variant == "default" else (lambda: dask_flow(store, model, variant == "write"))
            rows[variant] = measure(variant if variant == "default" else f"dask, workers {variant}", series * cutoff_count, run)
        ratio("default / dask (workers write)", rows["default"], rows["write"])
        ratio("workers return / workers write", rows["return"], rows["write"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="only (A) and (B) at 2 x 92")
    parser.add_argument("--only-b", action="store_true", help="skip (A)")
    args = parser.parse_args()
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.only_b:
            production_path(tmp)
        below_the_flow(tmp, 2, 92)
        if not args.skip_large:
            below_the_flow(tmp, 50, 28)


if __name__ == "__main__":
    main()
