"""A failing model never fails the night: a fit that raises or a forecast that is not finite is
replaced by the seasonal-naive forecast for that cutoff, under the model's name, with
``model_version`` saying why; the run counts the fallbacks and the report lists them. Faults
are injected through the model protocol (a fake forecaster), not by editing library code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pytest

import tasks.forecast
from flows.backfill import backfill
from storage import Store
from tasks.core.models.forecaster import Forecast
from tasks.core.models.naive import SeasonalNaiveForecaster
from tasks.core.models.fallback import FALLBACK_PREFIX, fallbacks
from tasks.core.walk_forward import historical_forecasts
from tests.synthetic import synthetic_clean

RAISES_AT = pd.Timestamp("2019-03-02")
NAN_AT = pd.Timestamp("2019-03-04")


@dataclass(frozen=True)
class _FlakyFitted:
    cutoff: pd.Timestamp
    version: str = "flaky-v1"

    def forecast(self, history, horizon, levels=(80, 95)) -> Forecast:
        level = float(history["rail"].iloc[-7:].mean())
        mean = np.full(horizon, np.nan if self.cutoff == NAN_AT else level)
        return Forecast(mean=mean)


@dataclass(frozen=True)
class FlakyForecaster:
    """Raises when fitted at RAISES_AT, forecasts NaN at NAN_AT, a flat level otherwise."""

    name: str = "sarima"

    def fit(self, history: pd.DataFrame, unique_id: str) -> _FlakyFitted:
        cutoff = history.index[-1]
        if cutoff == RAISES_AT:
            raise RuntimeError("optimizer diverged")
        return _FlakyFitted(cutoff)


def history() -> pd.DataFrame:
    clean = synthetic_clean(end="2019-03-20")
    return clean.set_index(pd.DatetimeIndex(clean["service_date"], name="ds"))[["bus", "rail", "day_type"]].astype({"bus": float, "rail": float})


def test_engine_substitutes_the_seasonal_naive_and_says_why():
    data = history()
    cutoffs = list(pd.date_range("2019-03-01", "2019-03-05"))
    forecasts = historical_forecasts(data, FlakyForecaster(), ["rail"], cutoffs, horizon=7)
    naive = historical_forecasts(data, SeasonalNaiveForecaster(), ["rail"], cutoffs, horizon=7)
    for cutoff, reason in ((RAISES_AT, "RuntimeError: optimizer diverged"), (NAN_AT, "NonFiniteForecast")):
        rows = forecasts[forecasts["cutoff"] == cutoff]
        assert (rows["model"] == "sarima").all()
        np.testing.assert_array_equal(rows["y_hat"], naive[naive["cutoff"] == cutoff]["y_hat"])
        assert rows["model_version"].str.startswith(FALLBACK_PREFIX).all() and reason in rows["model_version"].iloc[0]
    healthy = forecasts[~forecasts["cutoff"].isin([RAISES_AT, NAN_AT])]
    assert (healthy["model_version"] == "flaky-v1").all()
    lines = fallbacks(forecasts)
    assert len(lines) == 2 and "sarima/rail at cutoff 2019-03-02: RuntimeError: optimizer diverged" in lines[0]


def test_naive_itself_failing_is_not_hidden():
    data = history()
    data.loc["2019-02-25":"2019-03-01", "rail"] = np.nan  # the last week is missing: nothing to repeat
    with pytest.raises(ValueError, match="non-finite"):
        historical_forecasts(data, SeasonalNaiveForecaster(), ["rail"], [pd.Timestamp("2019-03-01")], horizon=7)


@pytest.mark.usefixtures("prefect_harness")
def test_backfill_completes_counts_and_reports_fallbacks(storage_root: str, monkeypatch):
    for name, value in {"RIDERSHIP_STORAGE": storage_root, "RIDERSHIP_WORKERS": "1", "RIDERSHIP_RNN_MODELS": "", "RIDERSHIP_ENSEMBLE_MEMBERS": ""}.items():
        monkeypatch.setenv(name, value)
    store = Store.open(storage_root)
    store.ridership.write_clean(synthetic_clean(end="2019-03-20"))
    real = tasks.forecast.statistical_forecaster
    monkeypatch.setattr(tasks.forecast, "statistical_forecaster", lambda model, *a: FlakyForecaster() if model == "sarima" else real(model, *a))
    summary = backfill(start=date(2019, 3, 2), end=date(2019, 3, 6), models=["naive", "sarima"], series=["rail"])
    assert len(summary.progress.fallbacks) == 2
    stored = store.forecasts.read(models=["sarima"])
    assert set(stored["cutoff"]) == set(pd.date_range("2019-03-01", "2019-03-05"))
    assert stored["model_version"].str.startswith(FALLBACK_PREFIX).sum() == 2 * 14
    report = store.reports.read_text(pd.Timestamp("2019-03-06"), "report.md")
    assert "2 forecast(s) fell back to the seasonal naive" in report and "optimizer diverged" in report
