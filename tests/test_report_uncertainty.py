"""The report's fan charts and calibration plot: the tables that feed them, exactly, and the
sections they make."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import QUANTILE_COLUMNS
from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.plots import calibration_png, fan_chart_png
from tasks.core.evaluation.report import render_report
from tasks.core.evaluation.scoring import leaderboard, score_forecasts
from tasks.core.evaluation.uncertainty import calibration_points, fan_bands, fan_choice

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVAL = pd.Timestamp("2024-04-30")
# The quantile's offset from the median for a spread s: q = y_hat * (1 + s * z), z per column.
Z = dict(zip(QUANTILE_COLUMNS, (-1.0, -0.8, -0.6, -0.3, 0.0, 0.3, 0.6, 0.8, 1.0)))


def forecast_rows(unique_id: str, cutoff: pd.Timestamp, model: str, y_hat: float, *, quantiles: bool, intervals: bool,
                  horizons: tuple[int, ...] = (1, 2, 3), spread: float = 0.1) -> list[dict]:  # fmt: skip
    """Contract rows: the 80/95 % intervals at the z of q_100/q_900 and q_025/q_975, the nine
    quantiles (when ``quantiles``) at their z, all NaN without ``intervals``."""
    rows = []
    for h in horizons:
        value = y_hat + 1000.0 * h
        at = {column: value * (1 + spread * z) for column, z in Z.items()}
        row = {
            "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.Timedelta(days=h), "h": np.int64(h),
            "model": model, "y_hat": value,
            "y_lo_80": at["q_100"], "y_hi_80": at["q_900"], "y_lo_95": at["q_025"], "y_hi_95": at["q_975"],
            "model_version": "v1", "run_id": "r1", "created_at": pd.Timestamp("2024-05-01", tz="UTC"),
            **{column: at[column] if quantiles else np.nan for column in QUANTILE_COLUMNS},
        }  # fmt: skip
        if not intervals:
            row.update({c: np.nan for c in ("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", *QUANTILE_COLUMNS)})
        rows.append(row)
    return rows


def test_fan_bands_read_the_quantiles_nested_around_the_median():
    rows = pd.DataFrame(forecast_rows("bus", EVAL, "ridge", 500_000.0, quantiles=True, intervals=True))
    bands = fan_bands(rows.iloc[::-1])  # any row order in, by date out
    assert list(bands["ds"]) == list(EVAL + pd.to_timedelta([1, 2, 3], unit="D"))
    expected = rows.set_index("h")
    for h, row in bands.set_index("h").iterrows():
        assert row["median"] == expected.loc[h, "q_500"]
        for level, (lo, hi) in {50: ("q_250", "q_750"), 80: ("q_100", "q_900"), 90: ("q_050", "q_950"), 95: ("q_025", "q_975")}.items():
            assert (row[f"lo_{level}"], row[f"hi_{level}"]) == (expected.loc[h, lo], expected.loc[h, hi])
    chain = bands[["lo_95", "lo_90", "lo_80", "lo_50", "median", "hi_50", "hi_80", "hi_90", "hi_95"]].to_numpy()
    assert (np.diff(chain, axis=1) > 0).all()  # strictly nested: each band inside the next


def test_fan_bands_fall_back_to_the_80_and_95_intervals_without_quantiles():
    rows = pd.DataFrame(forecast_rows("bus", EVAL, "sarima", 500_000.0, quantiles=False, intervals=True))
    bands = fan_bands(rows)
    assert bands["lo_80"].tolist() == rows["y_lo_80"].tolist() and bands["hi_95"].tolist() == rows["y_hi_95"].tolist()
    assert bands[["lo_50", "hi_50", "lo_90", "hi_90"]].isna().all().all()
    assert bands["median"].tolist() == rows["y_hat"].tolist()
    # A frame from before the quantile columns existed reads the same.
    assert fan_bands(rows.drop(columns=list(QUANTILE_COLUMNS))).equals(bands)


def test_fan_chart_shows_the_latest_cutoff_of_the_best_ranked_model_with_bands():
    earlier, latest = EVAL - pd.Timedelta(days=1), EVAL
    rows = [
        *forecast_rows("bus", earlier, "sarima", 400_000.0, quantiles=True, intervals=True),
        *forecast_rows("bus", latest, "sarima", 500_000.0, quantiles=True, intervals=True),
        *forecast_rows("bus", latest, "ridge", 510_000.0, quantiles=False, intervals=True),
        *forecast_rows("bus", latest, "rnn", 520_000.0, quantiles=False, intervals=False),
        *forecast_rows("rail", latest, "rnn", 300_000.0, quantiles=False, intervals=False),
    ]
    forecasts = pd.DataFrame(rows)
    # rnn leads the leaderboard but has no bands; ridge is next; sarima third.
    board = pd.DataFrame({"unique_id": "bus", "model": ["rnn", "ridge", "sarima"], "rank_all": pd.array([1, 2, 3], dtype="Int64")})
    assert fan_choice(forecasts, board, "bus", None) == (latest, "ridge")
    assert fan_choice(forecasts, board.assign(rank_all=pd.array([1, 3, 2], dtype="Int64")), "bus", None) == (latest, "sarima")
    # A run's cutoff bounds the choice; unranked models come after ranked ones, by name.
    assert fan_choice(forecasts, board, "bus", earlier) == (earlier, "sarima")
    assert fan_choice(forecasts, board.iloc[:0], "bus", None) == (latest, "ridge")
    assert fan_choice(forecasts, board, "rail", None) == (latest, None)
    assert fan_choice(forecasts, board, "route:9", None) == (None, None)


def test_calibration_points_are_the_metrics_coverage_of_the_pooled_rows():
    metrics = pd.DataFrame(
        {
            "unique_id": ["bus", "bus", "bus", "rail", "rail", "route:9"],
            "model": ["sarima", "sarima", "naive", "sarima", "ridge", "sarima"],
            "h": [ALL_HORIZONS, 1, ALL_HORIZONS, ALL_HORIZONS, ALL_HORIZONS, ALL_HORIZONS],
            "coverage_50": [0.40, 0.11, np.nan, 0.55, np.nan, 0.5],
            "coverage_80": [0.70, 0.12, 0.65, 0.81, np.nan, 0.8],
            "coverage_90": [0.85, 0.13, np.nan, 0.88, np.nan, 0.9],
            "coverage_95": [0.93, 0.14, 0.90, 0.97, np.nan, 0.95],
        }
    )
    points = calibration_points(metrics, ["rail", "bus"])
    expected = [
        ("rail", "sarima", 0.5, 0.55), ("rail", "sarima", 0.8, 0.81), ("rail", "sarima", 0.9, 0.88), ("rail", "sarima", 0.95, 0.97),
        ("bus", "naive", 0.8, 0.65), ("bus", "naive", 0.95, 0.90),
        ("bus", "sarima", 0.5, 0.40), ("bus", "sarima", 0.8, 0.70), ("bus", "sarima", 0.9, 0.85), ("bus", "sarima", 0.95, 0.93),
    ]  # fmt: skip
    assert list(points.itertuples(index=False, name=None)) == expected
    # A metrics frame from before the 50/90 % columns: the 80 and 95 % points only.
    old = calibration_points(metrics.drop(columns=["coverage_50", "coverage_90"]), ["bus"])
    assert sorted(set(old["nominal"])) == [0.8, 0.95] and len(old) == 4


def test_both_charts_are_pngs():
    rows = pd.DataFrame(forecast_rows("bus", EVAL, "ridge", 500_000.0, quantiles=True, intervals=True))
    actuals = pd.DataFrame({"ds": pd.date_range(EVAL - pd.Timedelta(days=27), EVAL + pd.Timedelta(days=2)), "y": 480_000.0})
    assert fan_chart_png(fan_bands(rows), actuals, EVAL, "bus", "#1f77b4", "ridge").startswith(PNG_SIGNATURE)
    points = pd.DataFrame({"unique_id": "bus", "model": "ridge", "nominal": [0.5, 0.8, 0.9, 0.95], "empirical": [0.4, 0.7, 0.85, 0.9]})
    assert calibration_png(points, "coverage", "naive", {"ridge": "#1f77b4"}).startswith(PNG_SIGNATURE)


@pytest.fixture(scope="module")
def inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Four weeks of bus and rail: ridge with quantiles on bus, without on rail (an old file),
    naive with intervals on bus only; rail's naive gives none."""
    dates = pd.date_range(EVAL - pd.Timedelta(days=27), EVAL)
    rng = np.random.default_rng(5)
    actuals = pd.concat(
        pd.DataFrame({"unique_id": uid, "ds": dates, "y": level * (1 + rng.normal(0, 0.08, len(dates)))})
        for uid, level in (("bus", 500_000.0), ("rail", 300_000.0))
    )
    rows = []
    for cutoff in dates:
        for uid, level in (("bus", 500_000.0), ("rail", 300_000.0)):
            rows += forecast_rows(uid, cutoff, "ridge", level, quantiles=uid == "bus", intervals=True)
            rows += forecast_rows(uid, cutoff, "naive", level * 1.05, quantiles=False, intervals=uid == "bus", spread=0.2)
    forecasts = pd.DataFrame(rows)
    return score_forecasts(forecasts[forecasts["ds"] <= EVAL], actuals, EVAL), forecasts, actuals


def test_report_has_a_fan_chart_per_series_and_a_calibration_section(inputs):
    metrics, forecasts, actuals = inputs
    report = render_report(metrics, forecasts, actuals, run_date="2024-05-01", eval_date=EVAL, latest_cutoff=EVAL)
    assert {"fan_bus.png", "fan_rail.png", "calibration.png"} <= set(report.images)
    assert all(report.images[name].startswith(PNG_SIGNATURE) for name in ("fan_bus.png", "fan_rail.png", "calibration.png"))
    headings = re.findall(r"^## (.+)$", report.markdown, flags=re.M)
    assert headings == ["Alerts", "Series bus", "Series rail", "Calibration"]
    bus = report.markdown.split("## Series bus")[1].split("\n## ")[0]
    assert "bus: ridge's forecast from cutoff 2024-04-30" in bus and "(fan_bus.png)" in bus
    assert "median and 50/80/90/95% bands" in bus  # quantiles: four bands
    rail = report.markdown.split("## Series rail")[1].split("\n## ")[0]
    assert "rail: ridge's forecast" in rail and "median and 80/95% bands" in rail  # the fallback: two
    assert "![Calibration, window last_28" in report.markdown and "(calibration.png)" in report.markdown
    assert 'alt="Calibration, window last_28' in report.html


def test_series_without_bands_gets_a_note_instead_of_a_fan_chart(inputs):
    metrics, forecasts, actuals = inputs
    naive = forecasts[forecasts["model"] == "naive"]
    report = render_report(metrics[metrics["model"] == "naive"], naive, actuals, run_date="2024-05-01", eval_date=EVAL)
    assert "fan_bus.png" in report.images and "fan_rail.png" not in report.images
    assert "rail: no fan chart, no model gave prediction bands from cutoff 2024-04-30." in report.markdown
    assert '<p class="note">rail: no fan chart' in report.html


def test_no_interval_scored_gives_a_calibration_note_and_no_plot(inputs):
    metrics, forecasts, actuals = inputs
    coverage = [c for c in metrics.columns if c.startswith("coverage_")]
    report = render_report(metrics.assign(**{c: np.nan for c in coverage}), forecasts, actuals, run_date="2024-05-01", eval_date=EVAL)
    assert "calibration.png" not in report.images
    assert "## Calibration\n\nNo interval forecasts scored in window last_28 yet." in report.markdown


def test_calibration_plot_reads_the_reports_window(inputs):
    """The points drawn are the metrics' pooled coverage in the report's window, not another."""
    metrics, _, _ = inputs
    rows = metrics[(metrics["window"] == "last_7") & (metrics["eval_date"] == EVAL)]
    points = calibration_points(rows, ["bus", "rail"])
    board = leaderboard(metrics, "last_7", eval_date=EVAL).set_index(["unique_id", "model"])
    for row in points[points["nominal"].isin([0.8, 0.95])].itertuples():
        assert row.empirical == board.loc[(row.unique_id, row.model), f"coverage_{round(row.nominal * 100)}_all"]
    assert set(points["model"]) == {"ridge", "naive"} and set(points.loc[points["model"] == "naive", "unique_id"]) == {"bus"}
