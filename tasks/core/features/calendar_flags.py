"""Calendar regressors known in advance: flags built only from the service calendar and the date,
never from data, so a model may use them for target dates after the cutoff without leaking.

One function, :func:`calendar_features`, returns every flag as a float column; models choose
which columns they use (``CALENDAR_FLAGS`` lists them in a fixed order, the first three as they
were first published, so a model that picked those keeps its inputs).

Every flag is a rule on the date (pandas' holiday rules, the CTA service calendar of
:mod:`tasks.core.features.calendar`), nothing read from a list of past dates, so it is defined for any
future year. Why each exists, from the real file (2010-2019, mean log deviation of the day from
the same weekday one and two weeks either side, bus / rail): the day after Thanksgiving -0.50 /
-0.59; Christmas Eve -0.32 / -0.55; Dec 26-30 -0.14..-0.35; New Year's Eve -0.14 / -0.08; Jan 2
-0.19 / -0.15; the Wednesday before Thanksgiving -0.16 / -0.16; the weekend after it -0.11 / -0.19
(Saturday); Good Friday -0.15 / -0.13; Monday..Thursday before it (Holy Week, the public schools'
spring break in 12 of the 13 years 2008-2020) -0.12 / -0.05; Easter Sunday
-0.05 / -0.11; Martin Luther King Jr. Day -0.36 / -0.34 and Presidents' Day -0.30 / -0.25 (weekday
service, schools closed); Columbus Day -0.19 / -0.09; Veterans Day (observed on the nearest
weekday; schools closed, weekday service) -0.20 / -0.14 against the same weekday two and one weeks
before and one after (two after is Thanksgiving's week in half the years), every year of 2010-2019
between -0.11 and -0.31 on bus; a weekday between a holiday and the weekend
(July 5 on a Friday) -0.14 / -0.19; the Friday before a Monday holiday -0.03 / -0.05, the Sunday
before it +0.06 / +0.12; the St. Patrick's parade Saturday +0.06 / +0.35, the Marathon (the Sunday
before Columbus Day) -0.03 / +0.30 and the Pride parade (last Sunday of June) 0.00 / +0.28 move
rail far more than bus. Which flags each model keeps, and what each bought in the backtest, is
documented in that model's module.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from pandas.tseries.holiday import (
    GoodFriday,
    USColumbusDay,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
)

from tasks.core.features.calendar import SUNDAY_HOLIDAY, day_types

CALENDAR_FLAGS = (
    "holiday_off_sunday",  # Sunday service on a weekday or Saturday (New Year, Memorial Day, ...)
    "day_after_thanksgiving",
    "christmas_to_new_year",  # Dec 24..Dec 31, the holiday week with low commuting
    "christmas_eve",  # Dec 24
    "christmas_week",  # Dec 26..Dec 30
    "new_years_eve",  # Dec 31
    "january_2",  # the working day right after the New Year holiday, often taken off: Jan 2, or Jan 3
    # when Jan 1 is a Sunday (Jan 2 is then the observed holiday); none when the holiday runs into
    # the weekend (Jan 1 on a Friday or Saturday: the next working day is an ordinary Monday)
    "observed_holiday",  # the weekday a weekend holiday is observed on (Monday after, Friday before)
    "new_years_day",  # each Sunday-service holiday on its own date, whatever the weekday
    "memorial_day",
    "independence_day",
    "labor_day",
    "thanksgiving",
    "christmas_day",
    "bridge_day",  # a weekday between a Sunday-service holiday and the weekend (not Thanksgiving's)
    "day_before_thanksgiving",
    "weekend_after_thanksgiving",
    "friday_before_monday_holiday",
    "sunday_before_monday_holiday",
    "mlk_day",  # weekday service, schools and offices closed
    "presidents_day",
    "columbus_day",
    "veterans_day",  # Nov 11, or the Friday before / Monday after when on a weekend; schools closed
    "good_friday",
    "holy_week",  # Monday..Thursday before Easter, most years the public schools' spring break
    "easter_sunday",
    "st_patricks_parade",  # the Saturday on or before March 17
    "marathon_sunday",  # the Sunday before Columbus Day
    "pride_sunday",  # the last Sunday of June
)

OWN_DATE_HOLIDAYS = ("new_years_day", "memorial_day", "independence_day", "labor_day", "thanksgiving", "christmas_day")
"""The flags of each Sunday-service holiday on its own date: on a weekend that date may keep its
weekend service (July 4 on a Saturday in 2020, observed on the Friday)."""


@lru_cache(maxsize=128)
def _rule_dates(year: int) -> dict[str, frozenset[pd.Timestamp]]:
    """The dates of each weekday-anchored rule in ``year`` (cached: rules cost ~1 ms each)."""
    start, end = f"{year}-01-01", f"{year}-12-31"

    def dates(rule) -> frozenset[pd.Timestamp]:
        return frozenset(pd.Timestamp(d) for d in rule.dates(start, end))

    thanksgiving = min(dates(USThanksgivingDay))
    columbus = min(dates(USColumbusDay))
    good_friday = min(dates(GoodFriday))
    november_11 = pd.Timestamp(f"{year}-11-11")
    march_17 = pd.Timestamp(f"{year}-03-17")
    june_30 = pd.Timestamp(f"{year}-06-30")
    day = pd.Timedelta(days=1)
    return {
        "day_after_thanksgiving": frozenset({thanksgiving + day}),
        "day_before_thanksgiving": frozenset({thanksgiving - day}),
        "weekend_after_thanksgiving": frozenset({thanksgiving + 2 * day, thanksgiving + 3 * day}),
        "mlk_day": dates(USMartinLutherKingJr),
        "presidents_day": dates(USPresidentsDay),
        "columbus_day": frozenset({columbus}),
        # Observed on the nearest weekday, as the federal and school calendars do.
        "veterans_day": frozenset({november_11 + {5: -day, 6: day}.get(november_11.day_of_week, 0 * day)}),
        "marathon_sunday": frozenset({columbus - day}),
        "good_friday": frozenset({good_friday}),
        "holy_week": frozenset(good_friday - k * day for k in range(1, 5)),
        "easter_sunday": frozenset({good_friday + 2 * day}),
        "st_patricks_parade": frozenset({march_17 - ((march_17.day_of_week - 5) % 7) * day}),
        "pride_sunday": frozenset({june_30 - ((june_30.day_of_week - 6) % 7) * day}),
        "memorial_day": dates(USMemorialDay),
        "labor_day": dates(USLaborDay),
        "thanksgiving": frozenset({thanksgiving}),
    }


def _in_rule(index: pd.DatetimeIndex, name: str) -> np.ndarray:
    found = [d for y in range(index.min().year, index.max().year + 1) for d in _rule_dates(y)[name]]
    return index.isin(pd.DatetimeIndex(found))


def calendar_features(
    days: Iterable[pd.Timestamp] | pd.DatetimeIndex, flags: Sequence[str] = CALENDAR_FLAGS
) -> pd.DataFrame:
    """One row per date, one float column (0/1) per flag in ``flags`` (all of ``CALENDAR_FLAGS``
    by default), in the order given."""
    unknown = [f for f in flags if f not in CALENDAR_FLAGS]
    if unknown:
        raise ValueError(f"unknown calendar flag(s) {', '.join(unknown)}; known: {', '.join(CALENDAR_FLAGS)}")
    index = pd.DatetimeIndex(days).normalize()
    if len(index) == 0:
        return pd.DataFrame({name: np.array([], dtype=float) for name in flags}, index=index)
    # Whole years plus three days either side, so that "the day after a holiday" is right at the
    # edges of ``days``; computed once per span of years (a walk-forward asks for nearly the same
    # window at every cutoff, and these flags were a quarter of ridge's time).
    start, all_flags = _flags_of_years(index.min().year, index.max().year)
    positions = ((index - start) // pd.Timedelta(days=1)).to_numpy()
    return pd.DataFrame({name: all_flags[name][positions].astype(float) for name in flags}, index=index)


@lru_cache(maxsize=16)
def _flags_of_years(first_year: int, last_year: int) -> tuple[pd.Timestamp, dict[str, np.ndarray]]:
    """Every flag from three days before ``first_year`` to three days after ``last_year``: the
    first day and read-only arrays (they are shared by every caller)."""
    start = pd.Timestamp(first_year, 1, 1) - pd.Timedelta(days=3)
    days = pd.date_range(start, pd.Timestamp(last_year, 12, 31) + pd.Timedelta(days=3), freq="D")
    flags = _flags_on_consecutive_days(days)
    for values in flags.values():
        values.flags.writeable = False
    return start, flags


def _flags_on_consecutive_days(days: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Every flag on a gap-free daily index (neighbours are read by shifting one position)."""
    types = day_types(days)
    weekday = days.day_of_week.to_numpy()
    month, dom = days.month.to_numpy(), days.day.to_numpy()
    holiday = (types == SUNDAY_HOLIDAY) & (weekday != 6)
    is_weekday = weekday < 5
    previous_holiday, next_holiday = np.roll(holiday, 1), np.roll(holiday, -1)
    fixed_holiday = ((month == 1) & (dom == 1)) | ((month == 7) & (dom == 4)) | ((month == 12) & (dom == 25))
    thanksgiving_friday = _in_rule(days, "day_after_thanksgiving")
    monday_holiday = holiday & (weekday == 0)
    return {
        "holiday_off_sunday": holiday,
        "day_after_thanksgiving": thanksgiving_friday,
        "christmas_to_new_year": (month == 12) & (dom >= 24),
        "christmas_eve": (month == 12) & (dom == 24),
        "christmas_week": (month == 12) & (dom >= 26) & (dom <= 30),
        "new_years_eve": (month == 12) & (dom == 31),
        "january_2": is_weekday & ~holiday & previous_holiday & (month == 1) & (dom <= 3),
        "observed_holiday": holiday & ~fixed_holiday & ((weekday == 0) | (weekday == 4)) & _observed_fixed(days),
        "new_years_day": (month == 1) & (dom == 1),
        "memorial_day": _in_rule(days, "memorial_day"),
        "independence_day": (month == 7) & (dom == 4),
        "labor_day": _in_rule(days, "labor_day"),
        "thanksgiving": _in_rule(days, "thanksgiving"),
        "christmas_day": (month == 12) & (dom == 25),
        "bridge_day": is_weekday & ~holiday & ~thanksgiving_friday & (
            (previous_holiday & (weekday == 4)) | (next_holiday & (weekday == 0))
        ),
        "day_before_thanksgiving": _in_rule(days, "day_before_thanksgiving"),
        "weekend_after_thanksgiving": _in_rule(days, "weekend_after_thanksgiving"),
        "friday_before_monday_holiday": (weekday == 4) & np.roll(monday_holiday, -3),
        "sunday_before_monday_holiday": (weekday == 6) & np.roll(monday_holiday, -1),
        "mlk_day": _in_rule(days, "mlk_day"),
        "presidents_day": _in_rule(days, "presidents_day"),
        "columbus_day": _in_rule(days, "columbus_day"),
        "veterans_day": _in_rule(days, "veterans_day"),
        "good_friday": _in_rule(days, "good_friday"),
        "holy_week": _in_rule(days, "holy_week"),
        "easter_sunday": _in_rule(days, "easter_sunday"),
        "st_patricks_parade": _in_rule(days, "st_patricks_parade"),
        "marathon_sunday": _in_rule(days, "marathon_sunday"),
        "pride_sunday": _in_rule(days, "pride_sunday"),
    }


def _observed_fixed(days: pd.DatetimeIndex) -> np.ndarray:
    """Days within one day of New Year, July 4 or Christmas: where a weekend one is observed."""
    near = np.zeros(len(days), dtype=bool)
    for month, dom in ((1, 1), (7, 4), (12, 25)):
        for shift in (-1, 1):
            moved = days + pd.Timedelta(days=shift)
            near |= (moved.month == month) & (moved.day == dom)
    # Dec 31 observing a Saturday New Year's Day would also match; the calendar never does that.
    return near
