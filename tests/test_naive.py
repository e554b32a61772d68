"""Seasonal naive: exact values on a weekly pattern, the standard intervals, and no leakage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import EngineForecastSchema
from tasks.core.models.naive import (
    SeasonalNaiveForecaster,
    normal_quantile,
    seasonal_naive_interval_scale,
    seasonal_naive_means,
    seasonal_residual_std,
)
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

WEEKLY_PATTERN = np.array([700.0, 710.0, 720.0, 730.0, 690.0, 400.0, 300.0])  # Mon..Sun


def weekly_history(days: int = 70, slope: float = 0.0) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=days, freq="D", name="ds")  # a Monday
    rail = WEEKLY_PATTERN[index.day_of_week] + slope * np.arange(days)
    return pd.DataFrame({"rail": rail, "bus": 2 * rail, "day_type": "W"}, index=index)


def test_pure_weekly_pattern_is_forecast_exactly_with_zero_width_intervals():
    history = weekly_history()
    forecast = SeasonalNaiveForecaster().fit(history, "rail").forecast(history, horizon=14)
    target_days = history.index[-1] + pd.to_timedelta(np.arange(1, 15), unit="D")
    np.testing.assert_array_equal(forecast.mean, WEEKLY_PATTERN[target_days.day_of_week])
    for level in (80, 95):
        np.testing.assert_array_equal(forecast.lower[level], forecast.mean)
        np.testing.assert_array_equal(forecast.upper[level], forecast.mean)


def test_horizons_beyond_a_week_repeat_the_last_week():
    values = np.arange(20, dtype=np.float64) ** 2
    means = seasonal_naive_means(values, horizon=16)
    np.testing.assert_array_equal(means[:7], values[-7:])
    np.testing.assert_array_equal(means[7:14], values[-7:])
    np.testing.assert_array_equal(means[14:], values[-7:-5])


def test_intervals_are_residual_rms_times_sqrt_of_weeks_ahead():
    slope = 3.0  # every seasonal difference is 7 * 3 = 21
    history = weekly_history(slope=slope)
    fitted = SeasonalNaiveForecaster().fit(history, "rail")
    assert fitted.residual_std == pytest.approx(21.0, rel=1e-12)
    forecast = fitted.forecast(history, horizon=15)
    weeks_ahead = np.ceil(np.arange(1, 16) / 7)
    np.testing.assert_array_equal(seasonal_naive_interval_scale(15), np.sqrt(weeks_ahead))
    for level, z in ((80, 1.2815515655446004), (95, 1.959963984540054)):
        np.testing.assert_allclose(forecast.upper[level] - forecast.mean, z * 21.0 * np.sqrt(weeks_ahead), rtol=1e-12)
        np.testing.assert_allclose(forecast.mean - forecast.lower[level], z * 21.0 * np.sqrt(weeks_ahead), rtol=1e-12)


def test_normal_quantiles():
    assert normal_quantile(80) == pytest.approx(1.2815515655446004, rel=1e-12)
    assert normal_quantile(95) == pytest.approx(1.959963984540054, rel=1e-12)
    with pytest.raises(ValueError):
        normal_quantile(100)


def test_residual_std_skips_missing_days_and_needs_two_residuals():
    values = np.array([1.0, 2, 3, 4, 5, 6, 7, 3, np.nan, 5])
    assert seasonal_residual_std(values) == pytest.approx(2.0)  # residuals 2 and 2; NaN skipped
    assert math.isnan(seasonal_residual_std(np.arange(8, dtype=np.float64)))  # one residual only


def test_too_short_a_window_is_an_error():
    with pytest.raises(ValueError, match="needs 7"):
        SeasonalNaiveForecaster().fit(weekly_history(days=6), "rail")


def test_version_names_the_method_not_the_window():
    a = SeasonalNaiveForecaster().fit(weekly_history(days=30), "rail")
    b = SeasonalNaiveForecaster().fit(weekly_history(days=60, slope=1.0), "bus")
    assert a.version == b.version and len(a.version) == 12
    assert SeasonalNaiveForecaster(season_length=14).fit(weekly_history(), "rail").version != a.version


def test_engine_forecasts_are_the_value_a_week_before_each_target():
    history = weekly_history(days=100, slope=1.0)
    cutoffs = history.index[[40, 41, 60]]
    out = historical_forecasts(history, SeasonalNaiveForecaster(), ["rail", "bus"], cutoffs, horizon=7, window=TrainingWindow.rolling(28))
    week_before = history["rail"].reindex(out["ds"] - pd.Timedelta(days=7)).to_numpy()
    rail = out["unique_id"] == "rail"
    np.testing.assert_array_equal(out.loc[rail, "y_hat"].to_numpy(), week_before[rail.to_numpy()])
    assert (out["model"] == "naive").all()
    EngineForecastSchema.validate(out, lazy=True)


def test_values_after_the_cutoff_cannot_change_the_forecast():
    rng = np.random.default_rng(7)
    history = weekly_history(days=90)
    history["rail"] += rng.normal(0, 25, len(history))
    cutoff = history.index[59]
    tampered = history.copy()
    after = tampered.index > cutoff
    tampered.loc[after, "rail"] = rng.normal(5e6, 1e6, after.sum())
    kwargs = dict(unique_ids=["rail"], cutoffs=[cutoff], horizon=14, window=TrainingWindow.rolling(56))
    clean = historical_forecasts(history, SeasonalNaiveForecaster(), **kwargs)
    dirty = historical_forecasts(tampered, SeasonalNaiveForecaster(), **kwargs)
    pd.testing.assert_frame_equal(clean, dirty, check_exact=True)
