"""Ingest flow: the raw source → quarantine + clean Parquet."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.tasks import exponential_backoff

from flows.settings import Settings
from storage import Store
from storage.source import SourceUnavailable
from tasks.ingest import (
    IngestSummary, RawFile, archive_raw, clean_store_is_empty, fetch_raw, kind_of, merge_clean, merge_series_clean,
    quarantine_rows, remove_interrupted_writes, store_has_stations, validate_raw, validate_series_raw,
)  # fmt: skip
from tasks.core.data.series_cleaning import TOTALS


@flow(name="ingest", log_prints=True)
def ingest(source: str | None = None, storage: str | None = None) -> IngestSummary:
    """Fetch the raw file, keep a copy, validate it, quarantine bad rows, merge the rest by date.

    The file's header says what it is: the system totals (bus and rail), the bus routes' daily
    totals (route:<route> series) or the 'L' station entries (station:<station_id> series). After
    a route or station file is merged, the parents of RIDERSHIP_HIERARCHIES (rail_entries, the
    daily sum of station:* unless set) are recomputed from the merged store.

    A file rejected as a whole (unreadable, empty, wrong columns) fails the flow with the file and
    the problem named; the clean store is untouched. When the source cannot be reached and the
    clean store is empty, the bundled offline snapshot (settings) seeds it through the same path;
    likewise the bundled station snapshot when the station source (settings) cannot be reached
    and the store holds no station series yet.

    Args:
        source: raw CSV to read: URL, local path or fsspec URL (default: RIDERSHIP_SOURCE, the
            Chicago Data Portal's export).
        storage: storage root (default: RIDERSHIP_STORAGE).
    """
    settings = Settings.from_env()
    source = source or settings.source
    store = Store.open_writable(storage or settings.storage, settings.lock_policy())
    remove_interrupted_writes(store)
    ingested_at = datetime.now(timezone.utc)
    raw = _fetch(store, source, settings)
    raw_path = archive_raw(store, raw, ingested_at)
    kind = kind_of(raw)
    if kind == TOTALS:
        batch = validate_raw(raw.data, raw.origin, ingested_at)
        quarantine_path = quarantine_rows(store, batch, raw.origin, ingested_at)
        summary = merge_clean(store, batch, raw, ingested_at, raw_path, quarantine_path)
    else:
        rows = validate_series_raw(raw.data, raw.origin, kind, ingested_at)
        quarantine_path = quarantine_rows(store, rows, raw.origin, ingested_at)
        summary = merge_series_clean(store, rows, raw, kind, ingested_at, raw_path, quarantine_path, settings.hierarchies)
    if summary.notice:
        get_run_logger().warning(summary.notice)
    return summary


def _fetch(store: Store, source: str, settings: Settings) -> RawFile:
    """The source's bytes; a snapshot's only where the source failed and nothing of its kind is
    stored yet (an older snapshot must never stand in for newer data already in the store)."""
    try:
        return RawFile(data=fetch_with_retries(source, settings), origin=source, requested_source=source)
    except SourceUnavailable as error:
        snapshot = _snapshot_for(store, source, settings)
        if not snapshot:
            raise
        return RawFile(data=read_snapshot(snapshot, settings), origin=snapshot, requested_source=source, fallback_reason=str(error))


def fetch_with_retries(source: str, settings: Settings) -> bytes:
    """A source's bytes within the settings' size and time limits, a transient failure (timeout,
    reset, 5xx) retried three times with exponential backoff; also the weather sources'."""
    backoff = exponential_backoff(backoff_factor=settings.source_retry_delay_s)
    return fetch_raw.with_options(retry_delay_seconds=backoff)(source, settings.max_source_bytes, settings.source_timeout_s)


def read_snapshot(snapshot: str, settings: Settings) -> bytes:
    """A bundled snapshot's bytes: a local file, so one try (a retry cannot make it appear)."""
    return fetch_raw.with_options(retries=0)(snapshot, settings.max_source_bytes, settings.source_timeout_s)


def _snapshot_for(store: Store, source: str, settings: Settings) -> str:
    """The snapshot that may stand in for ``source`` now, or "": the station snapshot for the
    configured station source while no station is stored (the totals are ingested first, so
    the store is never empty by then), the totals snapshot for any other source on an empty store."""
    if settings.station_source and source == settings.station_source:
        return settings.station_offline_snapshot if not store_has_stations(store) else ""
    return settings.offline_snapshot if clean_store_is_empty(store) else ""
