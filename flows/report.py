"""Report flow: recompute metrics and the report from what is stored."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import flow

from flows.common import score_and_report
from flows.series import load_required_history
from flows.settings import Settings
from storage import Store
from tasks.evaluate import ReportOutcome
from schemas.errors import InvalidInput


@flow(name="report", log_prints=True)
def report(start: date | None = None, end: date | None = None) -> ReportOutcome:
    """Score stored forecasts at ``end`` (default: the last service date with data) over the
    trailing windows, plus the target range ``start``..``end`` when ``start`` is given."""
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    settings = Settings.from_env()
    store = Store.open_writable(settings.storage, settings.lock_policy())
    last_actual = load_required_history(store).index.max()
    eval_date = min(pd.Timestamp(end), last_actual) if end is not None else last_actual
    target_range = (pd.Timestamp(start), eval_date) if start is not None else None
    return score_and_report(
        store, settings, run_date=eval_date + pd.Timedelta(days=1) if end is None else pd.Timestamp(end),
        eval_date=eval_date, target_range=target_range, data_note=None,
    )
