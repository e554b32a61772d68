"""Raw ridership → clean series: reading, rule checks, de-duplication, and merging by date.

Pure functions: bytes and frames in, frames out. The caller (a Prefect task) fetches the bytes
and hands the results to storage.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.errors import InvalidInput
from schemas.ridership import RAW_COLUMNS, RAW_COUNT_COLUMNS, CleanRidership, RawRidership
from tasks.core.features.calendar import day_types

logger = logging.getLogger(__name__)

CLEAN_COLUMNS = ("service_date", "day_type", "bus", "rail")
RULE_CONFLICTING_DUPLICATE = "service_date:conflicting_duplicate"


class RawFileError(InvalidInput):
    """The whole file is rejected: unreadable, empty, or without the expected columns."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class RawRead:
    """The raw file as text cells (``source_line`` is the 1-based line in the file)."""

    cells: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    shape_rules: dict[int, str] = field(default_factory=dict)  # row position → rule


@dataclass(frozen=True)
class ValidatedBatch:
    valid: pd.DataFrame  # clean columns, one row per date
    quarantined: pd.DataFrame  # the raw text cells + source_line + rules
    rows_read: int
    duplicates_dropped: int
    calendar_mismatches: pd.DataFrame  # service_date, day_type (file), calendar_day_type


@dataclass(frozen=True)
class MergeResult:
    clean: pd.DataFrame
    revisions: pd.DataFrame  # service_date, column, old_value, new_value
    added: int
    revised: int

    @property
    def changed(self) -> bool:
        return self.added > 0 or self.revised > 0


def read_raw_csv(data: bytes, source: str, columns: tuple[str, ...] = RAW_COLUMNS) -> RawRead:
    """Read the portal CSV robustly: UTF-8 with or without BOM, CRLF, any column order.

    The header decides the columns: a header that repeats a column name is rejected (which copy
    would be meant?), and a data row with more or fewer fields than the header is quarantined
    with rule ``row:field_count`` rather than shifted into the wrong columns.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RawFileError(source, f"not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise RawFileError(source, "empty file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
        records = [(reader.line_num, row) for row in reader if row and any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise RawFileError(source, f"unreadable CSV at line {reader.line_num}: {error}") from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise RawFileError(source, f"column(s) named twice in the header: {', '.join(repeated)}")
    missing = [c for c in columns if c not in header]
    if missing:
        found = ", ".join(header) or "none"
        raise RawFileError(source, f"missing columns {', '.join(missing)} (found: {found})")
    warnings: list[str] = []
    extra = [c for c in header if c not in columns]
    if extra:
        warnings.append(f"{source}: ignoring extra columns {', '.join(extra)}")
    if not records:
        raise RawFileError(source, "no data rows")
    positions = [header.index(c) for c in columns]
    width = len(header)
    cells = pd.DataFrame(
        [[row[p].strip() if p < len(row) else "" for p in positions] for _, row in records], columns=list(columns)
    )
    cells.insert(0, "source_line", [line for line, _ in records])
    field_counts = np.array([len(row) for _, row in records])
    shape_rules = {
        position: f"row:field_count({count}, expected {width})"
        for position, count in enumerate(field_counts) if count != width
    }
    return RawRead(cells=cells, warnings=warnings, shape_rules=shape_rules)


def header_names(data: bytes) -> list[str]:
    """The lower-cased column names of the file's first line (what decides its kind; the full
    read reports any encoding problem)."""
    first = data[: 64 * 1024].decode("utf-8-sig", errors="replace").splitlines()[:1]
    return [name.strip().lower() for name in next(csv.reader(first), [])] if first else []


def parse_service_dates(text: pd.Series) -> pd.Series:
    """MM/DD/YYYY (the portal's format) or ISO 8601; anything else becomes NaT."""
    us_style = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    iso_style = pd.to_datetime(text.where(us_style.isna()), format="ISO8601", errors="coerce")
    parsed = us_style.fillna(iso_style)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _parse_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    parse_rules: dict[int, list[str]] = {}
    parsed = pd.DataFrame(index=cells.index)
    parsed["service_date"] = parse_service_dates(cells["service_date"])
    for position in parsed.index[parsed["service_date"].isna()]:
        value = cells.at[position, "service_date"]
        rule = "service_date:missing" if value == "" else f"service_date:unparseable_date({value!r})"
        parse_rules.setdefault(position, []).append(rule)
    parsed["day_type"] = cells["day_type"].str.upper()
    for column in RAW_COUNT_COLUMNS:
        numbers = pd.to_numeric(cells[column], errors="coerce").astype("float64")
        parsed[column] = numbers
        for position in parsed.index[numbers.isna()]:
            value = cells.at[position, column]
            rule = f"{column}:missing" if value == "" else f"{column}:not_a_number({value!r})"
            parse_rules.setdefault(position, []).append(rule)
    return parsed, parse_rules


def schema_rules(
    parsed: pd.DataFrame, already_explained: dict[int, list[str]], schema: type[pa.DataFrameModel] = RawRidership
) -> dict[int, list[str]]:
    """The rules of ``schema`` each row breaks, as ``column:check(value)`` strings (a column
    whose value a parse rule already explained is not reported again as missing)."""
    try:
        schema.validate(parsed, lazy=True)
        return {}
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    rules: dict[int, list[str]] = {}
    for failure in failures.itertuples(index=False):
        if pd.isna(failure.index):
            raise ValueError(f"raw schema failed on the whole table: {failure.check}")
        position = int(failure.index)
        column = failure.column if isinstance(failure.column, str) else "row"
        if failure.schema_context == "DataFrameSchema":
            column = "row"
        explained = any(r.startswith(f"{column}:") for r in already_explained.get(position, []))
        if failure.check == "not_nullable" and explained:
            continue
        if failure.schema_context == "DataFrameSchema":
            rule = str(failure.check)
        else:
            rule = f"{column}:{failure.check}({failure.failure_case!r})"
        if rule not in rules.setdefault(position, []):
            rules[position].append(rule)
    return rules


def validate_batch(read: RawRead, as_of: pd.Timestamp | None = None) -> ValidatedBatch:
    """Check every rule on every row in one pass; bad rows go to quarantine with their rules.

    ``as_of`` is the service date the file is read on (the ingest's day in Chicago): a row dated
    after it reports ridership that cannot have happened yet, and would become the next night's
    cutoff, so it is quarantined (``service_date:after_ingest_date``).
    """
    cells = read.cells
    parsed, rules = _parse_cells(cells)
    for position, rule in read.shape_rules.items():
        rules.setdefault(position, []).insert(0, rule)
    if as_of is not None:
        for position in parsed.index[parsed["service_date"] > pd.Timestamp(as_of).normalize()]:
            rules.setdefault(position, []).append(f"service_date:after_ingest_date({pd.Timestamp(as_of).date()})")
    for position, found in schema_rules(parsed, rules).items():
        rules.setdefault(position, []).extend(found)
    bad = parsed.index.isin(list(rules))
    good = parsed[~bad]
    good_key = good[["service_date", "day_type", "bus", "rail_boardings", "total_rides"]]
    exact_duplicate = good_key.duplicated(keep="first")
    unique_rows = good[~exact_duplicate]
    conflicting = unique_rows["service_date"].duplicated(keep=False)
    for position in unique_rows.index[conflicting]:
        rules.setdefault(position, []).append(RULE_CONFLICTING_DUPLICATE)
    conflicting_dates = set(unique_rows.loc[conflicting, "service_date"])
    for position in good.index[exact_duplicate & good["service_date"].isin(conflicting_dates)]:
        rules.setdefault(position, []).append(RULE_CONFLICTING_DUPLICATE)
    accepted = unique_rows[~conflicting]

    quarantined = cells.loc[sorted(rules)].copy()
    quarantined["rules"] = ["; ".join(rules[p]) for p in quarantined.index]
    valid = _to_clean(accepted)
    calendar = day_types(pd.DatetimeIndex(valid["service_date"]))
    mismatch = valid["day_type"].to_numpy() != calendar
    mismatches = valid.loc[mismatch, ["service_date", "day_type"]].assign(calendar_day_type=calendar[mismatch])
    duplicates_dropped = int((exact_duplicate & ~good["service_date"].isin(conflicting_dates)).sum())
    return ValidatedBatch(
        valid=valid,
        quarantined=quarantined.reset_index(drop=True),
        rows_read=len(cells),
        duplicates_dropped=duplicates_dropped,
        calendar_mismatches=mismatches.reset_index(drop=True),
    )


def _to_clean(rows: pd.DataFrame) -> pd.DataFrame:
    clean = pd.DataFrame(
        {
            "service_date": rows["service_date"].astype("datetime64[ns]"),
            "day_type": rows["day_type"].astype(str),
            "bus": rows["bus"].astype("int64"),
            "rail": rows["rail_boardings"].astype("int64"),
        }
    )
    return clean.sort_values("service_date").reset_index(drop=True)


def empty_clean() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_date": pd.Series(dtype="datetime64[ns]"),
            "day_type": pd.Series(dtype=str),
            "bus": pd.Series(dtype="int64"),
            "rail": pd.Series(dtype="int64"),
        }
    )


def merge_into_clean(existing: pd.DataFrame, incoming: pd.DataFrame) -> MergeResult:
    """Upsert by date: new dates are added, changed values are revised (and recorded), and dates
    missing from ``incoming`` are kept: a snapshot never deletes history."""
    old = existing.set_index("service_date")
    new = incoming.set_index("service_date")
    common = new.index.intersection(old.index)
    value_columns = ["day_type", "bus", "rail"]
    revisions = []
    for column in value_columns:
        before, after = old.loc[common, column], new.loc[common, column]
        changed = before != after
        revisions.append(
            pd.DataFrame(
                {
                    "service_date": common[changed.to_numpy()],
                    "column": column,
                    "old_value": before[changed].astype(str).to_numpy(),
                    "new_value": after[changed].astype(str).to_numpy(),
                }
            )
        )
    revision_frame = pd.concat(revisions, ignore_index=True).sort_values(["service_date", "column"])
    added_dates = new.index.difference(old.index)
    merged = pd.concat([old.drop(index=common), new]).sort_index()
    clean = merged.reset_index()[list(CLEAN_COLUMNS)]
    clean = CleanRidership.validate(clean, lazy=True)
    return MergeResult(
        clean=clean.reset_index(drop=True),
        revisions=revision_frame.reset_index(drop=True),
        added=len(added_dates),
        revised=int(revision_frame["service_date"].nunique()),
    )
