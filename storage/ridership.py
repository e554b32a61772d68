"""Raw snapshots, the clean series, quarantine and revisions under the storage root.

Layout::

    raw/<ingested_at>/<file name>          every raw file exactly as received
    raw/<ingested_at>/provenance.json      where it came from (and why, if not the configured source)
    quarantine/<ingested_at>.parquet       rejected rows, their rules and source file
    revisions/<ingested_at>.parquet        clean values changed by a newer snapshot
    clean/ridership.parquet                the validated series, one row per service_date
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa

from schemas.ridership import CleanRidership, QuarantinedRow, Revision
from storage.fs import Root

CLEAN_FILE = "clean/ridership.parquet"
PROVENANCE_FILE = "provenance.json"
CLEAN_ARROW_SCHEMA = pa.schema(
    [
        ("service_date", pa.date32()),
        ("day_type", pa.string()),
        ("bus", pa.int64()),
        ("rail", pa.int64()),
    ]
)


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

    def read_clean(self) -> pd.DataFrame:
        """The clean series, validated; an empty frame before the first ingest."""
        path = self.root.join(CLEAN_FILE)
        if not self.root.exists(path):
            frame = pa.Table.from_pylist([], schema=CLEAN_ARROW_SCHEMA).to_pandas()
        else:
            frame = self.root.read_table(path).to_pandas()
        frame["service_date"] = pd.to_datetime(frame["service_date"]).astype("datetime64[ns]")
        return CleanRidership.validate(frame, lazy=True)

    def write_clean(self, clean: pd.DataFrame) -> None:
        validated = CleanRidership.validate(clean, lazy=True)
        table = pa.Table.from_pandas(validated, schema=CLEAN_ARROW_SCHEMA, preserve_index=False)
        self.root.write_table_atomic(self.root.join(CLEAN_FILE), table)

    def write_quarantine(self, rows: pd.DataFrame, source: str, ingested_at: datetime) -> str:
        frame = rows.assign(ingested_at=pd.Timestamp(ingested_at), source_file=source)
        frame = frame[list(QuarantinedRow.to_schema().columns)]
        validated = QuarantinedRow.validate(frame, lazy=True)
        path = self.root.join("quarantine", f"{stamp(ingested_at)}.parquet")
        self.root.write_table_atomic(path, pa.Table.from_pandas(validated, preserve_index=False))
        return self.root.url(path)

    def read_quarantine(self) -> pd.DataFrame:
        return self._read_all("quarantine", QuarantinedRow)

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
