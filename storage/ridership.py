"""Raw snapshots, the clean series, quarantine and revisions under the storage root.

Layout::

    raw/<ingested_at>/<file name>          every raw file exactly as received
    raw/<ingested_at>/provenance.json      where it came from (and why, if not the configured source)
    quarantine/<ingested_at>.parquet       rejected rows of a totals file, their rules and source file
    quarantine/series/<ingested_at>.parquet     the same for a route or station file
    revisions/<ingested_at>.parquet        totals values changed by a newer snapshot
    revisions/series/<ingested_at>.parquet route and station values changed by a newer file
    clean/ridership.parquet                the validated series, long: unique_id, service_date, day_type, y
    catalog/series.parquet                 route and station series: kind, name, first and last date

A store written before the long format (one row per date, ``bus`` and ``rail`` columns) is read
as the long table and rewritten long by the next ingest (:meth:`RidershipStore.migrate`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.ridership import CleanRidership, QuarantinedRow, Revision
from schemas.series import (
    TOTAL_SERIES, CleanSeries, QuarantinedSeriesRow, SeriesInfo, SeriesRevision, empty_long, long_to_totals, sort_long,
    totals_to_long,
)  # fmt: skip
from storage.fs import Root

CLEAN_FILE = "clean/ridership.parquet"
CATALOG_FILE = "catalog/series.parquet"
PROVENANCE_FILE = "provenance.json"
SERIES_RECORDS = "series"  # subfolder of quarantine/ and revisions/ for route and station files
CLEAN_ARROW_SCHEMA = pa.schema(
    [
        ("unique_id", pa.string()),
        ("service_date", pa.date32()),
        ("day_type", pa.string()),
        ("y", pa.int64()),
    ]
)
WIDE_COLUMNS = {"service_date", "day_type", *TOTAL_SERIES}


def stamp(moment: datetime) -> str:
    """A timestamp usable as a file or folder name on every file system (no colons)."""
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H-%M-%S.%fZ")


def _safe_name(name: str) -> str:
    base = name.rsplit("/", 1)[-1].split("?", 1)[0] or "source.csv"
    # The bytes kept are decompressed (fetching infers compression from the extension).
    base = re.sub(r"\.(gz|bz2|xz|zst|zip)$", "", base)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base)


class RidershipStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    def save_raw(self, data: bytes, source: str, ingested_at: datetime, provenance: Mapping[str, Any]) -> str:
        """Keep the file as received, with where it came from beside it (``provenance.json``)."""
        folder = self.root.join("raw", stamp(ingested_at))
        path = f"{folder}/{_safe_name(source)}"
        self.root.write_bytes_atomic(path, data)
        self.root.write_bytes_atomic(f"{folder}/{PROVENANCE_FILE}", json.dumps(dict(provenance), indent=2).encode())
        return self.root.url(path)

    def has_clean(self) -> bool:
        return self.root.exists(self.root.join(CLEAN_FILE))

    def raw_snapshots(self) -> list[str]:
        return self.root.listdir(self.root.join("raw"))

    @property
    def clean_path(self) -> str:
        return self.root.url(self.root.join(CLEAN_FILE))

    def read_series(self, unique_ids: list[str] | None = None) -> pd.DataFrame:
        """The clean store in long form, validated (empty before the first ingest); a store in
        the old wide layout is converted on read."""
        path = self.root.join(CLEAN_FILE)
        if not self.root.exists(path):
            return CleanSeries.validate(empty_long(), lazy=True)
        frame = self.root.read_table(path).to_pandas()
        frame["service_date"] = pd.to_datetime(frame["service_date"]).astype("datetime64[ns]")
        if WIDE_COLUMNS <= set(frame.columns):
            frame = totals_to_long(CleanRidership.validate(frame, lazy=True))
        if unique_ids is not None:
            frame = frame[frame["unique_id"].isin(unique_ids)].reset_index(drop=True)
        return CleanSeries.validate(frame, lazy=True)

    def series_ids(self) -> list[str]:
        """Every series in the clean store, from its ``unique_id`` column alone (a wide store
        holds the totals)."""
        path = self.root.join(CLEAN_FILE)
        if not self.root.exists(path):
            return []
        if self.is_wide():
            return sorted(TOTAL_SERIES)
        with self.root.fs.open(path, "rb") as handle:
            ids = pq.read_table(handle, columns=["unique_id"]).column("unique_id")
        return sorted(ids.unique().to_pylist())

    def read_clean(self) -> pd.DataFrame:
        """The system totals as one row per date (``service_date, day_type, bus, rail``)."""
        return long_to_totals(self.read_series(list(TOTAL_SERIES)))

    def write_clean(self, clean: pd.DataFrame) -> None:
        """Replace the system totals with ``clean`` (wide), keeping every other series."""
        validated = CleanRidership.validate(clean, lazy=True)
        others = self.read_series()
        others = others[~others["unique_id"].isin(TOTAL_SERIES)]
        self.write_series(pd.concat([others, totals_to_long(validated)], ignore_index=True))

    def write_series(self, long: pd.DataFrame) -> None:
        """Write the whole clean store (long form) at once."""
        validated = CleanSeries.validate(sort_long(long), lazy=True)
        table = pa.Table.from_pandas(validated, schema=CLEAN_ARROW_SCHEMA, preserve_index=False)
        self.root.write_table_atomic(self.root.join(CLEAN_FILE), table)

    def is_wide(self) -> bool:
        """True for a store written before the long format."""
        path = self.root.join(CLEAN_FILE)
        if not self.root.exists(path):
            return False
        with self.root.fs.open(path, "rb") as handle:
            return WIDE_COLUMNS <= set(pq.read_schema(handle).names)

    def migrate(self) -> bool:
        """Rewrite a wide store in the long layout (same values); True if it was wide."""
        if not self.is_wide():
            return False
        self.write_series(self.read_series())
        return True

    def read_catalog(self) -> pd.DataFrame:
        path = self.root.join(CATALOG_FILE)
        if not self.root.exists(path):
            return SeriesInfo.validate(
                pd.DataFrame({c: pd.Series(dtype=d) for c, d in _CATALOG_DTYPES.items()}), lazy=True
            )
        frame = self.root.read_table(path).to_pandas()
        for column in ("first_date", "last_date"):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        return SeriesInfo.validate(frame, lazy=True)

    def write_catalog(self, catalog: pd.DataFrame) -> None:
        validated = SeriesInfo.validate(catalog.sort_values("unique_id").reset_index(drop=True), lazy=True)
        self.root.write_table_atomic(self.root.join(CATALOG_FILE), pa.Table.from_pandas(validated, preserve_index=False))

    def write_quarantine(self, rows: pd.DataFrame, source: str, ingested_at: datetime) -> str:
        frame = rows.assign(ingested_at=pd.Timestamp(ingested_at), source_file=source)
        frame = frame[list(QuarantinedRow.to_schema().columns)]
        validated = QuarantinedRow.validate(frame, lazy=True)
        path = self.root.join("quarantine", f"{stamp(ingested_at)}.parquet")
        self.root.write_table_atomic(path, pa.Table.from_pandas(validated, preserve_index=False))
        return self.root.url(path)

    def read_quarantine(self) -> pd.DataFrame:
        return self._read_all("quarantine", QuarantinedRow)

    def write_series_quarantine(self, rows: pd.DataFrame, source: str, ingested_at: datetime) -> str:
        return self._write_record(rows, source, ingested_at, "quarantine", QuarantinedSeriesRow)

    def read_series_quarantine(self) -> pd.DataFrame:
        return self._read_all(f"quarantine/{SERIES_RECORDS}", QuarantinedSeriesRow)

    def write_series_revisions(self, revisions: pd.DataFrame, source: str, ingested_at: datetime) -> str:
        return self._write_record(revisions, source, ingested_at, "revisions", SeriesRevision)

    def read_series_revisions(self) -> pd.DataFrame:
        return self._read_all(f"revisions/{SERIES_RECORDS}", SeriesRevision)

    def _write_record(self, rows: pd.DataFrame, source: str, ingested_at: datetime, folder: str, model: type) -> str:
        frame = rows.assign(ingested_at=pd.Timestamp(ingested_at), source_file=source)
        validated = model.validate(frame[list(model.to_schema().columns)], lazy=True)
        path = self.root.join(folder, SERIES_RECORDS, f"{stamp(ingested_at)}.parquet")
        self.root.write_table_atomic(path, pa.Table.from_pandas(validated, preserve_index=False))
        return self.root.url(path)

    def write_revisions(self, revisions: pd.DataFrame, source: str, ingested_at: datetime) -> str:
        frame = revisions.assign(ingested_at=pd.Timestamp(ingested_at), source_file=source)
        validated = Revision.validate(frame[list(Revision.to_schema().columns)], lazy=True)
        path = self.root.join("revisions", f"{stamp(ingested_at)}.parquet")
        self.root.write_table_atomic(path, pa.Table.from_pandas(validated, preserve_index=False))
        return self.root.url(path)

    def read_revisions(self) -> pd.DataFrame:
        return self._read_all("revisions", Revision)

    def _read_all(self, folder: str, model: type) -> pd.DataFrame:
        names = [n for n in self.root.listdir(self.root.join(folder)) if n.endswith(".parquet")]
        frames = [self.root.read_table(self.root.join(folder, n)).to_pandas() for n in names]
        if not frames:
            return pd.DataFrame(columns=list(model.to_schema().columns))
        return model.validate(pd.concat(frames, ignore_index=True), lazy=True)


_CATALOG_DTYPES = {
    "unique_id": str, "kind": str, "name": str, "first_date": "datetime64[ns]", "last_date": "datetime64[ns]",
    "rows": "int64",
}
