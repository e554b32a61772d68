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
from flows.settings import STATION_PORTAL_CSV_URL, Settings
from schemas.errors import DegradedRun, Unavailable
from storage import Store
from schemas.series import STATION_PREFIX
from storage.fs import Root
from storage.synth import portal_csv
from tasks.core.data.cleaning import read_raw_csv, validate_batch
from tasks.core.data.synth import synthesize
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
def test_nightly_on_an_empty_store_completes_and_says_which_data(offline: Store, monkeypatch):
    # The weather sources unreachable too (a fresh clone offline): the bundled history seeds the
    # weather store, no forecast vintage is stored, and the night completes all the same.
    unreachable = f"http://127.0.0.1:{closed_port()}/weather"
    monkeypatch.setenv("RIDERSHIP_WEATHER_OBSERVED_SOURCE", unreachable)
    monkeypatch.setenv("RIDERSHIP_WEATHER_FORECAST_SOURCE", unreachable)
    monkeypatch.setenv("RIDERSHIP_WEATHER_OFFLINE_SNAPSHOT", Settings().weather_offline_snapshot)
    summary = nightly(run_date=date(2019, 4, 8))
    assert summary.ingest_error is None
    assert summary.data_used.startswith("bundled offline snapshot used")
    assert summary.weather.startswith(
        "Weather: observed through 2019-04-07 (bundled weather snapshot seeded the empty store with 1995-01-01 .. 2024-12-31; "
        "the observed source failed: "
    )
    assert "no forecast vintage for 2019-04-08 (the forecast source failed: " in summary.weather
    assert offline.weather.vintage_dates() == [] and len(offline.weather.read_observed()) == 10958
    # RNNs and ensemble off here; each model's bands as forecast kept beside the calibrated ones
    assert set(offline.forecasts.read()["model"]) == set(STATISTICAL_MODELS) | {f"{m}@raw" for m in STATISTICAL_MODELS}
    report = offline.reports.read_text(pd.Timestamp("2019-04-08"), "report.md")
    assert "bundled offline snapshot used" in report and "Weather: observed through 2019-04-07" in report

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


STATION_SNAPSHOT = REPO / "data" / "CTA_-_Ridership_-__L__Station_Entries_-_Daily_totals.csv.gz"
STOPS_LIST = REPO / "data" / "CTA_-_System_Information_-_List_of__L__Stops.csv"


def readme_sha(row_start: str) -> str:
    """The SHA-256 in data/README.md on the table row or line that starts with ``row_start``."""
    readme = (REPO / "data" / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith(row_start))
    return re.search(r"`([0-9a-f]{64})`", line).group(1)


def test_bundled_station_snapshot_and_stops_list_match_their_readme():
    defaults = Settings()
    assert defaults.station_source == STATION_PORTAL_CSV_URL  # shipped: the real stations, not tests' ""
    assert Path(defaults.station_offline_snapshot) == STATION_SNAPSHOT and Path(defaults.station_locations) == STOPS_LIST
    packed = STATION_SNAPSHOT.read_bytes()
    assert len(packed) <= 8 * 2**20
    assert hashlib.sha256(packed).hexdigest() == readme_sha("| this file, as bundled (gzip)")
    with gzip.open(STATION_SNAPSHOT, "rb") as handle:
        assert handle.readline() == b"station_id,stationname,date,daytype,rides\n"  # the portal's shape
        digest = hashlib.sha256(b"station_id,stationname,date,daytype,rides\n")
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    assert digest.hexdigest() == readme_sha("| this file, uncompressed")
    stops = STOPS_LIST.read_bytes()
    assert hashlib.sha256(stops).hexdigest() == readme_sha("`086a632f") == "086a632fd0b149a3bc85fbed17d2aeba42852284eff8303dec0f8284386a9c0f"


@pytest.mark.usefixtures("prefect_harness")
def test_offline_nightly_seeds_the_stations_from_their_snapshot_and_says_so(offline: Store, tmp_path: Path, monkeypatch):
    synthetic = synthesize(1, 3, date(2018, 10, 1), date(2019, 4, 6), seed=5)
    stations = sorted(STATION_PREFIX + synthetic.stations["station_id"].unique())
    snapshot = tmp_path / "stations.csv.gz"
    snapshot.write_bytes(gzip.compress(portal_csv(synthetic.stations)))
    first, second, _ = (s.removeprefix(STATION_PREFIX) for s in stations)
    stops = tmp_path / "stops.csv"
    stops.write_text(f'MAP_ID,STATION_NAME,Location\n{first},First,"(41.9, -87.7)"\n{second},Second,"(41.8, -87.6)"\n')
    monkeypatch.setenv("RIDERSHIP_STATION_SOURCE", f"http://127.0.0.1:{closed_port()}/stations.csv")
    monkeypatch.setenv("RIDERSHIP_STATION_OFFLINE_SNAPSHOT", str(snapshot))
    monkeypatch.setenv("RIDERSHIP_STATION_LOCATIONS", str(stops))
    monkeypatch.setenv("RIDERSHIP_SERIES", "bus,rail,station:*")
    monkeypatch.setenv("RIDERSHIP_STATISTICAL_MODELS", "naive")

    summary = nightly(run_date=date(2019, 4, 8))
    assert summary.ingest_error is None
    assert summary.data_used.startswith("bundled offline snapshot used (")  # the totals' own snapshot
    assert f"Bundled offline snapshot used for the stations ({snapshot}, service dates 2018-10-01 .. " in summary.data_used
    assert [s for s in offline.ridership.series_ids() if s.startswith(STATION_PREFIX)] == stations
    forecast = {s for s in offline.forecasts.read()["unique_id"] if s.startswith(STATION_PREFIX)}
    assert forecast <= set(stations) and len(forecast) >= 2  # a synthetic station may be closed at the cutoff
    report = offline.reports.read_text(pd.Timestamp("2019-04-08"), "report.md")
    assert "Bundled offline snapshot used for the stations" in report and "## Stations (" in report
    assert "station_map.png" in report

    # Stations in the store now: the station snapshot may not stand in again.
    with pytest.raises(DegradedRun, match="Connection refused") as raised:
        nightly(run_date=date(2019, 4, 8))
    assert "for the stations" not in raised.value.outcome.data_used
