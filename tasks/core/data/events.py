"""Event schedules → event days per venue: the ball games a station's riders come for.

The source is Retrosheet's schedule files (``YYYYSKED.TXT``), the **original published** season
schedule, one quoted CSV row per game::

    "20190408","0","Mon","PIT","NL",10,"CHN","NL",10,"d","",""

(date, game number, weekday, visitor, its league, its game number, home team, its league, its
home game number, day/night, postponement note, makeup date). A season's schedule is published
months before its first game, so a game day is known in advance like a holiday: a model may read
it for any target day without leaking. The postponement fields are filled in after the fact and
are never read (a rained-out game stays a game day: that is what the forecaster knew).

A venue is the home team's code (``CHN``: Wrigley Field, ``CHA``: the White Sox's park).

Pure functions: lines in, a frame out.
"""

from __future__ import annotations

import csv
from typing import Iterable

import pandas as pd

from schemas.errors import InvalidInput

SCHEDULE_FIELDS = 12
EVENT_COLUMNS = ("date", "venue", "day_night")


def parse_schedule(lines: Iterable[str], source: str) -> pd.DataFrame:
    """Retrosheet schedule rows → one row per (date, venue) with a game (``EVENT_COLUMNS``;
    a doubleheader is one event day, ``day_night`` of its first game). A row that is not a
    schedule row raises one line naming ``source``, the line and the rule."""
    numbered = [(number, fields) for number, fields in enumerate(csv.reader(lines), start=1) if fields and fields != [""]]
    # One date parse for the whole file (a parse per row was most of the read's time, and every
    # Dask work unit of a station reads the schedule).
    days = pd.to_datetime(pd.Series([fields[0] for _, fields in numbered], dtype=object), format="%Y%m%d", errors="coerce")
    weekdays = days.dt.strftime("%a")
    rows: list[tuple[pd.Timestamp, str, str]] = []
    for (number, fields), day, weekday in zip(numbered, days, weekdays):
        where = f"{source}: line {number}"
        if len(fields) != SCHEDULE_FIELDS:
            raise InvalidInput(f"{where}: schedule:fields (expected {SCHEDULE_FIELDS} fields, found {len(fields)})")
        if pd.isna(day):
            raise InvalidInput(f"{where}: schedule:date ({fields[0]!r} is not a YYYYMMDD date)")
        if weekday != fields[2]:
            raise InvalidInput(f"{where}: schedule:weekday ({fields[0]} is a {weekday}, the row says {fields[2]!r})")
        venue = fields[6].strip()
        if not venue:
            raise InvalidInput(f"{where}: schedule:home_team (empty)")
        day_night = fields[9].strip().lower()
        if day_night not in ("d", "n", ""):
            raise InvalidInput(f"{where}: schedule:day_night ({fields[9]!r}, expected d or n)")
        rows.append((day, venue, day_night))
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.drop_duplicates(["date", "venue"]).sort_values(["venue", "date"], ignore_index=True)


def schedule_coverage(events: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Per venue, the seasons (years) its schedule has: a year outside them is unknown, not a
    year without games."""
    years = events.assign(year=events["date"].dt.year)
    return {venue: tuple(sorted(group["year"].unique().tolist())) for venue, group in years.groupby("venue")}
