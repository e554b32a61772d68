"""Every 'L' station at production size: the nightly run and the station backtest, on the default
runner and on Dask, side by side in one run; wall time, fits per second, peak memory (the command
and all its descendants: pool workers, Dask scheduler and workers, Prefect's temporary server).

    PYTHONPATH=. python bench/bench_stations.py [--skip-backtest] [--run-date 2021-11-24]

The real files (``RIDERSHIP_REAL_CSV`` / ``RIDERSHIP_REAL_STATIONS`` or ``../shared/data/``, else
the bundled ``data/`` snapshots, which are the same data) are ingested into a scratch store, then,
through the ``ridership`` command as a user runs it:

(N) the nightly job with the production sets and the default series (bus, rail, rail_entries and
    every station): a first run (the RNN's first training, every fit) on ``--run-date``, then the
    next day's run, on the default runner and on a copy of the store with
    ``RIDERSHIP_TASK_RUNNER=dask`` (a 2-worker LocalCluster). The second run is the nightly cost
    the issue's target (<= 120 s, <= 2 GB) is about.
(B) the station backtest of docs/models-and-accuracy.md ("Stations"): cutoffs every 7 days
    2019-03-03..12-29, every station and rail_entries, the station production set, both runners.

Each configuration runs once (2 shared cores): read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_scale import PeakMemory, ratio  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TOTALS = "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"
STATIONS = "CTA_-_Ridership_-__L__Station_Entries_-_Daily_totals.csv.gz"
BACKTEST = ("2019-03-03", "2019-12-29", "7")


def real_file(variable: str, name: str) -> Path:
    for candidate in (os.environ.get(variable, ""), SHARED / name, REPO / "data" / name, REPO / "data" / f"{name}.gz"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SystemExit(f"no {name}: set {variable} or put it under ../shared/data/")


def ridership(env: dict[str, str], *arguments: str) -> None:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "ridership"), *arguments], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 4):
        raise SystemExit(f"ridership {' '.join(arguments)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def environment(root: Path, runner: str, totals: Path, stations: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDERSHIP_")}
    env.update(
        RIDERSHIP_STORAGE=str(root), RIDERSHIP_SOURCE=str(totals), RIDERSHIP_STATION_SOURCE=str(stations),
        RIDERSHIP_TASK_RUNNER=runner, RIDERSHIP_WORKERS="2", RIDERSHIP_DASK_WORKERS="2",
        PREFECT_HOME=str(root.parent / f"prefect-{root.name}"),
    )  # fmt: skip
    return env


def timed(label: str, run, count) -> dict:
    """``run`` measured; ``count()`` (called after it) says how many fits it made."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
    fits = count()
    row = {"label": label, "wall_s": wall, "fits_per_s": fits / wall, "peak_mib": memory.peak / 2**20}
    print(f"  {label:<34} {wall:8.1f} s {fits:6d} fits {row['fits_per_s']:8.1f} fits/s {row['peak_mib']:8.0f} MiB peak", flush=True)
    return row


def stored_fits(root: Path, name: str | None = None, cutoff: pd.Timestamp | None = None) -> int:
    """(series, model, cutoff) forecasts stored (in backtest ``name``; at ``cutoff`` only)."""
    from storage import Store

    store = Store.open(str(root))
    forecasts = (store.backtest(name) if name else store).forecasts
    stored = forecasts.read(start=cutoff, end=cutoff) if cutoff is not None else forecasts.read()
    return int(stored[["unique_id", "model", "cutoff"]].drop_duplicates().shape[0])


def seeded(root: Path, runner: str, totals: Path, stations: Path) -> dict[str, str]:
    env = environment(root, runner, totals, stations)
    if not root.exists():
        ridership(env, "ingest", "--source", str(totals))
        ridership(env, "ingest", "--source", str(stations))
    return env


def nightly(tmp: Path, totals: Path, stations: Path, run_date: str) -> None:
    first = pd.Timestamp(run_date)
    second = first + pd.Timedelta(days=1)
    print(f"(N) nightly, default series and production sets; first run {first.date()}, then {second.date()}")
    env = seeded(tmp / "default", "default", totals, stations)
    timed(
        f"first run {first.date()} (default)", lambda: ridership(env, "nightly", "--run-date", run_date),
        lambda: stored_fits(tmp / "default", cutoff=first - pd.Timedelta(days=1)),
    )
    shutil.copytree(tmp / "default", tmp / "dask")
    rows = {}
    for runner in ("default", "dask"):
        env = environment(tmp / runner, runner, totals, stations)
        rows[runner] = timed(
            f"next run {second.date()} ({runner})", lambda: ridership(env, "nightly", "--run-date", str(second.date())),
            lambda: stored_fits(tmp / runner, cutoff=second - pd.Timedelta(days=1)),
        )
    ratio("default / dask", rows["default"], rows["dask"])


def backtest(tmp: Path, totals: Path, stations: Path) -> None:
    start, end, every = BACKTEST
    print(f"(B) station backtest {start}..{end} every {every} days, station production set, station:* and rail_entries")
    arguments = ("backtest", "--start", start, "--end", end, "--every", every, "--series", "station:*,rail_entries", "--name", "stations")
    rows = {}
    for runner in ("default", "dask"):
        env = seeded(tmp / runner, runner, totals, stations)
        rows[runner] = timed(f"backtest ({runner})", lambda: ridership(env, *arguments), lambda: stored_fits(tmp / runner, "stations"))
    ratio("default / dask", rows["default"], rows["dask"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", default="2021-11-24")
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--skip-nightly", action="store_true")
    args = parser.parse_args()
    totals = real_file("RIDERSHIP_REAL_CSV", TOTALS)
    stations = real_file("RIDERSHIP_REAL_STATIONS", STATIONS)
    with tempfile.TemporaryDirectory(prefix="bench-stations-") as scratch:
        tmp = Path(scratch)
        if not args.skip_nightly:
            nightly(tmp, totals, stations, args.run_date)
        if not args.skip_backtest:
            backtest(tmp, totals, stations)


if __name__ == "__main__":
    main()
