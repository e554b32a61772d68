"""The backfill flow end to end on real Parquet files under a temporary Prefect server."""

from __future__ import annotations

import importlib.util
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flows.backfill import backfill
from flows.cli import main
from storage import Store
from storage.forecasts import FORECAST_PARTITIONING
from tests.synthetic import as_raw_csv, synthetic_clean

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def synthetic_store(storage_root: str, monkeypatch) -> Store:
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_WORKERS", "2")
    store = Store.open(storage_root)
    store.ridership.write_clean(synthetic_clean())
    return store


def run_dates(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq="D")


def score_forecasts_script():
    """``bench/score_forecasts.py``, the independent scorer, as a module."""
    path = Path(__file__).resolve().parents[1] / "bench" / "score_forecasts.py"
    spec = importlib.util.spec_from_file_location("score_forecasts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_scores(board: pd.DataFrame, table: pd.DataFrame) -> None:
    ours = board.set_index(["unique_id", "model"])[["mae_all", "mae_h1"]].sort_index()
    # The leaderboard ranks models, not a calibrated model's bands as forecast (<model>@raw, same y_hat).
    ranked = table[~table["model"].astype(str).str.endswith("@raw")]
    theirs = ranked.set_index(["unique_id", "model"])[["mae_all", "mae_h1"]].sort_index()
    pd.testing.assert_frame_equal(ours, theirs, rtol=0, atol=1e-3)  # the leaderboard rows keep 3 decimals


def test_backfill_stores_every_cutoff_once_and_resumes(synthetic_store: Store):
    summary = backfill(
        start=pd.Timestamp("2019-03-01").date(), end=pd.Timestamp("2019-03-06").date(),
        models=["naive", "sarima"], series=["rail", "bus"], train_days=182,
    )
    expected_cutoffs = set(run_dates("2019-03-01", "2019-03-06") - pd.Timedelta(days=1))
    stored = synthetic_store.forecasts.read()
    # Each model's calibrated forecasts and its bands as forecast (<model>@raw, same y_hat).
    assert len(stored) == 6 * 2 * 2 * 14 * 2
    assert set(stored["model"]) == {"naive", "sarima", "naive@raw", "sarima@raw"}
    for (model, unique_id), rows in stored.groupby(["model", "unique_id"]):
        assert set(rows["cutoff"]) == expected_cutoffs, (model, unique_id)
    h1 = stored[stored["h"] == 1]
    assert (h1["ds"] == h1["cutoff"] + pd.Timedelta(days=1)).all()
    assert summary.progress.stored == {"naive": 6, "sarima": 6}

    first_bytes = {p: p.read_bytes() for p in Path(synthetic_store.forecasts.path).rglob("*.parquet")}
    again = backfill(
        start=pd.Timestamp("2019-03-01").date(), end=pd.Timestamp("2019-03-08").date(),
        models=["naive", "sarima"], series=["rail", "bus"], train_days=182,
    )
    assert again.progress.skipped == {"naive": 6, "sarima": 6}
    assert again.progress.stored == {"naive": 2, "sarima": 2}
    for path, data in first_bytes.items():
        assert path.read_bytes() == data  # finished cutoffs were not recomputed

    overwritten = backfill(
        start=pd.Timestamp("2019-03-01").date(), end=pd.Timestamp("2019-03-02").date(),
        models=["naive"], series=["rail", "bus"], overwrite=True, train_days=182,
    )
    assert overwritten.progress.stored == {"naive": 2}
    after = synthetic_store.forecasts.read()
    assert len(after) == 8 * 2 * 2 * 14 * 2  # replaced, never duplicated (each model and its @raw)
    assert not after.duplicated(["unique_id", "cutoff", "model", "h"]).any()

    metrics = synthetic_store.metrics.read()
    assert {"naive", "sarima"} <= set(metrics["model"])
    report_files = synthetic_store.reports.files(pd.Timestamp("2019-03-02"))
    assert "report.md" in report_files and "report.html" in report_files


def test_the_leaderboard_and_the_independent_script_score_the_same_targets(synthetic_store: Store, tmp_path: Path):
    """Issue 19: a backfill's leaderboard scores the targets on its run dates only, not what its
    last cutoffs forecast beyond them; bench/score_forecasts.py, given that scope (one shared
    definition), agrees; pooling every target (its default, a backtest's scope) does not."""
    summary = backfill(
        start=pd.Timestamp("2019-03-01").date(), end=pd.Timestamp("2019-03-10").date(), models=["naive"], series=["rail", "bus"],
    )
    assert summary.scored.startswith("targets 2019-03-01..2019-03-10: the targets on the run dates")
    raw = tmp_path / "raw.csv"
    raw.write_text(as_raw_csv(synthetic_clean()))
    script = score_forecasts_script()
    forecasts, actuals = pd.read_parquet(summary.forecasts_path), script.read_actuals(raw)
    window, table = script.score(forecasts, actuals, "run_dates")
    assert (window.start, window.end) == (pd.Timestamp("2019-03-01"), pd.Timestamp("2019-03-10"))
    board = pd.DataFrame(summary.report.leaderboard)
    assert_same_scores(board, table)
    assert board["count_all"].tolist() == [55, 55]  # March d: one forecast from each cutoff Feb 28 .. d - 1

    every, pooled = script.score(forecasts, actuals, "all")
    pooled = pooled[pooled["model"] == "naive"]
    assert (every.start, every.end) == (pd.Timestamp("2019-03-01"), pd.Timestamp("2019-03-23"))
    assert not np.allclose(pooled.sort_values("unique_id")["mae_all"], board.sort_values("unique_id")["mae_all"])


def test_forecast_contract_reads_in_pandas_pyarrow_duckdb_polars(synthetic_store: Store):
    backfill(
        start=pd.Timestamp("2019-04-01").date(), end=pd.Timestamp("2019-04-02").date(),
        models=["naive"], series=["rail"],
    )
    path = synthetic_store.forecasts.path
    table = ds.dataset(path, format="parquet", partitioning=FORECAST_PARTITIONING).to_table()
    assert str(table.schema.field("cutoff").type) == "date32[day]"
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    via_pandas = pd.read_parquet(path)
    # naive and its bands as forecast, naive@raw (the calibration step's)
    assert len(via_pandas) == table.num_rows == 2 * 14 * 2
    assert set(via_pandas["cutoff"].astype(str)) == {"2019-03-31", "2019-04-01"}
    assert set(via_pandas["model"].astype(str)) == {"naive", "naive@raw"}
    via_duckdb = duckdb.sql(
        f"select cutoff, model, h, y_hat from read_parquet('{path}/**/*.parquet', hive_partitioning = true) order by cutoff, h"
    ).df()
    assert str(via_duckdb["cutoff"].iloc[0])[:10] == "2019-03-31" and len(via_duckdb) == 56
    via_polars = pl.read_parquet(f"{path}/**/*.parquet", hive_partitioning=True)
    assert via_polars.height == 56 and "cutoff" in via_polars.columns
    np.testing.assert_allclose(
        np.sort(via_duckdb["y_hat"].to_numpy()), np.sort(via_polars["y_hat"].to_numpy())
    )

    # Issue 21 added the quantile columns; a reader that names the pre-quantile columns reads
    # the same values through every engine, and the quantiles come after them in each file.
    old = ["cutoff", "model", "unique_id", "ds", "h", "y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95", "model_version", "run_id"]
    key = ["cutoff", "model", "h"]
    stored = synthetic_store.forecasts.read()[old].assign(cutoff=lambda f: f["cutoff"].dt.date, ds=lambda f: f["ds"].dt.date)
    expected = stored.sort_values(key).reset_index(drop=True)
    readers = {
        "pandas": pd.read_parquet(path, columns=old),
        "pyarrow": ds.dataset(path, format="parquet", partitioning=FORECAST_PARTITIONING).to_table(columns=old).to_pandas(),
        "duckdb": duckdb.sql(f"select {', '.join(old)} from read_parquet('{path}/**/*.parquet', hive_partitioning = true)").df(),
        "polars": pl.read_parquet(f"{path}/**/*.parquet", hive_partitioning=True).select(old).to_pandas(),
    }
    for name, frame in readers.items():
        got = frame.assign(
            cutoff=pd.to_datetime(frame["cutoff"].astype(str)).dt.date, ds=pd.to_datetime(frame["ds"]).dt.date,
            model=frame["model"].astype(str), h=frame["h"].astype(np.int64),
        ).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got[old], expected, check_dtype=False, obj=name)
    one_file = pq.read_schema(next(Path(path).rglob("*.parquet"))).names
    assert one_file[: len(one_file) - 9] == [c for c in old if c not in ("cutoff", "model")] + ["created_at"]
    assert one_file[-9:] == ["q_025", "q_050", "q_100", "q_250", "q_500", "q_750", "q_900", "q_950", "q_975"]
    np.testing.assert_array_equal(via_pandas["q_100"], via_pandas["y_lo_80"])


@pytest.mark.realdata
def test_seed_figures_reproduce_through_parquet_and_metrics(real_csv: Path, storage_root: str, monkeypatch):
    """Issue acceptance: rail, SARIMA (1,0,0)(0,1,1,7) expanding from 2019-01-01, run dates
    2019-03-01..2019-05-31; h = 1 read back from Parquet and from the stored metrics."""
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["ingest", "--source", str(real_csv), "--storage", storage_root]) == 0
        assert main([
            "backfill", "--start", "2019-03-01", "--end", "2019-05-31", "--models", "sarima,naive",
            "--series", "rail", "--train-start", "2019-01-01",
        ]) == 0
    store = Store.open(storage_root)
    clean = store.ridership.read_clean().set_index("service_date")["rail"]
    h1 = pd.read_parquet(store.forecasts.path, filters=[("h", "==", 1)])
    h1["ds"] = pd.to_datetime(h1["ds"])
    errors = {}
    for model, rows in h1.groupby("model", observed=True):
        assert len(rows) == 92
        actual = clean.loc[rows["ds"]].to_numpy()
        errors[model] = (
            np.abs(rows["y_hat"].to_numpy() - actual).mean(),
            100 * np.mean(np.abs(rows["y_hat"].to_numpy() - actual) / actual),
        )
    assert errors["sarima"][0] == pytest.approx(32_040.72, abs=1.0)
    assert errors["naive"][0] == pytest.approx(42_143.27, abs=0.01)
    assert round(errors["naive"][1], 1) == 9.0

    metrics = store.metrics.read()
    in_range = metrics[(metrics["window"] == "range:2019-03-01..2019-05-31") & (metrics["h"] == 1)]
    by_model = in_range.set_index("model")
    assert by_model.loc["sarima", "mae"] == pytest.approx(32_040.72, abs=1.0)
    assert by_model.loc["sarima", "count"] == 92
    assert round(by_model.loc["naive", "mape"], 1) == 9.0
    report = store.reports.read_text(pd.Timestamp("2019-05-31"), "report.md")
    assert "range:2019-03-01..2019-05-31" in report
    sarima_row = next(line for line in report.splitlines() if line.startswith("|") and "| sarima" in line)
    naive_row = next(line for line in report.splitlines() if "naive (reference)" in line)
    assert "32,041" in sarima_row and "9.0%" in naive_row
    files = store.reports.files(pd.Timestamp("2019-05-31"))
    pngs = [name for name in files if name.endswith(".png")]
    assert pngs and all(f"]({name})" in report for name in pngs)
    folder = Path(storage_root) / "reports" / "2019-05-31"
    assert all((folder / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
