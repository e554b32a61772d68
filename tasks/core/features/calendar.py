"""CTA service calendar: the day type (W/A/U) of any date, past or future.

CTA runs a Sunday service (``U``) on Sundays and six holidays. Observance rules, read off the
real ridership file (2001-2021) rather than assumed:

* New Year's Day and Christmas falling on a Saturday stay on that Saturday (``U``); falling on a
  Sunday, the following Monday is ``U`` as well.
* Independence Day falling on a Saturday moves to the Friday before (the Saturday itself keeps its
  Saturday service, ``A``); on a Sunday, to the Monday after.
* Memorial Day, Labor Day and Thanksgiving are weekday-anchored.

pandas' holiday rules express this, so no hand-written date list is kept.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Iterable

import numpy as np
import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    Holiday,
    USLaborDay,
    USMemorialDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)

WEEKDAY, SATURDAY, SUNDAY_HOLIDAY = "W", "A", "U"
DAY_TYPES = (WEEKDAY, SATURDAY, SUNDAY_HOLIDAY)


class CtaSundayServiceHolidays(AbstractHolidayCalendar):
    rules = [
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        USMemorialDay,
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25, observance=sunday_to_monday),
    ]


@lru_cache(maxsize=64)
def _holidays_in_year(year: int) -> frozenset[pd.Timestamp]:
    calendar = CtaSundayServiceHolidays()
    found = calendar.holidays(start=f"{year}-01-01", end=f"{year}-12-31")
    return frozenset(pd.Timestamp(d) for d in found)


def is_sunday_service_holiday(day: date | pd.Timestamp) -> bool:
    stamp = pd.Timestamp(day).normalize()
    return stamp in _holidays_in_year(stamp.year)


def day_type(day: date | pd.Timestamp) -> str:
    """The CTA day type of one date: ``W`` weekday, ``A`` Saturday, ``U`` Sunday or holiday."""
    stamp = pd.Timestamp(day).normalize()
    if stamp.day_of_week == 6 or is_sunday_service_holiday(stamp):
        return SUNDAY_HOLIDAY
    if stamp.day_of_week == 5:
        return SATURDAY
    return WEEKDAY


def day_types(days: Iterable[date | pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """Vectorised :func:`day_type`: an array of ``'W'``/``'A'``/``'U'`` strings."""
    index = pd.DatetimeIndex(pd.to_datetime(list(days) if not isinstance(days, pd.DatetimeIndex) else days))
    index = index.normalize()
    if len(index) == 0:
        return np.array([], dtype=object)
    years = range(index.min().year, index.max().year + 1)
    holidays = frozenset().union(*(_holidays_in_year(y) for y in years))
    weekday = index.day_of_week
    result = np.where(weekday == 5, SATURDAY, WEEKDAY).astype(object)
    is_holiday = np.fromiter((d in holidays for d in index), dtype=bool, count=len(index))
    result[(weekday == 6) | is_holiday] = SUNDAY_HOLIDAY
    return result
