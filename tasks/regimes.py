"""Prefect task: detect regime changes (level shifts) of the series as of a cutoff, store them,
alert on new ones."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.evaluation.artifacts import artifact_key
from tasks.core.features.level_shifts import breaks_until, regime_alerts


@task(cache_policy=NO_CACHE)
def detect_regimes(
    store: Store, history: pd.DataFrame, series: Sequence[str], cutoff: pd.Timestamp, artifact_prefix: str = "ridership"
) -> list[str]:
    """Level shifts of ``series`` in the data up to ``cutoff`` → ``regimes/``; the alert lines of
    breaks detected in the last week (logged, and published as a Prefect artifact)."""
    breaks = breaks_until(history, series, cutoff)
    store.regimes.write(breaks, cutoff)
    alerts = regime_alerts(breaks, cutoff)
    logger = get_run_logger()
    for line in alerts:
        logger.warning("regime change: %s", line)
    if alerts:
        create_markdown_artifact(
            key=artifact_key(artifact_prefix, "regime-changes"),
            markdown="\n".join(f"- {line}" for line in alerts),
            description=f"Level shifts detected in the week up to {cutoff.date()}",
        )
    return alerts
