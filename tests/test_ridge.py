"""ridge: exact on a pure weekly pattern, sane intervals, picklable, and no leakage."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import EngineForecastSchema
from tasks.core.features.direct import HISTORY_FOR_BASELINES, DirectFeatures
from tasks.core.models.ridge import RidgeForecaster, fit_huber_ridge
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

WEEKLY_PATTERN = np.array([700.0, 710.0, 720.0, 730.0, 690.0, 400.0, 300.0]) * 1000
START = pd.Timestamp("2016-01-04")  # a Monday


def expected_level(index: pd.DatetimeIndex) -> np.ndarray:
    """The weekly pattern, with Christmas and July 4 at a third of it."""
    holiday = ((index.month == 12) & (index.day == 25)) | ((index.month == 7) & (index.day == 4))
    return np.where(holiday, 1 / 3, 1.0) * WEEKLY_PATTERN[index.day_of_week]


def weekly_history(days: int = 1200, noise: float = 0.03, seed: int = 5) -> pd.DataFrame:
    """:func:`expected_level` times log-normal noise."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=days, freq="D", name="ds")
    rail = expected_level(index) * np.exp(rng.normal(0, noise, days))
    return pd.DataFrame({"rail": rail, "bus": rail * 1.2, "day_type": "W"}, index=index)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return weekly_history()


def test_a_noiseless_weekly_pattern_with_holidays_is_forecast_almost_exactly():
    """Least squares (no Huber: with no noise every holiday would count as an outlier). Not to
    1e-9: the penalty shrinks the holidays' flags a little, and the intercept takes up the rest
    of their effect. The windows end on different weekdays, one just before July 4."""
    history = weekly_history(noise=0.0)
    for days in (900, 901, 905):
        window = history.iloc[:days]
        forecast = RidgeForecaster(huber=0.0, penalty=1.0).fit(window, "rail").forecast(window, horizon=14)
        future = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=14)
        expected = expected_level(future)
        ordinary = expected == WEEKLY_PATTERN[future.day_of_week]
        np.testing.assert_allclose(forecast.mean[ordinary], expected[ordinary], rtol=5e-4)
        np.testing.assert_allclose(forecast.mean[~ordinary], expected[~ordinary], rtol=0.03)


def test_a_known_holiday_effect_is_learned(history):
    """Christmas at a third of its weekday: the model must forecast it far below a weekday."""
    cutoff = pd.Timestamp("2018-12-20")
    window = history.loc[:cutoff]
    forecast = RidgeForecaster().fit(window, "rail").forecast(window, horizon=14)
    christmas = (pd.Timestamp("2018-12-25") - cutoff).days - 1
    assert forecast.mean[christmas] == pytest.approx(WEEKLY_PATTERN[1] / 3, rel=0.1)  # a Tuesday
    assert forecast.mean[christmas - 1] == pytest.approx(WEEKLY_PATTERN[0], rel=0.1)


def test_intervals_are_nested_contain_the_mean_and_cover_the_noise(history):
    cutoffs = history.index[700:860:10]
    out = historical_forecasts(history, RidgeForecaster(), ["rail"], cutoffs, horizon=14, window=TrainingWindow.rolling(700))
    EngineForecastSchema.validate(out, lazy=True)
    assert (out["y_lo_95"] <= out["y_lo_80"]).all() and (out["y_lo_80"] <= out["y_hat"]).all()
    assert (out["y_hat"] <= out["y_hi_80"]).all() and (out["y_hi_80"] <= out["y_hi_95"]).all()
    actual = history["rail"].reindex(out["ds"]).to_numpy()
    inside = ((actual >= out["y_lo_80"]) & (actual <= out["y_hi_80"])).mean()
    assert 0.65 <= inside <= 0.95  # 3% log noise: an 80% interval must be neither empty nor huge


def test_values_after_the_cutoff_cannot_change_the_forecast(history):
    cutoff = history.index[800]
    tampered = history.copy()
    after = tampered.index > cutoff
    for column in ("rail", "bus"):
        tampered.loc[after, column] = np.random.default_rng(0).normal(3e6, 1e6, after.sum())
    forecaster = RidgeForecaster()
    kwargs = dict(unique_ids=["rail", "bus"], cutoffs=[cutoff], horizon=14, window=TrainingWindow.rolling(730))
    clean = historical_forecasts(history, forecaster, **kwargs)
    dirty = historical_forecasts(tampered, forecaster, **kwargs)
    pd.testing.assert_frame_equal(clean, dirty, check_exact=True)


@pytest.mark.parametrize("broken", [False, True])
def test_features_at_an_anchor_only_read_the_past(history, broken: bool):
    """The builder itself: every row for anchor a is the same whatever follows a, for every h.

    Whether the week's shape after a break applies is a property of the whole window, decided
    from the data up to its end (in a fit or a forecast: the cutoff; the test above changes
    everything after it), so here it is held fixed: off for the calm series, on where a level
    shift before the anchor puts it on whatever follows."""
    features = DirectFeatures() if broken else DirectFeatures(weekday_shape_weeks=0)
    values = history["rail"].to_numpy() * np.where(np.arange(len(history)) >= 500, 0.5 if broken else 1.0, 1.0)
    anchor = 750
    tampered = values.copy()
    tampered[anchor + 1 :] *= np.random.default_rng(1).uniform(0.2, 5.0, len(values) - anchor - 1)
    clean = features.prepare(values, history.index[0], horizon=0, unique_id="rail")
    dirty = features.prepare(tampered, history.index[0], horizon=0, unique_id="rail")
    for h in range(1, 15):
        x_clean, base_clean = features.design(clean, np.array([anchor]), h)
        x_dirty, base_dirty = features.design(dirty, np.array([anchor]), h)
        np.testing.assert_array_equal(x_clean, x_dirty)
        np.testing.assert_array_equal(base_clean, base_dirty)
        assert x_clean.shape == (1, features.n_columns())
    assert (clean.weekday_shape is not None) == (dirty.weekday_shape is not None) == broken


def test_huber_downweights_an_outlier_that_least_squares_follows():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 1))
    y = 0.5 * X[:, 0] + rng.normal(0, 0.01, 200)
    y[0] += 50.0
    robust = fit_huber_ridge(X, y, penalty=0.0, huber=1.5)
    plain = fit_huber_ridge(X, y, penalty=0.0, huber=0.0)
    slope = lambda model: model.coefficients[1] / model.scale[0]  # noqa: E731
    assert abs(slope(robust) - 0.5) < 0.01 < abs(slope(plain) - 0.5)


def test_fitted_model_pickles_and_its_version_tracks_the_fit(history):
    window = history.iloc[:800]
    fitted = RidgeForecaster().fit(window, "rail")
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.forecast(window, 14).mean, fitted.forecast(window, 14).mean)
    assert RidgeForecaster().fit(window, "rail").version == fitted.version and len(fitted.version) == 12
    assert RidgeForecaster().fit(history.iloc[:801], "rail").version != fitted.version
    assert RidgeForecaster(penalty=5.0).fit(window, "rail").version != fitted.version


def test_horizon_and_window_limits_are_clear_errors(history):
    fitted = RidgeForecaster(max_horizon=7).fit(history.iloc[:400], "rail")
    assert fitted.forecast(history.iloc[:400], horizon=7).mean.shape == (7,)
    with pytest.raises(ValueError, match="horizons 1..7"):
        fitted.forecast(history.iloc[:400], horizon=8)
    with pytest.raises(ValueError, match="usable rows"):
        RidgeForecaster().fit(history.iloc[: HISTORY_FOR_BASELINES + 20], "rail")


def test_a_short_window_still_forecasts_without_last_year(history):
    """The engine's default 182-day window has no year-ago days: those regressors are zero."""
    window = history.iloc[600:782]
    forecast = RidgeForecaster().fit(window, "bus").forecast(window, horizon=14)
    assert np.all(np.isfinite(forecast.mean)) and np.all(forecast.lower[95] < forecast.upper[95])


def test_with_a_publication_lag_the_flow_step_fits_the_extra_steps_instead_of_falling_back(history):
    """Issue 19: with a lag of N the engine asks for N + 14 steps from the data's end; ridge, fitted
    for 14, would raise and be replaced by the seasonal naive. The flows' walk-forward step fits it
    for N + 14 steps, so every row is ridge's own, and its steps N + 1.. are those of a fit from
    the same data end."""
    from tasks.core.models.catalog import SarimaOptions
    from tasks.core.models.fallback import fallbacks
    from tasks.forecast import _walk_forward

    cutoff, window = history.index[900], TrainingWindow.rolling(800)
    lagged = _walk_forward(history, "ridge", ["rail"], [cutoff], 14, window, 1, SarimaOptions(), publication_lag=3)
    assert fallbacks(lagged) == [] and len(lagged) == 14
    from_data_end = RidgeForecaster(max_horizon=17).fit(history.loc[: cutoff - pd.Timedelta(days=3)].iloc[-800:], "rail")
    expected = from_data_end.forecast(history.loc[: cutoff - pd.Timedelta(days=3)].iloc[-800:], 17).mean[3:]
    # Equal up to rounding: the two paths hand numpy differently laid-out arrays (BLAS may sum
    # in another order), a few units in the last place.
    np.testing.assert_allclose(lagged["y_hat"].to_numpy(), expected, rtol=1e-12)


def station_history(opened: str = "2017-08-31", end: str = "2019-09-15") -> pd.DataFrame:
    """A station that opened on ``opened``: zeros before, three test-ride days (7, 45 and 96
    rides), then about 10,000 rides a weekday."""
    days = pd.date_range("2012-01-01", end, freq="D", name="ds")
    level = np.exp(np.log(10_000) + np.array([0.0, 0.02, 0.03, 0.02, 0.0, -0.6, -1.0])[days.day_of_week])
    rides = level * np.random.default_rng(2).lognormal(0, 0.03, len(days))
    start = pd.Timestamp(opened)
    rides = np.where(days < start - pd.Timedelta(days=3), 0.0, rides)
    for offset, value in zip((3, 2, 1), (7.0, 45.0, 96.0)):
        rides[days == start - pd.Timedelta(days=offset)] = value
    return pd.DataFrame({"station:41700": rides}, index=days)


def test_a_young_station_is_not_extrapolated_from_its_test_ride_days():
    """Two years after opening, the two-year-ago references are the test-ride days: a feature far
    outside what the model was trained on. Forecasts stay at the station's level (before the
    columns were held to their training range: up to 9,018,058 rides for ~10,000 a day)."""
    history = station_history()
    cutoff = history.index[-1]
    forecasts = historical_forecasts(history, RidgeForecaster(), ["station:41700"], [cutoff], 14, TrainingWindow.rolling(2557))
    assert not forecasts["model_version"].str.startswith("fallback").any()
    recent_max = history["station:41700"].iloc[-28:].max()
    assert forecasts["y_hat"].max() < 1.5 * recent_max
    assert forecasts["y_hat"].min() > 0


def test_a_closed_station_is_forecast_to_stay_closed_not_by_a_fallback():
    history = station_history(end="2021-11-30")
    history.loc["2021-10-01":, "station:41700"] = 0.0
    cutoff = history.index[-1]
    forecasts = historical_forecasts(history, RidgeForecaster(), ["station:41700"], [cutoff], 14, TrainingWindow.rolling(2557))
    assert (forecasts["y_hat"] == 0).all() and (forecasts["y_hi_95"] == 0).all()
    assert not forecasts["model_version"].str.startswith("fallback").any()


def test_a_closed_station_that_still_records_a_few_entries_is_forecast_to_stay_closed():
    """Berwyn closed for its rebuild on 2021-05-16 and recorded 0-3 entries a day for weeks
    after (staff, test rides): with one such day in its last week ridge took it for open and
    forecast its old ~900 a day at 2021-05-30 (backtest)."""
    history = station_history(end="2021-11-30")
    history.loc["2021-10-01":, "station:41700"] = 0.0
    history.loc["2021-11-24", "station:41700"] = 1.0
    history.loc["2021-11-27", "station:41700"] = 3.0
    cutoff = history.index[-1]
    forecasts = historical_forecasts(history, RidgeForecaster(), ["station:41700"], [cutoff], 14, TrainingWindow.rolling(2557))
    assert (forecasts["y_hat"] == 0).all()
    assert not forecasts["model_version"].str.startswith("fallback").any()


def test_a_station_reopening_after_months_closed_is_forecast_at_its_old_level_not_by_a_fallback():
    """Three days after a five-month closure most weekdays have not been seen for eight weeks:
    their last known level stands in (before: no baseline, a non-finite forecast, a fallback)."""
    history = station_history(opened="2012-02-01", end="2013-10-22")
    history.loc["2013-05-20":"2013-10-19", "station:41700"] = 0.0
    cutoff = history.index[-1]
    forecasts = historical_forecasts(history, RidgeForecaster(), ["station:41700"], [cutoff], 14, TrainingWindow.rolling(2557))
    assert not forecasts["model_version"].str.startswith("fallback").any()
    before = history.loc["2013-04-01":"2013-05-19", "station:41700"]
    weekday = forecasts["ds"].dt.day_of_week.to_numpy()
    typical = before.groupby(before.index.day_of_week).median().reindex(weekday).to_numpy()
    assert np.all(np.abs(forecasts["y_hat"].to_numpy() / typical - 1) < 0.25)


def test_a_station_keeps_its_event_days_in_the_baselines_where_a_total_drops_them():
    """A day 0.5 log above its weekday (a ball game) is an outlier for a system total, an
    ordinary day for a station; a day 1.5 log off (a closure) is an outlier for both."""
    values = np.tile(WEEKLY_PATTERN, 12) / 100
    game, closure = 7 * 8 + 5, 7 * 10 + 2
    values[game] *= np.exp(0.5)
    values[closure] *= np.exp(-1.5)
    features = DirectFeatures()
    total = features.prepare(values, START, 0, unique_id="rail")
    station = features.prepare(values, START, 0, unique_id="station:41420")
    assert np.isnan(total.clean[game]) and np.isfinite(station.clean[game])
    assert np.isnan(total.clean[closure]) and np.isnan(station.clean[closure])
    assert np.isclose(station.clean[game], np.log(values[game]))
