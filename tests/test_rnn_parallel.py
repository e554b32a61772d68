"""Parallel RNN retrains (``RIDERSHIP_RNN_PARALLEL``): the challengers of a backfill are trained
side by side in worker processes, then replayed in walk-forward order; the registry (versions,
cards, promotion decisions, the champion pointer, failure records), the stored networks and the
stored forecasts are those of the serial run. A training that raises or diverges in a worker is
recorded exactly as the serial path records it, and its cutoffs fall back the same way.

What is compared: everything but wall-clock stamps (``trained_at``, the training's seconds,
``decided_at``, ``set_at``, ``failed_at``, the forecasts' ``run_id``/``created_at``). The
networks are compared weight for weight, bit for bit. ``seq2seq``'s weights depend on TensorFlow's
op-thread count (``multitask_rnn``'s do not, measured), so the workers take the flow process's
thread settings: checked on seq2seq, worker against in-process, below."""

from __future__ import annotations

import copy
from datetime import date

import numpy as np
import pandas as pd
import pytest

from flows.backfill import backfill
from flows.settings import Settings
from schemas.errors import InvalidInput
from storage import Store
from tasks.core.models.rnn import challengers
from tasks.core.models.catalog import rnn_forecaster
from tasks.core.walk_forward import visible_history
from tests.synthetic import synthetic_clean
from tests.test_rnn_failures import MODEL, inject, setup_store

pytestmark = pytest.mark.slow

SERIES = ["bus", "rail"]
CLOCK_FIELDS = ("seconds", "seconds_per_epoch", "first_epoch_seconds", "steady_epoch_seconds")


def comparable_card(card: dict) -> dict:
    card = copy.deepcopy(card)
    card.pop("trained_at")
    for name in CLOCK_FIELDS:
        card["training"].pop(name)
    card["promotion"].pop("decided_at")
    return card


def registry_state(store: Store) -> dict:
    registry = store.registry
    state = {}
    for unique_id in SERIES:
        versions = registry.versions(MODEL, unique_id)
        state[unique_id] = {
            "cards": {v: comparable_card(registry.read_card(MODEL, unique_id, v)) for v in versions},
            "weights": {v: registry.load(MODEL, unique_id, v).network.get_weights() for v in versions},
            "champion": registry.champion_version(MODEL, unique_id),
            "failures": [{k: r[k] for k in ("cutoff", "reason")} for r in registry.failures(MODEL, unique_id)],
        }
    return state


Run = tuple[dict, pd.DataFrame, list[str]]  # what run() returns: registry state, forecasts, fallbacks


def run(storage_root: str, monkeypatch, parallel: int, per_process: int = 20) -> Run:
    store = setup_store(storage_root, monkeypatch)
    monkeypatch.setenv("RIDERSHIP_RNN_PARALLEL", str(parallel))
    monkeypatch.setenv("RIDERSHIP_RNN_TRAININGS_PER_PROCESS", str(per_process))
    # A weekly retrain that raises and one that diverges (NaN validation MAE), in every series.
    inject(monkeypatch, raises_at=frozenset({pd.Timestamp("2019-03-10")}), diverges_at=frozenset({pd.Timestamp("2019-03-17")}))
    summary = backfill(start=date(2019, 3, 1), end=date(2019, 3, 25), models=[MODEL], series=SERIES)
    forecasts = store.forecasts.read(models=[MODEL]).drop(columns=["run_id", "created_at"])
    forecasts = forecasts.sort_values(["unique_id", "cutoff", "h"], ignore_index=True)
    return registry_state(store), forecasts, summary.progress.fallbacks


@pytest.mark.usefixtures("prefect_harness")
def test_parallel_backfill_gives_the_serial_registry_and_forecasts(tmp_path, monkeypatch):
    serial = run(str(tmp_path / "serial"), monkeypatch, 0)
    assert not challengers._POOLS  # the serial path (10 retrains, at most 20 per process) starts no worker
    try:
        parallel = run(str(tmp_path / "parallel"), monkeypatch, 2)
        # trained in the workers, none left to the flow; a pool kept (10 retrains, at most 20 per process)
        assert [workers for workers, _ in challengers._POOLS] == [2]
    finally:
        challengers.close_pools()
    check_same_run(serial, parallel)

    # A long run (more retrains than RIDERSHIP_RNN_TRAININGS_PER_PROCESS): one worker at a time,
    # a fresh one for every 3 trainings, so the flow's process holds no network; the same run again.
    started = challengers.pools_started
    recycled = run(str(tmp_path / "recycled"), monkeypatch, 0, per_process=3)
    assert challengers.pools_started - started == 4 and not challengers._POOLS  # 3 + 3 + 3 + 1 trainings
    check_same_run(serial, recycled)


def check_same_run(serial_run: Run, other_run: Run) -> None:
    serial_registry, serial_forecasts, serial_fallbacks = serial_run
    registry, forecasts, fallbacks = other_run
    for unique_id in SERIES:
        serial, parallel = serial_registry[unique_id], registry[unique_id]
        # The first cutoff (no champion) and the Monday run dates, less the failed ones.
        assert sorted(c["cutoff"] for c in serial["cards"].values()) == ["2019-02-28", "2019-03-03", "2019-03-24"]
        assert [f["cutoff"] for f in serial["failures"]] == ["2019-03-10", "2019-03-17"]
        assert serial["failures"][0]["reason"] == "RuntimeError: exploding gradients (traceback folded)"
        assert serial["failures"][1]["reason"].startswith("TrainingDiverged: ")
        assert parallel["cards"] == serial["cards"]  # versions, metrics, epochs, promotion decisions
        assert parallel["champion"] == serial["champion"] and parallel["failures"] == serial["failures"]
        for version, weights in serial["weights"].items():
            assert len(parallel["weights"][version]) == len(weights)
            for got, expected in zip(parallel["weights"][version], weights):
                np.testing.assert_array_equal(got, expected)

    pd.testing.assert_frame_equal(forecasts, serial_forecasts)  # y_hat, intervals, model_version
    assert fallbacks == serial_fallbacks and len(fallbacks) == 2 * 14  # 03-10..03-23, both series


def test_settings_parallel_and_warm_start():
    assert (Settings.from_env({}).rnn_parallel, Settings.from_env({}).rnn_warm_start) == (0, False)
    assert Settings.from_env({}).rnn_trainings_per_process == 20
    assert Settings.from_env({"RIDERSHIP_RNN_TRAININGS_PER_PROCESS": "5"}).rnn_trainings_per_process == 5
    assert Settings.from_env({"RIDERSHIP_RNN_PARALLEL": "2"}).rnn_parallel == 2
    assert Settings.from_env({"RIDERSHIP_RNN_WARM_START": "1"}).rnn_warm_start
    with pytest.raises(InvalidInput, match="exclude each other"):
        Settings.from_env({"RIDERSHIP_RNN_PARALLEL": "2", "RIDERSHIP_RNN_WARM_START": "1"})


def test_a_warm_start_trains_from_the_champion_weights():
    from tasks.core.models.forecaster import history_from_clean
    from tasks.core.models.rnn import RnnForecaster, TrainingConfig

    history = history_from_clean(synthetic_clean())
    # Learning rate 0: whatever the epochs, the network keeps the weights it starts from.
    frozen = TrainingConfig(max_epochs=1, train_days=150, validation_days=90, learning_rate=0.0)
    forecaster = rnn_forecaster(MODEL, frozen)
    first = forecaster.fit(visible_history(history, pd.Timestamp("2019-03-03")), "rail")
    cold = forecaster.fit(visible_history(history, pd.Timestamp("2019-03-10")), "rail")
    warm = forecaster.warm_started(first).fit(visible_history(history, pd.Timestamp("2019-03-10")), "rail")
    for got, expected in zip(warm.network.get_weights(), first.network.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert warm.card["training"]["warm_start_from"] == first.version and "warm_start_from" not in cold.card["training"]
    assert warm.version != cold.version and warm.version[:8] == cold.version[:8] == "20190310"
    # A champion of another shape or config cannot seed it: a cold start.
    other = RnnForecaster.named(MODEL, frozen, units=8)
    assert other.warm_started(first).warm_start is None


def test_workers_train_seq2seq_to_the_bits_of_this_process():
    from tasks.core.models.forecaster import history_from_clean
    from tasks.core.models.rnn import TrainingConfig
    from tasks.core.models.rnn.challengers import TrainingJob, train_checked, train_many

    history = history_from_clean(synthetic_clean())
    forecaster = rnn_forecaster("seq2seq", TrainingConfig(max_epochs=2, train_days=150, validation_days=90))
    cutoffs = [pd.Timestamp("2019-03-03"), pd.Timestamp("2019-03-10")]
    here = [train_checked(forecaster, history, "rail", cutoff) for cutoff in cutoffs]
    try:
        there = train_many([TrainingJob(forecaster, visible_history(history, c), "rail", c) for c in cutoffs], 2)
    finally:
        challengers.close_pools()
    for local, remote in zip(here, there):
        assert remote is not None and remote.failure is None
        assert remote.fitted.card["validation_mae"] == local.fitted.card["validation_mae"]
        for got, expected in zip(remote.fitted.network.get_weights(), local.fitted.network.get_weights()):
            np.testing.assert_array_equal(got, expected)
