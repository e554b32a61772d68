"""Which RNN version a cutoff may use, and when a walk-forward retrains."""

from __future__ import annotations

import pandas as pd

from tasks.core.models.champions import champion_as_of, retrain_cutoffs


def card(version: str, cutoff: str, promoted: bool) -> dict:
    return {"version": version, "cutoff": cutoff, "promotion": {"promoted": promoted}}


CARDS = [
    card("a", "2019-01-06", True),
    card("b", "2019-01-13", False),  # trained, lost to the incumbent
    card("c", "2019-01-20", True),
    card("d", "2019-03-03", True),  # trained later (a nightly run): must not leak into the past
]


def test_champion_as_of_never_uses_a_version_trained_after_the_cutoff():
    assert champion_as_of(CARDS, pd.Timestamp("2019-01-05")) is None
    assert champion_as_of(CARDS, pd.Timestamp("2019-01-06"))["version"] == "a"
    assert champion_as_of(CARDS, pd.Timestamp("2019-01-15"))["version"] == "a"  # b was not promoted
    assert champion_as_of(CARDS, pd.Timestamp("2019-02-28"))["version"] == "c"
    assert champion_as_of(CARDS, pd.Timestamp("2019-03-03"))["version"] == "d"


def test_unpromoted_or_undecided_cards_are_never_champions():
    assert champion_as_of([card("x", "2019-01-01", False), {"version": "y", "cutoff": "2019-01-02"}], pd.Timestamp("2020-01-01")) is None


def test_retrain_cutoffs_weekly_on_the_run_weekday():
    cutoffs = list(pd.date_range("2019-03-01", "2019-03-20"))  # run dates Mar 2..21
    mondays = retrain_cutoffs(cutoffs, retrain_weekday=0, has_champion_before_first=True)
    assert [c + pd.Timedelta(days=1) for c in mondays] == [pd.Timestamp("2019-03-04"), pd.Timestamp("2019-03-11"), pd.Timestamp("2019-03-18")]
    assert all((c + pd.Timedelta(days=1)).day_of_week == 0 for c in mondays)


def test_first_cutoff_trains_when_no_champion_exists():
    cutoffs = list(pd.date_range("2019-03-01", "2019-03-05"))
    assert retrain_cutoffs(cutoffs, 0, has_champion_before_first=False) == [pd.Timestamp("2019-03-01"), pd.Timestamp("2019-03-03")]
    assert retrain_cutoffs(cutoffs, 0, has_champion_before_first=True) == [pd.Timestamp("2019-03-03")]
    assert retrain_cutoffs([], 0, has_champion_before_first=False) == []
