"""The production model set end to end: a backfill with every default of ``flows.settings.Settings``
(the statistical models, the production RNNs, the ensemble of its default members, both series),
only the RNN training shrunk to a tiny config. Every other flow test narrows the set (the ensemble
off, or naive/sarima as its members), so this is the one run of what the nightly job runs."""

from __future__ import annotations

import dataclasses
import os
from datetime import date

import pandas as pd
import pytest

from tasks.core.calibration import raw_name
from flows.backfill import backfill
from flows.settings import Settings
from schemas.series import TOTAL_SERIES
from storage import Store
from tasks.core.models.ensemble import MODEL_NAME as ENSEMBLE
from tasks.core.models.fallback import FALLBACK_PREFIX
from tests.synthetic import synthetic_clean

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

TINY_RNN = {"RIDERSHIP_RNN_MAX_EPOCHS": "2", "RIDERSHIP_RNN_TRAIN_DAYS": "150", "RIDERSHIP_RNN_VALIDATION_DAYS": "90"}
# Run dates Tuesday..Thursday: cutoffs Monday..Wednesday, so each RNN trains once (at the first
# cutoff, having no champion), not again on the weekly retrain day.
FIRST_RUN, LAST_RUN = date(2019, 3, 5), date(2019, 3, 7)
CUTOFFS = set(pd.date_range(FIRST_RUN, LAST_RUN) - pd.Timedelta(days=1))
HORIZONS = set(range(1, Settings().horizon + 1))


def test_backfill_with_the_production_defaults_stores_every_model_and_a_real_ensemble(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("RIDERSHIP_")]:
        monkeypatch.delenv(name)  # nothing from the caller's environment: the shipped defaults
    root = str(tmp_path / "storage")
    for name, value in {**TINY_RNN, "RIDERSHIP_STORAGE": root}.items():
        monkeypatch.setenv(name, value)
    defaults = Settings()
    assert Settings.from_env() == dataclasses.replace(
        defaults, storage=root, rnn_max_epochs=2, rnn_train_days=150, rnn_validation_days=90
    )  # only the RNNs' training size and the storage differ from production
    assert defaults.rnn_models and defaults.ensemble_members, "the production set has RNNs and an ensemble"
    store = Store.open(root)
    store.ridership.write_clean(synthetic_clean())

    summary = backfill(start=FIRST_RUN, end=LAST_RUN)  # models and series: the defaults

    models = [*defaults.statistical_models, *defaults.rnn_models, ENSEMBLE]
    series = [s for s in defaults.series if s in TOTAL_SERIES]  # the store holds no station: skipped
    assert series == ["bus", "rail"]
    assert summary.models == models and summary.series == series
    assert summary.progress.stored == {m: len(CUTOFFS) for m in models}
    assert summary.progress.fallbacks == [], summary.progress.fallbacks
    stored = store.forecasts.read()
    for model in models:
        for unique_id in series:
            rows = stored[(stored["model"] == model) & (stored["unique_id"] == unique_id)]
            assert set(rows["cutoff"]) == CUTOFFS, (model, unique_id)
            for cutoff, at_cutoff in rows.groupby("cutoff"):
                assert sorted(at_cutoff["h"]) == sorted(HORIZONS), (model, unique_id, cutoff)
    # No substitute stood in anywhere: each row is the named model's own forecast.
    assert not stored["model_version"].str.startswith(FALLBACK_PREFIX).any()
    assert stored[["y_hat", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]].notna().all().all()

    # Each production RNN was trained for each series at the first cutoff, and that version forecast.
    first = min(CUTOFFS).date().isoformat()
    for model in defaults.rnn_models:
        for unique_id in series:
            versions = store.registry.versions(model, unique_id)
            assert [store.registry.read_card(model, unique_id, v)["cutoff"] for v in versions] == [first]
            rnn_rows = stored[(stored["model"] == model) & (stored["unique_id"] == unique_id)]
            assert set(rnn_rows["model_version"]) == set(versions)

    # The ensemble combines its real members at each cutoff and names each one's version.
    members = list(defaults.ensemble_members)
    for (unique_id, cutoff), rows in stored.groupby(["unique_id", "cutoff"]):
        version_of = rows.groupby("model")["model_version"].first()
        expected = f"{ENSEMBLE}[{defaults.ensemble_method}](" + ";".join(f"{m}={version_of[m]}" for m in members) + ")"
        assert set(rows.loc[rows["model"] == ENSEMBLE, "model_version"]) == {expected}, (unique_id, cutoff)
        point = rows.pivot(index="h", columns="model", values="y_hat")
        low, high = point[members].min(axis=1), point[members].max(axis=1)
        slack = 1e-9 * point[members].abs().max(axis=1)
        assert ((point[ENSEMBLE] >= low - slack) & (point[ENSEMBLE] <= high + slack)).all(), (unique_id, cutoff)
    # Scored and reported too: the targets matured by the last run date.
    # ... each model with its bands as forecast (<model>@raw) beside its calibrated ones.
    assert set(store.metrics.read()["model"]) == set(models) | {raw_name(m) for m in models}
