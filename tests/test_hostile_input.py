"""Malformed raw files made here, each ingested through the ``ridership`` command as a user would:
either the file ingests with its bad rows quarantined (and their rules recorded) or it is
rejected whole with one line and a non-zero exit; never a traceback, never a change to a clean
value already stored, and memory bounded (the 200 MB file is refused after reading the cap)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from schemas.errors import InvalidInput
from storage import Store
from tests.synthetic import synthetic_clean

HEADER = "service_date,day_type,bus,rail_boardings,total_rides"
GOOD_ROWS = ["07/01/2019,W,700000,500000,1200000", "07/02/2019,W,710000,505000,1215000"]
STORED = synthetic_clean(start="2019-06-01", end="2019-06-30")
# Runs the CLI in a child that reports its own peak resident memory (KiB) on its last line.
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of a big test process
# would report its parent's peak.
PEAK_REPORTING_CLI = (
    "import re, sys; from flows.cli import main; code = main(sys.argv[1:]); "
    "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
    "print(f'peak_rss_kib={peak}', file=sys.stderr); sys.exit(code)"
)


def text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# (case, file bytes or a builder, outcome: "rejected" or the rules the quarantine must show, rows added)
CASES = [
    ("empty", b"", "rejected: {f}: empty file", 0),
    ("header only", text(HEADER), "rejected: {f}: no data rows", 0),
    ("wrong columns", text("date,riders", "2019-07-01,5"), "rejected: {f}: missing columns", 0),
    ("missing column", text("service_date,day_type,bus,total_rides", "07/01/2019,W,1,2"), "missing columns rail_boardings", 0),
    ("duplicated column", text(HEADER + ",bus", GOOD_ROWS[0] + ",5"), "named twice in the header: bus", 0),
    ("semicolon delimiter", text(HEADER.replace(",", ";"), GOOD_ROWS[0].replace(",", ";")), "missing columns", 0),
    ("binary garbage", bytes(range(256)) * 40, "not UTF-8", 0),
    ("utf-16", "\n".join([HEADER, *GOOD_ROWS]).encode("utf-16"), "not UTF-8", 0),
    ("unterminated quote", text(HEADER, '"07/01/2019,W,1,2,3'), "unreadable CSV", 0),
    ("negative count", text(HEADER, "07/01/2019,W,-5,500000,499995", GOOD_ROWS[1]), ["bus:greater_than_or_equal_to(0)"], 1),
    ("fractional count", text(HEADER, "07/01/2019,W,700000.5,500000,1200000.5", GOOD_ROWS[1]), ["bus:whole_number"], 1),
    ("non-numeric count", text(HEADER, "07/01/2019,W,many,500000,500000", GOOD_ROWS[1]), ["bus:not_a_number('many')"], 1),
    ("absurd count", text(HEADER, "07/01/2019,W,90000000,500000,90500000", GOOD_ROWS[1]), ["bus:less_than_or_equal_to(4000000)"], 1),
    ("future date", text(HEADER, GOOD_ROWS[0], "12/31/2099,W,700000,500000,1200000"), ["service_date:after_ingest_date"], 1),
    ("date before 1990", text(HEADER, "07/01/1989,W,700000,500000,1200000", GOOD_ROWS[1]), ["service_date:greater_than_or_equal_to"], 1),
    ("conflicting duplicates", text(HEADER, GOOD_ROWS[0], "07/01/2019,W,1,2,3", GOOD_ROWS[1]), ["conflicting_duplicate", "conflicting_duplicate"], 1),
    ("truncated last line", text(HEADER, GOOD_ROWS[0], "07/02/2019,W,71"), ["row:field_count(3, expected 5)"], 1),
    ("extra field in a row", text(HEADER, GOOD_ROWS[0] + ",9", GOOD_ROWS[1]), ["row:field_count(6, expected 5)"], 1),
    ("repeated header line", text(HEADER, GOOD_ROWS[0], HEADER, GOOD_ROWS[1]), ["service_date:unparseable_date('service_date')"], 2),
    ("day type contradicts calendar", text(HEADER, "07/01/2019,U,700000,500000,1200000", GOOD_ROWS[1]), [], 2),
    ("gaps of missing days", text(HEADER, GOOD_ROWS[0], "07/09/2019,W,700000,500000,1200000"), [], 2),
    ("BOM and CRLF", b"\xef\xbb\xbf" + text(HEADER, *GOOD_ROWS).replace(b"\n", b"\r\n"), [], 2),
    ("revision of a stored day to garbage", text(HEADER, "06/10/2019,W,-1,2,1", GOOD_ROWS[0]), ["bus:greater_than_or_equal_to(0)"], 1),
]  # fmt: skip


@pytest.fixture(scope="module")
def api(prefect_api_url: str) -> str:
    return prefect_api_url


def run_ingest(tmp_path: Path, storage: Path, api: str, data: bytes | Path, name: str) -> subprocess.CompletedProcess:
    source = data if isinstance(data, Path) else tmp_path / name
    if not isinstance(data, Path):
        source.write_bytes(data)
    env = {**os.environ, "PREFECT_API_URL": api, "RIDERSHIP_STORAGE": str(storage), "RIDERSHIP_OFFLINE_SNAPSHOT": ""}
    return subprocess.run(
        [sys.executable, "-c", PEAK_REPORTING_CLI, "ingest", "--source", str(source)],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("case, data, outcome, added", CASES, ids=[c[0] for c in CASES])
def test_malformed_file_is_quarantined_or_rejected_cleanly(tmp_path: Path, api: str, case, data, outcome, added):
    storage = tmp_path / "storage"
    store = Store.open(str(storage))
    store.ridership.write_clean(STORED)
    name = "raw.csv"
    run = run_ingest(tmp_path, storage, api, data, name)
    output = run.stdout + run.stderr
    assert "Traceback" not in output, output[-3000:]
    clean = store.ridership.read_clean()
    pd.testing.assert_frame_equal(clean.iloc[: len(STORED)], STORED, check_dtype=False)  # nothing stored changed
    if isinstance(outcome, str):
        assert run.returncode == InvalidInput.exit_code, output[-3000:]
        lines = [line for line in run.stderr.splitlines() if line.startswith("ridership ingest:")]
        assert len(lines) == 1 and outcome.format(f=tmp_path / name) in lines[0], run.stderr[-2000:]
        assert len(clean) == len(STORED)
        return
    assert run.returncode == 0, output[-3000:]
    assert len(clean) == len(STORED) + added
    quarantine = store.ridership.read_quarantine()
    assert len(quarantine) == len(outcome)
    for rule, (_, row) in zip(outcome, quarantine.sort_values("source_line").iterrows()):
        assert rule in row["rules"] and row["source_file"].endswith(name)


def test_200_mb_file_is_refused_with_bounded_memory(tmp_path: Path, api: str):
    big = tmp_path / "big.csv"
    line = GOOD_ROWS[0] + "\n"
    with big.open("w") as handle:
        handle.write(HEADER + "\n")
        chunk = line * 100_000
        while handle.tell() < 200 * 2**20:
            handle.write(chunk)
    storage = tmp_path / "storage"
    Store.open(str(storage)).ridership.write_clean(STORED)
    run = run_ingest(tmp_path, storage, api, big, "big.csv")
    assert run.returncode == InvalidInput.exit_code and "Traceback" not in run.stderr
    assert "larger than 64 MiB" in run.stderr
    peak_mib = int(run.stderr.rsplit("peak_rss_kib=", 1)[1].split()[0]) / 1024
    print(f"peak memory ingesting a {big.stat().st_size / 2**20:.0f} MiB file: {peak_mib:.0f} MiB")
    assert peak_mib < 1024  # the cap (64 MiB) plus the interpreter, Prefect and pandas
