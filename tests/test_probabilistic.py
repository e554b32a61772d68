"""Proper scores (issue 21): pinball loss and WIS computed by hand, the WIS = 2 x mean pinball
identity, coverage and widths, skill against the naive, and the leaderboard's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import QUANTILE_COLUMNS, QUANTILES
from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.probabilistic import interval_score, pinball_loss, weighted_interval_score
from tasks.core.evaluation.scoring import leaderboard, range_window, score_forecasts

CUTOFF = pd.Timestamp("2024-03-01")
WINDOW = range_window("2024-03-02", "2024-03-03")
# One forecast distribution for both rows: its nine quantiles, q_025 .. q_975.
MODEL_Q = [70.0, 75.0, 80.0, 90.0, 100.0, 110.0, 120.0, 125.0, 130.0]
NAIVE_Q = [40.0, 50.0, 60.0, 80.0, 100.0, 120.0, 140.0, 150.0, 160.0]
ACTUALS = {"2024-03-02": 104.0, "2024-03-03": 140.0}


def contract_rows(model: str, quantiles: list[float]) -> pd.DataFrame:
    """Two rows (h = 1, 2) of one model, their bands and median those of ``quantiles``."""
    q = dict(zip(QUANTILE_COLUMNS, quantiles))
    return pd.DataFrame(
        {
            "unique_id": "bus", "cutoff": CUTOFF, "ds": CUTOFF + pd.to_timedelta([1, 2], unit="D"),
            "h": np.array([1, 2], dtype=np.int64), "model": model, "y_hat": q["q_500"],
            "y_lo_80": q["q_100"], "y_hi_80": q["q_900"], "y_lo_95": q["q_025"], "y_hi_95": q["q_975"],
            "model_version": "v1", **q,
        }
    )  # fmt: skip


def actuals() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "bus", "ds": pd.to_datetime(list(ACTUALS)), "y": list(ACTUALS.values())})


def pooled(metrics: pd.DataFrame, model: str) -> pd.Series:
    return metrics[(metrics["model"] == model) & (metrics["h"] == ALL_HORIZONS)].iloc[0]


def test_pinball_and_wis_of_two_rows_match_the_hand_computation():
    # Row 1, y = 104, inside every band. Pinball per quantile (tau * (y - q) below y, (1 - tau) *
    # (q - y) above): .025*34 = .85, .05*29 = 1.45, .1*24 = 2.4, .25*14 = 3.5, .5*4 = 2,
    # .25*6 = 1.5, .1*16 = 1.6, .05*21 = 1.05, .025*26 = .65: sum 15.
    # WIS by the interval formula: (0.5*|104 - 100| + .25*20 + .1*40 + .05*50 + .025*60) / 4.5
    # = (2 + 5 + 4 + 2.5 + 1.5) / 4.5 = 15 / 4.5.
    # Row 2, y = 140, above every band: pinball .025*70 = 1.75, .05*65 = 3.25, .1*60 = 6,
    # .25*50 = 12.5, .5*40 = 20, .75*30 = 22.5, .9*20 = 18, .95*15 = 14.25, .975*10 = 9.75: sum 108.
    # WIS: 0.5*40 = 20; IS_50 = 20 + 4*30 = 140 (x .25 = 35); IS_80 = 40 + 10*20 = 240 (x .1 = 24);
    # IS_90 = 50 + 20*15 = 350 (x .05 = 17.5); IS_95 = 60 + 40*10 = 460 (x .025 = 11.5): 108 / 4.5 = 24.
    y = np.array(list(ACTUALS.values()))
    q = np.array(MODEL_Q)
    losses = np.array([[pinball_loss(v, q[j], tau) for j, tau in enumerate(QUANTILES)] for v in y])
    np.testing.assert_allclose(losses.sum(axis=1), [15.0, 108.0])
    np.testing.assert_allclose(losses[:, 4], [2.0, 20.0])  # the median's: half the absolute error
    lower = {50: q[3], 80: q[2], 90: q[1], 95: q[0]}
    upper = {50: q[5], 80: q[6], 90: q[7], 95: q[8]}
    np.testing.assert_allclose(weighted_interval_score(y, q[4], lower, upper), [15.0 / 4.5, 24.0])
    np.testing.assert_allclose(interval_score(140.0, 80.0, 120.0, 80), 240.0)

    metrics = score_forecasts(contract_rows("ridge", MODEL_Q), actuals(), "2024-03-03", [WINDOW])
    row = pooled(metrics, "ridge")
    assert row["quantile_count"] == 2
    assert row["wis"] == pytest.approx((15.0 / 4.5 + 24.0) / 2)
    assert row["pinball"] == pytest.approx((15.0 + 108.0) / 18)
    assert row["pinball_500"] == pytest.approx(11.0) and row["pinball_975"] == pytest.approx((0.65 + 9.75) / 2)
    assert row["coverage_50"] == 0.5 and row["coverage_90"] == 0.5
    assert row["width_80"] == 40.0 and row["width_95"] == 60.0
    per_h = metrics[(metrics["model"] == "ridge") & (metrics["h"] == 2)].iloc[0]
    assert per_h["wis"] == pytest.approx(24.0)


def test_wis_is_twice_the_mean_pinball_with_the_median_weighted_half():
    """(alpha/2) IS_alpha = pinball(alpha/2, l) + pinball(1 - alpha/2, u) and |y - m| / 2 =
    pinball(1/2, m), so with w_0 = 1/2, w_k = alpha_k / 2 and the 1 / (K + 1/2) normalisation,
    WIS = sum of the 2K + 1 pinball losses / (K + 1/2) = 2 x their mean. Checked for K = 4 (the
    contract's nine quantiles) and K = 2 (the 80/95 bands of files stored before them)."""
    rng = np.random.default_rng(21)
    n = 500
    y = rng.normal(1000.0, 300.0, n)
    quantiles = np.sort(rng.normal(1000.0, 300.0, (n, 9)), axis=1)
    centre = quantiles[:, 4]
    levels = {95: (0, 8), 90: (1, 7), 80: (2, 6), 50: (3, 5)}
    wis = weighted_interval_score(
        y, centre, {lv: quantiles[:, i] for lv, (i, _) in levels.items()}, {lv: quantiles[:, j] for lv, (_, j) in levels.items()}
    )
    pinball = np.column_stack([pinball_loss(y, quantiles[:, j], tau) for j, tau in enumerate(QUANTILES)])
    np.testing.assert_allclose(wis, 2.0 * pinball.mean(axis=1), rtol=1e-12)

    two = weighted_interval_score(y, centre, {80: quantiles[:, 2], 95: quantiles[:, 0]}, {80: quantiles[:, 6], 95: quantiles[:, 8]})
    kept = [0, 2, 4, 6, 8]
    np.testing.assert_allclose(two, 2.0 * pinball[:, kept].mean(axis=1), rtol=1e-12)


def test_metrics_table_shows_the_identity_and_the_skill_against_the_naive():
    # The naive's pinball sums, by hand as above: y = 104: 1.6 + 2.7 + 4.4 + 6 + 2 + 4 + 3.6 +
    # 2.3 + 1.4 = 28; y = 140: 2.5 + 4.5 + 8 + 15 + 20 + 15 + 0 + .5 + .5 = 66. Skill of the
    # model: 1 - (15 + 108) / (28 + 66) (the 2/9 factor cancels).
    forecasts = pd.concat([contract_rows("ridge", MODEL_Q), contract_rows("naive", NAIVE_Q)], ignore_index=True)
    metrics = score_forecasts(forecasts, actuals(), "2024-03-03", [WINDOW])
    ridge, naive = pooled(metrics, "ridge"), pooled(metrics, "naive")
    assert naive["wis"] == pytest.approx(2.0 * (28.0 + 66.0) / 18)
    assert ridge["wis_skill"] == pytest.approx(1.0 - 123.0 / 94.0) and naive["wis_skill"] == 0.0
    scored = metrics[metrics["quantile_count"] > 0]
    np.testing.assert_allclose(scored["wis"], 2.0 * scored["pinball"], rtol=1e-12)

    board = leaderboard(metrics, window=WINDOW.name)
    ridge_row = board[board["model"] == "ridge"].iloc[0]
    assert ridge_row["wis_all"] == pytest.approx(ridge["wis"]) and ridge_row["wis_skill_all"] == pytest.approx(ridge["wis_skill"])
    assert ridge_row["coverage_50_all"] == 0.5 and ridge_row["width_95_all"] == 60.0


def test_skill_counts_only_the_targets_both_models_forecast():
    # The naive forecast only h = 1 from the model's cutoff (row 1): the model's skill is over
    # that row alone. Its h = 2 forecast from the day before targets a day in the window too,
    # but another cutoff's forecast is not the same target (as forecast at the same time).
    naive = contract_rows("naive", NAIVE_Q).iloc[:1]
    earlier = contract_rows("naive", NAIVE_Q).iloc[1:].assign(cutoff=CUTOFF - pd.Timedelta(days=1), ds=CUTOFF + pd.Timedelta(days=1))
    forecasts = pd.concat([contract_rows("ridge", MODEL_Q), naive, earlier], ignore_index=True)
    metrics = score_forecasts(forecasts, actuals(), "2024-03-03", [WINDOW])
    assert pooled(metrics, "ridge")["wis_skill"] == pytest.approx(1.0 - 15.0 / 28.0)


def test_rows_without_the_full_quantile_set_are_not_scored_for_wis():
    # A file stored before the quantiles: bands but no q columns. MAE and 80/95 coverage as
    # before, no WIS, width from the bands.
    old = contract_rows("ridge", MODEL_Q).drop(columns=list(QUANTILE_COLUMNS))
    partial = contract_rows("sarima", MODEL_Q).assign(q_250=np.nan)
    metrics = score_forecasts(pd.concat([old, partial], ignore_index=True), actuals(), "2024-03-03", [WINDOW])
    for model in ("ridge", "sarima"):
        row = pooled(metrics, model)
        assert row["count"] == 2 and row["quantile_count"] == 0
        assert np.isnan(row["wis"]) and np.isnan(row["pinball"]) and np.isnan(row["wis_skill"])
        assert row["mae"] == pytest.approx((4.0 + 40.0) / 2) and row["coverage_80"] == 0.5
        assert row["width_80"] == 40.0
    assert np.isnan(pooled(metrics, "ridge")["coverage_50"]) and pooled(metrics, "sarima")["coverage_90"] == 0.5
