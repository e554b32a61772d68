"""The report's charts as PNG bytes.

Figures are built as :class:`matplotlib.figure.Figure` objects on an Agg canvas: no pyplot, so
no global figure registry, no GUI backend and nothing changed at import time; a worker process
can draw many reports without leaking figures. PNG metadata carries no software version, so the
same data gives the same bytes.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, to_rgb
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from tasks.core.calibration import RAW_SUFFIX, is_raw

REFERENCE_STYLE = {"color": "0.45", "linestyle": "--"}
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_FIGSIZE = (9.0, 4.0)
_DPI = 100


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model (by sorted name), so a model looks the same in every chart."""
    return {model: _PALETTE[i % len(_PALETTE)] for i, model in enumerate(sorted(set(models)))}


@dataclass(frozen=True)
class Chart:
    """One PNG of the report: the file name the Markdown links, its caption, its bytes."""

    filename: str
    caption: str
    png: bytes


def series_charts(
    unique_id: str,
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    window_metrics: pd.DataFrame,
    *,
    eval_date: pd.Timestamp,
    weeks: int,
    horizon: int,
    window: str,
    reference_model: str,
    colors: Mapping[str, str],
) -> list[Chart]:
    """The charts of one series; a chart with nothing to show is left out rather than drawn empty.

    ``forecasts`` and ``actuals`` (long form) may hold any dates and series: the last ``weeks``
    weeks up to ``eval_date`` of this series at ``horizon`` are drawn. ``window_metrics`` are the
    metrics rows of one window and eval date.
    """
    start = eval_date - pd.Timedelta(weeks=weeks) + pd.Timedelta(days=1)
    recent = forecasts[(forecasts["unique_id"] == unique_id) & (forecasts["h"] == horizon)]
    recent = recent[recent["ds"].between(start, eval_date)]
    actual = actuals[(actuals["unique_id"] == unique_id) & actuals["ds"].between(start, eval_date)]
    per_horizon = window_metrics[(window_metrics["unique_id"] == unique_id) & (window_metrics["h"] > 0)]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", unique_id).strip("-") or "series"
    charts = []
    if not recent.empty:
        caption = f"{unique_id}: h={horizon} forecasts vs actuals, last {weeks} weeks (95% band)"
        png = forecasts_vs_actuals_png(recent, actual, caption, reference_model, colors)
        charts.append(Chart(f"forecasts_{slug}.png", caption, png))
    if per_horizon["mae"].notna().any():
        caption = f"{unique_id}: MAE by horizon, window {window}"
        charts.append(Chart(f"mae_by_horizon_{slug}.png", caption, mae_by_horizon_png(per_horizon, caption, reference_model, colors)))
    return charts


def _line_style(model: object, reference_model: str, colors: Mapping[str, str]) -> dict[str, str]:
    """The reference model grey and dashed; every other model in its colour (``C0`` if none); a
    calibrated model's bands as forecast (``<model>@raw``) in its model's colour, dash-dotted."""
    if model == reference_model:
        return REFERENCE_STYLE
    name = str(model)
    if is_raw(name):
        return {"color": colors.get(name.removesuffix(RAW_SUFFIX), colors.get(name, "C0")), "linestyle": "-."}
    return {"color": colors.get(name, "C0")}


def forecasts_vs_actuals_png(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    title: str,
    reference_model: str,
    colors: Mapping[str, str],
) -> bytes:
    """Actuals against each model's forecasts, with the 95% band where a model has one.

    ``forecasts`` holds the rows to draw (one horizon, one series, the plotted dates);
    ``actuals`` the matching ``ds, y`` rows. The caller chooses the dates and horizon.
    """
    figure, axes = _new_figure()
    actual = actuals.sort_values("ds")
    axes.plot(actual["ds"], actual["y"], color="black", linewidth=1.8, label="actual", zorder=3)
    for model, rows in forecasts.sort_values(["model", "ds"]).groupby("model", sort=True):
        style = _line_style(model, reference_model, colors)
        axes.plot(rows["ds"], rows["y_hat"], linewidth=1.2, label=str(model), **style)
        band = rows.dropna(subset=["y_lo_95", "y_hi_95"])
        if not band.empty:
            axes.fill_between(band["ds"], band["y_lo_95"], band["y_hi_95"], color=style["color"], alpha=0.15, linewidth=0)
    _format_date_axis(axes)
    axes.set_ylabel("daily boardings")
    axes.set_title(title)
    _legend_outside(axes)
    return _to_png(figure)


def mae_by_horizon_png(
    metrics: pd.DataFrame,
    title: str,
    reference_model: str,
    colors: Mapping[str, str],
) -> bytes:
    """MAE against horizon, one line per model, from metrics rows of one series and window."""
    figure, axes = _new_figure()
    per_horizon = metrics[(metrics["h"] > 0) & metrics["mae"].notna()].sort_values(["model", "h"])
    for model, rows in per_horizon.groupby("model", sort=True):
        style = _line_style(model, reference_model, colors)
        axes.plot(rows["h"], rows["mae"], marker="o", markersize=3, linewidth=1.2, label=str(model), **style)
    horizons = np.sort(per_horizon["h"].unique())
    if horizons.size:
        axes.set_xticks(horizons)
    axes.set_xlabel("horizon h (days after cutoff)")
    axes.set_ylabel("MAE (boardings)")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    _legend_outside(axes)
    return _to_png(figure)


def mape_distribution_png(
    scores: pd.DataFrame,
    title: str,
    reference_model: str,
    colors: Mapping[str, str],
) -> bytes:
    """Per-series MAPE of each model: a horizontal box per model (quartiles, whiskers at 1.5 IQR)
    over a dot per series. ``scores`` holds ``model, mape`` rows, one per series and model."""
    rows = scores[scores["mape"].notna()]
    models = sorted(rows["model"].astype(str).unique(), reverse=True)  # first name on top
    figure, axes = _new_figure((_FIGSIZE[0], 1.2 + 0.45 * max(len(models), 1)))
    jitter = np.random.default_rng(0)  # fixed: the same data gives the same bytes
    for position, model in enumerate(models, start=1):
        values = rows.loc[rows["model"] == model, "mape"].to_numpy(np.float64)
        color = _line_style(model, reference_model, colors)["color"]
        axes.boxplot(values, positions=[position], orientation="horizontal", widths=0.6, showfliers=False,
                     medianprops={"color": color, "linewidth": 2}, boxprops={"color": color})  # fmt: skip
        spread = jitter.uniform(-0.18, 0.18, values.size)
        axes.scatter(values, position + spread, s=6, color=color, alpha=0.5, linewidths=0, zorder=3)
    axes.set_yticks(range(1, len(models) + 1), labels=models)
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:.0f}%"))
    axes.set_xlim(left=0)
    axes.set_xlabel("MAPE per series (percent)")
    axes.set_title(title)
    return _to_png(figure)


def fan_chart_png(
    bands: pd.DataFrame,
    actuals: pd.DataFrame,
    cutoff: pd.Timestamp,
    title: str,
    color: str,
    model: str,
) -> bytes:
    """One forecast's distribution as nested shaded bands around its median, after recent actuals.

    ``bands`` is :func:`tasks.core.evaluation.uncertainty.fan_bands`' table (``ds, median,
    lo_<L>, hi_<L>``); a level whose bounds are all NaN is not drawn. ``actuals`` (``ds, y``) are
    drawn as a line up to ``cutoff`` and as dots after it, so a backtest shows where the actuals
    fell in the bands.
    """
    figure, axes = _new_figure()
    levels = sorted((int(c.removeprefix("lo_")) for c in bands.columns if c.startswith("lo_")), reverse=True)
    drawn = [level for level in levels if bands[f"lo_{level}"].notna().any()]
    # Widest band first, each opaque and a deeper tint of the model's colour than the one under
    # it: transparent bands would stack into shades the legend's swatches do not show.
    for rank, level in enumerate(drawn):
        strength = 0.2 + 0.45 * rank / max(len(drawn) - 1, 1)
        tint = tuple(1.0 - strength * (1.0 - channel) for channel in to_rgb(color))
        axes.fill_between(bands["ds"], bands[f"lo_{level}"], bands[f"hi_{level}"], color=tint, linewidth=0,
                          label=f"{level}% band")  # fmt: skip
    axes.plot(bands["ds"], bands["median"], color=color, linewidth=1.6, label=f"{model} median")
    actual = actuals.sort_values("ds")
    before, after = actual[actual["ds"] <= cutoff], actual[actual["ds"] > cutoff]
    axes.plot(before["ds"], before["y"], color="black", linewidth=1.4, label="actual")
    if not after.empty:
        axes.plot(after["ds"], after["y"], color="black", linestyle="none", marker="o", markersize=3.5,
                  label="actual after the cutoff")  # fmt: skip
    axes.axvline(cutoff, color="0.4", linestyle=":", linewidth=1.0)
    _format_date_axis(axes)
    axes.set_ylabel("daily boardings")
    axes.set_title(title, fontsize="medium")
    _legend_outside(axes)
    return _to_png(figure)


def calibration_png(points: pd.DataFrame, title: str, reference_model: str, colors: Mapping[str, str]) -> bytes:
    """Empirical against nominal coverage, one panel per series (in order of first appearance),
    one line per model, the diagonal for perfect calibration. ``points`` holds ``unique_id,
    model, nominal, empirical`` (shares in [0, 1])."""
    series = list(dict.fromkeys(points["unique_id"]))
    columns = min(len(series), 3) or 1
    rows = -(-len(series) // columns) or 1
    figure = Figure(figsize=(3.4 * columns + 1.6, 3.3 * rows + 0.5), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    # Both axes start a little below the lowest point, not at 0: the points sit between 50 and
    # 100 %, and on a 0-100 % square the 90 and 95 % levels would run together.
    lowest = min(points["nominal"].min(), points["empirical"].min()) if not points.empty else 0.5
    low = max(0.0, float(np.floor((lowest - 0.05) * 20.0)) / 20.0)
    handles: dict[str, object] = {}
    for index, unique_id in enumerate(series):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.plot([low, 1.0], [low, 1.0], color="0.6", linestyle=":", linewidth=1.0)
        for model, line in points[points["unique_id"] == unique_id].sort_values(["model", "nominal"]).groupby("model", sort=True):
            style = _line_style(model, reference_model, colors)
            (handle,) = axes.plot(line["nominal"], line["empirical"], marker="o", markersize=4, linewidth=1.2, **style)
            handles.setdefault(str(model), handle)
        axes.set_xlim(low, 1.0)
        axes.set_ylim(low, 1.0)
        axes.set_aspect("equal")
        axes.grid(True, alpha=0.3)
        for axis in (axes.xaxis, axes.yaxis):
            axis.set_major_formatter(StrMethodFormatter("{x:.0%}"))
        axes.set_title(unique_id, fontsize="medium")
        axes.set_xlabel("nominal coverage")
        axes.set_ylabel("empirical coverage")
    if handles:
        names = sorted(handles)
        figure.legend([handles[name] for name in names], names, loc="outside right center", fontsize="small", frameon=False)
    figure.suptitle(title, fontsize="medium")
    return _to_png(figure)


def station_map_png(points: pd.DataFrame, title: str, colorbar_label: str, diverging: bool, missing_label: str) -> bytes:
    """Stations at their coordinates (``lat, lon``), filled by ``value``; stations without one
    drawn hollow in grey, explained in the legend by ``missing_label``. ``diverging``: a red-to-blue scale centred on 0 (a fall red, a rise
    blue), else a sequential one from 0. No map tiles: the stations' own positions draw the lines."""
    figure, axes = _new_figure((7.0, 8.0))
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(StrMethodFormatter("{x:.2f}"))
        axis.set_major_locator(MaxNLocator(5))
    known = points[points["value"].notna()]
    unknown = points[points["value"].isna()]
    if not unknown.empty:
        axes.scatter(unknown["lon"], unknown["lat"], s=22, facecolors="none", edgecolors="0.55", linewidths=0.8, label=missing_label)
    if not known.empty:
        values = known["value"].to_numpy(np.float64)
        # A few outliers (a station just reopened) would wash out every other colour: the scale
        # stops at the 95th percentile and the colour bar's arrows say that some lie beyond.
        spread = float(np.nanpercentile(np.abs(values) if diverging else values, 95)) or 1.0
        norm = Normalize(-spread, spread) if diverging else Normalize(0.0, spread)
        marks = axes.scatter(known["lon"], known["lat"], c=values, cmap="RdBu" if diverging else "viridis_r", norm=norm,
                             s=30, edgecolors="0.25", linewidths=0.4, zorder=3)  # fmt: skip
        figure.colorbar(marks, ax=axes, label=colorbar_label, shrink=0.7, extend="both" if diverging else "max")
        key = "blue: above, red: below; arrows: beyond the 95th percentile" if diverging else "darker: larger error"
        axes.text(0.99, 0.01, key, transform=axes.transAxes, ha="right", va="bottom", fontsize="x-small", color="0.3")
    if not points.empty:
        # Degrees of longitude are shorter than degrees of latitude this far north.
        axes.set_aspect(1.0 / np.cos(np.radians(float(points["lat"].mean()))))
    if not unknown.empty:
        axes.legend(loc="lower left", fontsize="small")
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.set_title(title, fontsize="small", wrap=True)
    return _to_png(figure)


def _new_figure(figsize: tuple[float, float] = _FIGSIZE) -> tuple[Figure, Axes]:
    figure = Figure(figsize=figsize, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself as figure.canvas
    axes = figure.add_subplot()
    axes.grid(True, alpha=0.3)
    # Ridership is in the hundreds of thousands: plain numbers with separators, no "1e5" offset.
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    return figure, axes


def _legend_outside(axes: Axes) -> None:
    # Beside the plot, not on it: with many models an inner legend hides the lines it explains.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def _format_date_axis(axes: Axes) -> None:
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
