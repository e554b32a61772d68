"""Scoring forecasts against actuals: the metrics table and the leaderboard.

Pure functions on frames: no Prefect, no storage, no clock. Conventions (also in
:mod:`schemas.metrics`):

* A forecast belongs to a window when its target date ``ds`` lies in the window, both ends
  inclusive. ``last_28`` at eval date E holds the targets E-27 .. E.
* A forecast whose target has no actual (not yet published, or a gap in the series) is *pending*:
  counted in ``pending``, never scored as an error.
* MAPE leaves out targets whose actual is 0 (the percentage is undefined there) and counts them
  in ``mape_excluded_zero``; MAE and bias still include them.
* Interval coverage is the share of scored targets inside ``[y_lo, y_hi]`` among forecasts that
  carry that interval; NaN when none does. Pinball loss, WIS, widths and WIS skill against
  ``naive``: :mod:`tasks.core.evaluation.probabilistic`.
* A metrics row exists when the model has a forecast targeting a date in the window (scored or
  pending). A window with no forecast at all gives no rows; all-pending gives ``count = 0`` and
  NaN metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from schemas.metrics import (
    ALL_HORIZONS,
    TRAILING_WINDOW_DAYS,
    MetricsSchema,
    range_window_name,
    trailing_window_name,
)
from tasks.core.evaluation.probabilistic import probabilistic_metrics, probabilistic_terms
from tasks.core.calibration import is_raw

DEFAULT_SERIES = ("bus", "rail")
REFERENCE_MODEL = "naive"
DEFAULT_ALERT_WINDOW = trailing_window_name(28)
INTERVAL_LEVELS = (80, 95)
_DATE_DTYPE = "datetime64[ns]"
_GROUP = ["unique_id", "model"]
_POOLED_SCORES = ["coverage_80", "coverage_95", "wis", "wis_skill", "coverage_50", "coverage_90", "width_80", "width_95"]


@dataclass(frozen=True)
class Window:
    """An inclusive range of target dates, named as in the metrics ``window`` column."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp


def trailing_windows(eval_date: pd.Timestamp | str, days: Sequence[int] = TRAILING_WINDOW_DAYS) -> list[Window]:
    """The windows of the last ``d`` target dates ending at ``eval_date``, for each ``d``."""
    end = _midnight(eval_date)
    return [Window(trailing_window_name(d), end - pd.Timedelta(days=d - 1), end) for d in days]


def range_windows_named(names: Sequence[str]) -> list[Window]:
    """The range windows among metrics ``window`` names (``range:START..END``), rebuilt."""
    windows = []
    for name in names:
        if name.startswith("range:"):
            start, end = name.removeprefix("range:").split("..")
            windows.append(range_window(start, end))
    return windows


def range_window(start: pd.Timestamp | str, end: pd.Timestamp | str) -> Window:
    """An explicit window (a backfill's range of target dates), both ends inclusive."""
    first, last = _midnight(start), _midnight(end)
    if first > last:
        raise ValueError(f"window start {first.date()} is after its end {last.date()}")
    return Window(range_window_name(first, last), first, last)


TargetScope = Literal["run_dates", "all"]
TARGET_SCOPES: dict[str, str] = {
    "run_dates": "the targets on the run dates (cutoff + 1 of each cutoff), from every stored forecast of them",
    "all": "every target of every cutoff (cutoff + 1 .. cutoff + horizon)",
}
"""What each scope of :func:`scored_targets` scores, in words for reports and printouts."""


def scored_targets(
    first_cutoff: pd.Timestamp | str,
    last_cutoff: pd.Timestamp | str,
    horizon: int,
    last_actual: pd.Timestamp | str,
    scope: TargetScope,
) -> Window:
    """The targets a walk-forward over the cutoffs ``first_cutoff`` .. ``last_cutoff`` is scored
    on: the one definition the backfill and backtest leaderboards and ``bench/score_forecasts.py``
    share (a :func:`range_window`, both ends inclusive).

    * ``"run_dates"`` (a backfill: its cutoffs are its run dates - 1): the run dates themselves,
      ``first_cutoff + 1 .. last_cutoff + 1``, the days the nightly runs of that range would have
      scored. The last cutoffs' forecasts of later days are stored but not scored; forecasts of
      earlier cutoffs that target the range are (every stored forecast of a target in the window).
    * ``"all"`` (a backtest): every target of every cutoff, ``first_cutoff + 1 .. last_cutoff +
      horizon``.

    Either way the window ends at ``last_actual`` at most (a later target has nothing to be scored
    against yet); a window that would end before it starts raises ``ValueError``.
    """
    if scope not in TARGET_SCOPES:
        raise ValueError(f"unknown target scope {scope!r}; known: {', '.join(TARGET_SCOPES)}")
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    day = pd.Timedelta(days=1)
    last_reach = day if scope == "run_dates" else horizon * day
    first = _midnight(first_cutoff) + day
    last = min(_midnight(last_cutoff) + last_reach, _midnight(last_actual))
    return range_window(first, last)


def history_actuals(history: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """Long actuals of ``series`` (those present) from a history frame: one column per series,
    indexed by day (``ds``), as the flows hand it to the tasks."""
    return actuals_long(history.reset_index().rename(columns={"ds": "service_date"}), series)


def actuals_long(actuals: pd.DataFrame, series: Sequence[str] = DEFAULT_SERIES) -> pd.DataFrame:
    """Actuals as long ``unique_id, ds, y`` rows (``y`` float64; missing values dropped).

    Accepts the clean series frame (``service_date`` plus one column per series, of which those
    in ``series`` are taken) or a frame already in long form.
    """
    if "service_date" in actuals.columns:
        present = [s for s in series if s in actuals.columns]
        long = actuals.melt(id_vars="service_date", value_vars=present, var_name="unique_id", value_name="y")
        return _normalise_actuals(long.rename(columns={"service_date": "ds"}))
    if {"unique_id", "ds", "y"} <= set(actuals.columns):
        return _normalise_actuals(actuals)
    raise ValueError("actuals need service_date + series columns, or unique_id, ds, y")


def join_actuals(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Forecasts with their actual ``y`` beside them (NaN while pending).

    ``actuals`` is either the clean series frame or its long form (see :func:`actuals_long`).
    """
    _reject_duplicates(forecasts, ["unique_id", "model", "cutoff", "h"], "forecasts")
    left = forecasts.assign(ds=forecasts["ds"].astype(_DATE_DTYPE), unique_id=forecasts["unique_id"].astype(str))
    long = actuals_long(actuals, series=sorted(left["unique_id"].unique()))
    return left.merge(long, on=["unique_id", "ds"], how="left", validate="many_to_one")


def score_forecasts(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    eval_date: pd.Timestamp | str,
    windows: Sequence[Window] | None = None,
) -> pd.DataFrame:
    """The metrics table (:class:`schemas.metrics.MetricsSchema`) of ``forecasts`` at ``eval_date``.

    ``windows`` defaults to the trailing 7/28/91-day windows ending at ``eval_date``; add a
    :func:`range_window` for a backfill. Rows come sorted by window (in the order given), series,
    model and horizon, so the same inputs always give the same table.
    """
    chosen = list(trailing_windows(eval_date) if windows is None else windows)
    if not chosen or len({w.name for w in chosen}) != len(chosen):
        raise ValueError("give at least one window, each with a distinct name")
    per_forecast = _sorted_terms(forecasts, actuals)
    parts = [
        _score_window(per_forecast, window, order).assign(eval_date=_midnight(eval_date))
        for order, window in enumerate(chosen)
    ]
    metrics = pd.concat(parts, ignore_index=True).sort_values(["_order", "unique_id", "model", "h"], kind="stable")
    return MetricsSchema.validate(_finalise(metrics.reset_index(drop=True)))


def window_scores(forecasts: pd.DataFrame, actuals: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per ``unique_id, model, h`` (``h = 0`` pooled) in ``window``: the metrics' ``count``,
    ``mae`` and ``mape`` (the same terms and order as :func:`score_forecasts`, so the same bits)
    plus the sums behind them, ``abs_error`` = sum |y_hat - y| and ``abs_actual`` = sum |y| over
    the scored forecasts. Rows with nothing scored are left out.
    """
    sums = _score_window(_sorted_terms(forecasts, actuals), window, 0)
    sums = sums[sums["n_scored"] > 0].sort_values([*_GROUP, "h"], kind="stable")
    return pd.DataFrame(
        {
            "unique_id": sums["unique_id"].astype(str),
            "model": sums["model"].astype(str),
            "h": sums["h"].astype(np.int64),
            "count": sums["n_scored"].astype(np.int64),
            "mae": _ratio(sums["sum_abs_error"], sums["n_scored"]),
            "mape": _ratio(sums["sum_abs_pct"], sums["n_pct"]),
            "abs_error": sums["sum_abs_error"].astype(np.float64),
            "abs_actual": sums["sum_abs_actual"].astype(np.float64),
        }
    ).reset_index(drop=True)


def leaderboard(
    metrics: pd.DataFrame,
    window: str = DEFAULT_ALERT_WINDOW,
    reference_model: str = REFERENCE_MODEL,
    eval_date: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Models per series, ranked by MAE over all horizons (``rank_all``) and at h=1 (``rank_h1``).

    ``rel_mae_*`` divides a model's MAE by the reference model's on the same series and horizon
    (below 1 beats the seasonal-naive baseline); ``wis*``, ``coverage_*``, ``width_*`` are the
    metrics table's (``wis_skill`` against ``naive`` whatever ``reference_model``). ``eval_date``
    defaults to the latest in ``metrics``. Rows are ordered by series, ``rank_all`` (unranked last), model.
    """
    rows = metrics_at(metrics, window, eval_date)
    # A calibrated model's bands as forecast are scored for comparison, not ranked beside it.
    rows = rows[~rows["model"].astype(str).map(is_raw).to_numpy(bool)]
    h1 = rows[rows["h"] == 1].set_index(_GROUP)[["mae", "mape", "count"]].add_suffix("_h1")
    pooled = rows[rows["h"] == ALL_HORIZONS].set_index(_GROUP)
    # reindex: a metrics frame from before issue 21 has no probabilistic columns; they show as NaN.
    pooled = pooled.reindex(columns=["mae", "mape", "bias", *_POOLED_SCORES, "count", "pending"]).add_suffix("_all")
    board = pooled.join(h1, how="outer").reset_index()
    for suffix in ("h1", "all"):
        reference = board[board["model"] == reference_model].set_index("unique_id")[f"mae_{suffix}"]
        reference_mae = board["unique_id"].map(reference).astype(np.float64)
        board[f"rel_mae_{suffix}"] = board[f"mae_{suffix}"] / reference_mae.where(reference_mae > 0)
        ranks = board.groupby("unique_id")[f"mae_{suffix}"].rank(method="min")
        board[f"rank_{suffix}"] = ranks.astype("Int64")
    board["is_reference"] = board["model"] == reference_model
    for column in ("count_h1", "count_all", "pending_all"):
        board[column] = board[column].fillna(0).astype(np.int64)
    board = board.sort_values(["unique_id", "rank_all", "model"], na_position="last", kind="stable")
    columns = [
        "unique_id", "model", "is_reference", "rank_all", "rank_h1",
        "mae_h1", "mape_h1", "rel_mae_h1", "count_h1",
        "mae_all", "mape_all", "rel_mae_all", "bias_all", *(f"{c}_all" for c in _POOLED_SCORES),
        "count_all", "pending_all",
    ]  # fmt: skip
    return board[columns].reset_index(drop=True)


def interval_hits(joined: pd.DataFrame, level: int) -> tuple[pd.Series, pd.Series]:
    """Per row of ``joined`` (forecasts with their actual ``y``, :func:`join_actuals`): whether
    it counts for the ``level`` % band's coverage (an actual and both bounds) and whether the
    actual lay inside the band, bounds included. The one rule the metrics' ``coverage_L`` and the
    coverage alert (:mod:`tasks.core.evaluation.alerts`) share."""
    lower, upper = joined[f"y_lo_{level}"], joined[f"y_hi_{level}"]
    has_interval = joined["y"].notna() & lower.notna() & upper.notna()
    return has_interval, has_interval & (joined["y"] >= lower) & (joined["y"] <= upper)


def metrics_at(metrics: pd.DataFrame, window: str, eval_date: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """The rows of one window at one eval date (the latest present unless given)."""
    if metrics.empty:
        return metrics
    stamp = metrics["eval_date"].max() if eval_date is None else _midnight(eval_date)
    return metrics[(metrics["window"] == window) & (metrics["eval_date"] == stamp)]


# --- internals -----------------------------------------------------------------------------


def _midnight(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp != stamp.normalize():
        raise ValueError(f"expected a date at midnight, got {stamp}")
    return stamp.as_unit("ns")


def _reject_duplicates(frame: pd.DataFrame, key: list[str], what: str) -> None:
    # A duplicate would silently count a forecast twice; storage promises replacement, not append.
    duplicated = frame.duplicated(key, keep=False)
    if duplicated.any():
        example = frame.loc[duplicated, key].iloc[0].to_dict()
        raise ValueError(f"{what} hold duplicate rows for {key}, e.g. {example}")


def _normalise_actuals(long: pd.DataFrame) -> pd.DataFrame:
    result = pd.DataFrame(
        {
            "unique_id": long["unique_id"].astype(str),
            "ds": long["ds"].astype(_DATE_DTYPE),
            "y": long["y"].astype(np.float64),
        }
    )
    _reject_duplicates(result, ["unique_id", "ds"], "actuals")
    return result.dropna(subset=["y"]).reset_index(drop=True)


def _sorted_terms(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    # Sorting before summing fixes the order floats are added in: identical bits on every rerun,
    # whatever order the forecast partitions were read in.
    joined = join_actuals(forecasts, actuals).sort_values(["unique_id", "model", "h", "ds"], kind="stable")
    return _per_forecast_terms(joined)


def _per_forecast_terms(joined: pd.DataFrame) -> pd.DataFrame:
    """One row per forecast with the additive terms every metric is a ratio of."""
    scored = joined["y"].notna()
    error = (joined["y_hat"] - joined["y"]).where(scored, 0.0)
    nonzero = scored & (joined["y"] != 0)
    terms = pd.DataFrame(
        {
            "unique_id": joined["unique_id"],
            "model": joined["model"].astype(str),
            "h": joined["h"].astype(np.int64),
            "ds": joined["ds"],
            "n_scored": scored.astype(np.int64),
            "n_pending": (~scored).astype(np.int64),
            "n_zero": (scored & (joined["y"] == 0)).astype(np.int64),
            "sum_error": error,
            "sum_abs_error": error.abs(),
            "sum_abs_actual": joined["y"].abs().where(scored, 0.0),
            "n_pct": nonzero.astype(np.int64),
            "sum_abs_pct": (error.abs() / joined["y"].abs()).where(nonzero, 0.0) * 100.0,
        }
    )
    for level in INTERVAL_LEVELS:
        has_interval, inside = interval_hits(joined, level)
        terms[f"n_interval_{level}"] = has_interval.astype(np.int64)
        terms[f"n_inside_{level}"] = inside.astype(np.int64)
    return pd.concat([terms, probabilistic_terms(joined, scored, REFERENCE_MODEL)], axis=1)


def _score_window(terms: pd.DataFrame, window: Window, order: int) -> pd.DataFrame:
    in_window = terms[(terms["ds"] >= window.start) & (terms["ds"] <= window.end)].drop(columns="ds")
    by_horizon = in_window.groupby([*_GROUP, "h"], sort=True).sum().reset_index()
    pooled = in_window.drop(columns="h").groupby(_GROUP, sort=True).sum().reset_index()
    pooled.insert(2, "h", np.int64(ALL_HORIZONS))
    sums = pd.concat([by_horizon, pooled], ignore_index=True)
    return sums.assign(window=window.name, window_start=window.start, window_end=window.end, _order=order)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as float64, NaN where there was nothing to average."""
    return (numerator / denominator.where(denominator > 0)).astype(np.float64)


def _finalise(sums: pd.DataFrame) -> pd.DataFrame:
    metrics = pd.DataFrame(
        {
            "eval_date": sums["eval_date"].astype(_DATE_DTYPE),
            "window": sums["window"].astype(str),
            "window_start": sums["window_start"].astype(_DATE_DTYPE),
            "window_end": sums["window_end"].astype(_DATE_DTYPE),
            "unique_id": sums["unique_id"].astype(str),
            "model": sums["model"].astype(str),
            "h": sums["h"].astype(np.int64),
            "count": sums["n_scored"].astype(np.int64),
            "pending": sums["n_pending"].astype(np.int64),
            "mape_excluded_zero": sums["n_zero"].astype(np.int64),
            "mae": _ratio(sums["sum_abs_error"], sums["n_scored"]),
            "mape": _ratio(sums["sum_abs_pct"], sums["n_pct"]),
            "bias": _ratio(sums["sum_error"], sums["n_scored"]),
            **{
                f"coverage_{lvl}": _ratio(sums[f"n_inside_{lvl}"], sums[f"n_interval_{lvl}"])
                for lvl in INTERVAL_LEVELS
            },
            **probabilistic_metrics(sums),
        }
    )
    return metrics
