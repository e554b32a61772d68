"""The coverage alert on hand-made forecasts: exact counts, the threshold, what is left out.

Every actual is 100. A forecast "inside" carries the band [90, 110], one "outside" [150, 160],
so each test decides forecast by forecast what the band held.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.settings import Settings
from schemas.errors import InvalidInput
from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.alerts import coverage_alerts
from tasks.core.evaluation.scoring import score_forecasts, trailing_windows
from tests.test_scoring import forecast_frame

EVAL = pd.Timestamp("2024-03-31")  # window: targets 2024-03-04 .. 03-31
DAY = pd.Timedelta(days=1)
UNPUBLISHED = pd.Timestamp("2024-03-30")  # no actual yet: its forecasts are pending


# The rule as the issue first put it (65 % over 28 days); the default, chosen by backtest, is
# 40 % over 14 days (tasks/core/evaluation/alerts.py). The counting is the same.
ISSUE_RULE = {"threshold": 0.65, "window_days": 28}

def actuals() -> pd.DataFrame:
    dates = [d for d in pd.date_range("2024-02-01", "2024-04-10") if d != UNPUBLISHED]
    return pd.DataFrame(
        {"unique_id": np.repeat(["bus", "rail"], len(dates)), "ds": dates * 2, "y": 100.0}
    )


def records(model: str, targets, horizons=(1,), misses: int = 0, unique_id: str = "bus") -> list[dict]:
    """One forecast per target and horizon; the first ``misses`` of them (targets first) miss."""
    rows = []
    for target in targets:
        for h in horizons:
            inside = len(rows) >= misses
            lo, hi = (90.0, 110.0) if inside else (150.0, 160.0)
            rows.append({"unique_id": unique_id, "model": model, "cutoff": pd.Timestamp(target) - h * DAY, "h": h, "y_hat": 100.0, "lo80": lo, "hi80": hi})
    return rows


def days(first: str, n: int) -> pd.DatetimeIndex:
    return pd.date_range(first, periods=n)


def found(alerts) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {(a.unique_id, a.model): (a.covered, a.scored, a.days) for a in alerts}


def test_an_80_band_holding_64_percent_alerts_and_66_or_65_percent_does_not():
    forecasts = forecast_frame(
        records("at64", days("2024-03-05", 25), horizons=(1, 2), misses=18)  # 32 of 50
        + records("at66", days("2024-03-05", 25), horizons=(1, 2), misses=17)  # 33 of 50
        + records("at65", days("2024-03-05", 20), misses=7)  # 13 of 20: not *fewer* than 65 %
    )
    alerts = coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE)
    assert found(alerts) == {("bus", "at64"): (32, 50, 25)}
    alert = alerts[0]
    assert alert.coverage == pytest.approx(0.64) and alert.threshold == 0.65 and alert.level == 80 and alert.window_days == 28
    assert found(coverage_alerts(forecasts, actuals(), EVAL, window_days=28, threshold=0.67)) == {
        ("bus", "at64"): (32, 50, 25), ("bus", "at65"): (13, 20, 20), ("bus", "at66"): (33, 50, 25),
    }  # fmt: skip


def test_targets_outside_the_window_pending_or_not_forecast_ahead_are_left_out():
    counted = records("m", days("2024-03-05", 20), misses=7)  # 13 of 20 inside: 65 %, on the line
    ignored = [
        *records("m", ["2024-03-03"], misses=1),  # the day before the window
        *records("m", ["2024-04-01", "2024-04-02"], misses=2),  # after the evaluation date
        *records("m", [UNPUBLISHED], horizons=(1, 2, 3), misses=3),  # no actual yet
        *records("m", ["2024-03-28"], horizons=(0, -1), misses=2),  # cutoff on or after the target
    ]
    nan_band = records("m", ["2024-03-26", "2024-03-27"], horizons=(3, 4), misses=4)
    for row in nan_band:
        row["lo80"] = row["hi80"] = np.nan
    forecasts = forecast_frame(counted + ignored + nan_band)
    assert coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE) == []
    # Any of the ignored misses counted would have taken the share below 65 %; the exact counts:
    assert found(coverage_alerts(forecasts, actuals(), EVAL, window_days=28, threshold=1.0)) == {("bus", "m"): (13, 20, 20)}


def test_models_without_bands_and_other_series_keep_their_own_counts():
    point_only = records("point", days("2024-03-04", 28), misses=28)
    for row in point_only:
        row["lo80"] = row["hi80"] = np.nan
    forecasts = forecast_frame(
        point_only
        + records("m", days("2024-03-04", 20), misses=20)
        + records("m", days("2024-03-04", 20), unique_id="rail")
    )
    assert found(coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE)) == {("bus", "m"): (0, 20, 20)}


def test_a_model_needs_fourteen_days_not_fourteen_forecasts():
    forecasts = forecast_frame(
        records("thirteen", days("2024-03-10", 13), horizons=(1, 2, 3, 4, 5), misses=65)
        + records("fourteen", days("2024-03-10", 14), misses=14)
    )
    assert found(coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE)) == {("bus", "fourteen"): (0, 14, 14)}
    assert found(coverage_alerts(forecasts, actuals(), EVAL, min_days=15, **ISSUE_RULE)) == {}
    assert set(found(coverage_alerts(forecasts, actuals(), EVAL, min_days=13, **ISSUE_RULE))) == {("bus", "thirteen"), ("bus", "fourteen")}


def test_the_window_is_the_last_window_days_up_to_the_evaluation_date():
    # Misses on 03-04 .. 03-17 only; the last 14 days held.
    forecasts = forecast_frame(records("m", days("2024-03-04", 28), misses=14))
    assert found(coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE)) == {("bus", "m"): (13, 27, 27)}  # 03-30 pending
    assert coverage_alerts(forecasts, actuals(), EVAL, window_days=14, min_days=7, threshold=1.0) == []
    earlier = coverage_alerts(forecasts, actuals(), pd.Timestamp("2024-03-20"), window_days=14, min_days=7, threshold=0.5)
    assert found(earlier) == {("bus", "m"): (3, 14, 14)}  # targets 03-07 .. 03-20: 03-18 .. 03-20 held


def test_coverage_is_the_metrics_tables_pooled_coverage_80():
    rng = np.random.default_rng(7)
    rows = []
    for target in days("2024-02-20", 45):
        for h in (1, 2, 3):
            centre = 100.0 + rng.normal(0, 15)
            rows.append({"model": "noisy", "cutoff": target - h * DAY, "h": h, "y_hat": centre, "lo80": centre - 15, "hi80": centre + 15})
    forecasts = forecast_frame(rows)
    metrics = score_forecasts(forecasts, actuals(), EVAL, trailing_windows(EVAL, [28]))
    expected = metrics[(metrics["h"] == ALL_HORIZONS) & (metrics["model"] == "noisy")]["coverage_80"].item()
    (alert,) = coverage_alerts(forecasts, actuals(), EVAL, window_days=28, threshold=1.0)
    assert alert.coverage == expected and 0.3 < expected < 0.95


def test_message_and_record():
    forecasts = forecast_frame(records("at64", days("2024-03-05", 25), horizons=(1, 2), misses=18))
    (alert,) = coverage_alerts(forecasts, actuals(), EVAL, **ISSUE_RULE)
    record = json.loads(json.dumps(alert.as_record(), allow_nan=False))
    assert record["eval_date"] == "2024-03-31" and record["covered"] == 32 and record["scored"] == 50 and record["days"] == 25
    assert record["message"] == alert.message
    assert alert.message == (
        "bus/at64: the 80% band held 64% of the last 28 days' actuals (32 of 50 forecasts, 25 days to 2024-03-31), below 65%"
    )


def breaks_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """``(unique_id, start, detected)`` rows in the regime store's layout."""
    frame = pd.DataFrame(rows, columns=["unique_id", "start", "detected"])
    return frame.assign(start=pd.to_datetime(frame["start"]), detected=pd.to_datetime(frame["detected"]), size=-0.5)


def test_after_a_detected_break_the_days_since_it_are_judged_alone():
    # 14-day window 03-18 .. 03-31: ten days held, then misses from 03-28 (03-30 has no actual).
    held_then_missed = records("m", days("2024-03-18", 10)) + records("m", days("2024-03-28", 4), misses=4)
    forecasts = forecast_frame(held_then_missed + [dict(r, unique_id="rail") for r in held_then_missed])
    assert coverage_alerts(forecasts, actuals(), EVAL) == []  # 10 of 13: 77 %
    breaks = breaks_frame(("bus", "2024-03-28", "2024-03-30"))
    (alert,) = coverage_alerts(forecasts, actuals(), EVAL, breaks=breaks)
    assert (alert.unique_id, alert.covered, alert.scored, alert.days) == ("bus", 0, 3, 3)  # rail keeps its window
    assert alert.since_break == pd.Timestamp("2024-03-28")
    assert alert.message == (
        "bus/m: the 80% band held 0% of the 3 days since the level shift of 2024-03-28' actuals "
        "(0 of 3 forecasts, 3 days to 2024-03-31), below 40%"
    )
    assert alert.as_record()["since_break"] == "2024-03-28"
    # Of several breaks in the window the earliest starts it; three scored days are needed.
    two = breaks_frame(("bus", "2024-03-29", "2024-03-31"), ("bus", "2024-03-26", "2024-03-28"))
    assert found(coverage_alerts(forecasts, actuals(), EVAL, threshold=0.5, breaks=two)) == {("bus", "m"): (2, 5, 5)}
    assert coverage_alerts(forecasts, actuals(), EVAL, breaks=breaks, min_days_after_break=4) == []


def test_breaks_not_yet_detected_or_older_than_the_window_change_nothing():
    forecasts = forecast_frame(records("m", days("2024-03-18", 10)) + records("m", days("2024-03-28", 4), misses=4))
    later = breaks_frame(("bus", "2024-03-28", "2024-04-01"))  # detected after the evaluation date
    old = breaks_frame(("bus", "2024-03-17", "2024-03-20"))  # started before the window
    for breaks in (later, old, breaks_frame()):
        assert coverage_alerts(forecasts, actuals(), EVAL, breaks=breaks) == []
        assert found(coverage_alerts(forecasts, actuals(), EVAL, threshold=1.0, min_days=13, breaks=breaks)) == {("bus", "m"): (10, 13, 13)}


def test_nothing_to_score_gives_no_alert_and_a_percentage_is_refused():
    assert coverage_alerts(forecast_frame(records("m", ["2024-01-01"])).iloc[:0], actuals(), EVAL) == []
    with pytest.raises(ValueError, match="share"):
        coverage_alerts(forecast_frame(records("m", ["2024-03-10"])), actuals(), EVAL, window_days=28, threshold=65)


def test_settings_read_the_threshold_and_days_and_refuse_what_could_never_work():
    default = Settings.from_env({})
    assert (default.coverage_alert_threshold, default.coverage_alert_days) == (0.4, 14)  # chosen by backtest
    custom = Settings.from_env({"RIDERSHIP_COVERAGE_ALERT": "0.7", "RIDERSHIP_COVERAGE_ALERT_DAYS": "21"})
    assert (custom.coverage_alert_threshold, custom.coverage_alert_days) == (0.7, 21)
    with pytest.raises(InvalidInput, match="RIDERSHIP_COVERAGE_ALERT='65'"):
        Settings.from_env({"RIDERSHIP_COVERAGE_ALERT": "65"})  # a percentage: every model would alert
    with pytest.raises(InvalidInput, match="RIDERSHIP_COVERAGE_ALERT_DAYS='13'"):
        Settings.from_env({"RIDERSHIP_COVERAGE_ALERT_DAYS": "13"})  # fewer than the 14 days needed to alert
