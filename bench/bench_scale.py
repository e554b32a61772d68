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
    the choice that workers write (docs/scale-out.md).

(C) an RNN backfill through the ``backfill`` flow: ``--rnn-weeks`` weekly retrains (run dates from
    Monday 2019-03-04) of ``--rnn-models`` x bus, rail, trained (serial) one after the other in
    the flow, (parallel) side by side on ``--rnn-workers`` processes then replayed in walk-forward
    order (``RIDERSHIP_RNN_PARALLEL``), (warm) one after the other, each from the champion's weights
    (``RIDERSHIP_RNN_WARM_START``); wall time, epochs and training seconds from the cards,
    walk-forward MAE (h = 1..14, matured targets) per model and series, and whether parallel
    stored the serial run's forecasts. Synthetic data and a small training config by default;
    ``--rnn-real`` uses the real file (``RIDERSHIP_REAL_CSV`` or ``../shared/data/``) and
    ``--rnn-epochs 500 --rnn-train-days 1096 --rnn-validation-days 151`` the production config.

    PYTHONPATH=. python bench/bench_scale.py --rnn-only [--rnn-real] [--rnn-modes serial,warm] ...

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
sys.path.insert(0, str(REPO / "bench"))
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
    from tasks.core.models.catalog import SarimaOptions
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


RNN_MODES = {
    "serial": {"RIDERSHIP_RNN_PARALLEL": "0", "RIDERSHIP_RNN_WARM_START": "0"},
    "parallel": {"RIDERSHIP_RNN_WARM_START": "0"},  # RIDERSHIP_RNN_PARALLEL: --rnn-workers
    "warm": {"RIDERSHIP_RNN_PARALLEL": "0", "RIDERSHIP_RNN_WARM_START": "1"},
}


def rnn_backfill(tmp: Path, args: argparse.Namespace) -> None:
    from bench_accuracy import csv_path, load_history, score

    from flows.backfill import backfill
    from storage import Store
    from tasks.core.models.rnn import challengers
    from tests.synthetic import synthetic_clean

    if args.rnn_real:
        history = load_history(csv_path())
        clean = history.reset_index().rename(columns={"ds": "service_date"}).astype({"bus": "int64", "rail": "int64"})
        clean = clean[["service_date", "day_type", "bus", "rail"]]
    else:
        clean = synthetic_clean()
        history = clean.set_index("service_date").rename_axis("ds")
    models, series = args.rnn_models.split(","), ["bus", "rail"]
    start = pd.Timestamp("2019-03-04")
    end = start + pd.Timedelta(days=7 * args.rnn_weeks - 1)
    trainings = args.rnn_weeks * len(series) * len(models)
    print(f"(C) RNN backfill, {'real' if args.rnn_real else 'synthetic'} data, run dates {start.date()}..{end.date()}: "
          f"{args.rnn_weeks} weekly retrains x {len(series)} series x {len(models)} models ({', '.join(models)}); "
          f"max {args.rnn_epochs} epochs, {args.rnn_train_days} + {args.rnn_validation_days} days", flush=True)
    os.environ.update(
        RIDERSHIP_RNN_MAX_EPOCHS=str(args.rnn_epochs), RIDERSHIP_RNN_TRAIN_DAYS=str(args.rnn_train_days),
        RIDERSHIP_RNN_VALIDATION_DAYS=str(args.rnn_validation_days), RIDERSHIP_RETRAIN_WEEKDAY="0",
        RIDERSHIP_ENSEMBLE_MEMBERS="", RIDERSHIP_TASK_RUNNER="default",
    )  # fmt: skip
    import tasks.core.models.rnn.training  # noqa: F401  TensorFlow's import is not the first mode's cost

    rows, stored = {}, {}
    for mode in args.rnn_modes.split(","):
        root = tmp / f"c-{mode}"
        store = Store.open(str(root))
        store.ridership.write_clean(clean)
        os.environ.update({"RIDERSHIP_STORAGE": str(root), "RIDERSHIP_RNN_PARALLEL": str(args.rnn_workers), **RNN_MODES[mode]})
        rows[mode] = measure(
            mode, trainings, lambda: backfill(start=start.date(), end=end.date(), models=models, series=series)
        )
        challengers.close_pools()  # each parallel run pays its workers' start-up
        cards = [
            store.registry.read_card(m, u, v) for m in models for u in series for v in store.registry.versions(m, u)
        ]
        epochs = sum(c["training"]["epochs_run"] for c in cards)
        seconds = sum(c["training"]["seconds"] for c in cards)
        promoted = sum(bool(c["promotion"]["promoted"]) for c in cards)
        print(f"    {len(cards)} versions ({promoted} promoted), {epochs} epochs, {seconds:.1f} s in fit()", flush=True)
        forecasts = store.forecasts.read(models=models)
        stored[mode] = forecasts.drop(columns=["run_id", "created_at"]).sort_values(["model", "unique_id", "cutoff", "h"], ignore_index=True)
        for model in models:
            scores = score(forecasts[forecasts["model"] == model], history)
            line = ", ".join(f"{u} {scores.loc[u, 'mae_h1_14']:,.0f}" for u in series if u in scores.index)
            print(f"    {model}: walk-forward MAE h1..14 {line}", flush=True)
    if "serial" in rows:
        for mode in rows.keys() - {"serial"}:
            ratio(f"serial / {mode}", rows["serial"], rows[mode])
    if {"serial", "parallel"} <= rows.keys():
        serial, parallel = stored["serial"], stored["parallel"]
        same = serial.equals(parallel)
        print(f"  parallel stored the serial run's forecasts: {same}", flush=True)
        if not same and len(serial) == len(parallel):
            gap = (serial["y_hat"] - parallel["y_hat"]).abs().max()
            versions = (serial["model_version"] == parallel["model_version"]).all()
            print(f"    largest |y_hat difference| {gap:.6g}, same model_version everywhere: {versions}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="only (A) and (B) at 2 x 92")
    parser.add_argument("--only-b", action="store_true", help="skip (A)")
    parser.add_argument("--rnn-only", action="store_true", help="only (C)")
    parser.add_argument("--skip-rnn", action="store_true", help="skip (C)")
    parser.add_argument("--rnn-real", action="store_true", help="(C) on the real file")
    parser.add_argument("--rnn-weeks", type=int, default=8)
    parser.add_argument("--rnn-models", default="multitask_rnn,seq2seq")
    parser.add_argument("--rnn-modes", default="serial,parallel,warm")
    parser.add_argument("--rnn-workers", type=int, default=2)
    parser.add_argument("--rnn-epochs", type=int, default=20)
    parser.add_argument("--rnn-train-days", type=int, default=300)
    parser.add_argument("--rnn-validation-days", type=int, default=90)
    args = parser.parse_args()
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.rnn_only:
            if not args.only_b:
                production_path(tmp)
            below_the_flow(tmp, 2, 92)
            if not args.skip_large:
                below_the_flow(tmp, 50, 28)
        if not args.skip_rnn:
            rnn_backfill(tmp, args)


if __name__ == "__main__":
    main()
