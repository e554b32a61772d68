"""Prefect tasks for scoring stored forecasts and publishing the report."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from schemas.metrics import range_window_name
from schemas.errors import InvalidInput, Unavailable
from storage import Store
from storage.stations import read_station_locations
from tasks.core.evaluation.artifacts import artifact_key, leaderboard_artifact_rows
from tasks.core.evaluation.report import render_report
from tasks.core.calibration import is_raw
from tasks.core.evaluation.alerts import DEFAULT_COVERAGE_WINDOW_DAYS, coverage_alerts
from tasks.core.evaluation.scoring import (
    DEFAULT_ALERT_WINDOW, leaderboard, range_window, range_windows_named, score_forecasts, trailing_windows,
)  # fmt: skip

PLOT_WEEKS = 8


@dataclass(frozen=True)
class ReportOutcome:
    folder: str
    alerts: list[str]
    metrics_rows: int
    leaderboard: list[dict] = field(default_factory=list)


def leaderboard_window(target_range: tuple[pd.Timestamp, pd.Timestamp] | None) -> str:
    return DEFAULT_ALERT_WINDOW if target_range is None else range_window_name(*target_range)


def _windows(eval_date: pd.Timestamp, target_range: tuple[pd.Timestamp, pd.Timestamp] | None):
    windows = trailing_windows(eval_date)
    if target_range is not None:
        windows.append(range_window(*target_range))
    return windows


@task(cache_policy=NO_CACHE)
def load_actuals(store: Store) -> pd.DataFrame:
    """Every series' actuals, long (``unique_id, ds, y``): read once for scoring and the report."""
    return store.ridership.read_series().rename(columns={"service_date": "ds"})[["unique_id", "ds", "y"]]


@task(cache_policy=NO_CACHE)
def evaluate(
    store: Store,
    actuals: pd.DataFrame,
    eval_date: pd.Timestamp,
    horizon: int,
    target_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """Score every stored forecast whose target falls in a window ending at ``eval_date`` (and in
    ``target_range``, a backfill's run dates); store the metrics under that evaluation date.

    The range windows other runs scored at the same evaluation date are scored again too: a
    backfill that overlaps another may have scored while the other was still storing forecasts
    in its range, and the partition is replaced whole. So the last scoring of a date leaves
    every window of it computed from everything stored (callers hold the ``scores`` lease)."""
    windows = _windows(eval_date, target_range)
    earlier = store.metrics.read(eval_date=eval_date)["window"].unique()
    windows += [w for w in range_windows_named(earlier) if w.name not in {v.name for v in windows}]
    first_target = min(w.start for w in windows)
    last_target = max(w.end for w in windows)
    forecasts = store.forecasts.read(
        start=first_target - pd.Timedelta(days=horizon), end=last_target - pd.Timedelta(days=1)
    )
    forecasts = forecasts[(forecasts["ds"] >= first_target) & (forecasts["ds"] <= last_target)]
    if forecasts.empty:
        get_run_logger().warning("no stored forecast targets %s..%s: nothing to score yet", first_target.date(), last_target.date())
        return store.metrics.read(eval_date=pd.Timestamp("1900-01-01"))  # empty, typed
    metrics = score_forecasts(forecasts, actuals, eval_date, windows)
    store.metrics.write(metrics)
    return metrics


def _station_locations(source: str) -> pd.DataFrame | None:
    """The stops list, or None (no map) where none is configured or it cannot be read: a map
    is not worth failing the night's report for."""
    if not source:
        return None
    try:
        return read_station_locations(source)
    except (InvalidInput, Unavailable) as error:
        get_run_logger().warning("station map left out: %s", error)
        return None


@task(cache_policy=NO_CACHE)
def publish_report(
    store: Store,
    metrics: pd.DataFrame,
    actuals: pd.DataFrame,
    run_date: pd.Timestamp,
    eval_date: pd.Timestamp,
    horizon: int,
    coverage_threshold: float,
    data_note: str | None = None,
    window: str = DEFAULT_ALERT_WINDOW,
    latest_cutoff: pd.Timestamp | None = None,
    artifact_prefix: str = "ridership",
    station_locations: str = "",
    hierarchies: tuple[tuple[str, str], ...] = (),
    coverage_days: int = DEFAULT_COVERAGE_WINDOW_DAYS,
) -> ReportOutcome:
    """Render the report to ``reports/<run date>/`` and publish it as Prefect artifacts; the
    leaderboard ranks models over ``window`` (a nightly run: the last 28 days; a backfill: its
    range). ``station_locations`` is the 'L' stops list that places stations on the map ("":
    no map). A model whose 80 % band held fewer than ``coverage_threshold`` of the actuals of the
    last ``coverage_days`` days (since the start of a stored level shift inside them, if any)
    alerts: in the log, the report, the returned outcome (the summary) and the
    ``<prefix>-coverage-alerts`` table artifact."""
    logger = get_run_logger()
    # The charts need the last PLOT_WEEKS weeks; the many-series aggregate and the coverage alert
    # every target of their windows.
    plot_start = eval_date - pd.Timedelta(weeks=PLOT_WEEKS) - pd.Timedelta(days=horizon)
    plot_start = min(plot_start, eval_date - pd.Timedelta(days=coverage_days + horizon))
    in_window = metrics.loc[(metrics["window"] == window) & (metrics["eval_date"] == eval_date), "window_start"]
    if not in_window.empty:
        plot_start = min(plot_start, in_window.min() - pd.Timedelta(days=horizon))
    forecasts = store.forecasts.read(start=plot_start, end=eval_date)
    forecasts = forecasts[~forecasts["model"].astype(str).map(is_raw).to_numpy(bool)]  # scored, not drawn twice
    # The level shifts this root's nightly detection stored (none in a backtest's or a fresh root):
    # a series that broke inside the window is judged on the days since the break.
    breaks = store.regimes.read()
    alerts = coverage_alerts(
        forecasts, actuals, eval_date, threshold=coverage_threshold, window_days=coverage_days, breaks=breaks
    )
    for alert in alerts:
        logger.warning(alert.message)
    report = render_report(
        metrics, forecasts, actuals, run_date=run_date, eval_date=eval_date,
        window=window, alerts=alerts, data_note=data_note, plot_weeks=PLOT_WEEKS, latest_cutoff=latest_cutoff,
        station_catalog=store.ridership.read_catalog(), station_locations=_station_locations(station_locations),
        hierarchies=hierarchies, weather_vintage=_vintage_at(store, latest_cutoff),
    )
    folder = store.reports.write(run_date, report.markdown, report.html, report.images)
    board = leaderboard(metrics, window=window, eval_date=eval_date)
    create_table_artifact(
        key=artifact_key(artifact_prefix, "leaderboard"),
        table=leaderboard_artifact_rows(board),
        description=f"Leaderboard at {eval_date.date()}, window {window}",
    )
    if report.aggregate_rows:
        create_table_artifact(
            key=artifact_key(artifact_prefix, "aggregate-leaderboard"), table=report.aggregate_rows,
            description=f"All series but bus, rail and the derived sums at {eval_date.date()}, window {window} (definitions: docs/reports-and-metrics.md)",
        )
    # Published every run, empty on a calm night: the latest artifact under the key is the
    # current state, never an alert left over from an earlier night.
    create_table_artifact(
        key=artifact_key(artifact_prefix, "coverage-alerts"), table=[alert.as_record() for alert in alerts],
        description=f"{len(alerts)} coverage alert(s) at {eval_date.date()}: models whose 80% band held fewer than "
        f"{coverage_threshold:.0%} of the last {coverage_days} days' actuals",
    )
    create_markdown_artifact(
        key=artifact_key(artifact_prefix, "report"), markdown=report.artifact_markdown,
        description=f"Report for run date {run_date.date()}: {folder}",
    )
    logger.info("report written to %s", folder)
    return ReportOutcome(
        folder=folder, alerts=[a.message for a in alerts], metrics_rows=len(metrics),
        leaderboard=leaderboard_artifact_rows(board),
    )


def _vintage_at(store: Store, cutoff: pd.Timestamp | None) -> pd.DataFrame | None:
    """The forecast vintage issued at ``cutoff``, the one a forecast from it may read (None: none)."""
    if cutoff is None:
        return None
    day = pd.Timestamp(cutoff).normalize()
    vintage = store.weather.read_vintages(issued_from=day, issued_until=day)
    return vintage if len(vintage) else None
