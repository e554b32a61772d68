"""Calibration of the bands (tasks/core/calibration.py): the controller's bookkeeping exactly,
the band rescaling, leakage, and that it brings a too-narrow band to its nominal coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import QUANTILE_COLUMNS, interval_quantile_columns
from tasks.core.calibration import (
    CalibrationSpec, apply_offsets, band_offsets, bands_as_forecast, calibrate_pending, raw_name,
)  # fmt: skip
from tasks.core.quantiles import quantiles_from_bands

LEVELS = (50, 80, 90, 95)
# Half-widths of a unit normal's central intervals: bands of a model that believes sigma = 1.
Z = {50: 0.6745, 80: 1.2816, 90: 1.6449, 95: 1.9600}


def issued_rows(cutoffs, horizon: int, unique_id: str = "bus", y_hat: float = 100.0, sigma: float = 1.0, version: str = "m1") -> pd.DataFrame:
    """Forecasts of a constant ``y_hat`` with normal bands of scale ``sigma``, at every cutoff."""
    frames = []
    for cutoff in pd.DatetimeIndex(cutoffs):
        h = np.arange(1, horizon + 1)
        median = np.full(horizon, y_hat)
        lower = {lv: median - Z[lv] * sigma for lv in LEVELS}
        upper = {lv: median + Z[lv] * sigma for lv in LEVELS}
        frame = pd.DataFrame({
            "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.to_timedelta(h, unit="D"), "h": h,
            "model": "m", "y_hat": median, "model_version": version,
            "y_lo_80": lower[80], "y_hi_80": upper[80], "y_lo_95": lower[95], "y_hi_95": upper[95],
        })  # fmt: skip
        for column, values in quantiles_from_bands(median, lower, upper).items():
            frame[column] = values
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def long_actuals(values: pd.Series, unique_id: str = "bus") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": unique_id, "ds": values.index, "y": values.to_numpy()})


def test_offsets_count_each_matured_forecast_once_weighted_by_the_days_between_cutoffs():
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="3D")  # every 3 days
    issued = issued_rows(cutoffs, horizon=2)
    days = pd.date_range("2024-01-01", "2024-01-20")
    # 100 everywhere (inside every band) except 2024-01-05, far above every band.
    actuals = pd.Series(100.0, index=days)
    actuals[pd.Timestamp("2024-01-05")] = 110.0
    spec = CalibrationSpec(gain=0.01, lookback_days=365)
    cutoff = pd.Timestamp("2024-01-10")
    offsets = band_offsets(issued, actuals, cutoff, spec)
    # Matured by 01-10 from cutoffs before it: 01-01 (h1 01-02, h2 01-03), 01-04 (01-05, 01-06),
    # 01-07 (01-08, 01-09): six forecasts, one miss (01-05), each weighted 3 days.
    for level in LEVELS:
        alpha = 1 - level / 100
        assert offsets[level] == pytest.approx(0.01 * 3 * (1 - 6 * alpha))


def test_only_forecasts_issued_before_the_cutoff_and_actuals_up_to_it_count():
    cutoffs = pd.date_range("2024-01-01", periods=6, freq="D")
    issued = issued_rows(cutoffs, horizon=3)
    actuals = pd.Series(200.0, index=pd.date_range("2024-01-01", "2024-01-20"))  # every forecast misses
    spec = CalibrationSpec(gain=1.0, max_offset=10.0)
    offsets = band_offsets(issued, actuals, pd.Timestamp("2024-01-03"), spec)
    # Issued before 01-03: cutoffs 01-01 (targets 01-02, 01-03 matured) and 01-02 (01-03): 3 misses.
    assert offsets[80] == pytest.approx(3 * (1 - 0.2))
    # With a publication lag of 1 day only targets up to 01-02 count: one.
    assert band_offsets(issued, actuals, pd.Timestamp("2024-01-03"), spec, pd.Timestamp("2024-01-02"))[80] == pytest.approx(0.8)
    # The lookback drops targets older than it.
    short = CalibrationSpec(gain=1.0, lookback_days=1, max_offset=10.0)
    assert band_offsets(issued, actuals, pd.Timestamp("2024-01-03"), short)[80] == pytest.approx(2 * 0.8)


def test_apply_offsets_scales_half_widths_keeps_the_median_and_nests_the_bands():
    rows = issued_rows(["2024-01-01"], horizon=2)
    out = apply_offsets(rows, {50: np.log(2.0), 80: 0.0, 90: 0.0, 95: 0.0})
    np.testing.assert_allclose(out["y_hat"], rows["y_hat"])
    # The 50 % band doubles (0.6745 * 2 = 1.35 > the 80 % band's 1.28): the 80 % band is pushed
    # out to contain it, so the quantiles stay monotone; the 95 % one (1.96) already does.
    np.testing.assert_allclose(out["q_250"], 100 - 2 * Z[50])
    np.testing.assert_allclose(out["y_lo_80"], 100 - 2 * Z[50])
    np.testing.assert_allclose(out["q_100"], out["y_lo_80"])
    np.testing.assert_allclose(out["y_hi_95"], 100 + Z[95])
    values = out[list(QUANTILE_COLUMNS)].to_numpy()
    assert (np.diff(values, axis=1) >= 0).all()
    assert (out["model_version"] == rows["model_version"]).all()  # the registry's id, untouched
    narrowed = apply_offsets(rows, {lv: np.log(0.5) for lv in LEVELS})
    np.testing.assert_allclose(narrowed["y_hi_95"], 100 + 0.5 * Z[95])


def test_a_level_without_bands_stays_without():
    rows = issued_rows(["2024-01-01"], horizon=2)
    for column in interval_quantile_columns(90):
        rows[column] = np.nan
    out = apply_offsets(rows, {lv: 0.5 for lv in LEVELS})
    assert out["q_050"].isna().all() and out["q_950"].isna().all()
    assert np.isfinite(out["q_025"]).all()


def test_each_cutoff_sees_the_bands_issued_before_it_as_calibrated():
    cutoffs = pd.date_range("2024-01-01", periods=3, freq="D")
    issued = issued_rows(cutoffs, horizon=1)
    # The actual of 01-02 lies 1.5 sigma out: outside the raw 80 % band (1.28), inside it once
    # widened. The first cutoff has nothing matured: raw bands.
    actuals = long_actuals(pd.Series([100.0, 101.5, 100.0], index=pd.date_range("2024-01-01", periods=3)))
    spec = CalibrationSpec(gain=1.0)
    out = calibrate_pending(issued, actuals, cutoffs, spec)[0].set_index("cutoff")
    assert out.loc["2024-01-01", "y_hi_80"] == pytest.approx(100 + Z[80])
    # 01-02: one matured miss of the raw band -> exp(0.8) wider.
    assert out.loc["2024-01-02", "y_hi_80"] == pytest.approx(100 + Z[80] * np.exp(0.8))
    # 01-03: the miss of 01-02 (raw band of cutoff 01-01) and 01-03's actual 100 inside the
    # calibrated band of cutoff 01-02: 0.8 - 0.2.
    assert out.loc["2024-01-03", "y_hi_80"] == pytest.approx(100 + Z[80] * np.exp(0.6))


def test_calibrated_rows_are_not_calibrated_again_and_an_interrupted_run_is_completed():
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="D")
    issued = issued_rows(cutoffs, horizon=2)
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=6)))
    spec = CalibrationSpec(gain=0.1)
    calibrated, raw = calibrate_pending(issued, actuals, cutoffs, spec)
    assert len(calibrated) == len(raw) == 8 and set(raw["model"]) == {raw_name("m")}
    pd.testing.assert_frame_equal(raw.assign(model="m").reset_index(drop=True), issued.reset_index(drop=True))
    # As stored after the run: the calibrated rows and their twins. Nothing is left to do (the
    # first cutoff, with nothing matured, equals its twin; redoing it would change nothing) ...
    stored = pd.concat([calibrated, raw], ignore_index=True)
    assert calibrate_pending(stored, actuals, cutoffs, spec)[0].empty
    # ... but a run stopped after writing the last cutoff's twins, before its calibrated rows,
    # left raw rows equal to their twins: they are calibrated again, to the same bands.
    last = issued["cutoff"] == cutoffs[-1]
    interrupted = pd.concat([calibrated[calibrated["cutoff"] < cutoffs[-1]], issued[last], raw], ignore_index=True)
    redone, _ = calibrate_pending(interrupted, actuals, cutoffs, spec)
    pd.testing.assert_frame_equal(redone.reset_index(drop=True), calibrated[last].reset_index(drop=True))
    # A cutoff forecast again since (another y_hat than its twin's) is calibrated afresh.
    again = issued[last].assign(y_hat=issued.loc[last, "y_hat"] + 1.0)
    reforecast = pd.concat([calibrated[calibrated["cutoff"] < cutoffs[-1]], again, raw], ignore_index=True)
    assert set(calibrate_pending(reforecast, actuals, cutoffs, spec)[0]["cutoff"]) == {cutoffs[-1]}
    assert calibrate_pending(issued, actuals, cutoffs, CalibrationSpec(method="none"))[0].empty


def test_leakage_nothing_after_the_cutoff_changes_its_calibrated_bands():
    cutoffs = pd.date_range("2024-01-01", periods=60, freq="D")
    rng = np.random.default_rng(1)
    days = pd.date_range("2024-01-01", "2024-03-31")
    actuals = pd.Series(100 + 2.0 * rng.standard_normal(len(days)), index=days)
    issued = issued_rows(cutoffs, horizon=7)
    spec = CalibrationSpec(gain=0.05)
    at = pd.Timestamp("2024-02-10")
    base = calibrate_pending(issued, long_actuals(actuals), cutoffs, spec)[0]
    perturbed_actuals = actuals.copy()
    perturbed_actuals[perturbed_actuals.index > at] *= 3.0
    perturbed = issued.copy()
    later = perturbed["cutoff"] > at
    perturbed.loc[later, ["y_lo_80", "y_lo_95", *QUANTILE_COLUMNS]] -= 50.0
    again = calibrate_pending(perturbed, long_actuals(perturbed_actuals), cutoffs, spec)[0]
    pd.testing.assert_frame_equal(
        base[base["cutoff"] <= at].reset_index(drop=True), again[again["cutoff"] <= at].reset_index(drop=True)
    )
    # ... and the perturbation did reach the later cutoffs (the test can fail).
    assert not np.allclose(base.loc[base["cutoff"] > at, "y_hi_80"], again.loc[again["cutoff"] > at, "y_hi_80"])


@pytest.mark.parametrize("true_sigma", [0.5, 2.0])
def test_a_band_of_the_wrong_width_is_brought_to_its_nominal_coverage(true_sigma: float):
    """A model that believes sigma = 1 when the errors have ``true_sigma``: its raw 80 % band holds
    96 % or 38 %; calibrated, it holds 80 % +- 3 over a year of daily forecasts."""
    cutoffs = pd.date_range("2023-01-01", periods=400, freq="D")
    rng = np.random.default_rng(7)
    days = pd.date_range("2023-01-01", periods=420)
    actuals = pd.Series(100 + true_sigma * rng.standard_normal(len(days)), index=days)
    issued = issued_rows(cutoffs, horizon=14)
    calibrated = calibrate_pending(issued, long_actuals(actuals), cutoffs, CalibrationSpec())[0]
    scored = calibrated[calibrated["cutoff"] >= "2023-02-15"].copy()
    scored["y"] = actuals.reindex(pd.DatetimeIndex(scored["ds"])).to_numpy()
    scored = scored.dropna(subset=["y"])
    raw = issued.merge(scored[["cutoff", "h", "y"]], on=["cutoff", "h"])
    for level in (80, 95):
        inside = (scored["y"] >= scored[f"y_lo_{level}"]) & (scored["y"] <= scored[f"y_hi_{level}"])
        raw_inside = (raw["y"] >= raw[f"y_lo_{level}"]) & (raw["y"] <= raw[f"y_hi_{level}"])
        assert abs(raw_inside.mean() - level / 100) > 0.04  # the raw band is off ...
        assert inside.mean() == pytest.approx(level / 100, abs=0.03)  # ... the calibrated one is not


def test_a_model_that_keeps_missing_gets_bands_five_times_wider_not_more():
    cutoffs = pd.date_range("2024-01-01", periods=120, freq="D")
    issued = issued_rows(cutoffs, horizon=7)
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=130)))  # 50 sigma off, always
    calibrated, _ = calibrate_pending(issued, actuals, cutoffs, CalibrationSpec())
    last = calibrated[calibrated["cutoff"] == cutoffs[-1]]
    np.testing.assert_allclose(last["y_hi_95"], 100 + 5 * Z[95])
    # Unbounded, the bands widen until they cover the misses: here about 25 times.
    unbounded, _ = calibrate_pending(issued, actuals, cutoffs, CalibrationSpec(max_offset=50.0))
    assert (unbounded.loc[unbounded["cutoff"] == cutoffs[-1], "y_hi_95"] > 100 + 20 * Z[95]).all()


def test_a_forecast_redone_over_a_twin_without_quantiles_is_calibrated():
    """A store from before the contract's quantiles: rows and @raw twins without them. A rerun
    (``--overwrite``) stores the same points and bands, now with quantiles; the old twin must
    not make them look calibrated (they were left raw: ridge's 2020 bands held 63 %, not 79 %)."""
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="D")
    issued = issued_rows(cutoffs, horizon=2)
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=6)))
    spec = CalibrationSpec(gain=0.1)
    expected, _ = calibrate_pending(issued, actuals, cutoffs, spec)
    old_twins = issued.assign(model=raw_name("m"))
    old_twins[list(QUANTILE_COLUMNS)] = np.nan
    calibrated, raw = calibrate_pending(pd.concat([issued, old_twins], ignore_index=True), actuals, cutoffs, spec)
    pd.testing.assert_frame_equal(calibrated.reset_index(drop=True), expected.reset_index(drop=True))
    assert raw[list(QUANTILE_COLUMNS)].notna().all().all()


def calibrated_store(cutoffs, spec: CalibrationSpec, actuals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's forecasts (2 horizons a cutoff) as a run leaves them: calibrated, with twins."""
    return calibrate_pending(issued_rows(cutoffs, horizon=2), actuals, cutoffs, spec)


def test_a_cutoff_forecast_again_is_calibrated_and_written_whole_when_one_horizon_moved():
    """The store replaces a (cutoff, model, series) file: calibrated rows of only some of a
    cutoff's horizons dropped the others (an ensemble rerun after one member changed kept 1 row
    of 14 at five 2020 cutoffs)."""
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="D")
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=6)))
    spec = CalibrationSpec(gain=0.1)
    calibrated, raw = calibrated_store(cutoffs, spec, actuals)
    last = calibrated["cutoff"] == cutoffs[-1]
    # Same model version, the data moved h = 2's point only: h = 1 is still the calibrated row.
    moved = calibrated[last].copy()
    second = (moved["h"] == 2).to_numpy()
    fresh = issued_rows(cutoffs[-1:], horizon=2).assign(y_hat=lambda f: f["y_hat"] + np.where(f["h"] == 2, 1.0, 0.0))
    moved.iloc[second] = fresh.iloc[second].to_numpy()
    redone, twins = calibrate_pending(pd.concat([calibrated[~last], moved, raw], ignore_index=True), actuals, cutoffs, spec)
    assert sorted(redone["h"]) == [1, 2] and set(redone["cutoff"]) == {cutoffs[-1]} and len(twins) == 2
    h1 = redone.set_index("h").loc[1]
    assert h1["y_hi_80"] == pytest.approx(calibrated[last].set_index("h").loc[1, "y_hi_80"])


def test_a_forecast_of_another_version_with_the_same_point_is_not_taken_for_calibrated():
    """An ensemble forecast again after a member changed keeps its point on most horizons while
    its bands move (the member's version and bands did): same ``y_hat`` as the twin, other bands,
    which alone used to mean "calibrated", so those rows stayed raw."""
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="D")
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=6)))
    spec = CalibrationSpec(gain=0.1)
    calibrated, raw = calibrated_store(cutoffs, spec, actuals)
    last = calibrated["cutoff"] == cutoffs[-1]
    again = issued_rows(cutoffs[-1:], horizon=2, sigma=1.2, version="m2")
    stored = pd.concat([calibrated[~last], again, raw], ignore_index=True)
    redone, _ = calibrate_pending(stored, actuals, cutoffs, spec)
    without_twin = pd.concat([calibrated[~last], again, raw[raw["cutoff"] < cutoffs[-1]]], ignore_index=True)
    expected, _ = calibrate_pending(without_twin, actuals, cutoffs, spec)
    pd.testing.assert_frame_equal(redone.reset_index(drop=True), expected.reset_index(drop=True))
    assert (redone["y_hi_80"] - 100 > 1.2 * Z[80]).all()  # widened from the new bands, not left raw


def test_bands_as_forecast_gives_each_row_the_bands_it_was_forecast_with():
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="D")
    actuals = long_actuals(pd.Series(150.0, index=pd.date_range("2024-01-01", periods=6)))
    calibrated, raw = calibrated_store(cutoffs, CalibrationSpec(gain=0.1), actuals)
    issued = issued_rows(cutoffs, horizon=2)
    as_forecast = bands_as_forecast(pd.concat([calibrated, raw], ignore_index=True))
    assert set(as_forecast["model"]) == {"m"}
    key = ["cutoff", "h"]
    pd.testing.assert_frame_equal(
        as_forecast.sort_values(key).reset_index(drop=True), issued.sort_values(key).reset_index(drop=True), check_like=True
    )
    # A row forecast again since (another point) keeps its own bands; no twins: unchanged.
    moved = calibrated.assign(y_hat=calibrated["y_hat"] + 1.0)
    kept = bands_as_forecast(pd.concat([moved, raw], ignore_index=True))
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), moved.reset_index(drop=True))
    pd.testing.assert_frame_equal(bands_as_forecast(issued), issued)


def break_case():
    """Actuals 100, then 200 from 01-10 (a break detected 01-13); forecasts of 100 until the
    model re-anchors at the detection, of 200 from then on: only the transition misses."""
    cutoffs = pd.date_range("2024-01-01", "2024-01-25", freq="D")
    issued = pd.concat(
        [issued_rows(cutoffs[cutoffs < "2024-01-13"], horizon=3), issued_rows(cutoffs[cutoffs >= "2024-01-13"], horizon=3, y_hat=200.0)],
        ignore_index=True,
    )
    days = pd.date_range("2024-01-01", "2024-01-31")
    actuals = pd.Series(np.where(days < "2024-01-10", 100.0, 200.0), index=days)
    breaks = pd.DataFrame({"unique_id": ["bus"], "start": [pd.Timestamp("2024-01-10")], "detected": [pd.Timestamp("2024-01-13")], "size": [0.69]})
    return cutoffs, issued, actuals, breaks


def test_the_misses_of_forecasts_made_before_a_break_was_detected_for_days_after_it_are_left_out():
    _, issued, actuals, breaks = break_case()
    spec = CalibrationSpec(gain=0.01)
    cutoff = pd.Timestamp("2024-01-20")
    # Matured by 01-20 from cutoffs 01-01..01-19: 54 forecasts. Issued before 01-13 for 01-10 or
    # later: 15, all misses (01-07's h=3; 01-08's h=2, 3; three each from 01-09 .. 01-12).
    assert band_offsets(issued, actuals, cutoff, spec)[80] == pytest.approx(0.01 * (15 * 0.8 - 39 * 0.2))
    assert band_offsets(issued, actuals, cutoff, spec, breaks=breaks)[80] == pytest.approx(0.01 * (-39 * 0.2))
    # A break detected after the data end is not known yet: nothing is left out.
    early = pd.Timestamp("2024-01-12")
    assert band_offsets(issued, actuals, early, spec, breaks=breaks) == band_offsets(issued, actuals, early, spec)


def test_leakage_a_break_detected_after_the_cutoff_changes_nothing_at_it():
    cutoffs, issued, actuals, breaks = break_case()
    spec = CalibrationSpec(gain=0.05)
    at = pd.Timestamp("2024-01-16")
    base = calibrate_pending(issued, long_actuals(actuals), cutoffs, spec, breaks=breaks)[0]
    later_break = pd.DataFrame({"unique_id": ["bus"], "start": [pd.Timestamp("2024-01-17")], "detected": [pd.Timestamp("2024-01-20")], "size": [-1.0]})
    perturbed = actuals.copy()
    perturbed[perturbed.index > at] = 50.0
    again = calibrate_pending(issued, long_actuals(perturbed), cutoffs, spec, breaks=pd.concat([breaks, later_break]))[0]
    pd.testing.assert_frame_equal(
        base[base["cutoff"] <= at].reset_index(drop=True), again[again["cutoff"] <= at].reset_index(drop=True)
    )
    assert not np.allclose(base.loc[base["cutoff"] > at, "y_hi_80"], again.loc[again["cutoff"] > at, "y_hi_80"])
