"""The forecast contract and the metrics table as hive-partitioned Parquet datasets.

Layout::

    forecasts/cutoff=YYYY-MM-DD/model=<model>/part-<unique_id>.parquet
    metrics/eval_date=YYYY-MM-DD/part-0.parquet

Partition columns live in the folder names only (the Hive convention Spark, DuckDB and Polars
read); a file holds the other columns. One file per (cutoff, model, series) means a rerun of a
cutoff replaces exactly its own files, atomically, and never duplicates rows.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from schemas.forecasts import QUANTILE_COLUMNS, ForecastSchema
from schemas.metrics import PROBABILISTIC_DEFAULTS, MetricsSchema
from storage.fs import Root

FORECASTS = "forecasts"
METRICS = "metrics"

FORECAST_FILE_SCHEMA = pa.schema(
    [
        ("unique_id", pa.string()),
        ("ds", pa.date32()),
        ("h", pa.int64()),
        ("y_hat", pa.float64()),
        ("y_lo_80", pa.float64()),
        ("y_hi_80", pa.float64()),
        ("y_lo_95", pa.float64()),
        ("y_hi_95", pa.float64()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        # Issue 21's quantiles, last: a reader that picks columns by position still finds the
        # pre-quantile ones where they were.
        *((column, pa.float64()) for column in QUANTILE_COLUMNS),
    ]
)
_PARTITION_SCHEMA = pa.schema([("cutoff", pa.date32()), ("model", pa.string())])
FORECAST_PARTITIONING = ds.partitioning(_PARTITION_SCHEMA, flavor="hive")
FORECAST_DATASET_SCHEMA = pa.unify_schemas([FORECAST_FILE_SCHEMA, _PARTITION_SCHEMA])
"""What :meth:`ForecastStore.read` reads every file as: a file written before the quantiles
existed has none of their columns, and reads back with them null (NaN)."""
METRICS_PARTITIONING = ds.partitioning(pa.schema([("eval_date", pa.date32())]), flavor="hive")


def _day(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _dates_to_datetime(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


class ForecastStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    @property
    def path(self) -> str:
        return self.root.url(self.root.join(FORECASTS))

    def _file(self, cutoff, model: str, unique_id: str) -> str:
        return self.root.join(FORECASTS, f"cutoff={_day(cutoff)}", f"model={model}", f"part-{unique_id}.parquet")

    def write(self, forecasts: pd.DataFrame) -> int:
        """Validate and store; each (cutoff, model, series) replaces its previous file.

        A frame without the quantile columns (a writer of the pre-quantile contract) is stored
        with NaN quantiles, as if its model gave no intervals beyond its bounds."""
        missing = {c: float("nan") for c in QUANTILE_COLUMNS if c not in forecasts.columns}
        validated = ForecastSchema.validate(forecasts.assign(**missing), lazy=True)
        written = 0
        for (cutoff, model, unique_id), rows in validated.groupby(["cutoff", "model", "unique_id"], sort=True):
            body = rows.sort_values("h").drop(columns=["cutoff", "model"])
            table = pa.Table.from_pandas(body, schema=FORECAST_FILE_SCHEMA, preserve_index=False)
            self.root.write_table_atomic(self._file(cutoff, model, unique_id), table)
            written += len(rows)
        return written

    def upgrade_files(self) -> int:
        """Rewrite every forecast file written before a column was added (issue 21's quantiles)
        with that column null; returns how many were rewritten (0 on a second call).

        :meth:`read` does not need it, but a store mixing file schemas trips readers that take
        the first file's schema as the dataset's (Polars' ``read_parquet`` on a glob, DuckDB's
        ``select *`` without ``union_by_name``). Run it while no flow writes to the store: a file
        rewritten here could replace one a run wrote in between."""
        upgraded = 0
        for folder in self.root.listdir(self.root.join(FORECASTS)):
            if not folder.startswith("cutoff="):
                continue
            for model in self.root.listdir(self.root.join(FORECASTS, folder)):
                for name in self.root.listdir(self.root.join(FORECASTS, folder, model)):
                    if name.startswith("part-") and name.endswith(".parquet"):
                        upgraded += self._upgrade_file(self.root.join(FORECASTS, folder, model, name))
        return upgraded

    def _upgrade_file(self, path: str) -> int:
        table = self.root.read_table(path)
        if table.schema.names == FORECAST_FILE_SCHEMA.names:
            return 0
        for column in FORECAST_FILE_SCHEMA:
            if column.name not in table.schema.names:
                table = table.append_column(column, pa.nulls(table.num_rows, column.type))
        self.root.write_table_atomic(path, table.select(FORECAST_FILE_SCHEMA.names).cast(FORECAST_FILE_SCHEMA))
        return 1

    def stored(self, model: str, unique_id: str) -> set[pd.Timestamp]:
        """Cutoffs already stored for one model and series (read from folder names only)."""
        return self.stored_by_series(model).get(unique_id, set())

    def stored_by_series(self, model: str) -> dict[str, set[pd.Timestamp]]:
        """Series → cutoffs already stored for ``model`` (one listing per cutoff folder)."""
        found: dict[str, set[pd.Timestamp]] = {}
        for folder in self.root.listdir(self.root.join(FORECASTS)):
            if not folder.startswith("cutoff="):
                continue
            cutoff = pd.Timestamp(folder.removeprefix("cutoff="))
            for name in self.root.listdir(self.root.join(FORECASTS, folder, f"model={model}")):
                if name.startswith("part-") and name.endswith(".parquet"):
                    found.setdefault(name.removeprefix("part-").removesuffix(".parquet"), set()).add(cutoff)
        return found

    def read(
        self,
        start=None,
        end=None,
        models: Sequence[str] | None = None,
        series: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Stored forecasts with cutoff in [start, end] (inclusive), validated."""
        columns = list(ForecastSchema.to_schema().columns)
        if not self.root.exists(self.root.join(FORECASTS)):
            return _typed_empty(pd.DataFrame({c: [] for c in columns}))
        dataset = ds.dataset(
            self.root.join(FORECASTS), filesystem=self.root.fs, format="parquet",
            partitioning=FORECAST_PARTITIONING, exclude_invalid_files=False,
            ignore_prefixes=[".", "_"], schema=FORECAST_DATASET_SCHEMA,
        )
        condition = None
        for clause in (
            ds.field("cutoff") >= pa.scalar(pd.Timestamp(start).date(), pa.date32()) if start is not None else None,
            ds.field("cutoff") <= pa.scalar(pd.Timestamp(end).date(), pa.date32()) if end is not None else None,
            ds.field("model").isin(list(models)) if models else None,
            ds.field("unique_id").isin(list(series)) if series else None,
        ):
            if clause is not None:
                condition = clause if condition is None else condition & clause
        table = dataset.to_table(filter=condition)
        if table.num_rows == 0:
            return _typed_empty(pd.DataFrame({c: [] for c in columns}))
        frame = table.to_pandas()[columns]
        frame = _dates_to_datetime(frame, ["cutoff", "ds"])
        frame = frame.sort_values(["unique_id", "model", "cutoff", "h"]).reset_index(drop=True)
        return ForecastSchema.validate(frame, lazy=True)


def _typed_empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {
            "unique_id": str, "cutoff": "datetime64[ns]", "ds": "datetime64[ns]", "h": "int64",
            "model": str, "y_hat": "float64", "y_lo_80": "float64", "y_hi_80": "float64",
            "y_lo_95": "float64", "y_hi_95": "float64", "model_version": str, "run_id": str,
            "created_at": "datetime64[us, UTC]", **{c: "float64" for c in QUANTILE_COLUMNS},
        }
    )


class MetricsStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    @property
    def path(self) -> str:
        return self.root.url(self.root.join(METRICS))

    def write(self, metrics: pd.DataFrame) -> None:
        """Replace each evaluation date's partition with ``metrics`` for that date."""
        validated = MetricsSchema.validate(metrics, lazy=True)
        for eval_date, rows in validated.groupby("eval_date", sort=True):
            body = rows.drop(columns=["eval_date"])
            table = pa.Table.from_pandas(body, preserve_index=False)
            path = self.root.join(METRICS, f"eval_date={_day(eval_date)}", "part-0.parquet")
            self.root.write_table_atomic(path, table)

    def read(self, eval_date=None) -> pd.DataFrame:
        if not self.root.exists(self.root.join(METRICS)):
            return pd.DataFrame(columns=list(MetricsSchema.to_schema().columns))
        options = dict(
            filesystem=self.root.fs, format="parquet", partitioning=METRICS_PARTITIONING, ignore_prefixes=[".", "_"]
        )
        dataset = ds.dataset(self.root.join(METRICS), **options)
        # Every file's columns, not the first file's: partitions written before and after a
        # column was added must both read (the older ones with the column filled in below).
        files = [fragment.physical_schema for fragment in dataset.get_fragments()]
        if not files:  # the folder exists but no partition was written yet (a run killed before scoring)
            return pd.DataFrame(columns=list(MetricsSchema.to_schema().columns))
        schema = pa.unify_schemas([*files, dataset.partitioning.schema])
        dataset = ds.dataset(self.root.join(METRICS), schema=schema, **options)
        condition = None
        if eval_date is not None:
            condition = ds.field("eval_date") == pa.scalar(pd.Timestamp(eval_date).date(), pa.date32())
        frame = dataset.to_table(filter=condition).to_pandas()
        frame = _dates_to_datetime(frame, ["eval_date", "window_start", "window_end"])
        for column, value in PROBABILISTIC_DEFAULTS.items():
            if column not in frame.columns:
                frame[column] = np.int64(value) if isinstance(value, int) else np.float64(value)
            elif isinstance(value, int):
                frame[column] = frame[column].fillna(value).astype(np.int64)
        frame = frame[list(MetricsSchema.to_schema().columns)]
        return MetricsSchema.validate(frame, lazy=True)
