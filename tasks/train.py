"""Prefect tasks for the RNNs: train a challenger, decide promotion, forecast with the champion
of each cutoff's week."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.champions import champion_as_of, retrain_cutoffs
from tasks.core.walk_forward import forecast_at, visible_history


@dataclass(frozen=True)
class RetrainOutcome:
    model: str
    unique_id: str
    cutoff: str
    version: str
    validation_mae: float
    promoted: bool
    reason: str
    seconds: float


def _cards(store: Store, model: str, unique_id: str) -> list[dict]:
    registry = store.registry
    return [registry.read_card(model, unique_id, v) for v in registry.versions(model, unique_id)]


def _fitted(store: Store, model: str, unique_id: str, version: str):
    from tasks.core.rnn import RnnFitted

    stored = store.registry.load(model, unique_id, version)
    return RnnFitted.from_saved(stored.network, stored.card)


@task(cache_policy=NO_CACHE)
def due_retrains(
    store: Store, model: str, unique_id: str, cutoffs: Sequence[pd.Timestamp], retrain_weekday: int
) -> list[pd.Timestamp]:
    """The cutoffs of ``cutoffs`` at which ``model`` must be (re)trained and is not yet."""
    cards = _cards(store, model, unique_id)
    first = min(cutoffs)
    due = retrain_cutoffs(cutoffs, retrain_weekday, champion_as_of(cards, first) is not None)
    trained = {pd.Timestamp(c["cutoff"]) for c in cards}
    return [c for c in due if c not in trained]


@task(cache_policy=NO_CACHE)
def retrain(
    store: Store, history: pd.DataFrame, model: str, unique_id: str, cutoff: pd.Timestamp, training,
    improved_recipe: bool = False,
) -> RetrainOutcome:
    """Train a challenger on data up to ``cutoff``; it becomes champion only if its validation
    MAE beats the champion's (as of that cutoff) on the same validation window.
    ``improved_recipe``: standardised series and Adam instead of the book's recipe."""
    from tasks.core.rnn import RnnForecaster, decide_promotion, with_promotion

    logger = get_run_logger()
    visible = visible_history(history, cutoff)
    make = RnnForecaster.recommended if improved_recipe else RnnForecaster.named
    challenger = make(model, training=training).fit(visible, unique_id)
    incumbent_card = champion_as_of(_cards(store, model, unique_id), cutoff)
    incumbent = _fitted(store, model, unique_id, incumbent_card["version"]) if incumbent_card else None
    decision = decide_promotion(challenger, incumbent, visible)
    card = with_promotion(challenger.card, decision)
    registry = store.registry
    version = registry.save(model, unique_id, challenger.network, card)
    if decision.promote:
        current = registry.champion_version(model, unique_id)
        # The production pointer only moves forward: a backfill of an old range records its
        # champions in the cards without pointing production back in time.
        if current is None or registry.read_card(model, unique_id, current)["cutoff"] <= card["cutoff"]:
            registry.set_champion(model, unique_id, version, decision.reason)
    logger.info("%s/%s trained at %s: %s (%s)", model, unique_id, cutoff.date(), version, decision.reason)
    return RetrainOutcome(
        model=model, unique_id=unique_id, cutoff=str(cutoff.date()), version=version,
        validation_mae=float(card["validation_mae"]), promoted=decision.promote, reason=decision.reason,
        seconds=float(card["training"]["seconds"]),
    )


@task(cache_policy=NO_CACHE)
def forecast_with_champions(
    store: Store, history: pd.DataFrame, model: str, series: Sequence[str], cutoffs: Sequence[pd.Timestamp], horizon: int
) -> pd.DataFrame:
    """Forecast each cutoff with the champion as of that cutoff (loaded once per version)."""
    logger = get_run_logger()
    frames, loaded = [], {}
    for unique_id in series:
        cards = _cards(store, model, unique_id)
        for cutoff in cutoffs:
            card = champion_as_of(cards, cutoff)
            if card is None:
                logger.warning("%s/%s: no champion trained on or before %s: no forecast", model, unique_id, cutoff.date())
                continue
            key = (unique_id, card["version"])
            if key not in loaded:
                loaded[key] = _fitted(store, model, unique_id, card["version"])
            frames.append(forecast_at(loaded[key], history, cutoff, unique_id, horizon, model))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
