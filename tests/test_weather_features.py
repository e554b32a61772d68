"""Weather covariates (tasks/core/features/weather.py): the as-of contract through the walk-forward
engine, the vintages' layout, the simulated forecasts' errors, and the regressors ridge reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.core.features.weather import (
    FORECAST_VARIABLES, NoiseModel, WeatherFeatures, forecast_column, join_weather, observed_frame, oracle_vintages,
    simulated_vintages, vintage_frame,
)  # fmt: skip
from tasks.core.features.direct import DirectFeatures
from tasks.core.models.catalog import statistical_forecaster
from tasks.core.walk_forward import TrainingWindow, historical_forecasts
from tests.synthetic import synthetic_clean

CUTOFF = pd.Timestamp("2019-03-20")


def synthetic_weather(days: pd.DatetimeIndex, seed: int = 3) -> pd.DataFrame:
    """Cold winters, warm summers, snow on cold wet days."""
    rng = np.random.default_rng(seed)
    season = -np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 15) / 365.25)
    tmax = 60 + 25 * season + rng.normal(0, 8, len(days))
    prcp = np.where(rng.random(len(days)) < 0.3, rng.gamma(1.0, 0.3, len(days)), 0.0)
    snow = np.where(tmax < 32, prcp * 10, 0.0)
    return pd.DataFrame(
        {"tmax_f": tmax, "tmin_f": tmax - 15, "prcp_in": prcp, "snow_in": snow, "snwd_in": np.where(tmax < 30, 2.0, 0.0)},
        index=pd.DatetimeIndex(days, name="ds"),
    )


def bus_history_with_weather(observed: pd.DataFrame, vintages: pd.DataFrame) -> pd.DataFrame:
    clean = synthetic_clean(start="2016-01-01", end="2019-06-30")
    history = clean.set_index(pd.DatetimeIndex(clean["service_date"], name="ds"))[["bus", "rail", "day_type"]]
    # Weather makes bus ridership: 8 % less per inch of snow, 15 % less per 10 °F below 20 °F.
    effect = np.exp(-0.08 * observed["snow_in"] - 0.15 * np.maximum(0, 20 - observed["tmax_f"]) / 10)
    history["bus"] = (history["bus"] * effect.reindex(history.index)).round()
    return join_weather(history, [observed_frame(observed), vintage_frame(vintages)])


def forecast(history: pd.DataFrame, model: str = "ridge_weather", cutoffs=(CUTOFF,)) -> pd.DataFrame:
    return historical_forecasts(
        history, statistical_forecaster(model), ["bus"], list(cutoffs), horizon=14, window=TrainingWindow.rolling(900)
    )


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    return synthetic_weather(pd.date_range("2015-01-01", "2019-12-31"))


def test_vintage_columns_sit_on_the_issue_day_one_per_lead(weather):
    vintages = simulated_vintages(weather, pd.date_range("2019-03-01", "2019-03-03"), NoiseModel(), seed=1)
    wide = vintage_frame(vintages)
    assert list(wide.index) == list(pd.date_range("2019-03-01", "2019-03-03"))
    assert forecast_column("snow_in", 14) in wide.columns and forecast_column("snow_in", 15) not in wide.columns
    row = vintages[(vintages["issued"] == "2019-03-02") & (vintages["ds"] == "2019-03-05")]
    assert wide.loc["2019-03-02", forecast_column("tmax_f", 3)] == row["tmax_f"].item()


def test_a_simulated_vintage_depends_on_its_issue_day_only(weather):
    alone = simulated_vintages(weather, pd.DatetimeIndex(["2019-03-02"]), NoiseModel(), seed=5)
    among = simulated_vintages(weather, pd.date_range("2019-02-01", "2019-04-01"), NoiseModel(), seed=5)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), among[among["issued"] == "2019-03-02"].reset_index(drop=True))
    oracle = oracle_vintages(weather, pd.DatetimeIndex(["2019-03-02"]))
    np.testing.assert_array_equal(oracle["snow_in"], weather.loc["2019-03-03":"2019-03-16", "snow_in"])


def test_simulated_errors_grow_with_lead_to_the_published_sizes(weather):
    vintages = simulated_vintages(weather, pd.date_range("2015-03-01", "2019-09-30"), NoiseModel(), seed=2)
    lead = (vintages["ds"] - vintages["issued"]).dt.days
    error = (vintages["tmax_f"] - weather["tmax_f"].reindex(vintages["ds"]).to_numpy()).abs()
    mae = error.groupby(lead.to_numpy()).mean()
    # Day-1 MAE about 2.5 °F (NWS), no better than climatology at two weeks (sd 8 °F here).
    assert 2.0 < mae[1] < 3.2 and mae[7] > mae[3] > mae[1] and 5.5 < mae[14] < 8.0
    wet = weather["prcp_in"].reindex(vintages["ds"]).to_numpy() > 0.01
    detected = (vintages["prcp_in"].to_numpy() > 0.01)[wet]
    by_lead = pd.Series(detected).groupby(lead.to_numpy()[wet]).mean()
    assert by_lead[1] > 0.55 and by_lead[14] < 0.2  # wet days found at day 1, not at day 14


def test_the_fit_uses_forecast_weather_only_where_the_cutoff_has_a_vintage(weather):
    days = pd.date_range("2018-01-01", "2019-06-30")
    features = WeatherFeatures()
    with_vintage = join_weather(pd.DataFrame(index=days), [observed_frame(weather), vintage_frame(oracle_vintages(weather, days))])
    arrays = features.arrays(with_vintage.loc[:CUTOFF], len(with_vintage.loc[:CUTOFF]), 14)
    assert arrays.use_forecast and len(features.columns(arrays, np.array([10, 20]), 1)) == 4
    without = join_weather(pd.DataFrame(index=days), [observed_frame(weather)])
    arrays = features.arrays(without.loc[:CUTOFF], len(without.loc[:CUTOFF]), 14)
    assert not arrays.use_forecast and features.columns(arrays, np.array([10, 20]), 1) == []


@pytest.mark.parametrize("vintages", [True, False])
def test_the_column_count_includes_the_weather_regressors(weather, vintages: bool):
    days = pd.date_range("2015-01-01", "2019-06-30")
    history = bus_history_with_weather(weather, oracle_vintages(weather, days) if vintages else pd.DataFrame()).loc[:CUTOFF]
    features = DirectFeatures(weather=WeatherFeatures())
    prepared = features.prepare(history["bus"].to_numpy(), history.index[0], 14, unique_id="bus", covariates=history)
    assert prepared.weather.use_forecast is vintages
    for h, weather_columns in ((1, 4 if vintages else 0), (14, 4 if vintages else 0), (15, 0)):
        X, _ = features.design(prepared, np.array([500, 600]), h)
        assert X.shape[1] == features.n_columns(prepared, h) == features.n_columns() + weather_columns


def test_forecast_weather_moves_the_forecast_and_the_oracle_beats_no_weather(weather):
    history = bus_history_with_weather(weather, oracle_vintages(weather, pd.date_range("2015-01-01", "2019-06-30")))
    cutoffs = pd.date_range("2019-01-05", "2019-03-05", freq="5D")
    actual = history["bus"]
    errors = {}
    for model in ("ridge_weather", "ridge"):
        rows = forecast(history, model, cutoffs)
        errors[model] = (rows["y_hat"] - actual.reindex(rows["ds"]).to_numpy()).abs().mean()
    assert errors["ridge_weather"] < 0.9 * errors["ridge"]


def perturbed_after(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Every weather value observed after ``cutoff`` and every vintage issued after it changed."""
    out = history.copy()
    later = out.index > cutoff
    for column in out.columns:
        if str(column).startswith(("wx:", "wxf")):
            out.loc[later, column] = out.loc[later, column] * 3.0 + 7.0
    return out


def test_leakage_nothing_observed_or_issued_after_the_cutoff_moves_its_forecast(weather):
    vintages = simulated_vintages(weather, pd.date_range("2015-01-01", "2019-06-30"), NoiseModel(), seed=9)
    history = bus_history_with_weather(weather, vintages)
    honest = forecast(history)
    pd.testing.assert_frame_equal(honest, forecast(perturbed_after(history, CUTOFF)))
    # ... and the check can fail: vintages filed one day early (the one issued the day after the
    # cutoff on the cutoff's row, as an off-by-one in the layout would) are caught.
    def filed_early(frame: pd.DataFrame) -> pd.DataFrame:
        vintage_columns = [c for c in frame.columns if str(c).startswith("wxf")]
        return frame.assign(**{c: frame[c].shift(-1) for c in vintage_columns})

    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(forecast(filed_early(history)), forecast(filed_early(perturbed_after(history, CUTOFF))))


def test_forecast_variables_are_what_a_vintage_carries():
    assert set(FORECAST_VARIABLES) == {"tmax_f", "prcp_in", "snow_in"}
