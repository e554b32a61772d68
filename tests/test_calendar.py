"""The CTA service calendar: observance rules and 100% agreement with the real file."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.core.features.calendar import day_type, day_types


@pytest.mark.parametrize(
    "day, expected",
    [
        ("2019-03-04", "W"),  # ordinary Monday
        ("2019-03-09", "A"),  # ordinary Saturday
        ("2019-03-10", "U"),  # Sunday
        ("2019-05-27", "U"),  # Memorial Day
        ("2019-09-02", "U"),  # Labor Day
        ("2019-11-28", "U"),  # Thanksgiving
        ("2019-11-29", "W"),  # the Friday after is an ordinary weekday
        ("2021-12-25", "U"),  # Christmas on a Saturday stays on the Saturday
        ("2021-12-24", "W"),  # ... and the Friday before is not observed
        ("2022-12-26", "U"),  # Christmas on a Sunday: Monday observed
        ("2022-01-01", "U"),  # New Year's Day on a Saturday
        ("2026-07-03", "U"),  # Independence Day on a Saturday: Friday observed
        ("2026-07-04", "A"),  # ... and the Saturday keeps its Saturday service
        ("2027-07-05", "U"),  # Independence Day on a Sunday: Monday observed
        ("2030-01-01", "U"),  # future dates work
    ],
)
def test_observance_rules(day: str, expected: str):
    assert day_type(pd.Timestamp(day)) == expected
    assert day_types([pd.Timestamp(day)]).tolist() == [expected]


def test_vectorised_matches_scalar_over_a_decade():
    days = pd.date_range("2020-01-01", "2030-12-31")
    assert day_types(days).tolist() == [day_type(d) for d in days]


def test_empty_input():
    assert day_types([]).tolist() == []


@pytest.mark.realdata
def test_calendar_agrees_with_every_day_type_in_the_real_file(real_csv):
    raw = pd.read_csv(real_csv).drop_duplicates()
    dates = pd.DatetimeIndex(pd.to_datetime(raw["service_date"], format="%m/%d/%Y"))
    agreement = (day_types(dates) == raw["day_type"].to_numpy()).mean()
    assert len(raw) == 7639
    assert agreement == 1.0
