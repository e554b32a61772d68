"""SARIMA walk-forward: the book's daily-refit loop vs the project's engine, side by side.

    python bench/bench_sarima.py [--quick] [--pairs N] [--n-jobs N] [--e2e]

(a) the seed loop exactly as in Géron ch. 15: a fresh ``ARIMA(rail_series[origin:today],
    order=(1, 0, 0), seasonal_order=(0, 1, 1, 7)).fit()`` per day on a date-indexed Series, 92
    fits (cutoffs 2019-02-28..2019-05-30). The one change: ``forecast().iloc[0]`` for the book's
    ``forecast()[0]``, which pandas 3 rejects on a date index.
(b) :func:`tasks.core.walk_forward.historical_forecasts` on the same 92 cutoffs, in a process pool
    (``--n-jobs``, default one per core) and in-process (n_jobs=1) to separate the SARIMA levers
    from the parallelism.
    Runs alternate (a, b, b-serial) ``--pairs`` times; medians, the median per-pair ratio and the
    largest relative forecast difference are printed.
(c) ``--e2e``: ``ridership backfill`` over the 365 cutoffs of 2019 for rail and bus (window
    expanding from 2018-01-01, storage writes included) against the seed loop doing the same 730
    fits; skipped with a message when the ``ridership`` CLI is not installed.

Both sides run in this one process with the same BLAS settings: one thread unless
``--blas-threads`` says otherwise (set before numpy loads). On a busy 2-core machine a
multi-threaded OpenBLAS spin-waits inside every fit's tiny Lyapunov solve and the seed loop took
15-35 s instead of ~3 s: that would be a contention artefact, not a speed-up, so it is kept out.
The CSV comes from ``RIDERSHIP_REAL_CSV``, else ``<repo>/../shared/data/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSV_NAME = "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def csv_path() -> Path:
    configured = os.environ.get("RIDERSHIP_REAL_CSV")
    return Path(configured) if configured else REPO.parent / "shared" / "data" / CSV_NAME


def load_book_frame(path: Path):
    """The book's data preparation (ch. 15), untimed."""
    import pandas as pd

    df = pd.read_csv(path, parse_dates=["service_date"], date_format="%m/%d/%Y")
    df.columns = ["date", "day_type", "bus", "rail", "total"]
    df = df.sort_values("date").set_index("date")
    df = df.drop("total", axis=1)
    return df.drop_duplicates()


def seed_loop(df, series: str, origin: str, first_day: str, last_day: str) -> list[float]:
    """The book's loop: refit every day on everything since ``origin``, keep the forecast."""
    import pandas as pd
    from statsmodels.tsa.arima.model import ARIMA

    time_period = pd.date_range(first_day, last_day)
    rail_series = df.loc[origin:last_day][series].asfreq("D")
    y_preds = []
    for today in time_period.shift(-1):
        model = ARIMA(rail_series[origin:today], order=(1, 0, 0), seasonal_order=(0, 1, 1, 7))
        model = model.fit()
        y_pred = model.forecast().iloc[0]
        y_preds.append(y_pred)
    return y_preds


def engine_history(path: Path):
    """The engine's input: daily ``ds`` index, float series (the lead's ingest does this for real)."""
    import pandas as pd

    raw = pd.read_csv(path, parse_dates=["service_date"], date_format="%m/%d/%Y").drop_duplicates()
    history = raw.rename(columns={"service_date": "ds", "rail_boardings": "rail"}).set_index("ds").sort_index()
    return history[["bus", "rail", "day_type"]].astype({"bus": "float64", "rail": "float64"})


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def bench_seed_window(path: Path, pairs: int, n_jobs: int | None) -> None:
    import numpy as np
    import pandas as pd

    from tasks.core.models.sarima import SarimaForecaster
    from tasks.core.walk_forward import TrainingWindow, historical_forecasts

    book, history = load_book_frame(path), engine_history(path)
    cutoffs = pd.date_range("2019-02-28", "2019-05-30")
    actual = history.loc["2019-03-01":"2019-05-31", "rail"].to_numpy()

    def engine(jobs: int | None) -> np.ndarray:
        out = historical_forecasts(
            history, SarimaForecaster(), ["rail"], cutoffs, horizon=1,
            window=TrainingWindow.expanding("2019-01-01"), n_jobs=jobs,
        )  # fmt: skip
        return out["y_hat"].to_numpy()

    print(f"(a) vs (b): rail, 92 cutoffs 2019-02-28..2019-05-30, expanding from 2019-01-01, h=1; {pairs} pairs")
    seed_times, pool_times, serial_times, worst = [], [], [], 0.0
    for pair in range(1, pairs + 1):
        t_seed, seed = timed(seed_loop, book, "rail", "2019-01-01", "2019-03-01", "2019-05-31")
        t_pool, pooled = timed(engine, n_jobs)
        t_serial, serial = timed(engine, 1)
        seed = np.asarray(seed)
        for ours in (pooled, serial):
            worst = max(worst, float(np.max(np.abs(ours / seed - 1))))
        seed_times.append(t_seed), pool_times.append(t_pool), serial_times.append(t_serial)
        note = "  (includes starting the forkserver)" if pair == 1 else ""
        print(f"  pair {pair}: seed {t_seed:6.2f} s | engine pool {t_pool:6.2f} s | engine n_jobs=1 {t_serial:6.2f} s{note}")
    ratios = [s / p for s, p in zip(seed_times, pool_times)]
    serial_ratios = [s / p for s, p in zip(seed_times, serial_times)]
    mae = float(np.mean(np.abs(pooled - actual)))
    print(f"  median seed {statistics.median(seed_times):.2f} s, engine pool {statistics.median(pool_times):.2f} s,"
          f" engine n_jobs=1 {statistics.median(serial_times):.2f} s")  # fmt: skip
    print(f"  median ratio seed/engine: pool {statistics.median(ratios):.2f}x, n_jobs=1 {statistics.median(serial_ratios):.2f}x")
    print(f"  max relative forecast difference {worst:.2e}; engine MAE {mae:,.2f} (book: 32,040.7)")


def bench_e2e(path: Path, pairs: int) -> None:
    cli = Path(sys.executable).with_name("ridership")
    if not cli.exists():
        found = shutil.which("ridership")
        if found is None:
            print(f"(c) skipped: no `ridership` CLI at {cli} or on PATH (install the project first)")
            return
        cli = Path(found)
    with _prefect_server() as api_url:
        _bench_e2e_with(cli, path, pairs, api_url)


@contextlib.contextmanager
def _prefect_server():
    """A running Prefect server (untimed), as production has: a temporary one per CLI call
    would add its 10-20 s start to every backfill. An existing PREFECT_API_URL is used as is."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tempfile.mkdtemp(prefix="ridership-bench-prefect-")
    env = dict(os.environ, PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect = Path(sys.executable).with_name("prefect")
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _bench_e2e_with(cli: Path, path: Path, pairs: int, api_url: str) -> None:
    print("(c) ridership backfill, run dates 2019-01-02..2020-01-01 (the 365 cutoffs of 2019), rail+bus, sarima, expanding from 2018-01-01, vs the seed loop's 730 fits")
    book = load_book_frame(path)
    seed_times, cli_times = [], []
    for pair in range(1, pairs + 1):
        t_seed, seed = timed(
            lambda: {s: seed_loop(book, s, "2018-01-01", "2019-01-02", "2020-01-01") for s in ("rail", "bus")}
        )
        with tempfile.TemporaryDirectory(prefix="ridership-bench-") as storage:
            env = dict(os.environ, RIDERSHIP_STORAGE=storage, RIDERSHIP_SOURCE=str(path), PREFECT_API_URL=api_url)
            subprocess.run([str(cli), "ingest"], env=env, check=True, capture_output=True)  # untimed
            command = [str(cli), "backfill", "--start", "2019-01-02", "--end", "2020-01-01", "--models", "sarima",
                       "--series", "rail,bus", "--train-start", "2018-01-01"]  # fmt: skip
            t_cli, done = timed(subprocess.run, command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  backfill failed ({done.returncode}):\n{done.stderr[-2000:]}")
                return
            difference = _compare_stored(Path(storage), seed)
        seed_times.append(t_seed), cli_times.append(t_cli)
        print(f"  pair {pair}: seed {t_seed:6.2f} s | ridership backfill {t_cli:6.2f} s | {difference}")
    ratio = statistics.median(s / c for s, c in zip(seed_times, cli_times))
    print(f"  median seed {statistics.median(seed_times):.2f} s, backfill {statistics.median(cli_times):.2f} s,"
          f" median ratio {ratio:.2f}x")  # fmt: skip


def _compare_stored(storage: Path, seed: dict[str, list[float]]) -> str:
    """Best effort: the stored h=1 SARIMA forecasts against the seed loop's, by cutoff."""
    import numpy as np
    import pandas as pd

    try:
        stored = pd.read_parquet(storage / "forecasts")
        stored = stored[(stored["model"] == "sarima") & (stored["h"] == 1)]
        worst = 0.0
        for series, values in seed.items():
            rows = stored[stored["unique_id"].astype(str) == series]
            ours = pd.Series(rows["y_hat"].to_numpy(), index=pd.to_datetime(rows["cutoff"].astype(str)))
            theirs = pd.Series(values, index=pd.date_range("2019-01-01", periods=len(values)))
            common = ours.index.intersection(theirs.index)
            worst = max(worst, float(np.max(np.abs(ours[common] / theirs[common] - 1))))
        return f"max relative difference {worst:.2e} over {len(common)} cutoffs per series"
    except Exception as error:  # the storage layout belongs to the lead; timing still counts
        return f"forecasts not compared ({type(error).__name__}: {error})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs for (a)/(b), 1 for (c)")
    parser.add_argument("--pairs", type=int, default=None, help="alternating runs per comparison (default 5, quick 3)")
    parser.add_argument("--n-jobs", type=int, default=None, help="engine worker processes (default: one per core)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads for both sides (default 1)")
    parser.add_argument("--e2e", action="store_true", help="also run (c) through the ridership CLI")
    args = parser.parse_args()
    for name in BLAS_VARIABLES:  # before numpy loads, for both contenders alike
        os.environ[name] = str(args.blas_threads)
    sys.path.insert(0, str(REPO))
    path = csv_path()
    if not path.is_file():
        sys.exit(f"real CTA file not found at {path} (set RIDERSHIP_REAL_CSV)")
    import warnings

    warnings.simplefilter("ignore")  # statsmodels' convergence chatter would bury the figures
    pairs = args.pairs or (3 if args.quick else 5)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, {cores} usable cores, BLAS threads {args.blas_threads}")
    bench_seed_window(path, pairs, args.n_jobs)
    if args.e2e:
        bench_e2e(path, 1 if args.quick else max(1, pairs // 2))


if __name__ == "__main__":
    main()
