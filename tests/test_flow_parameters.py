"""Every parameter of every deployed flow carries a description in the schema `prefect deploy`
sends to the server (the text the UI shows beside each field of a custom run), and a parameter
whose default is None says what None falls back to, with the values the settings default to."""

from __future__ import annotations

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema

from flows.settings import Settings
from tasks.core.models.catalog import STATISTICAL_MODELS
from tests.conftest import REPO

# Entrypoints as prefect.yaml names them; a new deployed flow goes here (checked below).
FLOWS = [
    "flows/nightly.py:nightly",
    "flows/backfill.py:backfill",
    "flows/backtest.py:backtest",
]

DEFAULTS = Settings()
# Parameters whose None default stands for a setting: the description must name the setting
# and the value it has when unset, so the UI never shows an unexplained empty field.
DEFAULT_MODELS = [
    *STATISTICAL_MODELS, "RIDERSHIP_RNN_MODELS", ", ".join(DEFAULTS.rnn_models),
    "RIDERSHIP_ENSEMBLE_MEMBERS", ", ".join(DEFAULTS.ensemble_members),
    "RIDERSHIP_MANY_SERIES_MODELS", ", ".join(DEFAULTS.many_series_models),
]
DEFAULT_SERIES = ["RIDERSHIP_SERIES", ", ".join(DEFAULTS.series)]
NONE_MEANS = {
    ("backfill", "models"): DEFAULT_MODELS,
    ("backfill", "series"): DEFAULT_SERIES,
    ("backtest", "models"): DEFAULT_MODELS,
    ("backtest", "series"): DEFAULT_SERIES,
    ("backfill", "train_start"): ["RIDERSHIP_SARIMA_TRAIN_DAYS", str(DEFAULTS.sarima_train_days), DEFAULTS.sarima_train_start],
    ("backfill", "train_days"): ["RIDERSHIP_SARIMA_TRAIN_DAYS", str(DEFAULTS.sarima_train_days), DEFAULTS.sarima_train_start],
    ("nightly", "run_date"): ["America/Chicago", "schedule"],
}


def deploy_schema(entrypoint: str) -> tuple[str, dict]:
    """The flow's name and parameter schema, built the way `prefect deploy` builds it."""
    flow = load_flow_from_entrypoint(str(REPO / entrypoint))
    return flow.name, parameter_schema(flow).model_dump_for_openapi()


def test_every_deployment_in_prefect_yaml_is_checked():
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    assert {d["entrypoint"] for d in deployments} <= set(FLOWS)


@pytest.mark.parametrize("entrypoint", FLOWS)
def test_every_parameter_has_a_description(entrypoint: str):
    name, schema = deploy_schema(entrypoint)
    properties = schema["properties"]
    assert properties, f"{name} has no parameters in its schema"
    undocumented = [p for p, spec in properties.items() if not spec.get("description", "").strip()]
    assert not undocumented, f"{name}: no description for {undocumented} (add them to the docstring's Args section)"


@pytest.mark.parametrize("entrypoint", FLOWS)
def test_a_none_default_says_what_it_means(entrypoint: str):
    name, schema = deploy_schema(entrypoint)
    for parameter, spec in schema["properties"].items():
        if "default" not in spec or spec["default"] is not None:
            continue
        description = spec["description"]
        assert "Default" in description, f"{name}.{parameter}: description does not say what None means"
        assert (name, parameter) in NONE_MEANS, f"{name}.{parameter}: list what its None default falls back to in NONE_MEANS"
        missing = [term for term in NONE_MEANS[name, parameter] if term not in description]
        assert not missing, f"{name}.{parameter}: description lacks {missing}: {description!r}"


def test_the_ui_gets_the_defaults_it_shows():
    _, schema = deploy_schema("flows/backfill.py:backfill")
    properties = schema["properties"]
    assert schema["required"] == ["start", "end"]
    assert properties["overwrite"]["default"] is False
    assert {properties[p]["default"] for p in ("models", "series", "train_start", "train_days")} == {None}
