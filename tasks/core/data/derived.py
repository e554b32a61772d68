"""Hierarchies and the parent series derived from them at ingest.

A hierarchy is ``(parent, children pattern)``: the parent is, by definition, the daily sum of the
store's series that match the pattern (``rail_entries`` = ``station:*``, every 'L' station's
entries). The parent is stored as a series of its own, recomputed from the merged store every
time a route or station file is merged, so a revised station value revises the parent in the
same write (and the parent's change is recorded as a revision like any other).

What a parent's value means on a date: **the sum of the children the store holds for that
date**. A station with no row that day (closed, not yet open, its row quarantined) adds nothing;
a date on which no child has a row has no parent row. So the parent is coherent with the stored
children on every date by construction, which is what the reconciled forecasts are held to
(:mod:`tasks.core.models.reconcile`); it is not an estimate of what the missing stations rode.
The parent's day type is the one most of that date's children carry (ties: the first in
W, A, U order), as the portal's rows of one date normally agree.

Pure: frames in, frames out.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from typing import Iterable, Sequence

import pandas as pd

from schemas.ridership import DAY_TYPES
from schemas.series import DERIVED_SERIES, LONG_COLUMNS, sort_long
from tasks.core.data.series_cleaning import SeriesMerge, merge_series

Hierarchy = tuple[str, str]
"""``(parent id, children pattern)``, as :mod:`flows.settings` parses ``RIDERSHIP_HIERARCHIES``."""


def children_of(pattern: str, ids: Iterable[str]) -> list[str]:
    """The ids matching ``pattern``, derived series excluded (a parent is never its own child)."""
    return sorted(i for i in ids if i not in DERIVED_SERIES and fnmatch.fnmatchcase(i, pattern))


def parents_of(hierarchies: Sequence[Hierarchy]) -> list[str]:
    return [parent for parent, _ in hierarchies]


def derive_parents(clean: pd.DataFrame, hierarchies: Sequence[Hierarchy]) -> pd.DataFrame:
    """Each hierarchy's parent rows (long: ``unique_id, service_date, day_type, y``) from the
    children rows in ``clean``."""
    parts = []
    for parent, pattern in hierarchies:
        children = clean[clean["unique_id"].isin(children_of(pattern, clean["unique_id"].unique()))]
        if children.empty:
            continue
        totals = children.groupby("service_date")["y"].sum()
        day_types = _majority_day_type(children).reindex(totals.index).to_numpy()
        parts.append(
            pd.DataFrame(
                {"unique_id": parent, "service_date": totals.index, "day_type": day_types, "y": totals.to_numpy(dtype="int64")}
            )
        )
    if not parts:
        return clean.iloc[0:0][LONG_COLUMNS]
    return sort_long(pd.concat(parts, ignore_index=True))


def _majority_day_type(children: pd.DataFrame) -> pd.Series:
    counts = children.groupby(["service_date", "day_type"]).size().unstack(fill_value=0)
    ordered = counts.reindex(columns=[t for t in DAY_TYPES if t in counts.columns])
    return ordered.idxmax(axis=1)  # idxmax keeps the first of equal counts: W, then A, then U


def with_derived(merged: SeriesMerge, hierarchies: Sequence[Hierarchy]) -> SeriesMerge:
    """``merged`` with every parent recomputed from its merged children and upserted: the
    parent's new dates are added, its changed values revised and recorded beside the file's own
    revisions. ``added`` and ``revised`` stay the file's counts; ``derived_changes`` counts the
    parents' (so an unchanged file over a store without its parents yet still writes them)."""
    parents = derive_parents(merged.clean, hierarchies)
    if parents.empty:
        return merged
    update = merge_series(merged.clean, parents)
    revisions = pd.concat([merged.revisions, update.revisions], ignore_index=True) if len(update.revisions) else merged.revisions
    return replace(merged, clean=update.clean, revisions=revisions, derived_changes=update.added + update.revised)


def derived_names(hierarchies: Sequence[Hierarchy], clean: pd.DataFrame) -> pd.DataFrame:
    """Catalog names of the parents: what they sum, and over how many series."""
    ids = clean["unique_id"].unique()
    rows = [(parent, f"sum of {pattern} ({len(children_of(pattern, ids))} series)") for parent, pattern in hierarchies]
    return pd.DataFrame(rows, columns=["unique_id", "name"])
