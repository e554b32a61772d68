"""Quantiles in the forecast contract (issue 21): derived from every model's bands, monotone,
additive (the 80/95 bounds keep their values), readable from files stored before them, combined
by the ensemble, and shifted as a whole by an additive adjustment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.forecasts import QUANTILE_COLUMNS, EngineForecastSchema, quantile_column
from schemas.metrics import PROBABILISTIC_DEFAULTS, MetricsSchema
from storage import Store
from tasks.core.evaluation.scoring import range_window, score_forecasts
from tasks.core.models.ensemble import EnsembleSpec, combine_at_cutoff
from tasks.core.models.forecaster import Forecast, history_from_clean
from tasks.core.models.naive import SeasonalNaiveForecaster
from tasks.core.models.ridge import RidgeForecaster
from tasks.core.models.sarima import SarimaForecaster
from tasks.core.quantiles import shift_distribution
from tasks.core.walk_forward import TrainingWindow, historical_forecasts
from tests.synthetic import synthetic_clean

OLD_COLUMNS = ["unique_id", "ds", "h", "y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "model_version", "run_id", "created_at"]
"""A forecast file's columns before issue 21 (the partition columns live in the folder names)."""


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return history_from_clean(synthetic_clean())


def test_column_names_are_per_mille():
    assert QUANTILE_COLUMNS == ("q_025", "q_050", "q_100", "q_250", "q_500", "q_750", "q_900", "q_950", "q_975")
    assert quantile_column(0.975) == "q_975"
    with pytest.raises(ValueError):
        quantile_column(0.0125)


@pytest.mark.parametrize("forecaster", [SeasonalNaiveForecaster(), RidgeForecaster(), SarimaForecaster()], ids=["naive", "ridge", "sarima"])
def test_engine_quantiles_are_the_models_bands_and_leave_the_80_95_bounds_as_they_were(history, forecaster):
    cutoff = history.index[-30]
    out = historical_forecasts(history, forecaster, ["bus"], [cutoff], horizon=7, window=TrainingWindow.rolling(364))
    EngineForecastSchema.validate(out, lazy=True)
    # The bounds the model gives when asked for 80/95 only, as before the quantiles.
    train = history.loc[cutoff - pd.Timedelta(days=363) : cutoff]
    direct = forecaster.fit(train, "bus").forecast(train, 7, (80, 95))
    np.testing.assert_array_equal(out["y_lo_80"], direct.lower[80])
    np.testing.assert_array_equal(out["y_hi_95"], direct.upper[95])
    np.testing.assert_array_equal(out["y_hat"], direct.mean)
    pairs = {"q_025": "y_lo_95", "q_100": "y_lo_80", "q_500": "y_hat", "q_900": "y_hi_80", "q_975": "y_hi_95"}
    for quantile, bound in pairs.items():
        np.testing.assert_array_equal(out[quantile], out[bound])
    q = out[list(QUANTILE_COLUMNS)].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (np.diff(q, axis=1) > 0).any(axis=1).all()


@dataclass(frozen=True)
class PointOnly:
    """A model without intervals: its rows must carry no quantiles, not even a median."""

    version: str = "p1"
    name: str = "point"

    def fit(self, history: pd.DataFrame, unique_id: str) -> "PointOnly":
        return self

    def forecast(self, history: pd.DataFrame, horizon: int, levels=(80, 95)) -> Forecast:
        return Forecast(mean=np.full(horizon, 5.0))


def test_a_model_without_intervals_keeps_nan_quantiles(history):
    out = historical_forecasts(history, PointOnly(), ["rail"], [history.index[-10]], horizon=3)
    EngineForecastSchema.validate(out, lazy=True)
    assert out[list(QUANTILE_COLUMNS)].isna().all().all() and (out["y_hat"] == 5.0).all()


def test_the_schema_refuses_crossing_quantiles(history):
    out = historical_forecasts(history, SeasonalNaiveForecaster(), ["rail"], [history.index[-10]], horizon=2)
    crossed = out.copy()
    crossed.loc[0, "q_950"] = crossed.loc[0, "q_975"] + 1.0
    with pytest.raises(pandera.errors.SchemaErrors, match="quantiles_monotone"):
        EngineForecastSchema.validate(crossed, lazy=True)
    # A missing quantile between two crossing ones must not hide the crossing.
    crossed = out.copy()
    crossed.loc[1, "q_050"] = np.nan
    crossed.loc[1, "q_025"] = crossed.loc[1, "q_100"] + 1.0
    with pytest.raises(pandera.errors.SchemaErrors, match="quantiles_monotone"):
        EngineForecastSchema.validate(crossed, lazy=True)


def stamped(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(run_id="r1", created_at=pd.Timestamp("2024-01-01", tz="UTC"))


def write_old_shape_file(store: Store, rows: pd.DataFrame, model: str) -> Path:
    """A forecast file as the store wrote it before the quantiles: the old columns only."""
    cutoff = pd.Timestamp(rows["cutoff"].iloc[0])
    folder = Path(store.forecasts.path) / f"cutoff={cutoff:%Y-%m-%d}" / f"model={model}"
    folder.mkdir(parents=True)
    body = stamped(rows).assign(ds=lambda f: f["ds"].dt.date)[OLD_COLUMNS]
    old_schema = pa.schema(
        [
            ("unique_id", pa.string()), ("ds", pa.date32()), ("h", pa.int64()),
            *((c, pa.float64()) for c in ("y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95")),
            ("model_version", pa.string()), ("run_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
        ]
    )  # fmt: skip
    path = folder / f"part-{rows['unique_id'].iloc[0]}.parquet"
    pq.write_table(pa.Table.from_pandas(body, schema=old_schema, preserve_index=False), path)
    return path


@pytest.mark.parametrize("old_first", [True, False], ids=["old-cutoff-first", "new-cutoff-first"])
def test_files_stored_before_the_quantiles_read_back_and_score(tmp_path: Path, history, old_first: bool):
    store = Store.open(str(tmp_path / "storage"))
    early, late = history.index[-20], history.index[-19]
    old_cutoff, new_cutoff = (early, late) if old_first else (late, early)
    new = historical_forecasts(history, SeasonalNaiveForecaster(), ["bus"], [new_cutoff], horizon=3)
    old = historical_forecasts(history, SeasonalNaiveForecaster(), ["bus"], [old_cutoff], horizon=3)
    store.forecasts.write(stamped(new))
    write_old_shape_file(store, old.drop(columns=list(QUANTILE_COLUMNS)), "naive")

    read = store.forecasts.read()
    assert len(read) == 6 and set(QUANTILE_COLUMNS) <= set(read.columns)
    from_old = read[read["cutoff"] == old_cutoff]
    from_new = read[read["cutoff"] == new_cutoff].reset_index(drop=True)
    assert from_old[list(QUANTILE_COLUMNS)].isna().all().all()
    np.testing.assert_array_equal(from_old["y_lo_80"], old["y_lo_80"])
    np.testing.assert_array_equal(from_new["q_050"], new["q_050"])

    window = range_window(early + pd.Timedelta(days=1), early + pd.Timedelta(days=4))
    metrics = score_forecasts(read, synthetic_clean(), early + pd.Timedelta(days=4), [window])
    assert metrics.loc[metrics["h"] == 1, "count"].tolist() == [2]  # the h=1 target of each cutoff
    pooled = metrics[metrics["h"] == 0].iloc[0]
    assert pooled["count"] == 6 and pooled["quantile_count"] == 3  # only the new file's rows have quantiles


def test_upgrading_old_files_lets_a_first_file_schema_reader_read_a_mixed_store(tmp_path: Path, history):
    store = Store.open(str(tmp_path / "storage"))
    old_cutoff, new_cutoff = history.index[-20], history.index[-19]  # the old file sorts first
    store.forecasts.write(stamped(historical_forecasts(history, SeasonalNaiveForecaster(), ["bus"], [new_cutoff], horizon=3)))
    old = historical_forecasts(history, SeasonalNaiveForecaster(), ["bus"], [old_cutoff], horizon=3)
    write_old_shape_file(store, old.drop(columns=list(QUANTILE_COLUMNS)), "naive")
    glob = f"{store.forecasts.path}/**/*.parquet"
    with pytest.raises(pl.exceptions.PolarsError):
        pl.read_parquet(glob, hive_partitioning=True)  # the first file's schema lacks the quantiles
    before = store.forecasts.read()

    assert store.forecasts.upgrade_files() == 1
    assert store.forecasts.upgrade_files() == 0
    read = pl.read_parquet(glob, hive_partitioning=True)
    assert read.height == 6 and read.columns[-11:-2] == list(QUANTILE_COLUMNS)
    pd.testing.assert_frame_equal(store.forecasts.read(), before)


def test_a_writer_of_the_old_contract_stores_nan_quantiles(tmp_path: Path, history):
    store = Store.open(str(tmp_path / "storage"))
    rows = historical_forecasts(history, SeasonalNaiveForecaster(), ["rail"], [history.index[-5]], horizon=2)
    store.forecasts.write(stamped(rows.drop(columns=list(QUANTILE_COLUMNS))))
    read = store.forecasts.read()
    assert read[list(QUANTILE_COLUMNS)].isna().all().all()
    np.testing.assert_array_equal(read["y_hi_95"], rows["y_hi_95"])


def test_metrics_files_written_before_the_probabilistic_columns_still_load(tmp_path: Path, history):
    store = Store.open(str(tmp_path / "storage"))
    cutoff = history.index[-20]
    rows = historical_forecasts(history, SeasonalNaiveForecaster(), ["bus"], [cutoff], horizon=3)
    window = range_window(cutoff + pd.Timedelta(days=1), cutoff + pd.Timedelta(days=3))
    first = score_forecasts(rows, synthetic_clean(), cutoff + pd.Timedelta(days=3), [window])
    second = score_forecasts(rows, synthetic_clean(), cutoff + pd.Timedelta(days=4), [window])
    # The first evaluation date as written before issue 21: without the appended columns.
    old = first.drop(columns=list(PROBABILISTIC_DEFAULTS)).drop(columns="eval_date")
    folder = Path(store.metrics.path) / f"eval_date={cutoff + pd.Timedelta(days=3):%Y-%m-%d}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), folder / "part-0.parquet")
    store.metrics.write(second)

    read = store.metrics.read()
    MetricsSchema.validate(read)
    before = read[read["eval_date"] == first["eval_date"].iloc[0]]
    after = read[read["eval_date"] == second["eval_date"].iloc[0]].reset_index(drop=True)
    assert (before["quantile_count"] == 0).all() and before["wis"].isna().all() and before["coverage_50"].isna().all()
    np.testing.assert_array_equal(before["mae"], first["mae"])
    assert after.loc[after["h"] == 0, "quantile_count"].tolist() == [3] and (after["wis"] > 0).all()
    np.testing.assert_array_equal(after["wis"], second["wis"])


def member(model: str, level: float, spread: float, quantiles: bool = True) -> pd.DataFrame:
    """Three contract rows of a member, normal-like bands of half-width spread * z."""
    cutoff = pd.Timestamp("2024-03-10")
    h = np.arange(1, 4)
    y_hat = level + h.astype(float)
    z = {50: 0.674, 80: 1.282, 90: 1.645, 95: 1.960}
    band = {lv: (y_hat - spread * zz, y_hat + spread * zz) for lv, zz in z.items()}
    frame = pd.DataFrame(
        {
            "unique_id": "rail", "cutoff": cutoff, "ds": cutoff + pd.to_timedelta(h, unit="D"), "h": h.astype(np.int64),
            "model": model, "y_hat": y_hat, "y_lo_80": band[80][0], "y_hi_80": band[80][1], "y_lo_95": band[95][0],
            "y_hi_95": band[95][1], "model_version": f"{model}-v1",
        }
    )  # fmt: skip
    if quantiles:
        for lv, (low, high) in band.items():
            tail = (100 - lv) / 200
            frame[quantile_column(tail)], frame[quantile_column(1 - tail)] = low, high
        frame["q_500"] = y_hat
    return frame


def test_the_ensemble_combines_the_members_quantiles_and_keeps_its_80_95_bands():
    spec = EnsembleSpec(("a", "b"), "mean")
    members = pd.concat([member("a", 100, 10), member("b", 200, 30)], ignore_index=True)
    rows = combine_at_cutoff(spec, members, {"a": 0.5, "b": 0.5}, "rail", pd.Timestamp("2024-03-10"))
    EngineForecastSchema.validate(rows, lazy=True)
    a, b = members[members["model"] == "a"].reset_index(drop=True), members[members["model"] == "b"].reset_index(drop=True)
    np.testing.assert_allclose(rows["q_250"], (a["q_250"] + b["q_250"]) / 2)  # inside its neighbours: not clipped
    np.testing.assert_allclose(rows["q_950"], (a["q_950"] + b["q_950"]) / 2)
    for quantile, bound in {"q_025": "y_lo_95", "q_100": "y_lo_80", "q_500": "y_hat", "q_900": "y_hi_80"}.items():
        np.testing.assert_array_equal(rows[quantile], rows[bound])
    without = combine_at_cutoff(spec, members.drop(columns=list(QUANTILE_COLUMNS)), {"a": 0.5, "b": 0.5}, "rail", pd.Timestamp("2024-03-10"))
    for column in ("y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"):
        np.testing.assert_array_equal(without[column], rows[column])
    assert without[["q_050", "q_250", "q_750", "q_950"]].isna().all().all()
    np.testing.assert_array_equal(without["q_975"], rows["q_975"])


def test_the_ensemble_clips_a_combined_band_that_would_cross_its_neighbours():
    # b's 50 % band is wider than its 80 % one (an inconsistent member): the combination is
    # clipped back inside the combined 80 % band, so the quantiles stay monotone.
    b = member("b", 100, 10)
    b["q_250"], b["q_750"] = b["y_lo_80"] - 50, b["y_hi_80"] + 50
    rows = combine_at_cutoff(EnsembleSpec(("a", "b"), "mean"), pd.concat([member("a", 100, 10), b]), {"a": 0.5, "b": 0.5}, "rail", pd.Timestamp("2024-03-10"))
    EngineForecastSchema.validate(rows, lazy=True)
    np.testing.assert_array_equal(rows["q_250"], rows["q_100"])
    np.testing.assert_array_equal(rows["q_750"], rows["q_900"])


def test_shift_distribution_moves_point_bands_and_quantiles_by_each_rows_amount():
    frame = member("a", 100, 10).assign(y_lo_80=[np.nan, 1.0, 2.0])
    shift = np.array([5.0, -2.0, 0.5])
    moved = shift_distribution(frame, shift)
    for column in ("y_hat", "y_hi_80", "y_lo_95", "y_hi_95", *QUANTILE_COLUMNS):
        np.testing.assert_allclose(moved[column], frame[column] + shift)
    assert np.isnan(moved.loc[0, "y_lo_80"]) and moved.loc[1, "y_lo_80"] == -1.0
    assert (moved["h"] == frame["h"]).all() and (moved["cutoff"] == frame["cutoff"]).all()
    kept = shift_distribution(frame, 3.0, include_point=False)
    np.testing.assert_array_equal(kept["y_hat"], frame["y_hat"])
    np.testing.assert_allclose(kept["q_975"], frame["q_975"] + 3.0)
    with pytest.raises(ValueError):
        shift_distribution(frame, np.array([1.0, 2.0]))
