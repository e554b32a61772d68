"""SARIMA backfills over many series through the production flow: the default runner against a
2-worker Dask LocalCluster, and both against the seed's sequential loop doing the same fits.

    PYTHONPATH=. python bench/bench_many_series.py [--sizes 2x92,50x28,300x7] [--no-seed]

The store holds synthetic portal files (``ridership synth``: 155 routes, 145 stations and the
totals, 2018-01-01..2019-06-30) ingested through the ingest flow. Each size (series × cutoffs) is
a ``backfill`` of sarima (rolling 182-day window, as in production) on a fresh copy of the store:
``2x92`` is bus and rail over run dates 2019-03-01..05-31; the others take the first N route and
station series over the last run dates up to 2019-06-29. The seed's loop is the book's: a fresh
``ARIMA(order=(1,0,0), seasonal_order=(0,1,1,7)).fit()`` per (series, cutoff), one after the
other, on the same 182-day windows, forecasts kept in memory (no storage). Printed per size: wall
time, fits per second, peak memory of the process tree (the Prefect server left out), ratios.
Each configuration runs once (2 shared cores): read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("PYTHONPATH", str(REPO))

from bench_scale import measure, ratio  # noqa: E402  (same measuring and printing as the Dask bench)

WINDOW_DAYS = 182


def build_store(folder: Path) -> Path:
    from flows.ingest import ingest
    from storage.synth import PORTAL_FILE_NAMES, write_portal_files
    from tasks.core.data.synth import ROUTES, STATIONS, TOTALS, synthesize

    data = synthesize(155, 145, date(2018, 1, 1), date(2019, 6, 30), seed=5)
    portal = folder / "portal"
    write_portal_files(str(portal), {TOTALS: data.totals, ROUTES: data.routes, STATIONS: data.stations})
    root = folder / "store"
    for kind in (TOTALS, ROUTES, STATIONS):
        ingest(source=str(portal / PORTAL_FILE_NAMES[kind]), storage=str(root))
    return root


def chosen(root: Path, series: int, cutoffs: int) -> tuple[list[str], date, date]:
    from storage import Store

    if series == 2:
        return ["bus", "rail"], date(2019, 3, 1), date(2019, 3, 1) + pd.Timedelta(days=cutoffs - 1)
    ids = [s for s in Store.open(str(root)).ridership.series_ids() if s not in ("bus", "rail")]
    end = date(2019, 6, 29)
    return ids[:series], end - pd.Timedelta(days=cutoffs - 1), end


def seed_loop(root: Path, series: list[str], start: date, end: date) -> int:
    import warnings

    from statsmodels.tsa.arima.model import ARIMA

    from storage import Store
    from tasks.core.data.activity import history_from_series

    history = history_from_series(Store.open(str(root)).ridership.read_series(series))
    fits = failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unique_id in series:
            values = history[unique_id]
            for run_date in pd.date_range(start, end):
                cutoff = run_date - pd.Timedelta(days=1)
                window = values[cutoff - pd.Timedelta(days=WINDOW_DAYS - 1) : cutoff]
                try:
                    ARIMA(window, order=(1, 0, 0), seasonal_order=(0, 1, 1, 7)).fit().forecast(14)
                except (ValueError, np.linalg.LinAlgError):
                    failed += 1  # the book's loop would stop here; the engine falls back to the naive
                fits += 1
    if failed:
        print(f"  seed loop: {failed} of {fits} fits raised (the engine stored seasonal-naive fallbacks for them)")
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2x92,50x28,300x7")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's loop")
    args = parser.parse_args()
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    from prefect.testing.utilities import prefect_test_harness

    from flows.backfill import backfill

    with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root = build_store(tmp)
        for size in args.sizes.split(","):
            series_count, cutoff_count = (int(n) for n in size.split("x"))
            series, start, end = chosen(root, series_count, cutoff_count)
            fits = len(series) * cutoff_count
            print(f"sarima, {len(series)} series x {cutoff_count} cutoffs ({fits} fits)", flush=True)
            rows = {}
            for runner in ("default", "dask"):
                copy = tmp / f"{size}-{runner}"
                shutil.copytree(root, copy)
                os.environ.update(
                    RIDERSHIP_STORAGE=str(copy), RIDERSHIP_TASK_RUNNER=runner, RIDERSHIP_WORKERS="2",
                    RIDERSHIP_DASK_WORKERS="2", RIDERSHIP_SARIMA_TRAIN_DAYS=str(WINDOW_DAYS),
                )
                rows[runner] = measure(runner, fits, lambda: backfill(start=start, end=end, models=["sarima"], series=series))
            ratio("default / dask", rows["default"], rows["dask"])
            if not args.no_seed:
                rows["seed"] = measure("seed loop (sequential)", fits, lambda: seed_loop(root, series, start, end))
                ratio("seed loop / default", rows["seed"], rows["default"])
                ratio("seed loop / dask", rows["seed"], rows["dask"])


if __name__ == "__main__":
    main()
