"""Synthetic CTA ridership in the City of Chicago portal's three file shapes, for tests,
benchmarks and demos. Pure: no Prefect, no files; every cell is returned as the text the file
holds, and the same arguments and seed give the same cells (byte-identical files through
``storage.synth``) for the same numpy and pandas versions. No real route or station data is
used: route numbers are drawn, station names are made of invented word pairs.

The three frames (``SyntheticRidership``), columns exactly the portal's:

* ``routes`` — "CTA - Ridership - Bus Routes - Daily Totals by Route":
  ``route,date,daytype,rides`` (route like ``12``, ``X9``, ``N53``, ``J70``);
* ``stations`` — "CTA - Ridership - 'L' Station Entries - Daily totals":
  ``station_id,stationname,date,daytype,rides`` (5-digit ids, multiples of 10 in 40010..49990);
* ``totals`` — "CTA - Ridership - Daily Boarding Totals":
  ``service_date,day_type,bus,rail_boardings,total_rides``.

Dates are ``MM/DD/YYYY``; rows are date-major (every series of a date, in series order, then the
next date), as the portal exports them. Day types come from the service calendar
(:func:`tasks.core.features.calendar.day_types`: ``W`` weekday, ``A`` Saturday, ``U`` Sunday or one of the
six Sunday-service holidays).

**Each series** (route or station ``i``; ``T`` = years since ``start``)::

    rides = level · week[day type, weekday] · (1 + a·cos(2π(doy − peak)/365.25)) · exp(g·T)
            · holiday^e · shock(day) · shifts(day) · exp(σ·ε − σ²/2), rounded

``level`` log-uniform on weekdays (routes 1,000..30,000 rides, stations 500..15,000 entries);
``week`` Monday..Friday about 1.00/1.03/1.04/1.03/0.97, Saturday 0.45..0.75, Sunday and holidays
0.25..0.55 (always below Saturday); yearly amplitude ``a`` 0.04..0.15 peaking in summer (routes)
or autumn (stations); trend ``g`` ~ N(−1%, 2%) a year; ``holiday`` the calendar flags'
dips and bumps (:mod:`tasks.core.features.calendar_flags`: a weekday holiday ×0.85 beyond Sunday
service, the day after Thanksgiving ×0.55, Christmas Eve ×0.65, Dec 26..30 ×0.75, New Year's Eve
and Jan 2 ×0.85, MLK Day ×0.70, Presidents' Day ×0.75, Good Friday ×0.88, Holy Week ×0.93, the
St. Patrick's parade Saturday ×1.15, Pride Sunday ×1.10) to a per-series sensitivity
``e`` 0.6..1.4; ``shock`` one lognormal factor a day (σ 0.03) shared by every series of both
files (weather); ``shifts`` 0, 1 or 2 level shifts per series (probabilities .5/.35/.15) on a
day inside its life, each ×exp(N(0, 0.15)) clipped to 0.6..1.5 from that day on; noise σ
0.03..0.08 per series. Levels, shapes and noise come from a numpy ``Generator`` seeded with
``(seed, file)``, so routes and stations draw independently.

**Life events** (``D`` days in the range, day ``k`` = 0..D−1, ``at(f)`` = day ⌊f·(D−1)⌋;
series ``i`` counts from 0 in series order; a role whose series does not exist is skipped).
The same rules in both files:

* series 0 is the trunk: present every day, it carries the bad rows below;
* opening: series 1 and every ``i ≡ 1 (mod 20)``: no rows before day ``at(0.1 + 0.8·{0.3 +
  0.618·⌊i/20⌋})`` (``{x}`` the fractional part), rows from that day on;
* closure: series 2 and every ``i ≡ 2 (mod 20)``: rows up to and including day ``at(0.1 +
  0.8·{0.7 + 0.618·⌊i/20⌋})``, none after;
* suspension: series 3 has no rows for ``L = clip(D // 8, 7, 42)`` days from ``at(0.45)`` (a gap
  of one to six weeks), then resumes;
* identity change from day ``at(0.55)``: route 4 is **renumbered** — its rows carry the route id
  plus ``A`` (``12`` → ``12A``; no other id ends in ``A``), the series itself continues; station 4
  is **renamed** — same ``station_id``, ``stationname`` gains ``-Transit Center``;
* zero days: series 5 has rows with ``rides`` 0 on the 3 days from ``at(0.6)`` (a real value,
  counted in the totals).

**Bad rows** (``bad=True`` events), all on the trunk (series 0) of the routes and the stations
file, so five per file:

* ``negative_rides`` at day ``at(0.2)``: ``rides`` is the true value negated (``-1`` for 0);
* ``non_numeric_rides`` at day ``at(0.35)``: ``rides`` is ``n/a``;
* ``impossible_date``: an extra row right after the trunk's row of day ``at(0.5)``, dated
  ``02/30/<that year>``, day type ``W``, ``rides`` that day's true value;
* ``duplicate_conflicting``: an extra row right after the trunk's row of day ``at(0.65)``, same
  series and date, ``rides`` ⌊1.5·true⌋ + 1;
* ``duplicate_exact``: an extra row right after the trunk's row of day ``at(0.8)``, identical.

The day offsets are distinct because the range must span at least ``MIN_DAYS`` days. Each event
gives its 0-based ``row`` among the file's data rows (file line = row + 2) where it has one.

**Totals** are honest sums of the synthetic series, not scaled to the real system: ``bus`` the
day's true route values (before the bad-row rules; zero days count 0, suspended and closed
series nothing), ``rail_boardings`` the same over stations, ``total_rides`` their sum; one row
per day of the range, no bad rows, so the file passes ingest untouched as long as a day's
count stays under ingest's 4,000,000 per mode (a few hundred series).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from schemas.errors import InvalidInput
from schemas.series import ROUTE_COLUMNS, ROUTES, STATION_COLUMNS, STATIONS, TOTALS
from tasks.core.data.synth_panel import (
    DATE_FORMAT, MAX_ROUTES, MAX_ROWS, MAX_STATIONS, MIN_DAYS, ROUTE_KIND, STATION_KIND, TOTAL_COLUMNS, Event,
    SynthCalendar, as_text, make_panel, draw_route_ids, draw_stations,
)  # fmt: skip


@dataclass(frozen=True)
class FileSummary:
    file: str
    rows: int
    series: int
    first_date: date
    last_date: date
    bad_rows: int


@dataclass(frozen=True)
class SyntheticRidership:
    """The three portal files as text cells, and every documented event."""

    totals: pd.DataFrame
    routes: pd.DataFrame
    stations: pd.DataFrame
    events: tuple[Event, ...]
    start: date
    end: date
    seed: int

    def frame(self, file: str) -> pd.DataFrame:
        return {TOTALS: self.totals, ROUTES: self.routes, STATIONS: self.stations}[file]

    def bad_rows(self, file: str) -> list[Event]:
        return [e for e in self.events if e.bad and e.file == file]

    def summary(self, file: str) -> FileSummary:
        frame = self.frame(file)
        if file == TOTALS:
            series = 2  # bus, rail_boardings
        else:
            series = frame[ROUTE_COLUMNS[0] if file == ROUTES else STATION_COLUMNS[0]].nunique()
        date_column = TOTAL_COLUMNS[0] if file == TOTALS else "date"
        dates = pd.to_datetime(frame[date_column], format=DATE_FORMAT, errors="coerce").dropna()
        return FileSummary(
            file, len(frame), int(series), dates.min().date(), dates.max().date(), len(self.bad_rows(file))
        )


def check_synth_parameters(routes: int, stations: int, start: date, end: date, seed: int = 0) -> None:
    """Raise :class:`InvalidInput` (one line) unless the arguments make a synthetic set."""
    if not 1 <= routes <= MAX_ROUTES:
        raise InvalidInput(f"--routes {routes}: give 1..{MAX_ROUTES}")
    if not 1 <= stations <= MAX_STATIONS:
        raise InvalidInput(f"--stations {stations}: give 1..{MAX_STATIONS} (station ids are 5 digits)")
    if end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    days = (end - start).days + 1
    if days < MIN_DAYS:
        raise InvalidInput(f"{start} .. {end} is {days} day(s): give at least {MIN_DAYS} to place the documented quirks")
    if (routes + stations) * days > MAX_ROWS:
        raise InvalidInput(
            f"{routes} routes + {stations} stations × {days} days is over {MAX_ROWS:,} rows: shorten the range or use fewer series"
        )
    if seed < 0:
        raise InvalidInput(f"--seed {seed}: give a non-negative integer")


def synthesize(routes: int, stations: int, start: date, end: date, seed: int = 0) -> SyntheticRidership:
    """``routes`` bus routes and ``stations`` 'L' stations over ``start..end`` (inclusive)."""
    check_synth_parameters(routes, stations, start, end, seed)
    dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    calendar = SynthCalendar.of(dates)
    shock = np.exp(np.random.default_rng([seed, 0]).normal(0.0, 0.03, len(dates)) - 0.03**2 / 2)
    route_rng = np.random.default_rng([seed, ROUTE_KIND.stream])
    station_rng = np.random.default_rng([seed, STATION_KIND.stream])
    route_ids = draw_route_ids(routes, route_rng)
    station_ids, station_names = draw_stations(stations, station_rng)
    route_panel = make_panel(ROUTE_KIND, route_ids, None, calendar, shock, route_rng)
    station_panel = make_panel(STATION_KIND, station_ids, station_names, calendar, shock, station_rng)
    route_frame, route_events = route_panel.file(calendar)
    station_frame, station_events = station_panel.file(calendar)
    bus = route_panel.daily_sum()
    rail = station_panel.daily_sum()
    totals = pd.DataFrame(
        {
            "service_date": calendar.text,
            "day_type": calendar.types,
            "bus": as_text(bus),
            "rail_boardings": as_text(rail),
            "total_rides": as_text(bus + rail),
        }
    )
    events = tuple(route_events + station_events)
    return SyntheticRidership(totals, route_frame, station_frame, events, start, end, seed)


