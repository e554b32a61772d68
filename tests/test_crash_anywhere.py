"""Crash anywhere: a backfill (naive + sarima, bus and rail, 60 cutoffs) run as a subprocess is
SIGKILLed at seeded random moments over its whole run (each try redoes everything with
``--overwrite``), then run once more to the end. After every kill each
Parquet file under the root reads and validates, no reader sees a partial file, and the clean
store is unchanged; after the last, uninterrupted rerun the forecasts, metrics and report are
those of a run that was never interrupted (values, not run ids or timestamps)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from storage import Store
from tests.synthetic import synthetic_clean

pytestmark = pytest.mark.slow

KILLS = 10
SEED = 20261129
START, END = "2019-03-01", "2019-04-29"  # 60 run dates


def command(*extra: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "ridership"), "backfill", "--start", START, "--end", END,
        "--models", "naive,sarima", "--series", "rail,bus", *extra,
    ]


def environment(storage: Path, api: str) -> dict[str, str]:
    return {
        **os.environ, "PREFECT_API_URL": api, "RIDERSHIP_STORAGE": str(storage), "RIDERSHIP_RNN_MODELS": "",
        "RIDERSHIP_ENSEMBLE_MEMBERS": "", "RIDERSHIP_WORKERS": "2",
    }


PHASES = {"forecasts": "store", "metrics": "metrics", "reports": "report"}


def phase(store: Store, since: float) -> str:
    """What the run was doing when killed, read off the last file it wrote (none yet: fitting)."""
    root = Path(store.root.path)
    written = [(p.stat().st_mtime, p) for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= since]
    if not written:
        return "start-up/fit"
    last = max(written)[1].relative_to(root).parts[0]
    return PHASES.get(last, last)


def check_every_file(store: Store, clean_bytes: bytes) -> None:
    root = Path(store.root.path)
    assert (root / "clean" / "ridership.parquet").read_bytes() == clean_bytes
    for path in root.rglob("*.parquet"):
        assert not path.name.startswith("."), f"a temporary file looks like data: {path}"
        pq.read_table(path)  # every visible file is whole
    store.forecasts.read()  # validates against the contract's schema
    store.metrics.read()


def outcome(store: Store, run_date: str = END) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """What a run leaves, less what differs between runs (run ids, timestamps)."""
    forecasts = store.forecasts.read().drop(columns=["run_id", "created_at"])
    metrics = store.metrics.read()
    report = store.reports.read_text(pd.Timestamp(run_date), "report.md")
    return forecasts, metrics, report


def test_kills_at_random_moments_lose_nothing(tmp_path: Path, prefect_api_url: str):
    clean = synthetic_clean()
    reference, crashed = Store.open(str(tmp_path / "reference")), Store.open(str(tmp_path / "crashed"))
    for store in (reference, crashed):
        store.ridership.write_clean(clean)
    clean_bytes = (Path(crashed.root.path) / "clean" / "ridership.parquet").read_bytes()

    started = time.monotonic()
    run = subprocess.run(command(), env=environment(tmp_path / "reference", prefect_api_url), capture_output=True, text=True, timeout=900)
    duration = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]

    rng = random.Random(SEED)
    phases: list[str] = []
    # Kill until KILLS runs were really cut (a try can outrun its moment when the machine's load
    # drops); most moments anywhere in the run, every third late, where the short metrics and
    # report phases are. Bounded: at most twice as many tries.
    for attempt in range(2 * KILLS):
        if sum(p != "finished before the kill" for p in phases) >= KILLS:
            break
        moment = rng.uniform(0.75, 0.95) if attempt % 3 == 2 else rng.uniform(0.05, 0.9)
        # --overwrite: every run does the whole work again (fits, replacing stored files, metrics,
        # report), so a kill lands anywhere in it, also mid-replacement of a file readers use.
        process = subprocess.Popen(
            command("--overwrite"), env=environment(tmp_path / "crashed", prefect_api_url),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        launched = time.time()
        time.sleep(moment * duration)
        if process.poll() is None:
            phases.append(phase(crashed, launched))
            os.killpg(process.pid, signal.SIGKILL)
        else:
            phases.append("finished before the kill")
        process.wait()
        check_every_file(crashed, clean_bytes)
    print(f"uninterrupted run {duration:.1f} s; phases at the kills: {phases}")
    assert sum(p != "finished before the kill" for p in phases) >= KILLS

    final = subprocess.run(command(), env=environment(tmp_path / "crashed", prefect_api_url), capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    check_every_file(crashed, clean_bytes)
    expected, got = outcome(reference), outcome(crashed)
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2]
