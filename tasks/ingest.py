"""Prefect tasks for ingest: fetch, archive, validate, quarantine, merge."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Callable
from datetime import datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from schemas.series import STATION_PREFIX
from storage import Store
from storage.source import SourceUnavailable, fetch_source
from tasks.core.data.cleaning import ValidatedBatch, merge_into_clean, read_raw_csv, validate_batch
from tasks.core.data.derived import Hierarchy, derived_names, parents_of, with_derived
from tasks.core.data.series_cleaning import (
    TOTALS, SeriesBatch, merge_series, read_series_csv, series_catalog, source_kind, validate_series_batch,
)  # fmt: skip

QUARANTINE_LINES_LOGGED = 20
SERVICE_TIMEZONE = "America/Chicago"


@dataclass(frozen=True)
class RawFile:
    """What was fetched, from where, and why not from the configured source (if so)."""

    data: bytes
    origin: str
    requested_source: str
    fallback_reason: str | None = None


@dataclass(frozen=True)
class IngestSummary:
    source: str
    requested_source: str
    fallback_reason: str | None
    raw_path: str
    rows_read: int
    duplicates_dropped: int
    quarantined: int
    calendar_mismatches: int
    added: int
    revised: int
    clean_rows: int
    first_date: str | None
    last_date: str | None
    quarantine_path: str | None
    kind: str = TOTALS  # totals, routes or stations: what the file's header said it is
    series: int = 2  # series the file holds

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def notice(self) -> str | None:
        """One line saying the bundled snapshot stood in for the source, if it did."""
        if self.fallback_reason is None:
            return None
        which = "" if self.kind == TOTALS else f" for the {self.kind}"
        return (
            f"bundled offline snapshot used{which} ({self.source}, service dates {self.first_date} .. "
            f"{self.last_date}) because the source failed: {self.fallback_reason}"
        )


def _worth_retrying(task, task_run, state) -> bool:
    """Only transient fetch failures (timeouts, resets, 5xx) are retried; a refused connection,
    a missing file or an oversized source gives the same answer on every try."""
    error = state.data  # the exception the task raised
    return isinstance(error, SourceUnavailable) and error.transient


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def fetch_raw(source: str, max_bytes: int, timeout: float) -> bytes:
    return fetch_source(source, max_bytes, timeout)


@task(cache_policy=NO_CACHE)
def clean_store_is_empty(store: Store) -> bool:
    return not store.ridership.has_clean()


@task(cache_policy=NO_CACHE)
def store_has_stations(store: Store) -> bool:
    return any(unique_id.startswith(STATION_PREFIX) for unique_id in store.ridership.series_ids())


@task(cache_policy=NO_CACHE)
def remove_interrupted_writes(store: Store) -> list[str]:
    removed = store.remove_interrupted_writes()
    if removed:
        get_run_logger().warning(
            "removed %d temporary file(s) left by interrupted writes (older than an hour): %s",
            len(removed), ", ".join(removed),
        )
    return removed


@task(cache_policy=NO_CACHE)
def archive_raw(store: Store, raw: RawFile, ingested_at: datetime) -> str:
    provenance = {
        "fetched_from": raw.origin,
        "requested_source": raw.requested_source,
        "fallback_reason": raw.fallback_reason,
        "ingested_at": ingested_at.isoformat(),
        "sha256": hashlib.sha256(raw.data).hexdigest(),
    }
    return store.ridership.save_raw(raw.data, raw.origin, ingested_at, provenance)


@task(cache_policy=NO_CACHE)
def validate_raw(data: bytes, source: str, ingested_at: datetime) -> ValidatedBatch:
    logger = get_run_logger()
    read = read_raw_csv(data, source)
    for warning in read.warnings:
        logger.warning(warning)
    batch = validate_batch(read, as_of=_as_of(ingested_at))
    for row in batch.quarantined.head(QUARANTINE_LINES_LOGGED).itertuples():
        logger.warning("%s: line %d: %s", source, row.source_line, row.rules)
    for row in batch.calendar_mismatches.itertuples():
        logger.warning(
            "%s: %s has day_type %s but the service calendar says %s (kept as recorded)",
            source, row.service_date.date(), row.day_type, row.calendar_day_type,
        )
    return batch


def kind_of(raw: RawFile) -> str:
    """``totals``, ``routes`` or ``stations``, from the file's header."""
    return source_kind(raw.data)


def _as_of(ingested_at: datetime) -> pd.Timestamp:
    return pd.Timestamp(ingested_at).tz_convert(SERVICE_TIMEZONE).tz_localize(None)


@task(cache_policy=NO_CACHE)
def validate_series_raw(data: bytes, source: str, kind: str, ingested_at: datetime) -> SeriesBatch:
    logger = get_run_logger()
    read = read_series_csv(data, source, kind)
    for warning in read.warnings:
        logger.warning(warning)
    batch = validate_series_batch(read, kind, as_of=_as_of(ingested_at))
    for row in batch.quarantined.head(QUARANTINE_LINES_LOGGED).itertuples():
        logger.warning("%s: line %d: %s", source, row.source_line, row.rules)
    return batch


@task(cache_policy=NO_CACHE)
def merge_series_clean(
    store: Store, batch: SeriesBatch, raw: RawFile, kind: str, ingested_at: datetime, raw_path: str,
    quarantine_path: str | None, hierarchies: tuple[Hierarchy, ...] = (),
) -> IngestSummary:
    """Upsert a route or station file's rows into the long store, recompute the hierarchies'
    parents from the merged children (in the same write), and refresh the catalog."""
    ridership = store.ridership
    merged = _merge_under_lease(
        store, raw.origin, ingested_at,
        lambda: with_derived(merge_series(ridership.read_series(), batch.valid), hierarchies),
        ridership.write_series_revisions, ridership.write_series,
        lambda clean: ridership.write_catalog(
            series_catalog(clean, pd.concat([batch.names, derived_names(hierarchies, clean)]), ridership.read_catalog())
        ),
    )
    if merged.derived_changes:
        get_run_logger().info(
            "%s: %d derived row(s) added or revised from the merged children", ", ".join(parents_of(hierarchies)),
            merged.derived_changes,
        )
    mine = merged.clean[merged.clean["unique_id"].isin(set(batch.valid["unique_id"]))]
    return _summary(
        raw, raw_path, quarantine_path, batch, merged, mine["service_date"], calendar_mismatches=0, kind=kind,
        series=int(mine["unique_id"].nunique()),
    )


def _summary(
    raw: RawFile, raw_path: str, quarantine_path: str | None, batch, merged, dates: pd.Series,
    calendar_mismatches: int, kind: str = TOTALS, series: int = 2,
) -> IngestSummary:
    """What an ingest did: ``batch`` (the file's checks) and ``merged`` (the merge) give the
    counts, ``dates`` the service dates of the file's series now in the store."""
    return IngestSummary(
        source=raw.origin, requested_source=raw.requested_source, fallback_reason=raw.fallback_reason,
        raw_path=raw_path, rows_read=batch.rows_read, duplicates_dropped=batch.duplicates_dropped,
        quarantined=len(batch.quarantined), calendar_mismatches=calendar_mismatches, added=merged.added,
        revised=merged.revised, clean_rows=len(dates), first_date=str(dates.min().date()) if len(dates) else None,
        last_date=str(dates.max().date()) if len(dates) else None, quarantine_path=quarantine_path, kind=kind,
        series=series,
    )


def _merge_under_lease(
    store: Store, source: str, ingested_at: datetime, merge: Callable[[], Any],
    write_revisions: Callable[[pd.DataFrame, str, datetime], str], write_clean: Callable[[pd.DataFrame], None],
    also: Callable[[pd.DataFrame], None] | None = None,
):
    """Read, merge and write the clean store under its lease: another run ingesting into the
    same root between our read and our write would otherwise have its rows dropped by our write.
    A store from before the long format is migrated first; ``also`` runs on the merged store
    before the lease is let go (the catalog)."""
    with store.lock("clean", f"ingest of {source}"):
        _migrate(store)
        merged = merge()
        if merged.changed:
            if not merged.revisions.empty:
                write_revisions(merged.revisions, source, ingested_at)
            write_clean(merged.clean)
        if also is not None:
            also(merged.clean)
    return merged


def _migrate(store: Store) -> None:
    """A store from before the long format is rewritten long on its first ingest (same values)."""
    if store.ridership.migrate():
        get_run_logger().warning("clean store %s migrated to the long format (one row per series and date)", store.url)


@task(cache_policy=NO_CACHE)
def quarantine_rows(store: Store, batch: ValidatedBatch | SeriesBatch, source: str, ingested_at: datetime) -> str | None:
    if batch.quarantined.empty:
        return None
    if isinstance(batch, SeriesBatch):
        return store.ridership.write_series_quarantine(batch.quarantined, source, ingested_at)
    return store.ridership.write_quarantine(batch.quarantined, source, ingested_at)


@task(cache_policy=NO_CACHE)
def merge_clean(
    store: Store, batch: ValidatedBatch, raw: RawFile, ingested_at: datetime, raw_path: str,
    quarantine_path: str | None,
) -> IngestSummary:
    ridership = store.ridership
    merged = _merge_under_lease(
        store, raw.origin, ingested_at, lambda: merge_into_clean(ridership.read_clean(), batch.valid),
        ridership.write_revisions, ridership.write_clean,
    )
    return _summary(
        raw, raw_path, quarantine_path, batch, merged, merged.clean["service_date"],
        calendar_mismatches=len(batch.calendar_mismatches),
    )
