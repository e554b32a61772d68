"""SARIMA: the fast path equals statsmodels' plain ``fit()``, intervals are sane, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima.model import ARIMA

from schemas.forecasts import EngineForecastSchema
from tasks.core.models.sarima import SEED_ORDER, SEED_SEASONAL_ORDER, SarimaForecaster, model_version
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

WEEKLY_PATTERN = np.array([700.0, 710.0, 720.0, 730.0, 690.0, 400.0, 300.0]) * 1000


def seasonal_history(days: int = 150, seed: int = 3) -> pd.DataFrame:
    """A weekly pattern plus AR(1) noise, on the scale of CTA rail boardings."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2023-01-02", periods=days, freq="D", name="ds")
    noise = np.zeros(days)
    shocks = rng.normal(0, 20_000, days)
    for t in range(1, days):
        noise[t] = 0.6 * noise[t - 1] + shocks[t]
    rail = WEEKLY_PATTERN[index.day_of_week] + noise
    return pd.DataFrame({"rail": rail, "bus": rail * 1.3, "day_type": "W"}, index=index)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return seasonal_history()


def test_defaults_reproduce_a_plain_statsmodels_fit_on_a_dated_series(history):
    """The speed levers (array input, params-only fit, filter with cov_type none) change nothing."""
    window = history.iloc[:100]
    reference = ARIMA(window["rail"].asfreq("D"), order=SEED_ORDER, seasonal_order=SEED_SEASONAL_ORDER).fit()
    expected = reference.get_forecast(14)
    forecast = SarimaForecaster().fit(window, "rail").forecast(window, horizon=14)
    np.testing.assert_allclose(forecast.mean, expected.predicted_mean.to_numpy(), rtol=1e-9, atol=0)
    for level in (80, 95):
        bounds = expected.conf_int(alpha=1 - level / 100).to_numpy()
        np.testing.assert_allclose(forecast.lower[level], bounds[:, 0], rtol=1e-9)
        np.testing.assert_allclose(forecast.upper[level], bounds[:, 1], rtol=1e-9)


@pytest.mark.parametrize(
    "spec",
    [
        dict(concentrate_scale=True),
        dict(order=(1, 0, 1), seasonal_order=(1, 0, 0, 7), trend="c"),  # constant in the state space
        dict(order=(1, 1, 0), seasonal_order=(0, 0, 1, 7), trend="t"),  # time-varying: get_forecast path
    ],
)
def test_forecast_recursion_equals_get_forecast_for_other_specs(history, spec):
    window = history.iloc[:120]
    forecaster = SarimaForecaster(**spec)
    expected = forecaster.build_model(window["rail"].to_numpy()).fit().get_forecast(10)
    forecast = forecaster.fit(window, "rail").forecast(window, horizon=10)
    np.testing.assert_allclose(forecast.mean, expected.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(forecast.lower[80], expected.conf_int(alpha=0.2)[:, 0], rtol=1e-9)
    np.testing.assert_allclose(forecast.upper[95], expected.conf_int(alpha=0.05)[:, 1], rtol=1e-9)


def test_intervals_are_nested_and_widen_with_the_horizon(history):
    forecast = SarimaForecaster().fit(history, "rail").forecast(history, horizon=21)
    assert forecast.mean.shape == (21,)
    for level in (80, 95):
        assert forecast.lower[level].shape == forecast.upper[level].shape == (21,)
    assert np.all(forecast.lower[95] < forecast.lower[80])
    assert np.all(forecast.lower[80] < forecast.mean)
    assert np.all(forecast.mean < forecast.upper[80])
    assert np.all(forecast.upper[80] < forecast.upper[95])
    width = forecast.upper[95] - forecast.lower[95]
    assert np.all(np.diff(width) >= -1e-6 * width[1:])


def test_engine_output_satisfies_the_contract(history):
    cutoffs = history.index[[90, 91]]
    out = historical_forecasts(history, SarimaForecaster(), ["rail"], cutoffs, horizon=14, window=TrainingWindow.rolling(84))
    assert out.shape == (28, 20)  # the 11 pre-quantile columns and the nine quantiles
    assert (out["model"] == "sarima").all()
    EngineForecastSchema.validate(out, lazy=True)


def test_values_after_the_cutoff_cannot_change_the_forecast(history):
    cutoff = history.index[99]
    tampered = history.copy()
    after = tampered.index > cutoff
    tampered.loc[after, "rail"] = np.random.default_rng(0).normal(3e6, 1e6, after.sum())
    kwargs = dict(unique_ids=["rail"], cutoffs=[cutoff], horizon=14, window=TrainingWindow.expanding(history.index[0]))
    clean = historical_forecasts(history, SarimaForecaster(), **kwargs)
    dirty = historical_forecasts(tampered, SarimaForecaster(), **kwargs)
    pd.testing.assert_frame_equal(clean, dirty, check_exact=True)


def test_version_is_deterministic_and_tracks_config_and_fit(history):
    window = history.iloc[:90]
    a = SarimaForecaster().fit(window, "rail")
    b = SarimaForecaster().fit(window, "rail")
    assert a.version == b.version and len(a.version) == 12
    assert SarimaForecaster().fit(history.iloc[:91], "rail").version != a.version
    assert model_version({"x": 1}, a.params) != model_version({"x": 2}, a.params)


def test_reusing_a_fit_equals_statsmodels_apply_on_the_new_window(history):
    """refit_every > 1: the old parameters re-filter the new window (``results.apply``)."""
    first, later = history.iloc[:90], history.iloc[:97]
    fitted = SarimaForecaster().fit(first, "rail")
    forecast = fitted.forecast(later, horizon=7)
    reference = ARIMA(first["rail"].to_numpy(), order=SEED_ORDER, seasonal_order=SEED_SEASONAL_ORDER).fit()
    applied = reference.apply(later["rail"].to_numpy()).get_forecast(7)
    np.testing.assert_allclose(forecast.mean, applied.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(forecast.upper[95], applied.conf_int(alpha=0.05)[:, 1], rtol=1e-9)


def test_engine_refit_every_reuses_parameters(history):
    cutoffs = history.index[90:97]
    out = historical_forecasts(
        history, SarimaForecaster(), ["rail"], cutoffs, horizon=1, window=TrainingWindow.rolling(84), refit_every=7
    )
    assert out["model_version"].nunique() == 1
    daily = historical_forecasts(history, SarimaForecaster(), ["rail"], cutoffs[:2], horizon=1, window=TrainingWindow.rolling(84))
    assert out["y_hat"].iloc[0] == daily["y_hat"].iloc[0]  # the refit day itself is the same fit


def test_options_that_change_forecasts_still_forecast(history):
    window = history.iloc[:100]
    seed = SarimaForecaster().fit(window, "rail")
    concentrated = SarimaForecaster(concentrate_scale=True).fit(window, "rail")
    assert len(concentrated.params) == len(seed.params) - 1  # sigma2 profiled out
    warm = seed.refit(history.iloc[:101])
    started = SarimaForecaster(start_params=tuple(seed.params)).fit(history.iloc[:101], "rail")
    # Both start the optimizer from the same point, so they reach the same model.
    np.testing.assert_array_equal(warm.params, started.params)
    assert warm.version == started.version
    for fitted in (concentrated, warm):
        forecast = fitted.forecast(window, horizon=7)
        assert np.all(np.isfinite(forecast.mean)) and np.all(forecast.lower[95] < forecast.upper[95])
    assert len({seed.version, concentrated.version, warm.version}) == 3


def test_missing_days_are_skipped_by_the_kalman_filter(history):
    gappy = history.iloc[:100].copy()
    gappy.iloc[50, gappy.columns.get_loc("rail")] = np.nan
    forecast = SarimaForecaster().fit(gappy, "rail").forecast(gappy, horizon=3)
    assert np.all(np.isfinite(forecast.mean))


def test_unknown_series_is_a_clear_error(history):
    with pytest.raises(KeyError, match="no series 'ferry'"):
        SarimaForecaster().fit(history, "ferry")
