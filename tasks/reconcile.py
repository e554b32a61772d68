"""Prefect task for ``<model>@reconciled``: reconcile a model's stored forecasts of a hierarchy."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.evaluation.scoring import history_actuals
from tasks.core.models.reconcile import ReconcileSpec, reconcile_forecasts


@task(cache_policy=NO_CACHE, task_run_name="reconcile-{model}-{parent}")
def reconcile_model(
    store: Store, history: pd.DataFrame, spec: ReconcileSpec, model: str, parent: str,
    children_at: dict[pd.Timestamp, list[str]], horizon: int, publication_lag: int = 0,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, str]]:
    """Read ``model``'s stored forecasts of the parent and children at the cutoffs of
    ``children_at`` (and the earlier ones mint_shrink's errors may use), reconcile each cutoff."""
    if not children_at:
        return pd.DataFrame(), {}
    nodes = sorted({parent, *(c for children in children_at.values() for c in children)})
    first = min(children_at) - pd.Timedelta(days=publication_lag + spec.lookback_days + horizon)
    stored = store.forecasts.read(start=first, end=max(children_at), models=[model], series=nodes)
    return reconcile_forecasts(spec, stored, history_actuals(history, nodes), parent, children_at, publication_lag)
