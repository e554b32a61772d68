"""The reconciliation step of the nightly, backfill and backtest runs: after the base models
have stored their forecasts (and before scoring), each model's forecasts of every configured
hierarchy are reconciled and stored as ``<model>@reconciled`` (``tasks/core/models/reconcile.py``).

A hierarchy is reconciled when the run forecasts its parent and every one of its children in the
store (coherence is against the stored children, so a run over a few stations cannot reconcile);
a (model, cutoff) is reconciled when the model forecast the parent and every child active at that
cutoff. Whatever is not reconciled is logged with its reason, never skipped silently.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
from prefect import get_run_logger

from flows.series import model_series
from flows.settings import Settings
from schemas.errors import InvalidInput
from storage import Store
from tasks.core.data.derived import children_of
from tasks.core.models.reconcile import ReconcileSpec, is_reconciled, reconciled_name
from tasks.forecast import store_forecasts
from tasks.reconcile import reconcile_model

CUTOFFS_PER_CHUNK = 91
"""Cutoffs reconciled per read of the stored forecasts (a quarter, as the base models store them):
a long backfill's forecasts of ~146 series never sit in memory all at once."""
SKIPS_LOGGED = 10
"""Skipped cutoffs logged one by one per model and hierarchy; the rest are counted."""


def reconcile_cutoffs(
    store: Store, history: pd.DataFrame, settings: Settings, models: Sequence[str], series: Sequence[str],
    cutoffs: Sequence[pd.Timestamp], active: Mapping[str, Sequence[pd.Timestamp]], overwrite: bool, run_id: str,
    publication_lag: int = 0, many_series_models: Sequence[str] | None = None,
) -> dict[str, int]:
    """Reconcile every model × hierarchy × cutoff not stored yet; reconciled model → cutoffs
    stored. ``active``: each series of the run → the cutoffs it was forecast at (activity rules);
    ``many_series_models``: the run's production set of the parts (a model outside it never
    forecast the parent)."""
    logger = get_run_logger()
    spec = ReconcileSpec(method=settings.reconciliation)  # type: ignore[arg-type]
    stored: dict[str, int] = {}
    check_disjoint(settings.hierarchies, series)
    for parent, pattern in settings.hierarchies:
        if parent not in series:
            continue
        children = children_of(pattern, store.ridership.series_ids())
        outside = [c for c in children if c not in series]
        if outside:
            logger.warning(
                "%s not reconciled: the run forecasts %d of its %d children (%s…); reconciliation needs them all",
                parent, len(children) - len(outside), len(children), ", ".join(outside[:3]),
            )
            continue
        parent_active = set(active[parent])
        child_active = {c: set(active[c]) for c in children}
        for model in (m for m in models if not is_reconciled(m)):
            name = reconciled_name(model)
            if parent not in model_series(model, [parent], many_series_models):
                logger.info("%s: %s does not forecast %s", name, model, parent)
                continue
            done = set() if overwrite else store.forecasts.stored_by_series(name).get(parent, set())
            todo = {c: [s for s in children if c in child_active[s]] for c in cutoffs if c in parent_active and c not in done}
            stored[name], skipped = 0, {}
            days = sorted(todo)
            for first in range(0, len(days), CUTOFFS_PER_CHUNK):
                chunk = {c: todo[c] for c in days[first : first + CUTOFFS_PER_CHUNK]}
                rows, chunk_skipped = reconcile_model(store, history, spec, model, parent, chunk, settings.horizon, publication_lag)
                store_forecasts(store, rows, run_id)
                stored[name] += int(rows["cutoff"].nunique()) if len(rows) else 0
                skipped.update(chunk_skipped)
            for cutoff, reason in list(skipped.items())[:SKIPS_LOGGED]:
                logger.warning("%s at cutoff %s not reconciled: %s", name, cutoff.date(), reason)
            if len(skipped) > SKIPS_LOGGED:
                logger.warning("%s: %d more cutoff(s) not reconciled", name, len(skipped) - SKIPS_LOGGED)
            logger.info("%s (%s): %d cutoff(s) reconciled, %d skipped", name, spec.method, stored[name], len(skipped))
    return stored


def check_disjoint(hierarchies: Sequence[tuple[str, str]], series: Sequence[str]) -> None:
    """Raise ``InvalidInput`` when a series of the run is a child of two hierarchies: each is
    reconciled on its own, so the second would break the first's coherence."""
    seen: dict[str, str] = {}
    for parent, pattern in hierarchies:
        for child in children_of(pattern, series):
            if child in seen:
                raise InvalidInput(f"RIDERSHIP_HIERARCHIES: {child} is a child of both {seen[child]} and {parent}")
            seen[child] = parent

