"""Regime changes: level-shift detection, ridge re-anchoring on a new level, the ensemble's
post-break weights, the stored breaks and the alert — and that none of them reads past a cutoff."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from storage import Store
from tasks.core.features.direct import DirectFeatures
from tasks.core.features.calendar_flags import calendar_features
from tasks.core.features.level_shifts import ShiftRule, detect_level_shifts, ordinary_days, regime_alerts, series_breaks
from tasks.core.models.ensemble import Break, EnsembleSpec, ensemble_forecasts, member_weights
from tasks.core.models.ridge import RidgeForecaster
from tasks.core.walk_forward import TrainingWindow, historical_forecasts
from tests.test_ensemble import member_rows
from tests.test_seed_figures import load_history

BREAK = pd.Timestamp("2021-03-10")
SHIFT = -0.6


def weekly_series(start: str = "2015-01-01", end: str = "2021-05-31", seed: int = 3, shift_at: pd.Timestamp | None = BREAK) -> pd.DataFrame:
    """A rail-like series: a weekly shape, a yearly cycle, 4 % noise and a -0.6 log level shift."""
    days = pd.date_range(start, end, freq="D", name="ds")
    rng = np.random.default_rng(seed)
    week = np.array([0.0, 0.02, 0.03, 0.02, -0.03, -0.6, -0.9])[days.day_of_week]
    season = 0.08 * np.sin(2 * np.pi * days.day_of_year / 365.25)
    log_level = np.log(600_000) + week + season + rng.normal(0, 0.04, len(days))
    if shift_at is not None:
        log_level = log_level + np.where(days >= shift_at, SHIFT, 0.0)
    return pd.DataFrame({"rail": np.exp(log_level)}, index=days)


def test_a_level_shift_is_detected_within_five_days_of_the_break():
    breaks = series_breaks(weekly_series(), ["rail"])
    assert len(breaks) == 1
    found = breaks.iloc[0]
    assert BREAK <= found["start"] <= BREAK + pd.Timedelta(days=2)
    assert found["detected"] - BREAK <= pd.Timedelta(days=5)
    assert found["size"] == pytest.approx(SHIFT, abs=0.1)


def test_a_calm_series_has_no_break():
    assert series_breaks(weekly_series(shift_at=None), ["rail"]).empty


def dip(history: pd.DataFrame, column: str, last: pd.Timestamp, days: int) -> pd.DataFrame:
    """``history`` with ``column`` 45 % lower on its ``days`` ordinary days up to ``last`` (a
    holiday in between would not count in a run anyway)."""
    ordinary = history.index[ordinary_days(calendar_features(history.index)) & (history.index <= last)]
    changed = history.copy()
    changed.loc[ordinary[-days:], column] *= 0.55
    return changed


def test_a_break_in_a_system_total_lets_a_three_day_run_of_another_series_count():
    rail_breaks = weekly_series()
    bus = weekly_series(seed=5, shift_at=None)["rail"]
    rail_detected = series_breaks(rail_breaks, ["rail"])["detected"].iloc[0]
    # Three low bus days ending on the day rail's break is detected: a shift of bus too.
    panel = dip(rail_breaks.assign(bus=bus), "bus", rail_detected, 3).loc[:rail_detected]
    found = series_breaks(panel, ["bus"])
    assert len(found) == 1 and found["detected"].iloc[0] == rail_detected
    assert rail_detected - pd.Timedelta(days=3) <= found["start"].iloc[0] < rail_detected
    # Without rail's break (a cold snap of three days in one series) nothing is detected.
    alone = dip(weekly_series(shift_at=None).assign(bus=bus), "bus", rail_detected, 3)
    assert series_breaks(alone, ["bus", "rail"]).empty
    # A confirming break in the other direction does not confirm.
    rising = panel.assign(bus=lambda f: np.where(f["bus"] < bus.reindex(f.index), f["bus"] / 0.55**2, f["bus"]))
    assert series_breaks(rising, ["bus"]).empty


def test_a_station_needs_two_weeks_alone_to_break_where_a_total_needs_four_days():
    """An event (a festival, a homestand) lifts one station for days; the totals' four-day rule
    would re-anchor it on the event. A run long enough, or one a total confirms, still counts."""
    calm = weekly_series(shift_at=None)
    end = pd.Timestamp("2021-05-20")
    festival = dip(calm, "rail", end, 6).loc[:end]  # six ordinary days off by -0.6 log
    station = festival.rename(columns={"rail": "station:40680"})
    assert len(series_breaks(festival, ["rail"])) == 1
    assert series_breaks(station, ["station:40680"]).empty
    lasting = dip(calm, "rail", end, 14).loc[:end].rename(columns={"rail": "station:40680"})
    found = series_breaks(lasting, ["station:40680"])
    assert len(found) == 1 and found["detected"].iloc[0] == end
    # The system's own break still reaches a station within three days.
    rail_breaks = weekly_series()
    detected = series_breaks(rail_breaks, ["rail"])["detected"].iloc[0]
    with_station = dip(rail_breaks.assign(**{"station:40680": calm["rail"]}), "station:40680", detected, 3)
    assert series_breaks(with_station.loc[:detected], ["station:40680"])["detected"].tolist() == [detected]


def test_ridge_forecasts_the_new_level_seven_days_after_the_break():
    history = weekly_series()
    cutoff = BREAK + pd.Timedelta(days=7)
    forecasts = historical_forecasts(history, RidgeForecaster(), ["rail"], [cutoff], 14, TrainingWindow.rolling(2557))
    actual = history["rail"].reindex(forecasts["ds"]).to_numpy()
    relative = np.abs(forecasts["y_hat"].to_numpy() / actual - 1)
    assert relative.max() <= 0.15
    # Without re-anchoring, ridge still forecasts the old level (the defect this guards against).
    old = historical_forecasts(
        history, RidgeForecaster(features=DirectFeatures(level_shifts=None)), ["rail"], [cutoff], 14, TrainingWindow.rolling(2557)
    )
    assert np.median(old["y_hat"].to_numpy() / actual) > 1.4


def test_ridge_sizes_a_young_shift_from_its_latest_weekday():
    """Spring 2020: a week after the break the weekdays had fallen further than the weekends.
    Seen from a Sunday, the detection rule's 3-day median takes the weekend's depth; ridge's
    rule the Friday's, the level of the weekdays it forecasts next."""
    history = weekly_series()
    later = history.index >= BREAK + pd.Timedelta(days=5)
    weekend = history.index.day_of_week >= 5
    history.loc[later, "rail"] *= np.exp(np.where(weekend[later], 0.2, -0.2))
    seen = history.loc[: BREAK + pd.Timedelta(days=11)]  # 2021-03-21, a Sunday
    assert seen.index[-1].day_of_week == 6
    log_values = np.log(seen["rail"].to_numpy())
    ordinary = ordinary_days(calendar_features(seen.index))
    weekday = seen.index.day_of_week.to_numpy()
    detection = detect_level_shifts(log_values, ordinary, ShiftRule(), weekday=weekday).latest()
    ridge_rule = DirectFeatures().level_shifts
    assert ridge_rule is not None and ridge_rule.refine_weekdays and ridge_rule.refine_days == 1
    ridge = detect_level_shifts(log_values, ordinary, ridge_rule, weekday=weekday).latest()
    assert detection is not None and ridge is not None and ridge.start == detection.start
    assert ridge.size == pytest.approx(SHIFT - 0.2, abs=0.08)
    assert detection.size == pytest.approx(SHIFT + 0.2, abs=0.08)
    with pytest.raises(ValueError, match="weekday"):
        detect_level_shifts(log_values, ordinary, ridge_rule)


def test_ridge_bands_widen_while_the_regime_is_young():
    history = weekly_series()
    cutoff = BREAK + pd.Timedelta(days=7)
    window = TrainingWindow.rolling(2557)
    young = historical_forecasts(history, RidgeForecaster(), ["rail"], [cutoff], 14, window)
    calm = historical_forecasts(history, RidgeForecaster(), ["rail"], [cutoff + pd.Timedelta(days=70)], 14, window)
    width = lambda f: np.log(f["y_hi_80"] / f["y_lo_80"]).mean()  # noqa: E731
    assert width(young) > width(calm) + 0.4


def test_a_weekday_that_keeps_falling_in_a_young_regime_is_forecast_at_its_new_level():
    """April 2020: after the break one weekday kept falling, 0.25 log below its four-week
    reference week after week, so the outlier rule rejected each of its days and its baseline
    stayed weeks old (ridge forecast every Wednesday +30 %). Here the Wednesdays drop a further
    0.35 log four weeks after the break (after Holy Week, whose flagged days count for no
    baseline)."""
    history = weekly_series()
    days = history.index
    later_wednesdays = (days >= BREAK + pd.Timedelta(days=28)) & (days.day_of_week == 2)
    history.loc[later_wednesdays, "rail"] *= np.exp(-0.35)
    cutoff = BREAK + pd.Timedelta(days=36)  # the Thursday after the second lower Wednesday
    wednesday = cutoff + pd.Timedelta(days=6)
    window = TrainingWindow.rolling(2557)

    def ratio(features: DirectFeatures) -> float:
        forecasts = historical_forecasts(history, RidgeForecaster(features=features), ["rail"], [cutoff], 14, window)
        return float(forecasts.set_index("ds").loc[wednesday, "y_hat"] / history.loc[wednesday, "rail"])

    # The weekday features still remember the Wednesdays' old place in the week (about +0.19).
    assert ratio(DirectFeatures()) < 1.25
    assert ratio(DirectFeatures(young_baseline_keeps_outliers=False)) > 1.35  # the defect: +0.44


def perturbed_after(history: pd.DataFrame, cutoff: pd.Timestamp, seed: int = 11) -> pd.DataFrame:
    changed = history.copy()
    later = changed.index > cutoff
    changed.loc[later] = changed.loc[later] * np.random.default_rng(seed).uniform(0.2, 3.0, (later.sum(), changed.shape[1]))
    return changed


@pytest.mark.parametrize("days_after_break", [-3, 2, 4, 9])
def test_break_flags_at_a_cutoff_do_not_depend_on_later_values(days_after_break: int):
    history = weekly_series()
    cutoff = BREAK + pd.Timedelta(days=days_after_break)
    seen = lambda h: h[h["detected"] <= cutoff].drop(columns="size").reset_index(drop=True)  # noqa: E731
    truncated = series_breaks(history.loc[:cutoff], ["rail"])
    full = series_breaks(perturbed_after(history, cutoff), ["rail"])
    pd.testing.assert_frame_equal(seen(truncated), seen(full), check_exact=True)
    pd.testing.assert_frame_equal(seen(truncated), truncated.drop(columns="size").reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("days_after_detection", [-1, 0, 3])
def test_confirmed_breaks_and_ridge_at_a_cutoff_do_not_depend_on_later_values(days_after_detection: int):
    rail = weekly_series()
    rail_detected = series_breaks(rail, ["rail"])["detected"].iloc[0]
    panel = dip(rail.assign(bus=weekly_series(seed=5, shift_at=None)["rail"]), "bus", rail_detected, 3)
    cutoff = rail_detected + pd.Timedelta(days=days_after_detection)
    perturbed = perturbed_after(panel, cutoff)
    seen = lambda h: h[h["detected"] <= cutoff].drop(columns="size").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(
        seen(series_breaks(panel.loc[:cutoff], ["bus", "rail"])), seen(series_breaks(perturbed, ["bus", "rail"])), check_exact=True
    )
    run = lambda h: historical_forecasts(h, RidgeForecaster(), ["bus"], [cutoff], 14, TrainingWindow.rolling(2557))  # noqa: E731
    pd.testing.assert_frame_equal(run(panel), run(perturbed), check_exact=True)


def test_ridge_forecast_at_a_cutoff_after_a_break_does_not_depend_on_later_values():
    history = weekly_series()
    cutoff = BREAK + pd.Timedelta(days=9)
    run = lambda h: historical_forecasts(h, RidgeForecaster(), ["rail"], [cutoff], 14, TrainingWindow.rolling(2557))  # noqa: E731
    pd.testing.assert_frame_equal(run(history), run(perturbed_after(history, cutoff)), check_exact=True)


def post_break_members(cutoffs: list[pd.Timestamp], actual_level: float) -> pd.DataFrame:
    """``a`` forecasts the old level, ``b`` the new one, ``naive`` in between."""
    rows = []
    for cutoff in cutoffs:
        rows += [member_rows("a", cutoff, 1000.0, horizon=14), member_rows("b", cutoff, actual_level, horizon=14)]
        rows.append(member_rows("naive", cutoff, (1000.0 + actual_level) / 2, horizon=14))
    return pd.concat(rows, ignore_index=True)


BREAK_START = pd.Timestamp("2024-03-01")


def post_break_case(cutoff_days: int, actual_days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Members' rows for cutoffs up to ``cutoff_days`` after a break to 40 % on ``BREAK_START``,
    the actuals up to ``actual_days`` after it, and the break as detected three days in."""
    day = pd.Timedelta(days=1)
    cutoffs = list(pd.date_range(BREAK_START - 60 * day, BREAK_START + cutoff_days * day, freq="D"))
    days = pd.date_range(BREAK_START - 80 * day, BREAK_START + actual_days * day, freq="D")
    actuals = pd.DataFrame({"unique_id": "rail", "ds": days, "y": np.where(days >= BREAK_START, 400.0, 1000.0)})
    breaks = pd.DataFrame({"unique_id": ["rail"], "start": [BREAK_START], "detected": [BREAK_START + 3 * day], "size": [-0.9]})
    return post_break_members(cutoffs, 400.0), actuals, breaks


def test_after_a_break_weights_move_to_the_member_that_tracks_the_new_level_within_days():
    start = BREAK_START
    stored, actuals, breaks = post_break_case(cutoff_days=6, actual_days=6)
    spec = EnsembleSpec(("a", "b"))
    cutoff = start + pd.Timedelta(days=5)
    known = actuals[actuals["ds"] <= cutoff]
    calm = member_weights(spec, stored, known, "rail", cutoff)
    after = member_weights(spec, stored, known, "rail", cutoff, Break(start, start + pd.Timedelta(days=3)))
    assert calm["a"] > 0.5  # 56 days of matured errors: the old-level member still leads
    assert after["b"] > 0.9 and set(after) == {"a", "b", "naive"}
    combined = ensemble_forecasts(spec, stored, actuals, ["rail"], [cutoff], breaks)
    assert abs(combined["y_hat"].iloc[0] - 401.0) < 30
    assert "naive=" in combined["model_version"].iloc[0]
    # A break detected after the cutoff does not count at it.
    later = breaks.assign(detected=cutoff + pd.Timedelta(days=1))
    before = ensemble_forecasts(spec, stored, actuals, ["rail"], [cutoff], later)
    assert before["model_version"].iloc[0].count("=") == 2


def test_on_the_day_a_break_is_detected_the_re_anchoring_member_carries_the_ensemble():
    stored, actuals, breaks = post_break_case(cutoff_days=6, actual_days=6)
    detected = breaks["detected"].iloc[0]
    known = actuals[actuals["ds"] <= detected]
    latest = Break(BREAK_START, detected)
    # No forecast made since the detection has matured yet: only the re-anchoring member counts.
    assert member_weights(EnsembleSpec(("a", "b"), re_anchoring=("b",)), stored, known, "rail", detected, latest) == {"b": 1.0}
    assert member_weights(EnsembleSpec(("a", "b"), re_anchoring=()), stored, known, "rail", detected, latest) == {"a": 0.5, "b": 0.5}
    # Forecasts made between the start and the detection do not count as post-break evidence.
    day_after = detected + pd.Timedelta(days=1)
    spec = EnsembleSpec(("a", "b"), re_anchoring=("a",), regime_min_scored=2)
    assert member_weights(spec, stored, actuals[actuals["ds"] <= day_after], "rail", day_after, latest) == {"a": 1.0}


def test_the_post_break_rule_holds_for_sixteen_weeks_then_the_calm_rule_returns():
    # The recovery from a shock lasts months: at eight weeks the 56-day calm window still held
    # the break's first weeks, and the naive (the member of last resort) left too early.
    stored, actuals, _ = post_break_case(cutoff_days=120, actual_days=120)
    latest = Break(BREAK_START, BREAK_START + pd.Timedelta(days=3))
    spec = EnsembleSpec(("a", "b"))
    assert (spec.regime_days, spec.regime_lookback_days) == (112, 28)
    for days, members in ((100, {"a", "b", "naive"}), (111, {"a", "b", "naive"}), (112, {"a", "b"}), (120, {"a", "b"})):
        cutoff = BREAK_START + pd.Timedelta(days=days)
        weights = member_weights(spec, stored, actuals[actuals["ds"] <= cutoff], "rail", cutoff, latest)
        assert set(weights) == members, days
        assert weights["b"] > 0.9  # b forecasts the new level either way


def test_ensemble_at_a_cutoff_ignores_later_values_and_breaks_found_later():
    stored, actuals, breaks = post_break_case(cutoff_days=9, actual_days=30)
    cutoff = BREAK_START + pd.Timedelta(days=5)
    spec = EnsembleSpec(("a", "b"))
    reference = ensemble_forecasts(spec, stored, actuals, ["rail"], [cutoff], breaks)
    noisy = actuals.copy()
    noisy.loc[noisy["ds"] > cutoff, "y"] = 5.0
    later_rows = stored[stored["cutoff"] > cutoff].assign(y_hat=1.0)
    changed_store = pd.concat([stored[stored["cutoff"] <= cutoff], later_rows], ignore_index=True)
    later_break = pd.DataFrame({"unique_id": ["rail"], "start": [cutoff], "detected": [cutoff + pd.Timedelta(days=2)], "size": [0.5]})
    again = ensemble_forecasts(spec, changed_store, noisy, ["rail"], [cutoff], pd.concat([breaks, later_break]))
    pd.testing.assert_frame_equal(reference, again, check_exact=True)


def test_alert_lines_name_breaks_detected_in_the_last_week_only():
    breaks = pd.DataFrame(
        {
            "unique_id": ["rail", "bus"],
            "start": pd.to_datetime(["2020-03-13", "2020-01-02"]),
            "detected": pd.to_datetime(["2020-03-17", "2020-01-06"]),
            "size": [-0.66, -0.3],
        }
    )
    assert regime_alerts(breaks, pd.Timestamp("2020-03-16")) == []
    lines = regime_alerts(breaks, pd.Timestamp("2020-03-18"))
    assert lines == ["level shift in rail: -48% from 2020-03-13 (detected 2020-03-17); models re-anchor on the new level"]
    assert regime_alerts(breaks, pd.Timestamp("2020-03-24")) == []


def test_stored_breaks_are_replaced_per_series(storage_root: str):
    store = Store.open(storage_root)
    assert store.regimes.read().empty
    first = series_breaks(weekly_series(), ["rail"])
    store.regimes.write(first, pd.Timestamp("2021-05-31"))
    store.regimes.write(first.assign(unique_id="bus"), pd.Timestamp("2021-05-31"))
    store.regimes.write(first.iloc[:0], pd.Timestamp("2021-06-01"))  # nothing new: both kept
    stored = store.regimes.read()
    assert sorted(stored["unique_id"]) == ["bus", "rail"]
    assert (stored["start"] == first["start"].iloc[0]).all()


@pytest.mark.realdata
def test_real_file_breaks_fire_in_march_2020_and_never_in_2017_to_2019(real_csv: Path):
    history = load_history(real_csv)
    breaks = series_breaks(history.loc[:"2020-06-30"], ["bus", "rail"])
    calm = breaks[(breaks["detected"] >= "2017-01-01") & (breaks["detected"] <= "2019-12-31")]
    assert calm.empty
    for unique_id in ("bus", "rail"):
        first_2020 = breaks[(breaks["unique_id"] == unique_id) & (breaks["detected"] >= "2020-01-01")]["detected"].min()
        assert pd.Timestamp("2020-03-12") <= first_2020 <= pd.Timestamp("2020-03-20")
    # No alert on any nightly run date of 2017-2019.
    for run_date in pd.date_range("2017-01-01", "2019-12-31", freq="D"):
        assert regime_alerts(breaks, run_date - pd.Timedelta(days=1)) == []
