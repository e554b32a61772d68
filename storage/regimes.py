"""Detected level shifts (regime changes): ``regimes/breaks.parquet``, one row per series and
break as seen at the latest cutoff a run looked at, rewritten whole (atomically) each time."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from storage.fs import Root

REGIMES = "regimes"
DTYPES = {"unique_id": "str", "start": "datetime64[ns]", "detected": "datetime64[ns]", "size": "float64", "as_of": "datetime64[ns]"}
COLUMNS = list(DTYPES)


class RegimeStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    @property
    def path(self) -> str:
        return self.root.join(REGIMES, "breaks.parquet")

    def write(self, breaks: pd.DataFrame, as_of: pd.Timestamp) -> None:
        """Replace the stored breaks of the series in ``breaks`` (others are kept)."""
        frame = breaks.assign(as_of=pd.Timestamp(as_of))[COLUMNS]
        kept = self.read()
        kept = kept[~kept["unique_id"].isin(frame["unique_id"].unique())]
        merged = pd.concat([kept, frame], ignore_index=True) if len(kept) else frame
        merged = merged.sort_values(["unique_id", "start"], ignore_index=True)
        self.root.write_table_atomic(self.path, pa.Table.from_pandas(merged, preserve_index=False))

    def read(self) -> pd.DataFrame:
        if not self.root.exists(self.path):
            return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in DTYPES.items()})
        return self.root.read_table(self.path).to_pandas()
