"""Model registry: layout, safe-mode reload, champion pointer, and the champion/challenger rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from storage.fs import Root
from storage.registry import ModelRegistry
from tasks.core.features.calendar import day_types
from tasks.core.models.rnn.promotion import should_promote

LEVELS = {"W": 1.0, "A": 0.6, "U": 0.45}


def tiny_history(days: int = 150, seed: int = 0) -> pd.DataFrame:
    index = pd.date_range("2019-01-07", periods=days, freq="D", name="ds")
    types = day_types(index)
    level = np.array([LEVELS[code] for code in types])
    rng = np.random.default_rng(seed)
    bus = level * 8e5 + rng.normal(0, 2e4, days)
    rail = level * 6e5 + rng.normal(0, 2e4, days)
    return pd.DataFrame({"bus": bus, "rail": rail, "day_type": types}, index=index)


def train_linear(history: pd.DataFrame, epochs: int = 2, seed: int = 42):
    from tasks.core.models.rnn import RnnForecaster, TrainingConfig

    training = TrainingConfig(
        max_epochs=epochs, patience=epochs, train_days=90, validation_days=45, jit_compile=False, seed=seed
    )
    return RnnForecaster.named("linear", training, seq_length=14).fit(history, "rail")


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(Root.from_url(str(tmp_path / "store")))


def test_promotion_rule_needs_a_strictly_lower_mae_on_the_same_window():
    assert should_promote(100.0, None) == (True, "no champion yet")
    assert should_promote(99.0, 100.0)[0] is True
    assert should_promote(100.0, 100.0)[0] is False  # a tie keeps the incumbent
    assert should_promote(101.0, 100.0)[0] is False
    assert should_promote(float("nan"), 100.0)[0] is False
    assert should_promote(100.0, float("nan"))[0] is True
    assert "1.0% lower" in should_promote(99.0, 100.0)[1]


def test_empty_registry_has_no_versions_and_no_champion(registry):
    assert registry.versions("linear", "rail") == []
    assert registry.champion_version("linear", "rail") is None
    assert registry.load_champion("linear", "rail") is None


@pytest.mark.slow
def test_save_lays_out_model_and_card_and_reloads_the_same_weights(registry):
    fitted = train_linear(tiny_history())
    version = registry.save("linear", "rail", fitted.network, fitted.card)
    assert version == fitted.version
    directory = registry.root.join("models", "linear", "rail", version)
    assert registry.root.listdir(directory) == ["card.json", "model.keras"]
    card = json.loads(registry.root.read_bytes(f"{directory}/card.json"))
    for key in ("architecture", "config", "split", "validation_mae", "validation_mape", "data_fingerprint",
                "libraries", "seed", "training", "promotion"):
        assert key in card
    stored = registry.load("linear", "rail", version)
    for saved, loaded in zip(fitted.network.get_weights(), stored.network.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    assert registry.versions("linear", "rail") == [version]
    assert not any(name.startswith(".tmp-") for name in registry.root.listdir(directory))


@pytest.mark.slow
def test_champion_challenger_cycle(registry):
    """Week 1: no champion, the model is promoted. Week 2: a worse challenger (1 epoch vs 3) is
    stored with its decision but the pointer stays; the champion is re-scored on its window."""
    from tasks.core.models.rnn import RnnFitted, decide_promotion, with_promotion

    history = tiny_history(days=150)
    first = train_linear(history.iloc[:-7], epochs=3)
    decision = decide_promotion(first, None, history.iloc[:-7])
    assert decision.promote and decision.champion_mae_on_same_window is None
    registry.save("linear", "rail", first.network, with_promotion(first.card, decision))
    registry.set_champion("linear", "rail", first.version, decision.reason)

    stored = registry.load_champion("linear", "rail")
    champion = RnnFitted.from_saved(stored.network, stored.card)
    assert champion.version == first.version

    challenger = train_linear(history, epochs=1)
    decision = decide_promotion(challenger, champion, history)
    rescored = champion.evaluate(
        history, pd.Timestamp(challenger.card["split"]["validation_start"]), history.index[-1]
    ).mae
    assert decision.champion_mae_on_same_window == pytest.approx(rescored)
    assert decision.promote == (challenger.card["validation_mae"] < rescored)
    registry.save("linear", "rail", challenger.network, with_promotion(challenger.card, decision))
    if decision.promote:
        registry.set_champion("linear", "rail", challenger.version, decision.reason)
    expected = challenger.version if decision.promote else first.version
    assert registry.champion_version("linear", "rail") == expected
    assert registry.read_card("linear", "rail", challenger.version)["promotion"]["promoted"] == decision.promote
    assert sorted(registry.versions("linear", "rail")) == sorted([first.version, challenger.version])


@pytest.mark.slow
def test_object_store_roots_go_through_the_same_code_path():
    """``memory://`` stands in for ``s3://``: no local paths, writes via pipe + move."""
    import uuid

    from tasks.core.models.rnn import RnnFitted

    registry = ModelRegistry(Root.from_url(f"memory://registry-{uuid.uuid4().hex}"))
    history = tiny_history()
    fitted = train_linear(history)
    version = registry.save("linear", "rail", fitted.network, fitted.card)
    registry.set_champion("linear", "rail", version, "no champion yet")
    stored = registry.load_champion("linear", "rail")
    reloaded = RnnFitted.from_saved(stored.network, stored.card)
    np.testing.assert_array_equal(reloaded.forecast(history, 14).mean, fitted.forecast(history, 14).mean)


def test_champion_must_point_at_a_stored_version(registry):
    with pytest.raises(FileNotFoundError):
        registry.set_champion("linear", "rail", "20190101-abc", "because")


def test_names_that_could_escape_the_models_folder_are_refused(registry):
    with pytest.raises(ValueError, match="invalid"):
        registry.versions("../etc", "rail")
    with pytest.raises(ValueError, match="invalid"):
        registry.champion_version("linear", "rail/../../x")


def test_a_version_without_its_card_is_invisible(registry):
    """A crash between the model write and the card write leaves no half-registered version."""
    directory = registry.root.join("models", "linear", "rail", "20190101-partial")
    registry.root.write_bytes_atomic(f"{directory}/model.keras", b"not yet complete")
    assert registry.versions("linear", "rail") == []


def test_update_card_rewrites_only_existing_versions(registry):
    with pytest.raises(FileNotFoundError):
        registry.update_card("linear", "rail", {"version": "20190101-missing"})
