"""Versions trained before the calendar inputs (next-day type only, card schema 1) still load in
safe mode and forecast exactly as they did; cards that do not match their network are refused.

The fixture (tests/fixtures/legacy_rnn, written by make_legacy_rnn_models.py with the code of
commit 1f63a83) holds tiny multitask_rnn and seq2seq versions and the forecasts that code made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_rnn_models import TINY_TRAINING, tiny_history

pytestmark = pytest.mark.slow  # loads TensorFlow models

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_rnn"
EXPECTED = json.loads((FIXTURE / "expected_forecasts.json").read_text())


@pytest.fixture
def registry(tmp_path):
    from storage.fs import Root
    from storage.registry import ModelRegistry

    shutil.copytree(FIXTURE / "store", tmp_path / "store")
    return ModelRegistry(Root.from_url(str(tmp_path / "store")))


@pytest.mark.parametrize("model", ["multitask_rnn", "seq2seq"])
def test_a_champion_trained_before_calendar_inputs_forecasts_as_before(model, registry):
    from tasks.core.models.rnn import RnnFitted, RnnForecaster

    version = EXPECTED[model]["version"]
    stored = registry.load(model, "bus", version)  # safe mode
    assert stored.card["schema"] == 1 and "calendar" not in stored.card["config"]["model"]
    legacy = RnnFitted.from_saved(stored.network, stored.card)
    assert legacy.config.calendar == "next_day_type" and stored.network.input_shape[-1] == 5
    forecast = legacy.forecast(tiny_history(), 14)
    np.testing.assert_allclose(forecast.mean, EXPECTED[model]["mean"], rtol=1e-6)

    # A challenger trained now reads the target days' calendar; the promotion rule can still
    # re-score the old champion on the challenger's validation window with the old inputs.
    from tasks.core.models.rnn import decide_promotion

    history = tiny_history()
    make = RnnForecaster.recommended if model == "multitask_rnn" else RnnForecaster.named
    challenger = make(model, TINY_TRAINING, seq_length=14, units=8).fit(history, "bus")
    assert challenger.card["schema"] == 2 and challenger.network.input_shape[-1] > 5
    decision = decide_promotion(challenger, legacy, history)
    assert np.isfinite(decision.champion_mae_on_same_window)


def test_cards_that_would_build_other_inputs_than_the_network_takes_are_refused(registry):
    from tasks.core.models.rnn import RnnFitted

    stored = registry.load("seq2seq", "bus", EXPECTED["seq2seq"]["version"])
    relabelled = json.loads(json.dumps(stored.card))
    relabelled["config"]["model"]["calendar"] = "target_days"
    with pytest.raises(ValueError, match="network takes 5 features"):
        RnnFitted.from_saved(stored.network, relabelled)
    listed = {**stored.card, "inputs": ["bus", "rail", "next_day_A", "next_day_U", "holiday"]}
    with pytest.raises(ValueError, match="card records"):
        RnnFitted.from_saved(stored.network, listed)
    with pytest.raises(ValueError, match="unsupported model card schema 3"):
        RnnFitted.from_saved(stored.network, {**stored.card, "schema": 3})
