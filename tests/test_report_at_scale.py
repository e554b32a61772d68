"""The report with many series: bus and rail keep their sections, every other series is aggregated.

Synthetic series with known errors: series i has a constant actual ``L_i`` over the window and
each model misses it by a known percentage ``p`` (by model, series and horizon), so every
aggregate is a short sum written out in the test. The 80 % band is ±15 % of the forecast: it
holds the actual where ``p`` is small, so the coverage alert fires on the series with large ones.
"""

from __future__ import annotations

import base64
import re
import time

import numpy as np
import pandas as pd
import pytest

from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.aggregate import aggregate_leaderboard, series_extremes, series_scores
from tasks.core.evaluation.report import ALERT_MARK, render_report
from tasks.core.evaluation.alerts import DEFAULT_COVERAGE_THRESHOLD, coverage_alerts
from tasks.core.evaluation.scoring import Window, score_forecasts

EVAL = pd.Timestamp("2024-04-30")
WINDOW = Window("last_28", EVAL - pd.Timedelta(days=27), EVAL)
FIRST_CUTOFF = pd.Timestamp("2024-03-25")  # some targets fall before the window: they must not count
MODELS = ("naive", "sarima", "ridge", "lstm", "ensemble")  # statistical ×3, rnn, combination
LSTM_SERIES = 30  # lstm forecasts only the first 30 other series: its aggregates cover those


def other_ids(n: int) -> list[str]:
    routes = [f"route:{k}" for k in range(1, n // 2 + 1)]
    return routes + [f"station:{40000 + 10 * k}" for k in range(n - len(routes))]


def level(index: int) -> float:
    return 1000.0 * (index + 1)


def pct_error(model: str, index: int, h: int, n: int) -> float:
    """The percentage error of ``model`` on other series ``index`` at horizon ``h``: distinct
    per series, so the worst and best lists have no ties."""
    base = {"naive": 10.0, "sarima": 6.0, "ridge": 8.0, "lstm": 12.0, "ensemble": 5.0}[model]
    spread = {"naive": (index * 7) % n, "sarima": (index * 11) % n, "ridge": index, "lstm": n - 1 - index, "ensemble": index}
    return base + spread[model] * 0.5 + (h - 1) * 2.0


def build(n_other: int, horizons: tuple[int, ...] = (1, 2)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts (contract columns) and long actuals for bus, rail and ``n_other`` other series."""
    ids = other_ids(n_other)
    dates = pd.date_range(FIRST_CUTOFF, EVAL)
    actual_frames, forecast_frames = [], []
    cutoffs = dates[:-1]
    for index, unique_id in enumerate(["bus", "rail", *ids]):
        system = unique_id in ("bus", "rail")
        base = (600_000.0 if unique_id == "bus" else 300_000.0) if system else level(index - 2)
        # Before the window the actual is five times the level: it must not reach the volume weight.
        y = np.where(dates < WINDOW.start, 5 * base, base)
        actual_frames.append(pd.DataFrame({"unique_id": unique_id, "ds": dates, "y": y}))
        by_day = pd.Series(y, index=dates)
        for model in MODELS:
            if model == "lstm" and not system and index - 2 >= LSTM_SERIES:
                continue
            for h in horizons:
                ds = cutoffs + pd.Timedelta(days=h)
                keep = ds <= EVAL
                truth = by_day.reindex(ds[keep]).to_numpy()
                p = 3.0 if system else pct_error(model, index - 2, h, n_other)
                sign = np.where(np.arange(keep.sum()) % 2 == 0, 1.0, -1.0)
                y_hat = truth * (1 + sign * p / 100.0)
                forecast_frames.append(
                    pd.DataFrame(
                        {
                            "unique_id": unique_id, "cutoff": cutoffs[keep], "ds": ds[keep], "h": np.int64(h),
                            "model": model, "y_hat": y_hat, "y_lo_80": y_hat * 0.85, "y_hi_80": y_hat * 1.15,
                            "y_lo_95": y_hat * 0.9, "y_hi_95": y_hat * 1.1, "model_version": "v1", "run_id": "r1",
                            "created_at": pd.Timestamp("2024-05-01", tz="UTC"),
                        }
                    )  # fmt: skip
                )
    forecasts = pd.concat(forecast_frames, ignore_index=True)
    return forecasts, pd.concat(actual_frames, ignore_index=True)


def expected_aggregate(model: str, h: int, n_other: int) -> dict[str, float]:
    """The aggregate of the module docstring of tasks.core.evaluation.aggregate, written out by hand."""
    indices = range(LSTM_SERIES if model == "lstm" else n_other)
    horizons = (1, 2) if h == ALL_HORIZONS else (h,)
    # Each horizon scores the same 28 targets per series, so pooled MAPE is the mean over h.
    mape = {i: sum(pct_error(model, i, k, n_other) for k in horizons) / len(horizons) for i in indices}
    mae = {i: mape[i] / 100.0 * level(i) for i in indices}
    ref_mae = {i: sum(pct_error("naive", i, k, n_other) for k in horizons) / len(horizons) / 100.0 * level(i) for i in indices}
    return {
        "series": len(indices),
        "count": 28 * len(horizons) * len(indices),
        "mae_mean": sum(mae.values()) / len(indices),
        "mae_weighted": sum(level(i) * mae[i] for i in indices) / sum(level(i) for i in indices),
        "mape_mean": sum(mape.values()) / len(indices),
        # |error| sums to 28 * len(horizons) * MAE_i per series; actuals to 28 * len(horizons) * L_i.
        "wape": 100.0 * sum(mae.values()) / sum(level(i) for i in indices),
        "rel_mae": sum(level(i) * mae[i] for i in indices) / sum(level(i) * ref_mae[i] for i in indices),
    }


N_OTHER = 40


@pytest.fixture(scope="module")
def inputs():
    forecasts, actuals = build(N_OTHER)
    metrics = score_forecasts(forecasts, actuals, EVAL)
    return metrics, forecasts, actuals


@pytest.fixture(scope="module")
def report(inputs):
    metrics, forecasts, actuals = inputs
    alerts = coverage_alerts(forecasts, actuals, EVAL)
    return render_report(metrics, forecasts, actuals, run_date="2024-05-01", eval_date=EVAL, alerts=alerts)


def test_bus_and_rail_keep_their_sections_and_no_other_series_gets_one(report):
    headings = re.findall(r"^## (.+)$", report.markdown, flags=re.M)
    stations = sum(unique_id.startswith("station:") for unique_id in other_ids(N_OTHER))
    assert headings == ["Alerts", "Series bus", "Series rail", "Calibration", f"All other series ({N_OTHER})", f"Stations ({stations})"]
    assert "route:" not in "".join(name for name in report.images)
    bus = report.markdown.split("## Series bus")[1].split("## ")[0]
    assert len([line for line in bus.splitlines() if line.startswith("| ") and "Model" not in line]) == len(MODELS)


def test_series_scores_are_the_metrics_tables_numbers(inputs):
    metrics, forecasts, actuals = inputs
    scores = series_scores(forecasts, actuals, WINDOW)
    assert set(scores["unique_id"]) == set(other_ids(N_OTHER)) and set(scores["h"]) == {1, ALL_HORIZONS}
    table = metrics[metrics["window"] == "last_28"].merge(scores, on=["unique_id", "model", "h"], suffixes=("", "_agg"))
    assert len(table) == len(scores)
    for column in ("count", "mae", "mape"):
        assert (table[column] == table[f"{column}_agg"]).all(), column  # bit for bit
    assert scores.set_index(["unique_id"])["level"].groupby(level=0).first().to_dict() == {
        unique_id: level(i) for i, unique_id in enumerate(other_ids(N_OTHER))
    }


@pytest.mark.parametrize("model", MODELS)
def test_aggregate_numbers_equal_the_hand_computed_ones(inputs, model):
    _, forecasts, actuals = inputs
    board = aggregate_leaderboard(series_scores(forecasts, actuals, WINDOW)).set_index("model")
    for suffix, h in (("h1", 1), ("all", ALL_HORIZONS)):
        expected = expected_aggregate(model, h, N_OTHER)
        got = board.loc[model]
        assert (got[f"series_{suffix}"], got[f"count_{suffix}"]) == (expected["series"], expected["count"])
        for name in ("mae_mean", "mae_weighted", "mape_mean", "wape", "rel_mae"):
            assert got[f"{name}_{suffix}"] == pytest.approx(expected[name], rel=1e-12), (name, suffix)
    assert board.loc[model, "is_reference"] == (model == "naive")


def test_aggregate_table_in_the_report_shows_the_weighted_numbers(report):
    section = report.markdown.split("## All other series")[1]
    expected = expected_aggregate("sarima", ALL_HORIZONS, N_OTHER)
    line = next(line for line in section.splitlines() if line.startswith("| sarima |"))
    assert f"| {expected['mae_weighted']:,.0f} |" in line and f"| {expected['wape']:.1f}% |" in line
    assert "| naive (reference) |" in section and "MAE h=1..2 wtd" in section and "WAPE h=1" in section
    rows = {row["model"]: row for row in report.aggregate_rows}
    assert set(rows) == set(MODELS)
    assert rows["ensemble"]["rel_mae_all"] == round(expected_aggregate("ensemble", ALL_HORIZONS, N_OTHER)["rel_mae"], 3)


@pytest.mark.parametrize("model", MODELS)
def test_worst_and_best_series_are_the_right_ids_in_order(inputs, report, model):
    _, forecasts, actuals = inputs
    n = LSTM_SERIES if model == "lstm" else N_OTHER
    pooled = {uid: (pct_error(model, i, 1, N_OTHER) + pct_error(model, i, 2, N_OTHER)) / 2 for i, uid in enumerate(other_ids(N_OTHER)[:n])}
    worst = sorted(pooled, key=lambda uid: -pooled[uid])[:10]
    best = sorted(pooled, key=lambda uid: pooled[uid])[:10]
    extremes = series_extremes(series_scores(forecasts, actuals, WINDOW))
    mine = extremes[extremes["model"] == model]
    assert list(mine.loc[mine["side"] == "worst", "unique_id"]) == worst
    assert list(mine.loc[mine["side"] == "best", "unique_id"]) == best
    assert list(mine.loc[mine["side"] == "worst", "rank"]) == list(range(1, 11))
    table = report.markdown.split(f"### {model}: worst and best series by MAPE h=1..2")[1].split("###")[0]
    lines = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    cells = [[cell.strip().removeprefix(ALERT_MARK).strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [row[1] for row in cells] == worst and [row[5] for row in cells] == best
    assert cells[0][2] == f"{pooled[worst[0]]:.1f}%"


def test_one_chart_per_model_family_and_every_image_linked_and_embedded(report):
    family_charts = sorted(name for name in report.images if name.startswith("mape_by_series_"))
    assert family_charts == ["mape_by_series_combination.png", "mape_by_series_rnn.png", "mape_by_series_statistical.png"]
    assert set(report.images) - set(family_charts) == {
        "forecasts_bus.png", "forecasts_rail.png", "mae_by_horizon_bus.png", "mae_by_horizon_rail.png",
        "fan_bus.png", "fan_rail.png", "calibration.png",
    }  # fmt: skip
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.markdown)
    assert sorted(linked) == sorted(report.images)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in re.findall(r'<img src="([^"]+)"', report.html)}
    assert embedded == set(report.images.values())
    assert "![" not in report.artifact_markdown and "## All other series (40)" in report.artifact_markdown


def test_markdown_and_html_show_the_same_tables(report):
    markdown_rows = [line for line in report.markdown.splitlines() if re.match(r"\| (?!-)", line)]
    assert report.html.count("<tr") == len(markdown_rows)
    assert report.html.count("<h3>") == len(re.findall(r"^### ", report.markdown, flags=re.M)) == len(MODELS) + 1 + 4  # + the station section's board, extremes, size groups, map


def test_alerts_on_other_series_are_one_line_per_model(inputs, report):
    _, forecasts, actuals = inputs
    alerts = coverage_alerts(forecasts, actuals, EVAL)
    others = [a for a in alerts if a.unique_id not in ("bus", "rail")]
    other_pairs = forecasts.loc[~forecasts["unique_id"].isin(["bus", "rail"]), ["unique_id", "model"]].drop_duplicates()
    assert 0 < len(others) < len(other_pairs), "the large errors' series alert, not every series"
    assert not [a for a in alerts if a.unique_id in ("bus", "rail")]  # 3 % errors: inside a ±15 % band
    alert_section = report.markdown.split("## Alerts")[1].split("## ")[0]
    bullets = [line for line in alert_section.splitlines() if line.startswith("- ")]
    per_model = {a.model for a in others}
    assert len(bullets) == len(per_model)
    for model in per_model:
        mine = sorted((a for a in others if a.model == model), key=lambda a: (a.coverage, a.unique_id))
        line = next(b for b in bullets if b.startswith(f"- **{ALERT_MARK} {model}: "))
        worst = f"(worst: {mine[0].unique_id} {mine[0].coverage:.0%}"
        rule = f"the 80% band held less than {DEFAULT_COVERAGE_THRESHOLD:.0%} of the last 14 days' actuals"
        assert f"{rule} on {len(mine)} other series {worst}" in line


def test_few_series_keep_one_section_each(inputs):
    metrics, forecasts, actuals = inputs
    few = ["bus", "rail", *other_ids(N_OTHER)[:3]]
    rendered = render_report(
        metrics[metrics["unique_id"].isin(few)], forecasts[forecasts["unique_id"].isin(few)], actuals,
        run_date="2024-05-01", eval_date=EVAL,
    )  # fmt: skip
    headings = re.findall(r"^## (.+)$", rendered.markdown, flags=re.M)
    assert headings == ["Alerts", *(f"Series {s}" for s in sorted(few)), "Calibration"]
    assert rendered.aggregate_rows == [] and not any(name.startswith("mape_by_series") for name in rendered.images)
    at_scale = render_report(
        metrics[metrics["unique_id"].isin(few)], forecasts[forecasts["unique_id"].isin(few)], actuals,
        run_date="2024-05-01", eval_date=EVAL, max_series_sections=2,
    )  # fmt: skip
    assert re.findall(r"^## (.+)$", at_scale.markdown, flags=re.M) == ["Alerts", "Series bus", "Series rail", "Calibration", "All other series (3)"]


def test_without_other_series_the_report_is_unchanged(inputs):
    metrics, forecasts, actuals = inputs
    system = ["bus", "rail"]
    args = (metrics[metrics["unique_id"].isin(system)], forecasts[forecasts["unique_id"].isin(system)], actuals)
    default = render_report(*args, run_date="2024-05-01", eval_date=EVAL)
    assert render_report(*args, run_date="2024-05-01", eval_date=EVAL, max_series_sections=0) == default
    assert "All other series" not in default.markdown and default.aggregate_rows == []


def test_nothing_scored_yet_and_forecasts_short_of_the_window_are_said(inputs):
    metrics, forecasts, actuals = inputs
    empty = render_report(metrics.iloc[:0], forecasts, actuals, run_date="2024-05-01", eval_date=EVAL)
    assert "## All other series (40)\n\nNo forecasts scored in window last_28 yet." in empty.markdown
    recent = forecasts[forecasts["cutoff"] >= EVAL - pd.Timedelta(days=10)]
    short = render_report(metrics, recent, actuals, run_date="2024-05-01", eval_date=EVAL)
    assert re.search(r"> The aggregate covers [\d,]+ of the [\d,]+ scored forecasts", short.markdown)


def test_zero_actuals_count_in_wape_not_in_mape():
    window = Window("last_7", pd.Timestamp("2024-03-07"), pd.Timestamp("2024-03-08"))
    actuals = pd.DataFrame({"unique_id": ["route:1", "route:1"], "ds": pd.to_datetime(["2024-03-07", "2024-03-08"]), "y": [0.0, 200.0]})
    forecasts, _ = build(2)
    forecasts = forecasts.iloc[:2].assign(
        unique_id="route:1", model="naive", h=np.int64(1), cutoff=pd.to_datetime(["2024-03-06", "2024-03-07"]),
        ds=pd.to_datetime(["2024-03-07", "2024-03-08"]), y_hat=[30.0, 180.0],
    )  # fmt: skip
    board = aggregate_leaderboard(series_scores(forecasts, actuals, window))
    assert board.loc[0, "mape_mean_h1"] == pytest.approx(10.0)  # only the 200 target: 20 / 200
    assert board.loc[0, "wape_h1"] == pytest.approx(100.0 * (30 + 20) / 200)
    assert board.loc[0, "mae_weighted_h1"] == pytest.approx(25.0) and board.loc[0, "rel_mae_h1"] == pytest.approx(1.0)


def test_report_for_277_series_renders(capsys):
    forecasts, actuals = build(275)
    metrics = score_forecasts(forecasts, actuals, EVAL)
    started = time.perf_counter()
    rendered = render_report(metrics, forecasts, actuals, run_date="2024-05-01", eval_date=EVAL, alerts=coverage_alerts(forecasts, actuals, EVAL))
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nrender_report, 277 series × {len(MODELS)} models, {len(forecasts):,d} forecasts: {elapsed:.2f} s")
    assert "## All other series (275)" in rendered.markdown and len(rendered.images) == 10
    assert rendered.markdown.count("\n## ") == 6  # alerts, bus, rail, calibration, all other series, stations


def test_the_aggregate_without_the_reference_model_has_no_ratio():
    """A run without the reference model (a sarima-only backfill over many series) still renders."""
    from tasks.core.evaluation.aggregate import aggregate_leaderboard

    scores = pd.DataFrame(
        {
            "unique_id": ["route:1", "route:2"], "model": "sarima", "h": 0, "mae": [10.0, 20.0], "mape": [1.0, 2.0],
            "level": [100.0, 200.0], "abs_error": [10.0, 20.0], "abs_actual": [100.0, 200.0], "count": 1,
        }
    ).astype({"unique_id": "string"})
    scores = pd.concat([scores, scores.assign(h=1)], ignore_index=True)
    board = aggregate_leaderboard(scores, reference_model="naive")
    assert board["rel_mae_all"].isna().all() and board["mae_weighted_all"].tolist() == [50.0 / 3.0]
