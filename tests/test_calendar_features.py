"""Calendar flags: each rule on known dates, and the frame's shape and order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.core.features.calendar_flags import CALENDAR_FLAGS, calendar_features

YEARS = pd.date_range("2015-01-01", "2023-12-31", freq="D")


@pytest.fixture(scope="module")
def flags() -> pd.DataFrame:
    return calendar_features(YEARS)


def flagged(flags: pd.DataFrame, name: str, year: int) -> list[str]:
    column = flags.loc[str(year), name]
    return [d.strftime("%Y-%m-%d") for d in column.index[column > 0]]


@pytest.mark.parametrize(
    "name, year, expected",
    [
        ("thanksgiving", 2019, ["2019-11-28"]),
        ("day_after_thanksgiving", 2019, ["2019-11-29"]),
        ("day_before_thanksgiving", 2019, ["2019-11-27"]),
        ("weekend_after_thanksgiving", 2019, ["2019-11-30", "2019-12-01"]),
        ("independence_day", 2020, ["2020-07-04"]),  # a Saturday: the date itself ...
        ("observed_holiday", 2020, ["2020-07-03"]),  # ... observed on the Friday (Sunday service)
        ("observed_holiday", 2022, ["2022-12-26"]),  # Christmas on a Sunday: the Monday after
        ("bridge_day", 2019, ["2019-07-05"]),  # Friday between Thursday July 4 and the weekend
        ("bridge_day", 2020, []),
        ("christmas_eve", 2019, ["2019-12-24"]),
        ("christmas_day", 2022, ["2022-12-25"]),
        ("christmas_week", 2019, ["2019-12-26", "2019-12-27", "2019-12-28", "2019-12-29", "2019-12-30"]),
        ("new_years_eve", 2019, ["2019-12-31"]),
        ("new_years_day", 2022, ["2022-01-01"]),
        ("january_2", 2022, []),  # a Sunday: no working day to take off
        ("january_2", 2020, ["2020-01-02"]),
        ("january_2", 2017, ["2017-01-03"]),  # Jan 1 a Sunday: Jan 2 is the observed holiday ...
        ("january_2", 2023, ["2023-01-03"]),  # ... so the first working day after it is Jan 3
        ("january_2", 2021, []),  # Jan 1 a Friday: the holiday runs into the weekend
        ("observed_holiday", 2017, ["2017-01-02"]),
        ("observed_holiday", 2023, ["2023-01-02"]),
        ("memorial_day", 2019, ["2019-05-27"]),
        ("labor_day", 2019, ["2019-09-02"]),
        ("friday_before_monday_holiday", 2019, ["2019-05-24", "2019-08-30"]),
        ("sunday_before_monday_holiday", 2019, ["2019-05-26", "2019-09-01"]),
        ("mlk_day", 2019, ["2019-01-21"]),
        ("presidents_day", 2019, ["2019-02-18"]),
        ("columbus_day", 2019, ["2019-10-14"]),
        ("veterans_day", 2021, ["2021-11-11"]),
        ("veterans_day", 2017, ["2017-11-10"]),  # a Saturday: observed on the Friday
        ("veterans_day", 2018, ["2018-11-12"]),  # a Sunday: observed on the Monday
        ("marathon_sunday", 2019, ["2019-10-13"]),
        ("marathon_sunday", 2018, ["2018-10-07"]),  # the first Sunday of October that year
        ("good_friday", 2019, ["2019-04-19"]),
        ("holy_week", 2019, ["2019-04-15", "2019-04-16", "2019-04-17", "2019-04-18"]),
        ("easter_sunday", 2021, ["2021-04-04"]),
        ("st_patricks_parade", 2019, ["2019-03-16"]),
        ("st_patricks_parade", 2018, ["2018-03-17"]),  # March 17 itself on a Saturday
        ("pride_sunday", 2019, ["2019-06-30"]),
    ],
)
def test_flag_on_known_dates(flags, name, year, expected):
    assert flagged(flags, name, year) == expected


def test_holiday_off_sunday_is_sunday_service_on_another_weekday(flags):
    assert flagged(flags, "holiday_off_sunday", 2020) == [
        "2020-01-01", "2020-05-25", "2020-07-03", "2020-09-07", "2020-11-26", "2020-12-25",
    ]  # fmt: skip
    assert flagged(flags, "holiday_off_sunday", 2022)[-1] == "2022-12-26"


def test_christmas_to_new_year_is_the_last_eight_days_of_december(flags):
    assert flagged(flags, "christmas_to_new_year", 2021) == [f"2021-12-{d}" for d in range(24, 32)]


def test_flags_do_not_depend_on_the_span_asked_for(flags):
    """A rule looking at neighbours (bridge day, day before a holiday) must give the same answer
    for a single date as inside a long range: forecasts ask for 14 days at a time."""
    for day in ["2019-07-05", "2019-05-24", "2019-05-26", "2020-07-03", "2022-12-26", "2019-12-31", "2023-01-03"]:
        single = calendar_features([pd.Timestamp(day)])
        pd.testing.assert_frame_equal(single, flags.loc[[pd.Timestamp(day)]], check_freq=False)


def test_frame_has_every_flag_in_order_as_floats_and_a_subset_on_request(flags):
    assert list(flags.columns) == list(CALENDAR_FLAGS)
    assert CALENDAR_FLAGS[:3] == ("holiday_off_sunday", "day_after_thanksgiving", "christmas_to_new_year")
    assert (flags.dtypes == np.float64).all() and set(np.unique(flags.to_numpy())) == {0.0, 1.0}
    picked = calendar_features(YEARS[:40], flags=("good_friday", "mlk_day"))
    assert list(picked.columns) == ["good_friday", "mlk_day"]
    assert calendar_features([]).shape == (0, len(CALENDAR_FLAGS))
    with pytest.raises(ValueError, match="unknown calendar flag"):
        calendar_features(YEARS[:3], flags=("snow_day",))
