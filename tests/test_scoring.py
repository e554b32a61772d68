"""Scoring: exact metrics on hand-made frames, edge cases, windows, determinism (the coverage
alert: tests/test_coverage_alert.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandera.errors
import pytest

from schemas.metrics import ALL_HORIZONS, MetricsSchema, is_window_name
from tasks.core.evaluation.scoring import (
    Window,
    actuals_long,
    leaderboard,
    range_window,
    score_forecasts,
    scored_targets,
    trailing_windows,
)

NAN = float("nan")
DAY = pd.Timedelta(days=1)


def forecast_frame(records: list[dict]) -> pd.DataFrame:
    """Forecast-contract rows from the few fields a test cares about."""
    rows = []
    for r in records:
        cutoff = pd.Timestamp(r["cutoff"])
        rows.append(
            {
                "unique_id": r.get("unique_id", "bus"),
                "cutoff": cutoff,
                "ds": cutoff + r["h"] * DAY,
                "h": r["h"],
                "model": r.get("model", "m"),
                "y_hat": float(r["y_hat"]),
                "y_lo_80": r.get("lo80", NAN),
                "y_hi_80": r.get("hi80", NAN),
                "y_lo_95": r.get("lo95", NAN),
                "y_hi_95": r.get("hi95", NAN),
                "model_version": "v1",
                "run_id": "run-1",
                "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.astype({"h": "int64", "y_lo_80": float, "y_hi_80": float, "y_lo_95": float, "y_hi_95": float})


def clean_frame(bus: dict[str, int], rail: dict[str, int] | None = None) -> pd.DataFrame:
    dates = sorted(bus)
    rail = rail or {d: 1000 for d in dates}
    return pd.DataFrame(
        {
            "service_date": pd.to_datetime(dates),
            "day_type": "W",
            "bus": np.array([bus[d] for d in dates], dtype="int64"),
            "rail": np.array([rail[d] for d in dates], dtype="int64"),
        }
    )


def row(metrics: pd.DataFrame, window: str, h: int, model: str = "m", unique_id: str = "bus") -> pd.Series:
    found = metrics[
        (metrics["window"] == window) & (metrics["h"] == h) & (metrics["model"] == model) & (metrics["unique_id"] == unique_id)
    ]
    assert len(found) == 1, found
    return found.iloc[0]


# Actuals for 2024-03-01..03-10; 03-04 is a zero (a strike day, say); 03-08 is missing (gap).
ACTUALS = {f"2024-03-{d:02d}": v for d, v in [(1, 100), (2, 200), (3, 150), (4, 0), (5, 120), (6, 80), (7, 90), (9, 110), (10, 130)]}
EVAL = pd.Timestamp("2024-03-10")


def reference_scores(pairs: list[tuple[float, float | None]]) -> dict[str, float]:
    """Metrics of (y_hat, y) pairs computed the slow, obvious way; y None = no actual."""
    scored = [(f, y) for f, y in pairs if y is not None]
    nonzero = [(f, y) for f, y in scored if y != 0]
    return {
        "count": len(scored),
        "pending": len(pairs) - len(scored),
        "zero": len(scored) - len(nonzero),
        "mae": sum(abs(f - y) for f, y in scored) / len(scored) if scored else NAN,
        "bias": sum(f - y for f, y in scored) / len(scored) if scored else NAN,
        "mape": 100 * sum(abs(f - y) / y for f, y in nonzero) / len(nonzero) if nonzero else NAN,
    }


@pytest.fixture
def simple_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Cutoffs 03-01..03-08, horizons 1 and 2: targets 03-02..03-10.
    records = []
    for day in range(1, 9):
        for h in (1, 2):
            records.append({"cutoff": f"2024-03-{day:02d}", "h": h, "y_hat": 100 + 10 * day + 3 * h})
    return forecast_frame(records), clean_frame(ACTUALS)


def test_exact_metrics_per_horizon_and_pooled(simple_case):
    forecasts, clean = simple_case
    metrics = score_forecasts(forecasts, clean, EVAL, windows=[range_window("2024-03-01", "2024-03-10")])
    window = "range:2024-03-01..2024-03-10"
    for h in (1, 2):
        pairs = [(f.y_hat, ACTUALS.get(f.ds.strftime("%Y-%m-%d"))) for f in forecasts[forecasts.h == h].itertuples()]
        expected = reference_scores(pairs)
        got = row(metrics, window, h)
        assert (got["count"], got["pending"], got["mape_excluded_zero"]) == (expected["count"], expected["pending"], expected["zero"])
        assert got["mae"] == pytest.approx(expected["mae"])
        assert got["bias"] == pytest.approx(expected["bias"])
        assert got["mape"] == pytest.approx(expected["mape"])
    all_pairs = [(f.y_hat, ACTUALS.get(f.ds.strftime("%Y-%m-%d"))) for f in forecasts.itertuples()]
    pooled, got = reference_scores(all_pairs), row(metrics, window, ALL_HORIZONS)
    assert got["count"] == pooled["count"] and got["pending"] == pooled["pending"]
    assert got["mae"] == pytest.approx(pooled["mae"]) and got["mape"] == pytest.approx(pooled["mape"])


def test_hand_computed_numbers():
    # Two targets: y=100 forecast 110 (+10, 10%), y=200 forecast 180 (-20, 10%).
    forecasts = forecast_frame([{"cutoff": "2024-03-01", "h": 1, "y_hat": 110}, {"cutoff": "2024-03-01", "h": 2, "y_hat": 180}])
    clean = clean_frame({"2024-03-02": 100, "2024-03-03": 200})
    metrics = score_forecasts(forecasts, clean, "2024-03-03", windows=trailing_windows("2024-03-03", [7]))
    pooled = row(metrics, "last_7", ALL_HORIZONS)
    assert (pooled["mae"], pooled["bias"], pooled["mape"], pooled["count"]) == (15.0, -5.0, 10.0, 2)


def test_zero_actual_is_excluded_from_mape_but_counted(simple_case):
    forecasts, clean = simple_case
    metrics = score_forecasts(forecasts, clean, EVAL, windows=[range_window("2024-03-04", "2024-03-04")])
    # 03-04 is the target of (cutoff 03-03, h=1) and (cutoff 03-02, h=2): both hit a zero actual.
    for h in (1, 2):
        got = row(metrics, "range:2024-03-04..2024-03-04", h)
        assert got["count"] == 1 and got["mape_excluded_zero"] == 1
        assert math.isnan(got["mape"])
        assert got["mae"] == forecasts.loc[(forecasts.h == h) & (forecasts.ds == "2024-03-04"), "y_hat"].item()


def test_missing_actual_is_pending_not_an_error():
    forecasts = forecast_frame([{"cutoff": "2024-03-07", "h": 1, "y_hat": 1e9}, {"cutoff": "2024-03-08", "h": 1, "y_hat": 115}])
    metrics = score_forecasts(forecasts, clean_frame(ACTUALS), EVAL, windows=trailing_windows(EVAL, [7]))
    got = row(metrics, "last_7", 1)
    # 03-08 is a gap in the series: its absurd forecast must not reach the MAE.
    assert (got["count"], got["pending"]) == (1, 1)
    assert got["mae"] == pytest.approx(abs(115 - ACTUALS["2024-03-09"]))


def test_all_pending_gives_a_row_with_count_zero_and_nan_metrics():
    forecasts = forecast_frame([{"cutoff": "2024-03-10", "h": h, "y_hat": 100, "lo80": 90, "hi80": 110} for h in (1, 2)])
    metrics = score_forecasts(forecasts, clean_frame(ACTUALS), "2024-03-12", windows=trailing_windows("2024-03-12", [7]))
    for h in (1, 2, ALL_HORIZONS):
        got = row(metrics, "last_7", h)
        assert got["count"] == 0 and got["pending"] == (2 if h == ALL_HORIZONS else 1)
        assert got[["mae", "mape", "bias", "coverage_80", "coverage_95"]].isna().all()


def test_empty_window_gives_no_rows_and_empty_input_a_valid_empty_table(simple_case):
    forecasts, clean = simple_case
    windows = [*trailing_windows(EVAL, [7]), range_window("2023-01-01", "2023-01-31")]
    metrics = score_forecasts(forecasts, clean, EVAL, windows=windows)
    assert set(metrics["window"]) == {"last_7"}
    empty = score_forecasts(forecasts.iloc[:0], clean, EVAL)
    assert empty.empty and list(empty.columns) == list(MetricsSchema.to_schema().columns)
    MetricsSchema.validate(empty)


def test_interval_coverage_counts_bounds_as_inside_and_ignores_missing_intervals():
    clean = clean_frame({"2024-03-02": 100, "2024-03-03": 100, "2024-03-04": 100, "2024-03-05": 100})
    forecasts = forecast_frame(
        [
            {"cutoff": "2024-03-01", "h": 1, "y_hat": 100, "lo80": 100, "hi80": 120, "lo95": 90, "hi95": 130},  # on the bound
            {"cutoff": "2024-03-02", "h": 1, "y_hat": 100, "lo80": 101, "hi80": 120, "lo95": 50, "hi95": 150},  # 80 miss
            {"cutoff": "2024-03-03", "h": 1, "y_hat": 100, "lo80": 80, "hi80": 99, "lo95": 100.5, "hi95": 150},  # both miss
            {"cutoff": "2024-03-04", "h": 1, "y_hat": 100},  # no interval: left out of coverage
            {"cutoff": "2024-03-01", "h": 1, "y_hat": 100, "model": "naive"},
        ]
    )
    metrics = score_forecasts(forecasts, clean, "2024-03-05", windows=trailing_windows("2024-03-05", [7]))
    got = row(metrics, "last_7", 1)
    assert got["count"] == 4
    assert got["coverage_80"] == pytest.approx(1 / 3) and got["coverage_95"] == pytest.approx(2 / 3)
    assert row(metrics, "last_7", 1, model="naive")[["coverage_80", "coverage_95"]].isna().all()


def test_trailing_window_boundaries_are_inclusive():
    windows = {w.name: w for w in trailing_windows("2024-03-31")}
    assert windows["last_7"] == Window("last_7", pd.Timestamp("2024-03-25"), pd.Timestamp("2024-03-31"))
    assert windows["last_28"].start == pd.Timestamp("2024-03-04") and windows["last_91"].start == pd.Timestamp("2024-01-01")
    days = pd.date_range("2024-03-22", "2024-04-01")  # targets 03-24 (outside) .. 04-02 (after eval)
    clean = clean_frame({d.strftime("%Y-%m-%d"): 100 for d in days + DAY})
    forecasts = forecast_frame([{"cutoff": d, "h": 1, "y_hat": 100 + i} for i, d in enumerate(days)])
    metrics = score_forecasts(forecasts, clean, "2024-03-31", windows=[windows["last_7"]])
    inside = forecasts[forecasts.ds.between("2024-03-25", "2024-03-31")]
    got = row(metrics, "last_7", 1)
    assert got["count"] == len(inside) == 7
    assert got["mae"] == pytest.approx((inside.y_hat - 100).abs().mean())


def test_window_names_follow_the_contract():
    assert range_window("2024-01-01", "2024-03-31").name == "range:2024-01-01..2024-03-31"
    assert all(is_window_name(w.name) for w in trailing_windows("2024-03-31"))
    with pytest.raises(ValueError):
        range_window("2024-03-31", "2024-01-01")
    with pytest.raises(ValueError):
        trailing_windows("2024-03-31 12:00")


def test_rerun_and_shuffled_input_give_identical_tables(simple_case):
    forecasts, clean = simple_case
    two_models = pd.concat([forecasts, forecasts.assign(model="naive", y_hat=forecasts.y_hat * 0.9)], ignore_index=True)
    two_series = pd.concat([two_models, two_models.assign(unique_id="rail")], ignore_index=True)
    first = score_forecasts(two_series, clean, EVAL)
    again = score_forecasts(two_series, clean, EVAL)
    shuffled = score_forecasts(two_series.sample(frac=1, random_state=7), clean.iloc[::-1], EVAL)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    pd.testing.assert_frame_equal(first, shuffled, check_exact=True)
    keys = first[["window", "unique_id", "model", "h"]]
    assert list(keys.itertuples(index=False)) == sorted(
        keys.itertuples(index=False), key=lambda k: (["last_7", "last_28", "last_91"].index(k[0]), k[1], k[2], k[3])
    )


def test_long_and_clean_actuals_score_the_same(simple_case):
    forecasts, clean = simple_case
    long = actuals_long(clean)
    assert list(long.columns) == ["unique_id", "ds", "y"] and len(long) == 2 * len(clean)
    pd.testing.assert_frame_equal(score_forecasts(forecasts, clean, EVAL), score_forecasts(forecasts, long, EVAL))


def test_duplicate_forecasts_are_refused(simple_case):
    forecasts, clean = simple_case
    with pytest.raises(ValueError, match="duplicate"):
        score_forecasts(pd.concat([forecasts, forecasts.iloc[:1]]), clean, EVAL)


def test_schema_refuses_inconsistent_rows(simple_case):
    forecasts, clean = simple_case
    metrics = score_forecasts(forecasts, clean, EVAL)
    with pytest.raises(pandera.errors.SchemaError):
        MetricsSchema.validate(metrics.assign(window="yesterday"))
    broken = metrics.copy()
    broken.loc[broken["count"] > 0, "mae"] = NAN
    with pytest.raises(pandera.errors.SchemaError):
        MetricsSchema.validate(broken)


def leaderboard_case() -> pd.DataFrame:
    """Three models on bus over 03-02..03-09 at h=1 and 2, with known constant errors."""
    actual = {f"2024-03-{d:02d}": 100 for d in range(1, 12)}
    records = []
    for day in range(1, 9):
        for h in (1, 2):
            errors = {"naive": 20 * h, "good": 10, "bad": 30 * h}
            records += [{"cutoff": f"2024-03-{day:02d}", "h": h, "model": m, "y_hat": 100 + e} for m, e in errors.items()]
    return score_forecasts(forecast_frame(records), clean_frame(actual), "2024-03-10", windows=trailing_windows("2024-03-10", [28]))


def test_leaderboard_ranks_models_against_the_naive_reference():
    board = leaderboard(leaderboard_case(), window="last_28")
    assert list(board["model"]) == ["good", "naive", "bad"]
    by_model = board.set_index("model")
    assert list(by_model["rank_h1"]) == [1, 2, 3] and list(by_model["rank_all"]) == [1, 2, 3]
    assert by_model.loc["good", "mae_h1"] == 10 and by_model.loc["good", "rel_mae_h1"] == pytest.approx(10 / 20)
    # Pooled over h=1,2 with equal counts: naive (20+40)/2 = 30, bad (30+60)/2 = 45.
    assert by_model.loc["bad", "rel_mae_all"] == pytest.approx(45 / 30)
    assert by_model.loc["naive", "is_reference"] and by_model.loc["naive", "rel_mae_all"] == 1.0
    assert by_model.loc["good", "mape_h1"] == pytest.approx(10.0)


def test_rerun_writes_byte_identical_parquet_that_reads_back_valid(simple_case):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    forecasts, clean = simple_case

    def parquet_bytes(frame: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        return buffer.getvalue()

    first = score_forecasts(forecasts, clean, EVAL)
    again = score_forecasts(forecasts.sample(frac=1, random_state=1), clean, EVAL)
    assert parquet_bytes(first) == parquet_bytes(again)
    read_back = pd.read_parquet(io.BytesIO(parquet_bytes(first)))
    pd.testing.assert_frame_equal(MetricsSchema.validate(read_back), first)


def test_scored_targets_the_run_dates_or_every_target_up_to_the_last_actual():
    """Issue 19's one definition: protocol A (the nightly runs of 2019-03-01..05-31) scored on its
    run dates, or on every target its 92 cutoffs forecast (June included)."""
    run_dates = scored_targets("2019-02-28", "2019-05-30", 14, "2021-11-30", "run_dates")
    assert (run_dates.name, run_dates.start, run_dates.end) == (
        "range:2019-03-01..2019-05-31", pd.Timestamp("2019-03-01"), pd.Timestamp("2019-05-31"),
    )  # fmt: skip
    assert scored_targets("2019-02-28", "2019-05-30", 14, "2021-11-30", "all").name == "range:2019-03-01..2019-06-13"
    assert scored_targets("2019-02-28", "2019-05-30", 14, "2019-06-05", "all").end == pd.Timestamp("2019-06-05")
    assert scored_targets("2019-02-28", "2019-05-30", 14, "2019-04-01", "run_dates").end == pd.Timestamp("2019-04-01")
    with pytest.raises(ValueError, match="after its end"):
        scored_targets("2019-02-28", "2019-05-30", 14, "2019-02-28", "all")  # nothing published after the first cutoff
    with pytest.raises(ValueError, match="unknown target scope"):
        scored_targets("2019-02-28", "2019-05-30", 14, "2021-11-30", "pooled")


def test_history_actuals_takes_the_named_series_present_and_drops_missing_days():
    from tasks.core.evaluation.scoring import history_actuals

    index = pd.date_range("2019-03-01", periods=3, freq="D", name="ds")
    history = pd.DataFrame({"bus": [1.0, np.nan, 3.0], "rail": [4.0, 5.0, 6.0]}, index=index)
    long = history_actuals(history, ["bus", "station:1"])
    assert list(long["unique_id"].unique()) == ["bus"]
    assert list(long["ds"]) == [index[0], index[2]] and list(long["y"]) == [1.0, 3.0]
