"""Which RNN a cutoff may use, and when a walk-forward retrains: pure rules over model cards.

A backfill over an old range must not use today's champion (it has seen data after those
cutoffs). The champion *as of* a cutoff D is the most recently trained version that was promoted
and whose own training cutoff is on or before D. The registry's champion pointer is the same
thing for the latest cutoff, kept for fast production reads.

A retrain that failed leaves no version, only a failure record (``cutoff``, ``reason``): the
cutoffs from it until the next retrain that succeeded are forecast by the champion it should have
challenged, marked as a fallback (:func:`forecast_source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

Card = Mapping[str, Any]
Failure = Mapping[str, Any]  # a failed retrain's record: {"cutoff": "YYYY-MM-DD", "reason": ...}


@dataclass(frozen=True)
class ForecastSource:
    """What forecasts a cutoff: ``card`` (None: no champion, the seasonal naive stands in) and,
    when the forecast is a fallback, why (``fallback_reason``)."""

    card: Card | None
    fallback_reason: str | None = None


def card_cutoff(card: Card) -> pd.Timestamp:
    return pd.Timestamp(card["cutoff"])


def was_promoted(card: Card) -> bool:
    promotion = card.get("promotion") or {}
    return bool(promotion.get("promoted"))


def champion_as_of(cards: Sequence[Card], cutoff: pd.Timestamp) -> Card | None:
    """The promoted version with the latest training cutoff on or before ``cutoff``."""
    eligible = [c for c in cards if was_promoted(c) and card_cutoff(c) <= cutoff]
    return max(eligible, key=lambda c: (card_cutoff(c), str(c["version"])), default=None)


def retrain_cutoffs(cutoffs: Sequence[pd.Timestamp], retrain_weekday: int, has_champion_before_first: bool) -> list[pd.Timestamp]:
    """Cutoffs at which a walk-forward retrains: those whose run date (cutoff + 1 day) falls on
    ``retrain_weekday`` (0 = Monday), plus the first cutoff when no champion exists yet."""
    ordered = sorted(pd.Timestamp(c) for c in cutoffs)
    due = [c for c in ordered if (c + pd.Timedelta(days=1)).day_of_week == retrain_weekday]
    if ordered and not has_champion_before_first and (not due or due[0] != ordered[0]):
        due.insert(0, ordered[0])
    return due


def forecast_source(cards: Sequence[Card], failures: Sequence[Failure], cutoff: pd.Timestamp) -> ForecastSource:
    """The champion as of ``cutoff``, and whether it stands in for a failed retrain.

    The last retrain attempted on or before ``cutoff`` decides: if it failed, the champion is
    stale (it should have been challenged) and its forecast is a fallback; a retrain that
    succeeded but was not promoted keeps the champion as the rule intends, no fallback. A stored
    version beats a failure record of the same cutoff (a later rerun that trained it).
    """
    champion = champion_as_of(cards, cutoff)
    trained = {card_cutoff(c) for c in cards}
    failed = [f for f in failures if card_cutoff(f) <= cutoff and card_cutoff(f) not in trained]
    last_failure = max(failed, key=card_cutoff, default=None)
    last_trained = max((t for t in trained if t <= cutoff), default=None)
    if last_failure is not None and (last_trained is None or card_cutoff(last_failure) > last_trained):
        reason = f"retrain at {card_cutoff(last_failure).date()} failed: {last_failure['reason']}"
        return ForecastSource(champion, reason)
    if champion is None:
        return ForecastSource(None, f"no champion trained on or before {pd.Timestamp(cutoff).date()}")
    return ForecastSource(champion)
