"""The walk-forward engine's path for a global model (one fit per cutoff across every series of
the call) and ``global_ridge`` on a synthetic station panel."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from tasks.core.models.fallback import FALLBACK_PREFIX
from tasks.core.models.forecaster import Forecast
from tasks.core.models.global_ridge import GlobalRidgeForecaster, pool_of
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

STATIONS = ["station:40380", "station:40680", "station:41700"]


def station_panel(seed: int = 7, end: str = "2019-06-30") -> pd.DataFrame:
    """Three stations of different size and noise, plus the two system totals."""
    days = pd.date_range("2016-01-01", end, freq="D", name="ds")
    rng = np.random.default_rng(seed)
    week = np.array([0.0, 0.02, 0.03, 0.02, -0.03, -0.5, -0.8])[days.day_of_week]
    season = 0.1 * np.sin(2 * np.pi * days.day_of_year / 365.25)
    columns = {}
    for level, noise, name in zip((3_000, 12_000, 600), (0.03, 0.05, 0.20), STATIONS):
        columns[name] = np.exp(np.log(level) + week + season + rng.normal(0, noise, len(days)))
    columns["rail"] = 1.2 * sum(columns.values()) * 40
    columns["bus"] = columns["rail"] * 1.1
    return pd.DataFrame(columns, index=days)


@dataclass(frozen=True, eq=False)
class LevelFitted:
    level: float
    version: str

    def forecast(self, history, horizon, levels=(80, 95)) -> Forecast:
        return Forecast(mean=np.full(horizon, self.level))


@dataclass
class RecordingGlobal:
    """Fits a per-series mean of the last week, recording each fit it was asked for."""

    name: str = "fake_global"
    fits: list = field(default_factory=list)
    fail_at: pd.Timestamp | None = None

    def fit_panel(self, history, unique_ids):
        self.fits.append((history.index[-1], tuple(unique_ids)))
        if history.index[-1] == self.fail_at:
            raise RuntimeError("no convergence")
        return {u: LevelFitted(float(history[u].iloc[-7:].mean()), f"v{history.index[-1]:%m%d}") for u in unique_ids}

    def fit(self, history, unique_id):
        return self.fit_panel(history, [unique_id])[unique_id]


CUTOFFS = pd.to_datetime(["2019-03-03", "2019-03-10", "2019-03-17"])


def test_a_global_model_is_fitted_once_per_cutoff_for_all_its_series_in_the_contract_order():
    history = station_panel()
    fake = RecordingGlobal()
    frame = historical_forecasts(history, fake, STATIONS, CUTOFFS, 3, TrainingWindow.rolling(60))
    assert fake.fits == [(c, tuple(STATIONS)) for c in CUTOFFS]
    assert list(frame["unique_id"]) == [u for u in STATIONS for _ in CUTOFFS for _ in range(3)]
    assert list(frame["cutoff"].iloc[:6]) == [CUTOFFS[0]] * 3 + [CUTOFFS[1]] * 3
    expected = history.loc[CUTOFFS[1] - pd.Timedelta(days=6) : CUTOFFS[1], "station:40680"].mean()
    at = frame[(frame["unique_id"] == "station:40680") & (frame["cutoff"] == CUTOFFS[1])]
    assert (at["y_hat"] == expected).all() and (at["model_version"] == "v0310").all()
    # Two workers give the serial frame exactly.
    parallel = historical_forecasts(history, RecordingGlobal(), STATIONS, CUTOFFS, 3, TrainingWindow.rolling(60), n_jobs=2)
    pd.testing.assert_frame_equal(parallel, frame)


def test_a_failed_global_fit_falls_back_to_the_seasonal_naive_for_each_series_of_that_cutoff():
    fake = RecordingGlobal(fail_at=CUTOFFS[1])
    frame = historical_forecasts(station_panel(), fake, STATIONS, CUTOFFS, 3, TrainingWindow.rolling(60))
    versions = frame.groupby("cutoff")["model_version"].agg(set)
    assert all(v.startswith(FALLBACK_PREFIX) and "RuntimeError: no convergence" in v for v in versions[CUTOFFS[1]])
    assert len(versions[CUTOFFS[1]]) == 1 and not any(v.startswith(FALLBACK_PREFIX) for v in versions[CUTOFFS[2]])
    assert frame["y_hat"].notna().all() and len(frame) == 3 * 3 * 3


@pytest.fixture(scope="module")
def global_forecasts() -> pd.DataFrame:
    return historical_forecasts(station_panel(), GlobalRidgeForecaster(), STATIONS, CUTOFFS[:2], 14, TrainingWindow.rolling(1095))


def test_global_ridge_pools_every_part_of_the_run_whatever_series_it_is_asked_for(global_forecasts):
    history = station_panel()
    assert pool_of(history, ["station:41700"]) == STATIONS  # never the totals
    alone = historical_forecasts(history, GlobalRidgeForecaster(), ["station:41700"], CUTOFFS[:2], 14, TrainingWindow.rolling(1095))
    pd.testing.assert_frame_equal(
        alone, global_forecasts[global_forecasts["unique_id"] == "station:41700"].reset_index(drop=True), check_exact=True
    )
    assert global_forecasts.groupby("cutoff")["model_version"].nunique().eq(1).all()  # one fit per cutoff


def test_global_ridge_is_close_to_each_station_and_bands_follow_each_stations_own_noise(global_forecasts):
    history = station_panel()
    rows = global_forecasts.merge(history[STATIONS].stack().rename("y").rename_axis(["ds", "unique_id"]).reset_index())
    error = (np.log(rows["y_hat"]) - np.log(rows["y"])).abs().groupby(rows["unique_id"]).mean()
    assert error["station:40380"] < 0.06 and error["station:41700"] < 0.3
    width = np.log(rows["y_hi_80"] / rows["y_lo_80"]).groupby(rows["unique_id"]).mean()
    assert width["station:41700"] > 3 * width["station:40380"]  # 20 % noise against 3 %


def test_global_ridge_at_a_cutoff_ignores_every_later_value(global_forecasts):
    history = station_panel()
    cutoff = CUTOFFS[0]
    later = history.index > cutoff
    perturbed = history.copy()
    perturbed.loc[later] *= np.random.default_rng(3).uniform(0.2, 5.0, (int(later.sum()), history.shape[1]))
    again = historical_forecasts(perturbed, GlobalRidgeForecaster(), STATIONS, [cutoff], 14, TrainingWindow.rolling(1095))
    expected = global_forecasts[global_forecasts["cutoff"] == cutoff].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, expected, check_exact=True)
