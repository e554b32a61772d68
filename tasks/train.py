"""Prefect tasks for the RNNs: train a challenger, decide promotion, forecast with the champion
of each cutoff's week. A training that raises or yields a non-finite network never fails the
run: nothing is saved, the failure is recorded, and the cutoffs it should have served are
forecast by the previous champion (or the seasonal naive) marked as fallbacks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.models.champions import champion_as_of, forecast_source, retrain_cutoffs
from tasks.core.models.fallback import champion_fallback_version, failure_reason
from tasks.core.models.catalog import rnn_forecaster
from tasks.core.models.rnn.challengers import Challenger, TrainingJob, train_checked, train_many
from tasks.core.walk_forward import DEFAULT_WINDOW, TrainingWindow, fallback_at, forecast_at, visible_history


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
    from tasks.core.models.rnn import RnnFitted

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
    # A recorded failure counts as done: training is seeded, so retrying the same data would fail
    # the same way (and a nightly run asks twice: before forecasting and for the chunk).
    failed = store.registry.failures(model, unique_id)
    attempted = {pd.Timestamp(c["cutoff"]) for c in [*cards, *failed]}
    return [c for c in due if c not in attempted]


@task(cache_policy=NO_CACHE)
def pretrain_challengers(
    history: pd.DataFrame, model: str, planned: Sequence[tuple[str, pd.Timestamp]], training,
    improved_recipe: bool, workers: int, trainings_per_process: int | None = None,
) -> dict[tuple[str, pd.Timestamp], Challenger]:
    """Train the challengers of ``planned`` (series, cutoff) retrains side by side on ``workers``
    processes (each replaced after ``trainings_per_process`` trainings), touching no registry:
    each depends only on the data up to its cutoff. The retrain task then replays them in
    walk-forward order (``pretrained``). A training a worker could not deliver is left out, and
    the retrain task trains it itself."""
    forecaster = rnn_forecaster(model, training, improved_recipe)
    jobs = [TrainingJob(forecaster, visible_history(history, cutoff), unique_id, cutoff) for unique_id, cutoff in planned]
    results = train_many(jobs, workers, trainings_per_process)
    missing = [f"{unique_id} {cutoff.date()}" for (unique_id, cutoff), result in zip(planned, results) if result is None]
    if missing:
        get_run_logger().warning("%s: %d training(s) not delivered by a worker, trained in the flow: %s",
                                 model, len(missing), ", ".join(missing))
    return {key: result for key, result in zip(planned, results) if result is not None}


@task(cache_policy=NO_CACHE)
def retrain(
    store: Store, history: pd.DataFrame, model: str, unique_id: str, cutoff: pd.Timestamp, training,
    improved_recipe: bool = False, pretrained: Challenger | None = None, warm_start: bool = False,
) -> RetrainOutcome:
    """Train a challenger on data up to ``cutoff``; it becomes champion only if its validation
    MAE beats the champion's (as of that cutoff) on the same validation window.
    ``improved_recipe``: standardised series and Adam instead of the book's recipe.
    ``pretrained``: that challenger, already trained (``pretrain_challengers``): only the
    promotion vote, the save and the pointer remain, exactly as after training here.
    ``warm_start``: train from the weights of the champion as of ``cutoff`` (docs/scale-out.md: measured,
    not the default).
    A training that raises, or whose validation MAE or forecast is not finite, saves nothing:
    the failure is recorded in the registry and the outcome says so (promoted False)."""
    # One training per (model, series) at a time on a root: two runs due the same retrain (two
    # nightly runs for one date) would otherwise both train, and both move the champion pointer.
    # The second to get the lease finds the first's card and trains nothing.
    with store.lock(f"registry-{model}-{unique_id}", f"retrain at {cutoff.date()}"):
        done = _attempted_at(store, model, unique_id, cutoff)
        if done is not None:
            return done
        return _train(store, history, model, unique_id, cutoff, training, improved_recipe, pretrained, warm_start)


def _attempted_at(store: Store, model: str, unique_id: str, cutoff: pd.Timestamp) -> RetrainOutcome | None:
    """The outcome of a retrain another run already did at ``cutoff`` (None if none did)."""
    day = str(cutoff.date())
    for card in _cards(store, model, unique_id):
        if pd.Timestamp(card["cutoff"]) == pd.Timestamp(day):
            return RetrainOutcome(
                model=model, unique_id=unique_id, cutoff=day, version=card["version"],
                validation_mae=float(card["validation_mae"]), promoted=False,
                reason="already trained by another run", seconds=0.0,
            )
    if any(pd.Timestamp(f["cutoff"]) == pd.Timestamp(day) for f in store.registry.failures(model, unique_id)):
        return RetrainOutcome(
            model=model, unique_id=unique_id, cutoff=day, version="", validation_mae=math.nan, promoted=False,
            reason="training failed in another run", seconds=0.0,
        )
    return None


def _train(
    store: Store, history: pd.DataFrame, model: str, unique_id: str, cutoff: pd.Timestamp, training,
    improved_recipe: bool, pretrained: Challenger | None = None, warm_start: bool = False,
) -> RetrainOutcome:
    from tasks.core.models.rnn import decide_promotion, with_promotion

    logger = get_run_logger()
    visible = visible_history(history, cutoff)
    incumbent_card = champion_as_of(_cards(store, model, unique_id), cutoff)  # the lease is held: it stays so
    incumbent = None  # loaded once needed: a failed training never touches it
    if pretrained is None:
        forecaster = rnn_forecaster(model, training, improved_recipe)
        if warm_start and incumbent_card is not None:
            incumbent = _fitted(store, model, unique_id, incumbent_card["version"])
            forecaster = forecaster.warm_started(incumbent)
        pretrained = train_checked(forecaster, history, unique_id, cutoff)
    if pretrained.failure is not None:
        return _training_failed(store, model, unique_id, cutoff, pretrained.failure, pretrained.seconds)
    challenger = pretrained.fitted
    if incumbent is None and incumbent_card is not None:
        incumbent = _fitted(store, model, unique_id, incumbent_card["version"])
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


def _training_failed(
    store: Store, model: str, unique_id: str, cutoff: pd.Timestamp, reason: str, seconds: float
) -> RetrainOutcome:
    store.registry.record_failure(model, unique_id, str(cutoff.date()), reason)
    get_run_logger().warning(
        "%s/%s training at %s failed, nothing saved or promoted: %s", model, unique_id, cutoff.date(), reason
    )
    return RetrainOutcome(
        model=model, unique_id=unique_id, cutoff=str(cutoff.date()), version="", validation_mae=math.nan,
        promoted=False, reason=f"training failed: {reason}", seconds=seconds,
    )


@task(cache_policy=NO_CACHE)
def forecast_with_champions(
    store: Store, history: pd.DataFrame, model: str, series: Sequence[str], cutoffs: Sequence[pd.Timestamp], horizon: int,
    fallback_window: TrainingWindow = DEFAULT_WINDOW,
) -> pd.DataFrame:
    """Forecast each cutoff with the champion as of that cutoff (loaded once per version).

    Fallbacks, marked in ``model_version``: a cutoff whose scheduled retrain failed gets the
    previous champion; one with no champion at all, or whose champion's forecast fails, the
    seasonal naive on ``fallback_window`` (the naive model's own window, so the rows equal it)."""
    frames, loaded = [], {}
    for unique_id in series:
        cards = _cards(store, model, unique_id)
        failures = store.registry.failures(model, unique_id)
        for cutoff in cutoffs:
            source = forecast_source(cards, failures, cutoff)
            reason = source.fallback_reason
            if source.card is not None:
                version = source.card["version"]
                if (unique_id, version) not in loaded:  # a load that fails (tampered file) fails the run
                    loaded[(unique_id, version)] = _fitted(store, model, unique_id, version)
                stale = None if reason is None else champion_fallback_version(version, reason)
                try:
                    frames.append(forecast_at(loaded[(unique_id, version)], history, cutoff, unique_id, horizon, model, version=stale))
                    continue
                except Exception as error:  # noqa: BLE001 (a failing champion must not fail the night)
                    reason = f"champion {version} failed: {failure_reason(error)}"
            frames.append(fallback_at(history, cutoff, unique_id, horizon, model, reason, fallback_window))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
