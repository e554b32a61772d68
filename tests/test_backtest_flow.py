"""The backtest flow: strided cutoffs, its own folder (production untouched), the ensemble from
its members at the same cutoff, a leaderboard, resume; RNNs keep their weekly cadence."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from flows.backtest import backtest
from schemas.errors import InvalidInput
from storage import Store
from tests.synthetic import as_raw_csv, synthetic_clean
from tests.test_backfill_flow import assert_same_scores, score_forecasts_script

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def store(storage_root: str, monkeypatch) -> Store:
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_WORKERS", "1")
    monkeypatch.setenv("RIDERSHIP_RNN_MODELS", "")
    monkeypatch.setenv("RIDERSHIP_ENSEMBLE_MEMBERS", "naive,sarima")
    main = Store.open(storage_root)
    main.ridership.write_clean(synthetic_clean())
    return main


def test_backtest_stores_apart_ranks_models_and_resumes(store: Store, tmp_path):
    models = ["naive", "sarima", "ensemble"]
    summary = backtest(name="spring", start=date(2019, 3, 1), end=date(2019, 3, 20), every=3, models=models, series=["rail", "bus"])
    expected = set(pd.date_range("2019-03-01", "2019-03-19", freq="3D"))
    assert summary.models == ["naive", "sarima", "ensemble"]
    assert store.forecasts.read().empty  # production forecasts untouched
    stored = store.backtest("spring").forecasts.read()
    for model in summary.models:
        for unique_id in ("rail", "bus"):
            rows = stored[(stored["model"] == model) & (stored["unique_id"] == unique_id)]
            assert set(rows["cutoff"]) == expected, (model, unique_id)
    ensemble = stored[stored["model"] == "ensemble"].set_index(["unique_id", "cutoff", "h"])["y_hat"]
    members = stored[stored["model"].isin(["naive", "sarima"])].groupby(["unique_id", "cutoff", "h"])["y_hat"]
    low, high = members.min(), members.max()
    assert ((ensemble >= low.loc[ensemble.index] - 1e-6) & (ensemble <= high.loc[ensemble.index] + 1e-6)).all()
    board = pd.DataFrame(summary.report.leaderboard)
    assert set(board["model"]) == {"naive", "sarima", "ensemble"} and set(board["unique_id"]) == {"rail", "bus"}
    assert board["mae_all"].gt(0).all() and board["count_all"].gt(0).all()
    assert "report.md" in store.backtest("spring").reports.files(pd.Timestamp("2019-03-20"))
    # Every target of every cutoff (2019-03-02 .. 03-19 + 14), as bench/score_forecasts.py scores by default.
    assert summary.scored.startswith("targets 2019-03-02..2019-04-02: every target of every cutoff")
    (tmp_path / "raw.csv").write_text(as_raw_csv(synthetic_clean()))
    script = score_forecasts_script()
    window, table = script.score(stored, script.read_actuals(tmp_path / "raw.csv"))
    assert (window.start, window.end) == (pd.Timestamp("2019-03-02"), pd.Timestamp("2019-04-02"))
    assert_same_scores(board, table)

    again = backtest(name="spring", start=date(2019, 3, 1), end=date(2019, 3, 20), every=3, models=models, series=["rail", "bus"])
    assert again.progress.stored == {"naive": 0, "sarima": 0, "ensemble": 0}
    pd.testing.assert_frame_equal(store.backtest("spring").forecasts.read(), stored)


def test_a_publication_lag_hides_the_days_before_each_cutoff_from_every_model(store: Store, tmp_path, monkeypatch):
    """Issue 19, leakage: with --publication-lag 3 the forecast labelled cutoff c uses the data up
    to c - 3 only. Perturbing the 3 days before the last cutoff (and every day after) leaves every
    forecast bit-identical, the ensemble's included: by the last cutoffs its members have 28
    matured forecasts, so its inverse-MAE weights read actuals, and only those up to c - 3."""
    kwargs = dict(start=date(2019, 3, 1), end=date(2019, 3, 12), every=1, models=["naive", "sarima", "ensemble"],
                  series=["rail", "bus"], publication_lag=3)  # fmt: skip
    summary = backtest(name="lag3", **kwargs)
    assert "up to 3 day(s) before its cutoff" in store.backtest("lag3").reports.read_text(pd.Timestamp("2019-03-12"), "report.md")
    assert summary.scored.startswith("targets 2019-03-02..2019-03-26")  # still c + 1 .. c + 14
    clean = store.backtest("lag3").forecasts.read().drop(columns=["run_id", "created_at"])
    assert (clean["ds"] == clean["cutoff"] + pd.to_timedelta(clean["h"], unit="D")).all()
    assert sorted(clean["h"].unique()) == list(range(1, 15))
    last = clean[clean["cutoff"] == pd.Timestamp("2019-03-12")].set_index(["unique_id", "model", "h"])["y_hat"].unstack("model")
    assert (last["ensemble"] - (last["naive"] + last["sarima"]) / 2).abs().max() > 1e-3  # weighted, not equal

    tampered = synthetic_clean()
    hidden = tampered["service_date"] > pd.Timestamp("2019-03-09")
    factor = np.random.default_rng(1).uniform(0.5, 1.5, hidden.sum())
    for column in ("bus", "rail"):
        tampered.loc[hidden, column] = (tampered.loc[hidden, column] * factor).round().astype("int64")
    other = str(tmp_path / "tampered")
    monkeypatch.setenv("RIDERSHIP_STORAGE", other)
    Store.open(other).ridership.write_clean(tampered)
    backtest(name="lag3", **kwargs)
    again = Store.open(other).backtest("lag3").forecasts.read().drop(columns=["run_id", "created_at"])
    pd.testing.assert_frame_equal(again, clean, check_exact=True)

    with pytest.raises(InvalidInput, match="not the RNNs"):
        backtest(name="lag3rnn", **{**kwargs, "models": ["naive", "multitask_rnn"]})


@pytest.mark.slow
def test_rnn_retrains_weekly_whatever_the_stride(store: Store, monkeypatch):
    for name, value in {
        "RIDERSHIP_RNN_MAX_EPOCHS": "2", "RIDERSHIP_RNN_TRAIN_DAYS": "150", "RIDERSHIP_RNN_VALIDATION_DAYS": "90",
    }.items():
        monkeypatch.setenv(name, value)
    backtest(name="rnn", start=date(2019, 2, 28), end=date(2019, 3, 14), every=5, models=["multitask_rnn"], series=["rail"])
    bt = store.backtest("rnn")
    trained_at = sorted(bt.registry.read_card("multitask_rnn", "rail", v)["cutoff"] for v in bt.registry.versions("multitask_rnn", "rail"))
    # First cutoff (no champion yet), then every cutoff whose run date is a Monday, though the
    # backtest forecasts only every fifth day (02-28, 03-05, 03-10).
    assert trained_at == ["2019-02-28", "2019-03-03", "2019-03-10"]
    assert set(bt.forecasts.read()["cutoff"]) == set(pd.date_range("2019-02-28", "2019-03-14", freq="5D"))
    assert store.registry.versions("multitask_rnn", "rail") == []  # production registry untouched
