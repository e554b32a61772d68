"""Storage: atomic writes, clean round trip, reads that validate, and fsspec roots."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from pandera.errors import SchemaErrors

from storage import Store
from storage.fs import Root
from tasks.core.data.cleaning import read_raw_csv, validate_batch

CSV = (
    "service_date,day_type,bus,rail_boardings,total_rides\n"
    "01/05/2019,A,400000,300000,700000\n01/06/2019,U,300000,200000,500000\n"
    "01/07/2019,W,-1,500000,499999\n"
).encode()
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_clean_round_trip_is_one_dataset(storage_root: str):
    store = Store.open(storage_root)
    batch = validate_batch(read_raw_csv(CSV, "s.csv"))
    store.ridership.write_clean(batch.valid)
    back = store.ridership.read_clean()
    pd.testing.assert_frame_equal(back, batch.valid)
    dataset = ds.dataset(str(Path(storage_root) / "clean"))
    assert dataset.to_table().num_rows == 4  # long: one row per (series, date)
    long = pd.read_parquet(Path(storage_root) / "clean")
    assert list(long.columns) == ["unique_id", "service_date", "day_type", "y"]
    assert long.groupby("unique_id")["y"].sum().to_dict() == {"bus": 700_000, "rail": 500_000}


def test_read_clean_before_first_ingest_is_empty_and_typed(storage_root: str):
    clean = Store.open(storage_root).ridership.read_clean()
    assert clean.empty and list(clean.columns) == ["service_date", "day_type", "bus", "rail"]


def test_invalid_clean_frames_are_never_written(storage_root: str):
    store = Store.open(storage_root)
    batch = validate_batch(read_raw_csv(CSV, "s.csv"))
    store.ridership.write_clean(batch.valid)
    broken = batch.valid.assign(bus=-batch.valid["bus"])
    with pytest.raises(SchemaErrors):
        store.ridership.write_clean(broken)
    pd.testing.assert_frame_equal(store.ridership.read_clean(), batch.valid)


def test_crash_mid_write_leaves_previous_version(storage_root: str, monkeypatch):
    store = Store.open(storage_root)
    batch = validate_batch(read_raw_csv(CSV, "s.csv"))
    store.ridership.write_clean(batch.valid)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("storage.fs.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.ridership.write_clean(batch.valid.iloc[:1])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(store.ridership.read_clean(), batch.valid)
    assert store.root.listdir(store.root.join("clean")) == ["ridership.parquet"]  # temp file hidden


def test_raw_quarantine_and_revisions_are_kept(storage_root: str):
    store = Store.open(storage_root)
    raw_path = store.ridership.save_raw(CSV, "https://example.org/rows.csv?accessType=DOWNLOAD", WHEN, {"fetched_from": "test"})
    assert Path(raw_path).read_bytes() == CSV
    assert raw_path.endswith("raw/2026-01-02T03-04-05.000000Z/rows.csv")
    batch = validate_batch(read_raw_csv(CSV, "s.csv"))
    store.ridership.write_quarantine(batch.quarantined, "s.csv", WHEN)
    quarantine = store.ridership.read_quarantine()
    assert quarantine[["source_file", "source_line", "bus"]].to_dict("records") == [
        {"source_file": "s.csv", "source_line": 4, "bus": "-1"}
    ]
    assert "bus:greater_than_or_equal_to(0)" in quarantine["rules"].iloc[0]


def test_memory_fsspec_root_uses_the_same_code_path():
    store = Store(root=Root.from_url("memory://ridership-test/root"))
    batch = validate_batch(read_raw_csv(CSV, "s.csv"))
    store.ridership.write_clean(batch.valid)
    pd.testing.assert_frame_equal(store.ridership.read_clean(), batch.valid)
    assert store.ridership.clean_path == "memory:///ridership-test/root/clean/ridership.parquet"
    assert store.root.listdir(store.root.join("clean")) == ["ridership.parquet"]


def test_metrics_read_an_empty_metrics_folder_as_no_metrics(tmp_path):
    """A run killed after creating the metrics folder but before its first partition left only
    folders (found by the crash test): reading it gives an empty table, not a KeyError."""
    store = Store.open(str(tmp_path / "root"))
    (tmp_path / "root" / "metrics" / "eval_date=2019-03-01").mkdir(parents=True)
    metrics = store.metrics.read()
    assert metrics.empty and "window_start" in metrics.columns
