"""Route and station files → long clean rows: recognising a file by its header, rule checks,
de-duplication, merging by (series, date), and the series catalog.

The portal publishes three daily files; the header decides which one a file is:

* system totals ``service_date, day_type, bus, rail_boardings, total_rides`` → ``bus``, ``rail``
  (read by :mod:`tasks.core.data.cleaning`, unchanged);
* bus routes ``route, date, daytype, rides`` → ``route:<route>``;
* 'L' station entries ``station_id, stationname, date, daytype, rides`` → ``station:<station_id>``.

Rules of a route or station row (each broken rule is recorded; the row is quarantined):
``<id column>:invalid_id`` (a route is 1-8 letters or digits, a station id 1-8 digits),
``date:missing`` / ``date:unparseable_date`` / ``date:after_ingest_date`` / ``date`` before 1990,
``daytype`` not W/A/U, ``rides:missing`` / ``rides:not_a_number`` / negative / fractional /
above 4,000,000, ``row:field_count``. Exact duplicate rows are dropped and counted; rows of one
(series, date) with different values are all quarantined (``date:conflicting_duplicate``): which
one is right is not ours to guess. Zero rides is a valid day (a station closed for works).

Series quirks: a series exists from its first row; one that opens or closes mid-history simply
has no rows outside its life (nothing is forecast for it then: see
:mod:`tasks.core.data.activity`). A route renumbered by CTA (``9`` → ``9A``) is a new series;
a station renamed keeps its id, and the catalog keeps its latest name.

Pure functions: bytes and frames in, frames out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from schemas.ridership import RAW_COLUMNS
from schemas.series import (
    ROUTE_COLUMNS, ROUTE_ID, ROUTE_PREFIX, ROUTES, STATION_COLUMNS, STATION_ID, STATION_PREFIX, STATIONS, TOTAL_SERIES,
    TOTALS, RawSeriesRides, series_kind, sort_long,
)  # fmt: skip
from tasks.core.data.cleaning import RawRead, header_names, parse_service_dates, read_raw_csv, schema_rules

RULE_CONFLICTING_DUPLICATE = "date:conflicting_duplicate"
# The raw file's names for the parsed columns, so that a rule names the column the user sees.
_RAW_NAME = {"service_date": "date", "day_type": "daytype", "y": "rides"}


def source_kind(data: bytes) -> str:
    """``routes`` or ``stations`` when the header has that file's columns, else ``totals``
    (whose reader then names any missing column)."""
    header = set(header_names(data))
    if set(ROUTE_COLUMNS) <= header:
        return ROUTES
    if set(STATION_COLUMNS) <= header:
        return STATIONS
    return TOTALS


def columns_of(kind: str) -> tuple[str, ...]:
    return {TOTALS: RAW_COLUMNS, ROUTES: ROUTE_COLUMNS, STATIONS: STATION_COLUMNS}[kind]


@dataclass(frozen=True)
class SeriesBatch:
    valid: pd.DataFrame  # long: unique_id, service_date, day_type, y
    quarantined: pd.DataFrame  # source_line, series, date, daytype, rides (text), rules
    names: pd.DataFrame  # unique_id, name: the latest name each series had in the file
    rows_read: int
    duplicates_dropped: int


@dataclass(frozen=True)
class SeriesMerge:
    clean: pd.DataFrame  # the whole long store after the merge
    revisions: pd.DataFrame  # unique_id, service_date, column, old_value, new_value
    added: int
    revised: int
    derived_changes: int = 0  # rows of derived parents added or revised (tasks/core/data/derived.py)

    @property
    def changed(self) -> bool:
        return self.added > 0 or self.revised > 0 or self.derived_changes > 0


def read_series_csv(data: bytes, source: str, kind: str) -> RawRead:
    return read_raw_csv(data, source, columns_of(kind))


def validate_series_batch(read: RawRead, kind: str, as_of: pd.Timestamp | None = None) -> SeriesBatch:
    """Check every rule on every row of a route or station file in one pass."""
    cells = read.cells
    id_column = "route" if kind == ROUTES else "station_id"
    rules: dict[int, list[str]] = {p: [r] for p, r in read.shape_rules.items()}

    def add(mask: pd.Series, rule) -> None:
        for position in cells.index[mask]:
            rules.setdefault(position, []).append(rule(position) if callable(rule) else rule)

    ids = cells[id_column]
    id_ok = ids.str.fullmatch(ROUTE_ID if kind == ROUTES else STATION_ID)
    add(~id_ok, lambda p: f"{id_column}:invalid_id({cells.at[p, id_column]!r})")
    prefix = ROUTE_PREFIX if kind == ROUTES else STATION_PREFIX
    parsed = pd.DataFrame(index=cells.index)
    parsed["unique_id"] = (prefix + ids).where(id_ok, None)
    parsed["service_date"] = parse_service_dates(cells["date"])
    add(parsed["service_date"].isna() & (cells["date"] == ""), "date:missing")
    add(parsed["service_date"].isna() & (cells["date"] != ""), lambda p: f"date:unparseable_date({cells.at[p, 'date']!r})")
    if as_of is not None:
        add(parsed["service_date"] > pd.Timestamp(as_of).normalize(), f"date:after_ingest_date({pd.Timestamp(as_of).date()})")
    parsed["day_type"] = cells["daytype"].str.upper()
    parsed["y"] = pd.to_numeric(cells["rides"], errors="coerce").astype("float64")
    add(parsed["y"].isna() & (cells["rides"] == ""), "rides:missing")
    add(parsed["y"].isna() & (cells["rides"] != ""), lambda p: f"rides:not_a_number({cells.at[p, 'rides']!r})")
    for position, found in schema_rules(parsed, rules, RawSeriesRides).items():
        for rule in found:
            column, _, check = rule.partition(":")
            raw = _RAW_NAME.get(column, column)
            said = any(r.startswith(f"{raw}:") for r in rules.get(position, []))
            if column == "unique_id" or (check.startswith("not_nullable") and said):
                continue  # already said: <id column>:invalid_id, or why the value is missing
            rules.setdefault(position, []).append(f"{raw}:{check}")

    good = parsed[~parsed.index.isin(list(rules))]
    exact = good.duplicated(["unique_id", "service_date", "day_type", "y"], keep="first")
    unique_rows = good[~exact]
    key = ["unique_id", "service_date"]
    conflicting = unique_rows.duplicated(key, keep=False)
    conflict_keys = pd.MultiIndex.from_frame(unique_rows.loc[conflicting, key])
    in_conflict = pd.Series(pd.MultiIndex.from_frame(good[key]).isin(conflict_keys), index=good.index)
    add(pd.Series(cells.index.isin(good.index[in_conflict]), index=cells.index), RULE_CONFLICTING_DUPLICATE)
    accepted = unique_rows[~conflicting]

    quarantined = cells.loc[sorted(rules)].rename(columns={id_column: "series"})
    quarantined["rules"] = ["; ".join(rules[p]) for p in quarantined.index]
    valid = sort_long(accepted.astype({"y": "int64"}))
    names = _latest_names(cells.loc[accepted.index], accepted, kind)
    return SeriesBatch(
        valid=valid,
        quarantined=quarantined[["source_line", "series", "date", "daytype", "rides", "rules"]].reset_index(drop=True),
        names=names,
        rows_read=len(cells),
        duplicates_dropped=int((exact & ~in_conflict).sum()),
    )


def _latest_names(cells: pd.DataFrame, accepted: pd.DataFrame, kind: str) -> pd.DataFrame:
    names = accepted[["unique_id", "service_date"]].assign(
        name=cells["stationname"] if kind == STATIONS else accepted["unique_id"].str.removeprefix(ROUTE_PREFIX)
    )
    latest = names.sort_values("service_date", kind="stable").drop_duplicates("unique_id", keep="last")
    return latest[["unique_id", "name"]].sort_values("unique_id").reset_index(drop=True)


def merge_series(existing: pd.DataFrame, incoming: pd.DataFrame) -> SeriesMerge:
    """Upsert ``incoming`` rows by (series, date) into the whole long store: new rows are
    added, changed values revised (and recorded); rows missing from ``incoming`` are kept, so
    a file never deletes history (of its own series or of any other)."""
    key = ["unique_id", "service_date"]
    joined = incoming.merge(existing, on=key, how="left", suffixes=("", "_old"), indicator=True)
    common = joined[joined["_merge"] == "both"]
    revisions = []
    for column in ("day_type", "y"):
        changed = common[common[column] != common[f"{column}_old"]]
        old = changed[f"{column}_old"]
        old = old.astype("int64") if column == "y" else old  # float after the left join
        revisions.append(
            pd.DataFrame(
                {
                    "unique_id": changed["unique_id"], "service_date": changed["service_date"], "column": column,
                    "old_value": old.astype(str), "new_value": changed[column].astype(str),
                }
            )
        )
    revision_frame = pd.concat(revisions, ignore_index=True).sort_values(key + ["column"]).reset_index(drop=True)
    incoming_keys = pd.MultiIndex.from_frame(incoming[key])
    kept = existing[~pd.MultiIndex.from_frame(existing[key]).isin(incoming_keys)] if len(existing) else existing
    merged = sort_long(pd.concat([kept, incoming], ignore_index=True)) if len(incoming) else sort_long(existing)
    return SeriesMerge(
        clean=merged,
        revisions=revision_frame,
        added=int((joined["_merge"] == "left_only").sum()),
        revised=int(revision_frame[key].drop_duplicates().shape[0]),
    )


def series_catalog(clean: pd.DataFrame, names: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """One catalog row per route and station series of ``clean``: kind, name (this file's,
    else the catalog's, else the id), first and last date, number of rows."""
    others = clean[~clean["unique_id"].isin(TOTAL_SERIES)]
    if others.empty:
        return previous.iloc[0:0]
    span = others.groupby("unique_id")["service_date"].agg(first_date="min", last_date="max", rows="size").reset_index()
    known = pd.concat([names, previous[["unique_id", "name"]]]).drop_duplicates("unique_id", keep="first")
    catalog = span.merge(known, on="unique_id", how="left")
    catalog["name"] = catalog["name"].fillna(catalog["unique_id"].str.partition(":")[2])
    catalog["kind"] = catalog["unique_id"].map(series_kind)
    return catalog[["unique_id", "kind", "name", "first_date", "last_date", "rows"]]
