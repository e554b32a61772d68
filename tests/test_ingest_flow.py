"""The ingest flow and the ``ridership ingest`` command under a real (temporary) Prefect server."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import main
from schemas.errors import InvalidInput, Unavailable
from storage import Store

pytestmark = pytest.mark.usefixtures("prefect_harness")

HEADER = "service_date,day_type,bus,rail_boardings,total_rides\n"
GOOD = HEADER + "01/05/2019,A,400000,300000,700000\n01/06/2019,U,300000,200000,500000\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def ingest(source: str, storage: str, out: io.StringIO | None = None, err: io.StringIO | None = None) -> int:
    # Streams are redirected here rather than with capsys: Prefect's console log handler keeps
    # the stream it first saw, and capsys closes its stream after each test.
    with redirect_stdout(out or io.StringIO()), redirect_stderr(err or io.StringIO()):
        return main(["ingest", "--source", source, "--storage", storage])


def test_bad_file_after_good_one_keeps_clean_store(tmp_path: Path, storage_root: str):
    store = Store.open(storage_root)
    assert ingest(write(tmp_path, "good.csv", GOOD), storage_root) == 0
    before = store.ridership.read_clean()

    row_level = HEADER + "01/05/2019,A,-4,300000,299996\n01/07/2019,W,700000,500000,1200000\n"
    assert ingest(write(tmp_path, "rows.csv", row_level), storage_root) == 0
    quarantine = store.ridership.read_quarantine()
    assert quarantine["source_line"].tolist() == [2]
    assert quarantine["source_file"].iloc[0].endswith("rows.csv")
    after_rows = store.ridership.read_clean()
    pd.testing.assert_frame_equal(after_rows.iloc[:2], before)  # the bad revision never landed
    assert len(after_rows) == 3

    wrong_columns = write(tmp_path, "wrong.csv", "date,riders\n2019-01-08,5\n")
    err = io.StringIO()
    assert ingest(wrong_columns, storage_root, err=err) == InvalidInput.exit_code
    error = err.getvalue().strip().splitlines()[-1]
    assert error == f"ridership ingest: rejected: {wrong_columns}: missing columns service_date, day_type, bus, rail_boardings, total_rides (found: date, riders)"
    assert ingest(write(tmp_path, "empty.csv", ""), storage_root) == InvalidInput.exit_code
    assert ingest(str(tmp_path / "missing.csv"), storage_root) == Unavailable.exit_code
    pd.testing.assert_frame_equal(store.ridership.read_clean(), after_rows)
    assert len(store.ridership.raw_snapshots()) == 4  # every file received is kept, even rejected ones


@pytest.mark.realdata
def test_real_file_twice(real_csv: Path, storage_root: str):
    out = io.StringIO()
    assert ingest(str(real_csv), storage_root, out=out) == 0
    first = out.getvalue()
    clean = Store.open(storage_root).ridership.read_clean()
    assert len(clean) == 7639
    assert clean["service_date"].min() == pd.Timestamp("2001-01-01")
    assert clean["service_date"].max() == pd.Timestamp("2021-11-30")
    assert clean["service_date"].diff().dropna().eq(pd.Timedelta(days=1)).all()
    assert "duplicates dropped   62" in first and "added                7,639" in first
    assert "quarantined          0" in first
    assert Store.open(storage_root).ridership.read_quarantine().empty

    clean_bytes = (Path(storage_root) / "clean" / "ridership.parquet").read_bytes()
    out = io.StringIO()
    assert ingest(str(real_csv), storage_root, out=out) == 0
    second = out.getvalue()
    assert "added                0" in second and "revised              0" in second
    assert (Path(storage_root) / "clean" / "ridership.parquet").read_bytes() == clean_bytes
