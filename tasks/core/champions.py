"""Which RNN a cutoff may use, and when a walk-forward retrains: pure rules over model cards.

A backfill over an old range must not use today's champion (it has seen data after those
cutoffs). The champion *as of* a cutoff D is the most recently trained version that was promoted
and whose own training cutoff is on or before D. The registry's champion pointer is the same
thing for the latest cutoff, kept for fast production reads.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

Card = Mapping[str, Any]


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
