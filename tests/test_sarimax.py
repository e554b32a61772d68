"""sarimax: equals statsmodels' ARIMA with exog, learns a calendar effect, and no leakage."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima.model import ARIMA

from tasks.core.features.calendar_flags import calendar_features
from tasks.core.models.sarima import SEED_ORDER, SEED_SEASONAL_ORDER, SarimaForecaster
from tasks.core.models.sarimax import SARIMAX_FLAGS, SarimaxForecaster, _estimable_columns, holiday_regressors
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

WEEKLY_PATTERN = np.array([700.0, 710.0, 720.0, 730.0, 690.0, 400.0, 300.0]) * 1000
FLAGS = ("holiday_off_sunday", "christmas_week")


def seasonal_history(start: str = "2019-06-03", days: int = 240, seed: int = 3) -> pd.DataFrame:
    """A weekly pattern plus AR(1) noise; Sunday-service holidays at 40% of their weekday."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days, freq="D", name="ds")
    noise = np.zeros(days)
    shocks = rng.normal(0, 15_000, days)
    for t in range(1, days):
        noise[t] = 0.6 * noise[t - 1] + shocks[t]
    holiday = calendar_features(index, ("holiday_off_sunday",))["holiday_off_sunday"].to_numpy()
    rail = WEEKLY_PATTERN[index.day_of_week] * np.where(holiday > 0, 0.4, 1.0) + noise
    return pd.DataFrame({"rail": rail, "bus": rail * 1.3, "day_type": "W"}, index=index)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return seasonal_history()


@pytest.mark.parametrize("log", [False, True])
def test_forecast_equals_statsmodels_get_forecast_with_exog(history, log):
    """The residual-filter shortcut changes nothing: same parameters, same moments."""
    window = history.iloc[:200]
    forecaster = SarimaxForecaster(flags=FLAGS, log=log)
    fitted = forecaster.fit(window, "rail")
    assert fitted.flags == ("holiday_off_sunday",)  # no Christmas week before the cutoff: left out
    z = window["rail"].to_numpy()
    z = np.log(z) if log else z
    exog = calendar_features(window.index, fitted.flags).to_numpy()
    future = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=14)
    model = ARIMA(z, exog=exog, order=SEED_ORDER, seasonal_order=SEED_SEASONAL_ORDER)
    params = np.concatenate([fitted.beta, fitted.arma_params])
    expected = model.filter(params).get_forecast(14, exog=calendar_features(future, fitted.flags).to_numpy())
    transform = np.exp if log else (lambda x: x)
    forecast = fitted.forecast(window, horizon=14)
    np.testing.assert_allclose(forecast.mean, transform(expected.predicted_mean), rtol=1e-9)
    for level in (80, 95):
        bounds = expected.conf_int(alpha=1 - level / 100)
        np.testing.assert_allclose(forecast.lower[level], transform(bounds[:, 0]), rtol=1e-9)
        np.testing.assert_allclose(forecast.upper[level], transform(bounds[:, 1]), rtol=1e-9)


def test_fitted_parameters_are_statsmodels_own(history):
    window = history.iloc[:200]
    fitted = SarimaxForecaster(flags=("holiday_off_sunday",), log=False).fit(window, "rail")
    exog = calendar_features(window.index, ("holiday_off_sunday",)).to_numpy()
    model = ARIMA(window["rail"].to_numpy(), exog=exog, order=SEED_ORDER, seasonal_order=SEED_SEASONAL_ORDER)
    np.testing.assert_array_equal(np.concatenate([fitted.beta, fitted.arma_params]), model.fit(return_params=True))


def test_a_holiday_in_the_horizon_is_forecast_low_where_sarima_misses_it(history):
    cutoff = pd.Timestamp("2019-11-24")  # Thanksgiving 2019-11-28 is h = 4
    window = history.loc[:cutoff]
    thanksgiving = 3
    with_flags = SarimaxForecaster(flags=("holiday_off_sunday",)).fit(window, "rail").forecast(window, 14)
    without = SarimaForecaster().fit(window, "rail").forecast(window, 14)
    actual = history.loc["2019-11-28", "rail"]
    assert abs(with_flags.mean[thanksgiving] - actual) < 0.25 * abs(without.mean[thanksgiving] - actual)


def test_a_holidays_own_effect_applies_only_where_it_has_sunday_service():
    """July 4, 2019 (a Thursday, Sunday service) was less low than the other holidays: its own
    flag learns a rise. July 4, 2020 fell on a Saturday that kept Saturday service (observed on
    Friday 07-03): a Saturday, not a Saturday plus that rise (bus +99 % in the 2020 backtest)."""
    history = seasonal_history(days=400)
    july_4_2019 = pd.Timestamp("2019-07-04")
    history.loc[july_4_2019, "rail"] *= 1.8  # 72 % of a Thursday, the other holidays 40 %
    flags = ("holiday_off_sunday", "observed_holiday", "independence_day")
    columns = pd.DataFrame(holiday_regressors(pd.DatetimeIndex([july_4_2019, "2020-07-03", "2020-07-04"]), flags), columns=flags)
    assert columns["independence_day"].tolist() == [1.0, 0.0, 0.0]
    assert columns["holiday_off_sunday"].tolist() == [1.0, 1.0, 0.0]
    cutoff = pd.Timestamp("2020-06-30")
    window = history.loc[:cutoff]
    fitted = SarimaxForecaster(flags=flags, log=True).fit(window, "rail")
    assert "independence_day" in fitted.flags and fitted.beta[fitted.flags.index("independence_day")] > 0.4
    forecast = fitted.forecast(window, 14)
    saturday = (pd.Timestamp("2020-07-04") - cutoff).days - 1
    assert forecast.mean[saturday] == pytest.approx(WEEKLY_PATTERN[5], rel=0.1)


@pytest.mark.parametrize("model", ["sarimax", "sarimax_log"])
def test_values_after_the_cutoff_cannot_change_the_forecast(history, model):
    from tasks.core.models.catalog import statistical_forecaster

    cutoff = history.index[199]
    tampered = history.copy()
    after = tampered.index > cutoff
    tampered.loc[after, "rail"] = np.random.default_rng(0).normal(3e6, 1e6, after.sum())
    kwargs = dict(unique_ids=["rail"], cutoffs=[cutoff], horizon=14, window=TrainingWindow.rolling(182))
    clean = historical_forecasts(history, statistical_forecaster(model), **kwargs)
    dirty = historical_forecasts(tampered, statistical_forecaster(model), **kwargs)
    pd.testing.assert_frame_equal(clean, dirty, check_exact=True)
    assert (clean["model"] == model).all()


def test_intervals_nested_pickles_and_version_tracks_the_flags(history):
    window = history.iloc[:200]
    fitted = SarimaxForecaster().fit(window, "rail")
    forecast = pickle.loads(pickle.dumps(fitted)).forecast(window, 14)
    np.testing.assert_array_equal(forecast.mean, fitted.forecast(window, 14).mean)
    assert np.all(forecast.lower[95] < forecast.lower[80]) and np.all(forecast.lower[80] < forecast.mean)
    assert np.all(forecast.mean < forecast.upper[80]) and np.all(forecast.upper[80] < forecast.upper[95])
    assert fitted.version == SarimaxForecaster().fit(window, "rail").version
    assert fitted.version != SarimaxForecaster(flags=("holiday_off_sunday",)).fit(window, "rail").version


def test_sarima_is_untouched_by_sarimax(history):
    """The seed's model keeps its spec, so its versions (a hash of the spec) do not move."""
    assert SarimaForecaster().spec() == {
        "model": "sarima", "order": [1, 0, 0], "seasonal_order": [0, 1, 1, 7], "trend": None, "concentrate_scale": False,
    }  # fmt: skip


def test_a_column_equal_to_a_sum_of_others_is_dropped_and_the_kept_ones_are_full_rank():
    a, b, c = np.eye(6)[:, 0] + np.eye(6)[:, 3], np.eye(6)[:, 1], np.eye(6)[:, 2] + np.eye(6)[:, 4]
    exog = np.column_stack([a, b, a + b, np.zeros(6), c, b, a + b + c])
    observed = np.ones(6, dtype=bool)
    assert _estimable_columns(exog, observed) == [0, 1, 4]  # sums, the zero column and the copy go
    observed[4] = False  # c then occurs on one observed day only: still its own direction
    assert _estimable_columns(exog, observed) == [0, 1, 4]
    observed[2] = False  # ... and on none: dropped, and a + b + c becomes a + b, a sum again
    assert _estimable_columns(exog, observed) == [0, 1]


def test_holiday_off_sunday_as_the_sum_of_each_holidays_flag_is_not_fitted_twice():
    """Issue 19: in the 400 days to 2019-03-01 no Sunday-service holiday fell on a Sunday, so
    ``holiday_off_sunday`` is the sum of each holiday's own flag (and ``observed_holiday``), and
    Christmas Eve + New Year's Eve (both Mondays) are the bridge days: 27 occurring flags of rank
    25. The earlier flag of each dependent set is kept."""
    days = pd.date_range(end="2019-03-01", periods=400, freq="D")
    exog = calendar_features(days, SARIMAX_FLAGS).to_numpy()
    kept = _estimable_columns(exog, np.ones(len(days), dtype=bool))
    occurring = [f for f, column in zip(SARIMAX_FLAGS, exog.T) if column.any()]
    assert len(occurring) == 27 and np.linalg.matrix_rank(exog) == 25
    assert len(kept) == np.linalg.matrix_rank(exog[:, kept]) == 25
    assert sorted(set(occurring) - {SARIMAX_FLAGS[j] for j in kept}) == ["bridge_day", "christmas_day"]


def test_fitted_flags_are_of_full_rank(history):
    fitted = SarimaxForecaster().fit(history, "rail")
    exog = calendar_features(history.index, fitted.flags).to_numpy()
    assert np.linalg.matrix_rank(exog) == len(fitted.flags) == np.linalg.matrix_rank(calendar_features(history.index, SARIMAX_FLAGS))
    assert "holiday_off_sunday" in fitted.flags and "christmas_day" not in fitted.flags
