"""The first run on a machine that cannot reach the source: an empty store is seeded from the
offline snapshot through the normal validation path; a store that already holds data is never
overwritten by the snapshot; interrupted writes older than an hour are swept."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from flows.ingest import ingest
from flows.nightly import nightly
from flows.settings import Settings
from schemas.errors import DegradedRun, Unavailable
from storage import Store
from storage.fs import Root
from tasks.core.data.cleaning import read_raw_csv, validate_batch
from tasks.core.models.catalog import STATISTICAL_MODELS
from tests.synthetic import as_raw_csv, synthetic_clean
from tests.test_source import closed_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def offline(tmp_path: Path, storage_root: str, monkeypatch) -> Store:
    """An unreachable source and a small gzip snapshot made here (never the bundled real file)."""
    snapshot = tmp_path / "snapshot.csv.gz"
    snapshot.write_bytes(gzip.compress(as_raw_csv(synthetic_clean(end="2019-04-06")).encode()))
    monkeypatch.setenv("RIDERSHIP_SOURCE", f"http://127.0.0.1:{closed_port()}/rows.csv")
    monkeypatch.setenv("RIDERSHIP_OFFLINE_SNAPSHOT", str(snapshot))
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_RNN_MODELS", "")
    monkeypatch.setenv("RIDERSHIP_ENSEMBLE_MEMBERS", "")
    monkeypatch.setenv("RIDERSHIP_WORKERS", "1")
    return Store.open(storage_root)


@pytest.mark.usefixtures("prefect_harness")
def test_empty_store_is_seeded_from_the_snapshot_then_never_again(offline: Store):
    summary = ingest()
    assert summary.source.endswith("snapshot.csv.gz") and summary.fallback_reason
    assert "Connection refused" in summary.fallback_reason
    assert summary.notice.startswith("bundled offline snapshot used")
    clean = offline.ridership.read_clean()
    pd.testing.assert_frame_equal(clean, synthetic_clean(end="2019-04-06"), check_dtype=False)
    raw_folder = Path(offline.root.path) / "raw" / offline.ridership.raw_snapshots()[0]
    provenance = json.loads((raw_folder / "provenance.json").read_text())
    assert provenance["fetched_from"].endswith("snapshot.csv.gz")
    assert provenance["requested_source"].startswith("http://127.0.0.1:")
    assert (raw_folder / "snapshot.csv").read_bytes().startswith(b"service_date,")

    # Data in the store now: the snapshot may not stand in again (it could be older than the store).
    with pytest.raises(Unavailable, match="Connection refused"):
        ingest()
    pd.testing.assert_frame_equal(offline.ridership.read_clean(), clean)


@pytest.mark.usefixtures("prefect_harness")
def test_nightly_on_an_empty_store_completes_and_says_which_data(offline: Store):
    summary = nightly(run_date=date(2019, 4, 8))
    assert summary.ingest_error is None
    assert summary.data_used.startswith("bundled offline snapshot used")
    assert set(offline.forecasts.read()["model"]) == set(STATISTICAL_MODELS)  # RNNs and ensemble off here
    report = offline.reports.read_text(pd.Timestamp("2019-04-08"), "report.md")
    assert "bundled offline snapshot used" in report

    with pytest.raises(DegradedRun, match="from the last good data \\(through 2019-04-06\\)") as raised:
        nightly(run_date=date(2019, 4, 8))
    assert raised.value.outcome.data_used.startswith("the last good data in the store")


def test_without_snapshot_setting_the_failure_stands(offline: Store, monkeypatch, prefect_harness):
    monkeypatch.setenv("RIDERSHIP_OFFLINE_SNAPSHOT", "")
    with pytest.raises(Unavailable):
        ingest()
    assert not offline.ridership.has_clean()


def test_interrupted_writes_older_than_an_hour_are_removed(tmp_path: Path):
    root = Root.from_url(str(tmp_path / "storage"))
    root.write_bytes_atomic(root.join("forecasts", "part-rail.parquet"), b"kept")
    folder = Path(root.join("forecasts"))
    stale, fresh = folder / ".tmp-aaa-part-bus.parquet.partial", folder / ".tmp-bbb-part-bus.parquet.partial"
    stale.write_bytes(b"cut"), fresh.write_bytes(b"in flight")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert root.remove_interrupted_writes(older_than_seconds=3600) == [str(stale)]
    assert not stale.exists() and fresh.exists() and (folder / "part-rail.parquet").read_bytes() == b"kept"


def test_bundled_snapshot_is_a_valid_raw_file_matching_its_readme():
    snapshot = Path(Settings().offline_snapshot)
    assert snapshot.parent == REPO / "data" and snapshot.is_file()
    data = gzip.decompress(snapshot.read_bytes())
    readme = (REPO / "data" / "README.md").read_text()
    assert hashlib.sha256(data).hexdigest() == re.search(r"`([0-9a-f]{64})`", readme).group(1)
    batch = validate_batch(read_raw_csv(data, snapshot.name))
    assert batch.quarantined.empty and len(batch.valid) > 0
