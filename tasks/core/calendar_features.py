"""Calendar regressors known in advance: flags built only from the service calendar and the date,
never from data, so a model may use them for target dates after the cutoff without leaking.

One function, :func:`calendar_features`, returns every flag as a float column; models choose
which columns they use (``CALENDAR_FLAGS`` lists them in a fixed order).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from tasks.core.calendar import day_types, SUNDAY_HOLIDAY

CALENDAR_FLAGS = (
    "holiday_off_sunday",  # Sunday service on a weekday or Saturday (New Year, Memorial Day, ...)
    "day_after_thanksgiving",
    "christmas_to_new_year",  # Dec 24..Dec 31, the holiday week with low commuting
)


def calendar_features(days: Iterable[pd.Timestamp] | pd.DatetimeIndex) -> pd.DataFrame:
    """One row per date, one float column (0/1) per flag in ``CALENDAR_FLAGS``."""
    index = pd.DatetimeIndex(days).normalize()
    types = day_types(index)
    weekday = index.day_of_week.to_numpy()
    month, day = index.month.to_numpy(), index.day.to_numpy()
    thanksgiving_friday = (month == 11) & (weekday == 4) & (day >= 23) & (day <= 29)
    flags = {
        "holiday_off_sunday": (types == SUNDAY_HOLIDAY) & (weekday != 6),
        "day_after_thanksgiving": thanksgiving_friday,
        "christmas_to_new_year": (month == 12) & (day >= 24),
    }
    return pd.DataFrame({name: np.asarray(flags[name], dtype=float) for name in CALENDAR_FLAGS}, index=index)
