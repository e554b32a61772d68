"""Coherence of a hierarchy's forecasts: how far a parent's forecast is from the sum of its
children's, per model, before (the base model) and after reconciliation (``<model>@reconciled``).

Incoherence at a horizon is ``|ŷ_parent − Σ ŷ_child| / |ŷ_parent|`` over the children the model
forecast at that cutoff; the table keeps the largest over horizons. Pure: frames and page blocks out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from tasks.core.data.derived import Hierarchy, children_of
from tasks.core.evaluation.page import Block, Heading, Paragraph, Table, formatter
from tasks.core.calibration import is_raw
from tasks.core.models.reconcile import is_reconciled, reconciled_name

COLUMNS = ["parent", "model", "children", "before", "after"]


def largest_incoherence(rows: pd.DataFrame, parent: str, pattern: str) -> tuple[float, int]:
    """The largest relative gap over horizons of one model's rows at one cutoff, and how many
    children it summed (NaN, 0 without the parent or any child)."""
    children = children_of(pattern, rows["unique_id"].unique())
    parent_rows = rows[rows["unique_id"] == parent].set_index("h")["y_hat"]
    if parent_rows.empty or not children:
        return float("nan"), 0
    summed = rows[rows["unique_id"].isin(children)].groupby("h")["y_hat"].sum()
    gap = (parent_rows - summed.reindex(parent_rows.index)).abs() / parent_rows.abs()
    return float(gap.max()), len(children)


def coherence_table(forecasts: pd.DataFrame, hierarchies: Sequence[Hierarchy], cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per hierarchy and base model with a forecast of the parent at ``cutoff``:
    children summed, largest relative incoherence before and after (NaN: no reconciled rows)."""
    at = forecasts[forecasts["cutoff"] == pd.Timestamp(cutoff)]
    found = []
    for parent, pattern in hierarchies:
        models = sorted(m for m in at.loc[at["unique_id"] == parent, "model"].astype(str).unique() if not is_reconciled(m) and not is_raw(m))
        for model in models:
            before, children = largest_incoherence(at[at["model"] == model], parent, pattern)
            after, _ = largest_incoherence(at[at["model"] == reconciled_name(model)], parent, pattern)
            found.append((parent, model, children, before, after))
    return pd.DataFrame(found, columns=COLUMNS)


_share = formatter("{:.2e}")


def coherence_blocks(table: pd.DataFrame, cutoff: pd.Timestamp) -> list[Block]:
    """The report's section: nothing when no hierarchy parent was forecast at the cutoff."""
    if table.empty:
        return []
    rows = [
        [row.parent, row.model, f"{row.children:d}", _share(row.before), _share(row.after)]
        for row in table.itertuples(index=False)
    ]
    return [
        Heading(2, "Hierarchy coherence"),
        Paragraph(
            f"Forecasts from cutoff {pd.Timestamp(cutoff).date()}: the largest |parent − Σ children| / parent over "
            "the horizons, for each model as forecast and after reconciliation (<model>@reconciled; – where none)."
        ),
        Table(["Parent", "Model", "Children", "Before", "After"], rows, [False, False, True, True, True]),
    ]


def latest_cutoff_of(forecasts: pd.DataFrame, parents: Sequence[str]) -> pd.Timestamp | None:
    """The latest cutoff with a forecast of any of ``parents`` (None: none)."""
    cutoffs = forecasts.loc[forecasts["unique_id"].isin(list(parents)), "cutoff"]
    return None if cutoffs.empty else pd.Timestamp(np.max(cutoffs.to_numpy()))


def coherence_section(
    forecasts: pd.DataFrame, hierarchies: Sequence[Hierarchy], cutoff: pd.Timestamp | str | None = None
) -> list[Block]:
    """The report's coherence section at ``cutoff`` (default: the latest cutoff that forecast a
    parent); nothing without hierarchies or a forecast of a parent."""
    if not hierarchies:
        return []
    at = pd.Timestamp(cutoff).normalize() if cutoff is not None else latest_cutoff_of(forecasts, [p for p, _ in hierarchies])
    return [] if at is None else coherence_blocks(coherence_table(forecasts, hierarchies, at), at)
