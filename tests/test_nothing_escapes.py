"""Names that come from parameters or data cannot write outside the storage root, and nothing
read from storage executes code (Keras safe mode refuses a tampered model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from schemas.errors import InvalidInput
from storage import Store
from storage.fs import Root, UnsafePath
from tests.test_ensemble import member_rows

HOSTILE_PARTS = ["../evil", "a/../../evil", "/../evil", "x\x00y", "s3://bucket/evil", "..\\evil", "file:///etc/passwd", "."]


@pytest.mark.parametrize("part", HOSTILE_PARTS)
def test_root_refuses_parts_that_leave_it(tmp_path: Path, part: str):
    root = Root.from_url(str(tmp_path / "storage"))
    with pytest.raises(UnsafePath):
        root.join("forecasts", part)


@pytest.mark.parametrize("unique_id", ["../../evil", "rail/../../../evil", "x\x00"])
def test_forecast_rows_with_hostile_series_ids_are_refused(tmp_path: Path, unique_id: str):
    store = Store.open(str(tmp_path / "storage"))
    rows = member_rows("naive", pd.Timestamp("2024-03-10"), 100).assign(unique_id=unique_id, run_id="r", created_at=pd.Timestamp.now(tz="UTC"))
    with pytest.raises(InvalidInput):
        store.forecasts.write(rows)
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []


@pytest.mark.parametrize("name", ["../evil", "/abs", ".hidden", "a/b", "x\x00"])
def test_backtest_names_stay_under_backtests(tmp_path: Path, name: str):
    with pytest.raises(InvalidInput):
        Store.open(str(tmp_path / "storage")).backtest(name)


def test_registry_refuses_hostile_model_and_series_names(tmp_path: Path):
    registry = Store.open(str(tmp_path / "storage")).registry
    for model, unique_id in [("../evil", "rail"), ("multitask_rnn", "../../evil"), ("multitask_rnn", "/etc")]:
        with pytest.raises(ValueError):
            registry.versions(model, unique_id)


def test_cli_refuses_hostile_series_and_backtest_names(tmp_path: Path):
    ridership = str(Path(sys.executable).parent / "ridership")
    env = {**os.environ, "RIDERSHIP_STORAGE": str(tmp_path / "storage")}
    for arguments in (
        ["backfill", "--start", "2019-03-01", "--end", "2019-03-02", "--series", "../../evil"],
        ["backtest", "--period", "2019", "--name", "../../evil"],
    ):
        run = subprocess.run([ridership, *arguments], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == InvalidInput.exit_code and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


@pytest.mark.slow
def test_tampered_keras_model_with_a_lambda_layer_is_refused(tmp_path: Path):
    import keras

    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    tampered = tmp_path / "tampered.keras"
    keras.Model(inputs, outputs).save(tampered)
    store = Store.open(str(tmp_path / "storage"))
    folder = Path(store.root.path) / "models" / "multitask_rnn" / "rail" / "20190101-tampered"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(tampered.read_bytes())
    (folder / "card.json").write_text('{"version": "20190101-tampered"}')
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        store.registry.load("multitask_rnn", "rail", "20190101-tampered")


@pytest.mark.slow
def test_tampered_cards_are_refused_and_training_writes_only_known_keys(tmp_path: Path):
    from storage.registry import CARD_KEYS, TamperedCard
    from tests.test_registry import tiny_history, train_linear

    store = Store.open(str(tmp_path / "storage"))
    fitted = train_linear(tiny_history())
    assert set(fitted.card) | {"promotion"} <= CARD_KEYS  # the allow-list follows what training writes
    version = store.registry.save("linear", "rail", fitted.network, {**fitted.card, "promotion": None})
    card = Path(store.root.path) / "models" / "linear" / "rail" / version / "card.json"
    good = card.read_text()
    for tampered, problem in (
        (good.replace('"seed"', '"__class__"'), "unexpected key"),
        ("[1, 2, 3]", "not a JSON object"),
        ("{not json", "not JSON"),
        (good.replace(f'"version": "{version}"', '"version": "20990101-other"'), "names version"),
    ):
        card.write_text(tampered)
        with pytest.raises(TamperedCard, match=problem):
            store.registry.read_card("linear", "rail", version)
