"""Which series a run forecasts: ids and patterns resolved against the store, the long store as
a model history, and which (series, cutoff) pairs have data enough to forecast.

Pure: frames in, frames and lists out.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from schemas.errors import InvalidInput
from schemas.series import DERIVED_SERIES, TOTAL_SERIES
from tasks.core.features.calendar import day_types

PATTERN_CHARACTERS = re.compile(r"^[A-Za-z0-9:*?\[\]_-]+$")
RECENT_DAYS = 7
"""A series with no value in the last ``RECENT_DAYS`` days up to a cutoff (closed, suspended)
is not forecast at that cutoff: a forecast would repeat a level nobody rides any more."""
MIN_OBSERVATIONS = 28
"""Nor one with fewer values than this up to the cutoff (it just opened)."""


def check_series_syntax(requested: Sequence[str]) -> None:
    """Raise ``InvalidInput`` for a series id or pattern no store could hold (before any work)."""
    bad = [s for s in requested if not PATTERN_CHARACTERS.match(s)]
    if bad:
        raise InvalidInput(f"unknown series {', '.join(bad)}: use ids such as bus, rail, route:9, station:40380, or patterns such as route:*")


def resolve_series(requested: Sequence[str], available: Iterable[str], skip_unmatched: bool = False) -> list[str]:
    """The series of ``available`` that ``requested`` names (ids or shell patterns such as
    ``route:*``), in store order; every requested item must match something, unless
    ``skip_unmatched`` (a default list: ``station:*`` where no station file was ingested), when
    at least one must."""
    check_series_syntax(requested)
    known = sorted(available, key=_store_order)
    chosen: list[str] = []
    unknown = []
    for item in requested:
        matches = [s for s in known if fnmatch.fnmatchcase(s, item)]
        if not matches:
            unknown.append(item)
        chosen.extend(m for m in matches if m not in chosen)
    if unknown and not (skip_unmatched and chosen):
        raise InvalidInput(f"unknown series {', '.join(unknown)}; the store has {describe_series(known)}")
    return sorted(chosen, key=_store_order)


def describe_series(ids: Sequence[str]) -> str:
    """``bus, rail, rail_entries, route:* (130), station:* (145)``: what a store holds, in one
    short phrase (the totals and the derived series by name, routes and stations counted)."""
    totals = [s for s in ids if s in TOTAL_SERIES or s in DERIVED_SERIES]
    groups = []
    for prefix in ("route:", "station:"):
        count = sum(1 for s in ids if s.startswith(prefix))
        if count:
            groups.append(f"{prefix}* ({count})")
    return ", ".join([*totals, *groups]) or "no series"


def _store_order(unique_id: str) -> tuple[int, str]:
    return (0 if unique_id in TOTAL_SERIES else 1 if unique_id in DERIVED_SERIES else 2, unique_id)


def history_from_series(long: pd.DataFrame, series: Sequence[str] | None = None) -> pd.DataFrame:
    """The long store as a model history: a daily ``ds`` index from the first to the last date,
    one float column per series (NaN where it has no row) and ``day_type`` (the totals' where
    they have the date, else the service calendar's)."""
    if series is not None:
        long = long[long["unique_id"].isin(series)]
    if long.empty:
        return pd.DataFrame({"day_type": pd.Series(dtype=str)}, index=pd.DatetimeIndex([], name="ds"))
    days = pd.date_range(long["service_date"].min(), long["service_date"].max(), freq="D", name="ds")
    wide = long.pivot(index="service_date", columns="unique_id", values="y").reindex(days).astype("float64")
    wide.columns.name = None
    recorded = long[long["unique_id"].isin(TOTAL_SERIES)].drop_duplicates("service_date").set_index("service_date")["day_type"]
    calendar = pd.Series(day_types(days), index=days)
    wide["day_type"] = recorded.reindex(days).fillna(calendar).astype(str)
    ordered = sorted((c for c in wide.columns if c != "day_type"), key=_store_order)
    return wide[[*ordered, "day_type"]]


def active_at(history: pd.DataFrame, unique_id: str, cutoffs: Sequence[pd.Timestamp]) -> list[pd.Timestamp]:
    """The cutoffs at which ``unique_id`` has data enough to forecast (see the constants)."""
    values = history[unique_id].to_numpy()
    seen = np.cumsum(~np.isnan(values))
    index = history.index
    active = []
    for cutoff in cutoffs:
        position = index.searchsorted(cutoff, side="right") - 1
        if position < 0:
            continue
        recent_start = max(position - RECENT_DAYS + 1, 0)
        recent = seen[position] - (seen[recent_start - 1] if recent_start > 0 else 0)
        if recent > 0 and seen[position] >= MIN_OBSERVATIONS:
            active.append(cutoff)
    return active


def group_by_activity(
    series: Sequence[str], cutoffs: Sequence[pd.Timestamp], active: dict[str, Sequence[pd.Timestamp]]
) -> list[tuple[list[str], list[pd.Timestamp]]]:
    """(series, cutoffs) work units covering exactly the active pairs of ``series`` × ``cutoffs``:
    series active at the same cutoffs share a unit (usually one unit for all)."""
    groups: dict[tuple[pd.Timestamp, ...], list[str]] = {}
    wanted = set(cutoffs)
    for unique_id in series:
        days = tuple(sorted(wanted & set(active.get(unique_id, ()))))
        if days:
            groups.setdefault(days, []).append(unique_id)
    return [(members, list(days)) for days, members in groups.items()]
