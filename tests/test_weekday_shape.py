"""After a level shift the week may change shape (hybrid work after 2020): ridge's weekday-level
regressors then read the weekdays' shape of the last year instead of the one its weekday dummies
learned over years mostly before the break; without a break nothing changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.features.direct import DirectFeatures
from tasks.core.models.ridge import RidgeForecaster
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

BREAK = pd.Timestamp("2020-03-16")
OLD_WEEK = np.array([0.0, 0.02, 0.03, 0.02, -0.03, -0.6, -0.9])
# After the break: Mondays and Fridays of a hybrid week (commuting down, Friday outings up).
NEW_WEEK = np.array([-0.12, 0.02, 0.03, 0.02, 0.15, -0.6, -0.9])


def reshaped_series(shift_at: pd.Timestamp | None = BREAK, end: str = "2021-06-30", seed: int = 3) -> pd.DataFrame:
    days = pd.date_range("2014-01-01", end, freq="D", name="ds")
    rng = np.random.default_rng(seed)
    after = days >= shift_at if shift_at is not None else np.zeros(len(days), dtype=bool)
    week = np.where(after, NEW_WEEK[days.day_of_week], OLD_WEEK[days.day_of_week])
    season = 0.08 * np.sin(2 * np.pi * days.day_of_year / 365.25)
    log_level = np.log(600_000) + week + season + np.where(after, -0.8, 0.0) + rng.normal(0, 0.03, len(days))
    return pd.DataFrame({"rail": np.exp(log_level)}, index=days)


def friday_and_monday_bias(history: pd.DataFrame, features: DirectFeatures, cutoffs: list[pd.Timestamp]) -> tuple[float, float]:
    """Mean log error of ridge's forecasts on Fridays and on Mondays (h = 1..14)."""
    rows = historical_forecasts(history, RidgeForecaster(features=features), ["rail"], cutoffs, 14, TrainingWindow.rolling(2557))
    days = pd.DatetimeIndex(rows["ds"])
    error = np.log(rows["y_hat"].to_numpy() / history["rail"].reindex(days).to_numpy())
    return float(error[days.day_of_week == 4].mean()), float(error[days.day_of_week == 0].mean())


def test_a_year_after_the_break_the_new_weekly_shape_is_forecast():
    history = reshaped_series()
    cutoffs = [BREAK + pd.Timedelta(days=d) for d in (380, 401, 422)]
    shaped = friday_and_monday_bias(history, DirectFeatures(), cutoffs)
    long_run = friday_and_monday_bias(history, DirectFeatures(weekday_shape_weeks=0), cutoffs)
    # Pulled toward the other weekdays through the old shape, Fridays come out low and Mondays high.
    assert long_run[0] < -0.025 and long_run[1] > 0.01, long_run
    assert abs(shaped[0]) < abs(long_run[0]) / 4 and abs(shaped[1]) < abs(long_run[1]) / 4, (shaped, long_run)


def test_without_a_break_the_forecasts_are_those_without_the_rule():
    history = reshaped_series(shift_at=None)
    cutoff = pd.Timestamp("2021-04-01")
    features = DirectFeatures()
    values = history["rail"].loc[:cutoff].to_numpy()
    assert features.prepare(values, history.index[0], 14, unique_id="rail").weekday_shape is None
    run = lambda f: historical_forecasts(history, RidgeForecaster(features=f), ["rail"], [cutoff], 14, TrainingWindow.rolling(2557))  # noqa: E731
    pd.testing.assert_series_equal(run(features)["y_hat"], run(DirectFeatures(weekday_shape_weeks=0))["y_hat"], check_exact=True)
