"""The report's fan charts and calibration plot: the tables that feed them, exactly, and the
sections they make."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.forecasts import QUANTILE_COLUMNS
from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.plots import calibration_png, fan_chart_png
from tasks.core.evaluation.uncertainty import calibration_points, fan_bands, fan_choice

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVAL = pd.Timestamp("2024-04-30")
LEVELS = (50, 80, 90, 95)
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

