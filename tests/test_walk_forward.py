"""Walk-forward bookkeeping, checked exactly with a fake model whose outputs encode what it saw.

The series value of a day is its position (0, 1, 2, ...), so:
* ``y_hat = last value seen + h`` is the position of ``ds``: it proves which day the forecast
  history ended on;
* ``y_hi_80 - y_hat`` is the length of the window handed to ``forecast``;
* ``model_version = "fit:<first>-<last>"`` names the window handed to ``fit``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import pytest

from schemas.forecasts import EngineForecastSchema
from tasks.core.models.forecaster import Forecast
from tasks.core.walk_forward import FORECAST_COLUMNS, TrainingWindow, forecast_at, historical_forecasts, refit_blocks
from tasks.core.worker_pool import CHUNKS_PER_WORKER, worker_count

START = pd.Timestamp("2020-01-01")


def positional_history(days: int = 120) -> pd.DataFrame:
    index = pd.date_range(START, periods=days, freq="D", name="ds")
    position = np.arange(days, dtype=np.float64)
    return pd.DataFrame({"rail": position, "bus": position + 1000.0, "day_type": "W"}, index=index)


def position_of(day: pd.Timestamp) -> int:
    return (pd.Timestamp(day) - START).days


ECHO_SPREAD = {50: 0.5, 80: 1.0, 90: 1.5, 95: 2.0}


@dataclass(frozen=True)
class EchoFitted:
    unique_id: str
    version: str

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        values = history[self.unique_id].to_numpy()
        mean = values[-1] + np.arange(1, horizon + 1, dtype=np.float64)
        width = float(len(values))
        # Nested bands at every level the engine asks for (the quantiles must be monotone);
        # the 80/95 half-widths, width and 2 * width, are what the tests below check.
        lower = {lv: mean - width * ECHO_SPREAD[lv] for lv in levels}
        upper = {lv: mean + width * ECHO_SPREAD[lv] for lv in levels}
        return Forecast(mean=mean, lower=lower, upper=upper)


@dataclass(frozen=True)
class EchoForecaster:
    name: str = "echo"
    # Filled in-process only (workers get a copy): counts fits in serial runs.
    fits: list = field(default_factory=list, compare=False, repr=False)

    def fit(self, history: pd.DataFrame, unique_id: str) -> EchoFitted:
        values = history[unique_id].to_numpy()
        self.fits.append((unique_id, history.index[0], history.index[-1]))
        return EchoFitted(unique_id, f"fit:{values[0]:.0f}-{values[-1]:.0f}")


@dataclass(frozen=True)
class PidForecaster:
    """Tags forecasts with the process that fitted them, to see the pool at work."""

    name: str = "pid"

    def fit(self, history: pd.DataFrame, unique_id: str) -> EchoFitted:
        time.sleep(0.05)  # slow enough that one worker cannot drain both chunks alone
        return EchoFitted(unique_id, f"pid:{os.getpid()}")


def _rail_offset(uid: str) -> float:
    return 1000.0 if uid == "bus" else 0.0


def test_expanding_window_daily_refit_sees_exactly_start_to_cutoff():
    history = positional_history()
    cutoffs = pd.date_range("2020-02-10", periods=5)
    forecaster = EchoForecaster()
    out = historical_forecasts(
        history, forecaster, ["rail", "bus"], cutoffs, horizon=3, window=TrainingWindow.expanding(START + pd.Timedelta(days=5))
    )
    assert list(out.columns) == list(FORECAST_COLUMNS)
    assert len(out) == 2 * 5 * 3
    assert (out["ds"] == out["cutoff"] + pd.to_timedelta(out["h"], unit="D")).all()
    for row in out.itertuples():
        offset, cut = _rail_offset(row.unique_id), position_of(row.cutoff)
        assert row.y_hat == cut + row.h + offset  # forecast history ended on the cutoff
        assert row.y_hi_80 - row.y_hat == cut - 5 + 1  # ... and began on the window start
        assert row.model_version == f"fit:{5 + offset:.0f}-{cut + offset:.0f}"
    assert len(forecaster.fits) == 10
    EngineForecastSchema.validate(out, lazy=True)


def test_rolling_window_has_constant_length():
    history = positional_history()
    cutoffs = pd.date_range("2020-03-01", periods=4)
    out = historical_forecasts(history, EchoForecaster(), ["rail"], cutoffs, horizon=2, window=TrainingWindow.rolling(28))
    assert (out["y_hi_80"] - out["y_hat"] == 28).all()
    for row in out.itertuples():
        cut = position_of(row.cutoff)
        assert row.model_version == f"fit:{cut - 27}-{cut}"


def test_rows_are_ordered_by_series_then_cutoff_then_h():
    history = positional_history()
    cutoffs = [pd.Timestamp("2020-02-12"), pd.Timestamp("2020-02-10")]  # unsorted on purpose
    out = historical_forecasts(history, EchoForecaster(), ["bus", "rail"], cutoffs, horizon=2, window=TrainingWindow.rolling(7))
    assert out["unique_id"].tolist() == ["bus"] * 4 + ["rail"] * 4
    assert out["cutoff"].tolist()[:4] == [pd.Timestamp("2020-02-10")] * 2 + [pd.Timestamp("2020-02-12")] * 2
    assert out["h"].tolist() == [1, 2] * 4


@pytest.mark.parametrize("refit_every, expected_fits", [(1, 10), (7, 2), (10, 1), (30, 1)])
def test_refit_cadence(refit_every, expected_fits):
    history = positional_history()
    cutoffs = pd.date_range("2020-02-10", periods=10)
    forecaster = EchoForecaster()
    out = historical_forecasts(
        history, forecaster, ["rail"], cutoffs, horizon=1, window=TrainingWindow.expanding(START), refit_every=refit_every
    )
    assert len(forecaster.fits) == expected_fits
    fit_days = [last for _, _, last in forecaster.fits]
    assert fit_days == list(cutoffs[::refit_every])
    # Between refits the old fit forecasts from each cutoff's own, newer window.
    assert (out["y_hat"] == [position_of(c) + 1 for c in cutoffs]).all()
    for row in out.itertuples():
        refit_day = cutoffs[(list(cutoffs).index(row.cutoff) // refit_every) * refit_every]
        assert row.model_version == f"fit:0-{position_of(refit_day)}"


def test_refit_blocks_group_consecutive_cutoffs():
    cutoffs = pd.date_range("2020-01-01", periods=5)
    assert [len(b) for b in refit_blocks(cutoffs, 2)] == [2, 2, 1]
    assert refit_blocks(cutoffs, 2)[1][0] == pd.Timestamp("2020-01-03")


def test_parallel_equals_serial():
    history = positional_history()
    cutoffs = pd.date_range("2020-02-01", periods=12)
    kwargs = dict(horizon=5, window=TrainingWindow.rolling(21), refit_every=3)
    serial = historical_forecasts(history, EchoForecaster(), ["rail", "bus"], cutoffs, n_jobs=1, **kwargs)
    parallel = historical_forecasts(history, EchoForecaster(), ["rail", "bus"], cutoffs, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(parallel, serial, check_exact=True)


def test_parallel_runs_in_worker_processes():
    history = positional_history()
    cutoffs = pd.date_range("2020-02-01", periods=16)
    out = historical_forecasts(history, PidForecaster(), ["rail"], cutoffs, horizon=1, window=TrainingWindow.rolling(7), n_jobs=2)
    pids = set(out["model_version"])
    assert 1 <= len(pids) <= 2 and f"pid:{os.getpid()}" not in pids
    # 16 cutoffs in 2 workers x CHUNKS_PER_WORKER contiguous chunks of 2, handed out as workers
    # free up: each chunk runs in one process, and rows come back in serial (cutoff) order.
    assert CHUNKS_PER_WORKER == 4
    tags = out["model_version"].tolist()
    assert all(tags[i] == tags[i + 1] for i in range(0, 16, 2))
    assert list(out["cutoff"]) == list(cutoffs)


def test_small_jobs_stay_in_process():
    assert worker_count(8, 2) == 1  # a nightly run: two fits are not worth a process
    assert worker_count(2, 100) == 2
    assert worker_count(1, 100) == 1
    assert worker_count(None, 100) >= 1
    with pytest.raises(ValueError):
        worker_count(0, 100)


def test_data_after_the_cutoff_never_reaches_the_model():
    history = positional_history()
    cutoff = pd.Timestamp("2020-02-15")
    tampered = history.copy()
    tampered.loc[tampered.index > cutoff, ["rail", "bus"]] = -1e9
    clean = historical_forecasts(history, EchoForecaster(), ["rail"], [cutoff], horizon=4, window=TrainingWindow.expanding(START))
    dirty = historical_forecasts(tampered, EchoForecaster(), ["rail"], [cutoff], horizon=4, window=TrainingWindow.expanding(START))
    pd.testing.assert_frame_equal(clean, dirty, check_exact=True)


def test_a_publication_lag_fits_on_data_to_cutoff_minus_lag_and_keeps_the_horizon_after_the_cutoff():
    history = positional_history()
    cutoffs = pd.date_range("2020-02-10", periods=3)
    out = historical_forecasts(history, EchoForecaster(), ["rail"], cutoffs, horizon=4, window=TrainingWindow.rolling(28), publication_lag=3)
    assert out["cutoff"].tolist() == [c for c in cutoffs for _ in range(4)] and out["h"].tolist() == [1, 2, 3, 4] * 3
    assert (out["ds"] == out["cutoff"] + pd.to_timedelta(out["h"], unit="D")).all()
    for row in out.itertuples():
        data_end = position_of(row.cutoff) - 3
        assert row.model_version == f"fit:{data_end - 27}-{data_end}"  # the window ends 3 days early ...
        assert row.y_hat == data_end + 3 + row.h  # ... and its step 3 + h is the cutoff's h
        assert row.y_hi_80 - row.y_hat == 28  # the intervals of the same steps
    # The same as the lag-0 forecast of N + horizon days from cutoff - N, first N steps dropped.
    early = historical_forecasts(history, EchoForecaster(), ["rail"], cutoffs - pd.Timedelta(days=3), horizon=7, window=TrainingWindow.rolling(28))
    later = early[early["h"] > 3]
    np.testing.assert_array_equal(out["y_hat"].to_numpy(), later["y_hat"].to_numpy())
    np.testing.assert_array_equal(out["ds"].to_numpy(), later["ds"].to_numpy())


@pytest.mark.parametrize("model", ["naive", "sarima"])
def test_a_publication_lag_hides_the_last_days_before_each_cutoff(model):
    """Leakage: with a lag of N, perturbing the N days before a cutoff (and everything after)
    leaves that cutoff's forecast bit-identical, in-process and in workers; without the lag
    the same perturbation moves it."""
    from tasks.core.models.catalog import statistical_forecaster

    rng = np.random.default_rng(5)
    index = pd.date_range("2019-01-01", periods=240, freq="D", name="ds")
    weekly = np.array([7.0, 7.1, 7.2, 7.1, 6.9, 4.0, 3.0])[index.day_of_week] * 1e5
    history = pd.DataFrame({"rail": weekly + rng.normal(0, 1e4, 240), "day_type": "W"}, index=index)
    cutoffs = pd.date_range("2019-07-01", periods=8, freq="D")
    kwargs = dict(horizon=14, window=TrainingWindow.rolling(182), publication_lag=3)
    forecaster = statistical_forecaster(model)
    clean = historical_forecasts(history, forecaster, ["rail"], cutoffs, **kwargs)
    parallel = historical_forecasts(history, forecaster, ["rail"], cutoffs, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(parallel, clean, check_exact=True)
    for cutoff in cutoffs:
        tampered = history.copy()
        hidden = tampered.index > cutoff - pd.Timedelta(days=3)
        tampered.loc[hidden, "rail"] *= rng.uniform(0.5, 1.5, hidden.sum())
        dirty = historical_forecasts(tampered, forecaster, ["rail"], [cutoff], **kwargs)
        pd.testing.assert_frame_equal(dirty, clean[clean["cutoff"] == cutoff].reset_index(drop=True), check_exact=True)
    unlagged = {**kwargs, "publication_lag": 0}
    moved = historical_forecasts(tampered, forecaster, ["rail"], [cutoff], **unlagged)
    assert not np.array_equal(moved["y_hat"], historical_forecasts(history, forecaster, ["rail"], [cutoff], **unlagged)["y_hat"])


def test_missing_days_become_nan_rows_so_positions_stay_days():
    history = positional_history().drop(pd.Timestamp("2020-02-05"))
    out = historical_forecasts(history, EchoForecaster(), ["rail"], ["2020-02-10"], horizon=1, window=TrainingWindow.rolling(10))
    assert out["y_hi_80"].iloc[0] - out["y_hat"].iloc[0] == 10  # the gap still counts as a day


def test_cutoff_without_data_is_an_error():
    history = positional_history(30)
    with pytest.raises(ValueError, match="no row for cutoff"):
        historical_forecasts(history, EchoForecaster(), ["rail"], ["2020-03-15"], window=TrainingWindow.rolling(7))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(horizon=0), "horizon"),
        (dict(refit_every=0), "refit_every"),
        (dict(cutoffs=["2020-01-20", "2020-01-20"]), "duplicates"),
        (dict(cutoffs=["2020-01-20 12:00"]), "midnight"),
        (dict(window=TrainingWindow.expanding("2020-02-01")), "after the cutoff"),
        (dict(publication_lag=-1), "publication_lag"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    arguments = dict(history=positional_history(30), forecaster=EchoForecaster(), unique_ids=["rail"], cutoffs=["2020-01-20"])
    arguments.update(window=TrainingWindow.rolling(7))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        historical_forecasts(**arguments)


def test_training_window_is_either_expanding_or_rolling():
    with pytest.raises(ValueError):
        TrainingWindow()
    with pytest.raises(ValueError):
        TrainingWindow(start=START, days=7)
    with pytest.raises(ValueError):
        TrainingWindow.rolling(0)
    assert TrainingWindow.rolling(91).describe() == "rolling 91 days"
    assert TrainingWindow.expanding("2019-01-01").describe() == "expanding from 2019-01-01"


def test_forecast_at_matches_the_engine_between_refits():
    history = positional_history()
    cutoffs = pd.date_range("2020-02-10", periods=3)
    window = TrainingWindow.rolling(14)
    engine = historical_forecasts(history, EchoForecaster(), ["rail"], cutoffs, horizon=3, window=window, refit_every=3)
    fitted = EchoForecaster().fit(window.select(history.loc[: cutoffs[0]], cutoffs[0]), "rail")
    single = forecast_at(fitted, history, cutoffs[2], "rail", horizon=3, model_name="echo", window=window)
    expected = engine[engine["cutoff"] == cutoffs[2]].reset_index(drop=True)
    pd.testing.assert_frame_equal(single, expected, check_exact=True)
    # Without a window the model gets everything up to the cutoff, and nothing after it.
    everything = forecast_at(fitted, history, cutoffs[2], "rail", horizon=1, model_name="echo")
    assert everything["y_hi_80"].iloc[0] - everything["y_hat"].iloc[0] == position_of(cutoffs[2]) + 1


def test_levels_outside_the_contract_add_columns_and_missing_ones_are_nan():
    history = positional_history()
    out = historical_forecasts(history, EchoForecaster(), ["rail"], ["2020-02-10"], horizon=2, window=TrainingWindow.rolling(7), levels=(80,))
    assert list(out.columns) == list(FORECAST_COLUMNS)
    assert out["y_lo_95"].isna().all() and out["y_lo_80"].notna().all()


def test_output_dtypes_match_the_contract_even_when_empty():
    history = positional_history()
    for cutoffs in (["2020-02-10"], []):
        out = historical_forecasts(history, EchoForecaster(), ["rail"], cutoffs, horizon=2, window=TrainingWindow.rolling(7))
        assert str(out["cutoff"].dtype) == "datetime64[ns]" and str(out["ds"].dtype) == "datetime64[ns]"
        assert out["h"].dtype == np.int64 and out["y_hat"].dtype == np.float64
        assert pd.api.types.is_string_dtype(out["unique_id"]) and pd.api.types.is_string_dtype(out["model_version"])
        EngineForecastSchema.validate(out, lazy=True)
