"""Ingest flow: the raw source → quarantine + clean Parquet."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow

from flows.settings import Settings
from storage import Store
from tasks.ingest import IngestSummary, archive_raw, fetch_raw, merge_clean, quarantine_rows, validate_raw


@flow(name="ingest", log_prints=True)
def ingest(source: str | None = None, storage: str | None = None) -> IngestSummary:
    """Fetch the raw file, keep a copy, validate it, quarantine bad rows, merge the rest by date.

    A file rejected as a whole (unreadable, empty, wrong columns) fails the flow with the file and
    the problem named; the clean store is untouched.
    """
    settings = Settings.from_env()
    source = source or settings.source
    store = Store.open(storage or settings.storage)
    ingested_at = datetime.now(timezone.utc)
    data = fetch_raw(source)
    raw_path = archive_raw(store, data, source, ingested_at)
    batch = validate_raw(data, source)
    quarantine_path = quarantine_rows(store, batch, source, ingested_at)
    return merge_clean(store, batch, source, ingested_at, raw_path, quarantine_path)
