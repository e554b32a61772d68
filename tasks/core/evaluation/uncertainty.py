"""The report's pictures of forecast uncertainty: a fan chart per series and the calibration plot.

The leaderboard says how far the point forecasts missed; these say what the intervals promise
and whether they keep it. The fan chart shows one forecast's nested bands (what the planners
would read for the next two weeks); the calibration plot compares each band's nominal coverage
with the share of actuals that fell inside it over the report's window. Both read the forecast
contract and the metrics table only, through the small table helpers below, which the tests
check exactly; the drawing is :mod:`tasks.core.evaluation.plots`'.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from schemas.forecasts import MEDIAN_COLUMN, QUANTILE_LEVELS, interval_quantile_columns
from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.page import Block, Heading, Paragraph
from tasks.core.evaluation.plots import Chart, calibration_png, fan_chart_png

FAN_CONTEXT_WEEKS = 4
"""Weeks of actuals drawn before the fan chart's cutoff: enough to show the weekly pattern."""

_FALLBACK_BOUNDS = {80: ("y_lo_80", "y_hi_80"), 95: ("y_lo_95", "y_hi_95")}
"""The interval columns older than the quantiles: the 80 and 95 % bands of files written before."""


def fan_bands(rows: pd.DataFrame) -> pd.DataFrame:
    """The bands of one forecast (one series, model and cutoff): ``ds, h, median`` and
    ``lo_<L>, hi_<L>`` for L in 50, 80, 90, 95, sorted by ``ds``.

    A bound is the quantile column where it is present, else (80 and 95 % only) the interval
    column, so files written before the quantiles still give their 80/95 % bands; the median is
    ``q_500``, else ``y_hat``. Quantile columns absent from ``rows`` count as NaN.
    """
    rows = rows.sort_values("ds")
    table = pd.DataFrame({"ds": rows["ds"].to_numpy(), "h": rows["h"].to_numpy()})
    table["median"] = _column(rows, MEDIAN_COLUMN).fillna(rows["y_hat"]).to_numpy(np.float64)
    for level in QUANTILE_LEVELS:
        for side, quantile, fallback in zip(("lo", "hi"), interval_quantile_columns(level), _FALLBACK_BOUNDS.get(level, (None, None))):
            bound = _column(rows, quantile)
            if fallback is not None:
                bound = bound.fillna(rows[fallback])
            table[f"{side}_{level}"] = bound.to_numpy(np.float64)
    return table


def has_bands(bands: pd.DataFrame) -> bool:
    return bool(bands.filter(regex=r"^lo_\d+$").notna().any().any())


def fan_choice(
    forecasts: pd.DataFrame, board: pd.DataFrame, unique_id: str, latest_cutoff: pd.Timestamp | None
) -> tuple[pd.Timestamp | None, str | None]:
    """The cutoff and model a series' fan chart shows: the series' latest cutoff in ``forecasts``
    (no later than ``latest_cutoff`` when given), and among the models with bands there, the one
    the leaderboard ranks best on this series (``rank_all``: MAE over every horizon), so the
    chart shows the forecast the reader would act on; unranked models after, by name.
    ``(cutoff, None)`` when no model gave bands; ``(None, None)`` when nothing was forecast."""
    rows = forecasts[forecasts["unique_id"].astype(str) == unique_id]
    if latest_cutoff is not None:
        rows = rows[rows["cutoff"] <= latest_cutoff]
    if rows.empty:
        return None, None
    cutoff = rows["cutoff"].max()
    at_cutoff = rows[rows["cutoff"] == cutoff]
    banded = sorted(str(m) for m, group in at_cutoff.groupby("model", sort=False) if has_bands(fan_bands(group)))
    ranks = board[board["unique_id"] == unique_id].set_index("model")["rank_all"]
    banded.sort(key=lambda model: (pd.isna(ranks.get(model)), ranks.get(model) if pd.notna(ranks.get(model)) else 0))
    return cutoff, (banded[0] if banded else None)


def fan_section(
    unique_id: str,
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    board: pd.DataFrame,
    latest_cutoff: pd.Timestamp | str | None,
    colors: Mapping[str, str],
    weeks: int = FAN_CONTEXT_WEEKS,
) -> tuple[list[Block], list[Chart]]:
    """A series' fan chart, or a one-line note saying why it has none (``actuals`` long form)."""
    latest = pd.Timestamp(latest_cutoff).normalize() if latest_cutoff is not None else None
    cutoff, model = fan_choice(forecasts, board, unique_id, latest)
    if cutoff is None:
        return [], []
    if model is None:
        note = f"{unique_id}: no fan chart, no model gave prediction bands from cutoff {cutoff:%Y-%m-%d}."
        return [Paragraph(note, css_class="note")], []
    mine = (forecasts["unique_id"].astype(str) == unique_id) & (forecasts["cutoff"] == cutoff)
    rows = forecasts[mine & (forecasts["model"].astype(str) == model)]
    bands = fan_bands(rows)
    start = cutoff - pd.Timedelta(weeks=weeks) + pd.Timedelta(days=1)
    actual = actuals[(actuals["unique_id"] == unique_id) & actuals["ds"].between(start, bands["ds"].max())]
    levels = "/".join(str(level) for level in QUANTILE_LEVELS if bands[f"lo_{level}"].notna().any())
    caption = (
        f"{unique_id}: {model}'s forecast from cutoff {cutoff:%Y-%m-%d}, h=1..{int(bands['h'].max())}: median and "
        f"{levels}% bands (darker = narrower), after {weeks} weeks of actuals"
    )
    title = f"{unique_id}: {model} from cutoff {cutoff:%Y-%m-%d}"  # the caption, too long for a title, is below it
    png = fan_chart_png(bands, actual, cutoff, title, colors.get(model, "C0"), model)
    return [], [Chart(f"fan_{_slug(unique_id)}.png", caption, png)]


def calibration_points(window_rows: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """``unique_id, model, nominal, empirical`` from the metrics rows of one window: the
    coverage columns of the rows pooling every horizon, one point per level a model was scored
    on (metrics from before the 50/90 % bands give two points). Series in the order given."""
    coverage = [f"coverage_{level}" for level in QUANTILE_LEVELS]
    pooled = window_rows[(window_rows["h"] == ALL_HORIZONS) & window_rows["unique_id"].isin(series)]
    pooled = pooled.reindex(columns=["unique_id", "model", *coverage])
    points = pooled.melt(id_vars=["unique_id", "model"], value_vars=coverage, var_name="nominal", value_name="empirical")
    points = points.dropna(subset=["empirical"])
    points["nominal"] = points["nominal"].str.removeprefix("coverage_").astype(np.int64) / 100.0
    points["empirical"] = points["empirical"].astype(np.float64)
    order = {unique_id: index for index, unique_id in enumerate(series)}
    points = points.sort_values(["unique_id", "model", "nominal"], key=lambda c: c.map(order) if c.name == "unique_id" else c)
    return points.reset_index(drop=True)[["unique_id", "model", "nominal", "empirical"]]


def calibration_section(
    window_rows: pd.DataFrame, series: Sequence[str], window: str, reference_model: str, colors: Mapping[str, str]
) -> tuple[list[Block], list[Chart]]:
    """The calibration section: one panel per series (coverage is a model's property on a
    series; pooling series would let the steady one hide the other's misses, and each point is
    then a value of the metrics table as it stands), one line per model."""
    blocks: list[Block] = [Heading(2, "Calibration")]
    points = calibration_points(window_rows, series)
    if points.empty:
        return [*blocks, Paragraph(f"No interval forecasts scored in window {window} yet.")], []
    blocks.append(
        Paragraph(
            f"Share of actuals inside each model's 50/80/90/95 % intervals over window {window}, every horizon "
            "pooled, against the share promised. On the dotted diagonal a model's intervals are calibrated; "
            "above it they are too wide, below it too narrow. Models without intervals are not drawn; "
            "forecasts stored before the quantiles give only the 80 and 95 % points."
        )
    )
    caption = f"Calibration, window {window}: empirical vs nominal interval coverage per series and model"
    png = calibration_png(points, f"Interval coverage, window {window}", reference_model, colors)
    return blocks, [Chart("calibration.png", caption, png)]


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name].astype(np.float64) if name in rows.columns else pd.Series(np.nan, index=rows.index)


def _slug(unique_id: str) -> str:
    # The same slug as the series' other charts, so its files sort together.
    return re.sub(r"[^A-Za-z0-9_-]+", "-", unique_id).strip("-") or "series"
