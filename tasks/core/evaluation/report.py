"""The evaluation report: Markdown, self-contained HTML and PNG charts.

Everything here returns values; the storage layer writes ``report.md``, ``report.html`` and the
PNGs side by side under ``reports/<run date>/``, so the Markdown links images by bare filename.
The page is described once as a list of blocks (:mod:`tasks.core.evaluation.page`) and rendered to both
formats, so the two cannot drift apart. Prefect artifact payloads are shaped in :mod:`tasks.core.evaluation.artifacts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from schemas.metrics import ALL_HORIZONS
from schemas.series import DERIVED_SERIES
from tasks.core.evaluation.aggregate import EXTREME_SERIES, aggregate_leaderboard, series_extremes, series_scores
from tasks.core.evaluation.alerts import CoverageAlert
from tasks.core.evaluation.artifacts import to_json_records
from tasks.core.evaluation.coherence import coherence_section
from tasks.core.models.catalog import MODEL_FAMILIES, model_family
from tasks.core.evaluation.page import (
    NOTHING, Block, Bullets, Column, Heading, Image, Paragraph, Table, formatter, missing, row_cells, to_html, to_markdown,
)  # fmt: skip
from tasks.core.evaluation.plots import Chart, mape_distribution_png, model_colors, series_charts
from tasks.core.evaluation.stations import station_section
from tasks.core.evaluation.weather_section import weather_section
from tasks.core.evaluation.uncertainty import calibration_section, fan_section
from tasks.core.evaluation.scoring import (
    DEFAULT_ALERT_WINDOW, DEFAULT_SERIES, REFERENCE_MODEL, Window, actuals_long, leaderboard,
)  # fmt: skip

ALERT_MARK = "\u26a0"  # ⚠
MAX_SERIES_SECTIONS = 6
"""With more series than this, only the system totals get a section; the rest are aggregated."""
SECTION_SERIES = (*DEFAULT_SERIES, *DERIVED_SERIES)
"""The series that keep a section of their own at scale: the totals, and the derived sums
(``rail_entries`` would otherwise be half the volume of the stations' aggregate)."""


@dataclass(frozen=True)
class Report:
    """A rendered report: ``images`` maps each PNG filename the Markdown links to its bytes.

    ``artifact_markdown`` is the Markdown without image links, for a Prefect markdown artifact
    (the Prefect UI cannot resolve files stored beside the report).
    """

    markdown: str
    html: str
    images: dict[str, bytes]
    artifact_markdown: str
    aggregate_rows: list[dict[str, Any]] = field(default_factory=list)
    """The aggregate leaderboard over the other series as JSON-safe rows (empty unless the
    report was rendered at scale), for a Prefect table artifact."""


def render_report(
    metrics: pd.DataFrame,
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    *,
    run_date: pd.Timestamp | str,
    eval_date: pd.Timestamp | str,
    window: str = DEFAULT_ALERT_WINDOW,
    reference_model: str = REFERENCE_MODEL,
    alerts: Sequence[CoverageAlert] = (),
    data_note: str | None = None,
    plot_weeks: int = 8,
    plot_horizon: int = 1,
    latest_cutoff: pd.Timestamp | str | None = None,
    max_series_sections: int = MAX_SERIES_SECTIONS,
    station_catalog: pd.DataFrame | None = None,
    station_locations: pd.DataFrame | None = None,
    hierarchies: Sequence[tuple[str, str]] = (),
    weather_vintage: pd.DataFrame | None = None,
) -> Report:
    """Leaderboard per series (``window`` at ``eval_date``), alerts and charts.

    ``forecasts`` (forecast contract) and ``actuals`` (clean or long form) feed the chart of the
    last ``plot_weeks`` weeks up to ``eval_date``; ``data_note`` (e.g. how far actuals lag) and
    ``alerts`` (coverage alerts, :mod:`tasks.core.evaluation.alerts`) come from the flow. Models in
    ``alerts`` are marked in their leaderboard row.

    With more than ``max_series_sections`` series, only ``bus``, ``rail`` and the derived sums
    (``rail_entries``) keep a section; every
    other series goes into one "All other series" section (:func:`_other_series`): the aggregate
    leaderboard, the worst and best series per model and one MAPE chart per model family. That
    section is computed from ``forecasts`` and ``actuals``, so ``forecasts`` must then reach back
    over the whole window (alerts on those series are summed up per model).

    With 'L' station series among them, a "Stations" section follows
    (:func:`tasks.core.evaluation.stations.station_section`): names from ``station_catalog``
    (``unique_id, name``: the store's catalog), else from ``station_locations`` (``station_id,
    name, lat, lon``: the stops list), whose coordinates place the stations on its map.

    ``hierarchies`` (parent, children pattern): a coherence section at ``latest_cutoff`` (or the
    latest cutoff that forecast a parent), :mod:`tasks.core.evaluation.coherence`.

    ``weather_vintage``: the forecast vintage issued at ``latest_cutoff`` (issue 22), shown per
    target day in a "Weather" section with the days a weather-aware forecast moved for
    (:mod:`tasks.core.evaluation.weather_section`).

    Every series with a section of its own also gets a fan chart of its latest forecast (no later
    than ``latest_cutoff``) and a "Calibration" section follows them: nominal against empirical
    interval coverage over ``window`` (:mod:`tasks.core.evaluation.uncertainty`).
    """
    eval_stamp = pd.Timestamp(eval_date).normalize()
    board = leaderboard(metrics, window, reference_model, eval_stamp)
    window_rows = metrics[(metrics["window"] == window) & (metrics["eval_date"] == eval_stamp)]
    long_actuals = actuals_long(actuals)
    colors = model_colors([*board["model"], *forecasts["model"].astype(str)])
    alerted = {(a.unique_id, a.model) for a in alerts}
    series = sorted({*board["unique_id"], *forecasts["unique_id"].astype(str)})
    at_scale = len(series) > max_series_sections
    others = [s for s in series if s not in SECTION_SERIES] if at_scale else []

    title = f"Ridership forecast report {_day(run_date)}"
    blocks: list[Block] = [
        Heading(1, title),
        Paragraph(
            f"Scored at {_day(eval_stamp)} over window {window}{_window_span(window_rows)}. Reference model: "
            f"{reference_model}; 'vs ref' is MAE divided by the reference's (below 1 beats it). "
            "MAE and bias in boardings, MAPE in percent, coverage = share of actuals inside the interval. "
            "WIS: weighted interval score of the 50/80/90/95 % intervals and the median, in boardings (lower is "
            "better; 2 × the mean pinball loss of the nine quantiles); WIS skill = 1 − WIS / naive's WIS on the "
            "same forecasts (above 0 beats the seasonal naive; blank for forecasts stored without quantiles)."
        ),
    ]
    if data_note:
        blocks.append(Paragraph(f"Data: {data_note}", css_class="note"))
    blocks.append(Heading(2, "Alerts"))
    listed = [a for a in alerts if a.unique_id not in others]
    bullets = [f"{ALERT_MARK} {a.message}" for a in listed] + _grouped_alerts([a for a in alerts if a.unique_id in others])
    if bullets:
        blocks.append(Bullets(bullets, css_class="alert"))
    else:
        blocks.append(Paragraph("No alerts."))

    images: dict[str, bytes] = {}
    for unique_id in [s for s in series if s not in others]:
        blocks.append(Heading(2, f"Series {unique_id}"))
        rows = board[board["unique_id"] == unique_id]
        max_h = window_rows.loc[window_rows["unique_id"] == unique_id, "h"].max()
        if rows.empty:
            blocks.append(Paragraph(f"No forecasts scored in window {window} yet."))
        else:
            blocks.append(_leaderboard_table(rows, alerted, _horizons_label(max_h)))
        if latest_cutoff is not None:
            blocks.extend(_latest_forecasts(forecasts, unique_id, pd.Timestamp(latest_cutoff).normalize()))
        charts = series_charts(
            unique_id, forecasts, long_actuals, window_rows, eval_date=eval_stamp, weeks=plot_weeks,
            horizon=plot_horizon, window=window, reference_model=reference_model, colors=colors,
        )  # fmt: skip
        blocks.extend(_add_charts(images, charts))
        notes, charts = fan_section(unique_id, forecasts, long_actuals, board, latest_cutoff, colors)
        blocks.extend([*notes, *_add_charts(images, charts)])
    section, charts = calibration_section(window_rows, [s for s in series if s not in others], window, reference_model, colors)
    blocks.extend([*section, *_add_charts(images, charts)])
    aggregate = pd.DataFrame()
    if others:
        section, charts, aggregate = _other_series(
            others, forecasts, actuals, window_rows, window, reference_model, alerted, colors
        )
        blocks.extend(section)
        blocks.extend(_add_charts(images, charts))
    latest = pd.Timestamp(latest_cutoff).normalize() if latest_cutoff is not None else None
    section, charts = station_section(
        forecasts, actuals, window_rows, window, reference_model, latest, station_catalog,
        station_locations, _horizons_label(window_rows["h"].max()),
    )
    blocks.extend(section)
    _add_charts(images, charts)  # the section places its own image block, above its notes
    blocks.extend(coherence_section(forecasts, hierarchies, latest_cutoff))
    blocks.extend(weather_section(weather_vintage, forecasts, latest))

    return Report(
        markdown=to_markdown(blocks, with_images=True),
        html=to_html(blocks, images, title),
        images=images,
        artifact_markdown=to_markdown(blocks, with_images=False),
        aggregate_rows=to_json_records(aggregate, decimals=3),
    )


def _add_charts(images: dict[str, bytes], charts: Sequence[Chart]) -> list["Block"]:
    """Store each chart's PNG under its file name; the image blocks that show them."""
    for chart in charts:
        # Two series ids may slug to the same file name; never let one chart overwrite another.
        if chart.filename in images:
            raise ValueError(f"series ids collide on chart file name {chart.filename}")
        images[chart.filename] = chart.png
    return [Image(chart.filename, chart.caption) for chart in charts]


def _grouped_alerts(alerts: Sequence[CoverageAlert], shown: int = 3) -> list[str]:
    """One line per model (and band, window, threshold) for alerts on the aggregated series."""
    groups: dict[tuple[str, int, int, float], list[CoverageAlert]] = {}
    for alert in alerts:
        groups.setdefault((alert.model, alert.level, alert.window_days, alert.threshold), []).append(alert)
    lines = []
    for (model, level, days, threshold), group in sorted(groups.items()):
        worst = sorted(group, key=lambda a: (a.coverage, a.unique_id))[:shown]
        examples = ", ".join(f"{a.unique_id} {a.coverage:.0%}" for a in worst)
        lines.append(
            f"{ALERT_MARK} {model}: the {level}% band held less than {threshold:.0%} of the last {days} days' "
            f"actuals on {len(group)} other series (worst: {examples})"
        )
    return lines


_AGGREGATE_DEFINITIONS = (
    "Per model over the series it scored: 'mean' averages the per-series MAE or MAPE, every "
    "series alike; 'wtd' weights each series' MAE by its volume (its mean actual over the window); "
    "WAPE = total absolute error / total actual volume, in percent (the volume-weighted MAPE); "
    "'vs ref' = weighted MAE divided by the reference's on the series both scored."
)


def _other_series(
    others: Sequence[str],
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    window_rows: pd.DataFrame,
    window: str,
    reference_model: str,
    alerted: set[tuple[str, str]],
    colors: dict[str, str],
) -> tuple[list["Block"], list[Chart], pd.DataFrame]:
    """The section of every series but the system totals: blocks, charts, aggregate leaderboard."""
    blocks: list[Block] = [Heading(2, f"All other series ({len(others)})")]
    if window_rows.empty:
        return [*blocks, Paragraph(f"No forecasts scored in window {window} yet.")], [], pd.DataFrame()
    span = Window(window, window_rows["window_start"].iloc[0], window_rows["window_end"].iloc[0])
    scores = series_scores(forecasts, actuals, span, exclude=SECTION_SERIES)
    board = aggregate_leaderboard(scores, reference_model)
    other_rows = window_rows[window_rows["unique_id"].isin(others)]
    expected = int(other_rows.loc[other_rows["h"] == ALL_HORIZONS, "count"].sum())
    pooled = scores[scores["h"] == ALL_HORIZONS]
    scored, all_h = int(pooled["count"].sum()), _horizons_label(other_rows["h"].max())
    scored_series = pooled["unique_id"].nunique()
    blocks.append(Paragraph(f"{scored_series} of these series scored in window {window}. {_AGGREGATE_DEFINITIONS}"))
    if scored != expected:
        note = f"The aggregate covers {scored:,d} of the {expected:,d} scored forecasts: the forecasts given do not reach over the whole window."
        blocks.append(Paragraph(note, css_class="note"))
    if board.empty:
        return blocks, [], board
    blocks.append(_aggregate_table(board, all_h))
    extremes = series_extremes(scores, EXTREME_SERIES)
    for model in board["model"]:
        blocks.append(Heading(3, f"{model}: worst and best series by MAPE {all_h}"))
        blocks.append(_extremes_table(extremes[extremes["model"] == model], model, alerted))
    charts = []
    for family in MODEL_FAMILIES:
        rows = pooled[pooled["model"].map(model_family) == family]
        if rows["mape"].notna().any():
            caption = f"Per-series MAPE {all_h} of the {family} models, window {window} ({rows['unique_id'].nunique()} series)"
            png = mape_distribution_png(rows, caption, reference_model, colors)
            charts.append(Chart(f"mape_by_series_{family}.png", caption, png))
    if charts:
        blocks.append(Heading(3, "Per-series MAPE by model family"))
    return blocks, charts, board


def _latest_forecasts(forecasts: pd.DataFrame, unique_id: str, cutoff: pd.Timestamp) -> list["Block"]:
    """The run's own forecasts: one row per target date, one column per model (y_hat, with the
    95% interval where the model gives one)."""
    rows = forecasts[(forecasts["unique_id"].astype(str) == unique_id) & (forecasts["cutoff"] == cutoff)]
    if rows.empty:
        return []
    models = sorted(rows["model"].astype(str).unique())
    cells: dict[tuple[pd.Timestamp, str], str] = {}
    for row in rows.itertuples(index=False):
        band = "" if missing(row.y_lo_95) else f" ({row.y_lo_95:,.0f}–{row.y_hi_95:,.0f})"
        cells[(row.ds, str(row.model))] = f"{row.y_hat:,.0f}{band}"
    targets = sorted(rows["ds"].unique())
    table = Table(
        headers=["Date", *models],
        rows=[[_day(ds), *(cells.get((ds, m), NOTHING) for m in models)] for ds in targets],
        numeric=[False, *([True] * len(models))],
    )
    return [Heading(3, f"Forecasts from cutoff {_day(cutoff)} (95% interval)"), table]


def _horizons_label(max_h: Any) -> str:
    """``h=1..H`` for the pooled columns, from the largest ``h`` among metrics rows (if any)."""
    return f"h=1..{int(max_h)}" if not missing(max_h) and max_h > 0 else "all h"


def _leaderboard_table(rows: pd.DataFrame, alerted: set[tuple[str, str]], all_h: str) -> Table:
    columns: list[Column] = [
        ("Rank", "rank_all", _rank), ("Rank h=1", "rank_h1", _rank),
        ("MAE h=1", "mae_h1", _boardings), ("MAPE h=1", "mape_h1", _percent), ("vs ref h=1", "rel_mae_h1", _ratio),
        (f"MAE {all_h}", "mae_all", _boardings), (f"MAPE {all_h}", "mape_all", _percent),
        (f"vs ref {all_h}", "rel_mae_all", _ratio), ("Bias", "bias_all", _signed),
        ("Cov. 80%", "coverage_80_all", _share), ("Cov. 95%", "coverage_95_all", _share),
        (f"WIS {all_h}", "wis_all", _boardings), ("WIS skill", "wis_skill_all", _ratio),
        ("Scored", "count_all", _count), ("Pending", "pending_all", _count),
    ]  # fmt: skip
    body, classes = [], []
    for row in rows.itertuples(index=False):
        flagged = (row.unique_id, row.model) in alerted
        label = _model_label(str(row.model), row.is_reference) + (" (coverage alert)" if flagged else "")
        body.append([_rank(row.rank_all), f"{ALERT_MARK} {label}" if flagged else label, *row_cells(row, columns[1:])])
        classes.append("alert" if flagged else "reference" if row.is_reference else "")
    headers = [columns[0][0], "Model", *(title for title, _, _ in columns[1:])]
    numeric = [True, False, *([True] * (len(columns) - 1))]
    return Table(headers, body, numeric, classes)


def _aggregate_table(board: pd.DataFrame, all_h: str) -> Table:
    columns: list[Column] = [("Series", "series_all", _count)]
    for suffix, label in (("h1", "h=1"), ("all", all_h)):
        columns += [
            (f"MAE {label} mean", f"mae_mean_{suffix}", _boardings), (f"MAE {label} wtd", f"mae_weighted_{suffix}", _boardings),
            (f"MAPE {label} mean", f"mape_mean_{suffix}", _percent), (f"WAPE {label}", f"wape_{suffix}", _percent),
            (f"vs ref {label}", f"rel_mae_{suffix}", _ratio),
        ]  # fmt: skip
    columns.append(("Scored", "count_all", _count))
    body = [[_model_label(str(row.model), row.is_reference), *row_cells(row, columns)] for row in board.itertuples(index=False)]
    classes = ["reference" if flag else "" for flag in board["is_reference"]]
    return Table(["Model", *(title for title, _, _ in columns)], body, [False, *([True] * len(columns))], classes)


def _extremes_table(extremes: pd.DataFrame, model: str, alerted: set[tuple[str, str]]) -> Table:
    """Worst and best series side by side, ``#`` 1 being the worst and the best."""
    sides = [extremes[extremes["side"] == side].reset_index(drop=True) for side in ("worst", "best")]
    body = []
    for index in range(max(len(side) for side in sides)):
        cells = [str(index + 1)]
        for side in sides:
            if index < len(side):
                row = side.iloc[index]
                mark = f"{ALERT_MARK} " if (row["unique_id"], model) in alerted else ""
                cells += [mark + str(row["unique_id"]), _percent(row["mape"]), _boardings(row["mae"]), _boardings(row["level"])]
            else:
                cells += [NOTHING] * 4
        body.append(cells)
    headers = ["#", *(f"{side} {column}" for side in ("Worst", "Best") for column in ("series", "MAPE", "MAE", "volume"))]
    return Table(headers, body, [True, *([False, True, True, True] * 2)])


def _model_label(model: str, is_reference: bool) -> str:
    return f"{model} (reference)" if is_reference else model


# --- small formatting helpers ---------------------------------------------------------------


_rank, _count, _boardings = formatter("{:d}"), formatter("{:,d}"), formatter("{:,.0f}")
_signed, _percent, _ratio, _share = formatter("{:+,.0f}"), formatter("{:.1f}%"), formatter("{:.2f}"), formatter("{:.0%}")


def _day(value: pd.Timestamp | str) -> str:
    return pd.Timestamp(value).date().isoformat()


def _window_span(window_rows: pd.DataFrame) -> str:
    if window_rows.empty:
        return ""
    return f" (targets {_day(window_rows['window_start'].iloc[0])} to {_day(window_rows['window_end'].iloc[0])})"
