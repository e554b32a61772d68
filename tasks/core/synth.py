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
(:func:`tasks.core.calendar.day_types`: ``W`` weekday, ``A`` Saturday, ``U`` Sunday or one of the
six Sunday-service holidays).

**Each series** (route or station ``i``; ``T`` = years since ``start``)::

    rides = level · week[day type, weekday] · (1 + a·cos(2π(doy − peak)/365.25)) · exp(g·T)
            · holiday^e · shock(day) · shifts(day) · exp(σ·ε − σ²/2), rounded

``level`` log-uniform on weekdays (routes 1,000..30,000 rides, stations 500..15,000 entries);
``week`` Monday..Friday about 1.00/1.03/1.04/1.03/0.97, Saturday 0.45..0.75, Sunday and holidays
0.25..0.55 (always below Saturday); yearly amplitude ``a`` 0.04..0.15 peaking in summer (routes)
or autumn (stations); trend ``g`` ~ N(−1%, 2%) a year; ``holiday`` the calendar flags'
dips and bumps (:mod:`tasks.core.calendar_features`: a weekday holiday ×0.85 beyond Sunday
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

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from schemas.errors import InvalidInput
from schemas.ridership import RAW_COLUMNS
from schemas.series import ROUTE_COLUMNS, ROUTES, STATION_COLUMNS, STATIONS, TOTALS
from tasks.core.calendar import SATURDAY, SUNDAY_HOLIDAY, day_types
from tasks.core.calendar_features import calendar_features

TOTAL_COLUMNS = RAW_COLUMNS

MIN_DAYS = 28
MAX_ROUTES = 2000
MAX_STATIONS = 999
MAX_ROWS = 10_000_000
DATE_FORMAT = "%m/%d/%Y"

NON_NUMERIC = "n/a"
RENUMBER_SUFFIX = "A"
RENAME_SUFFIX = "-Transit Center"
ZERO_DAYS = 3

# Calendar flag → multiplicative effect on a day (before each series' sensitivity).
HOLIDAY_EFFECTS = {
    "holiday_off_sunday": 0.85,
    "day_after_thanksgiving": 0.55,
    "christmas_eve": 0.65,
    "christmas_week": 0.75,
    "new_years_eve": 0.85,
    "january_2": 0.85,
    "mlk_day": 0.70,
    "presidents_day": 0.75,
    "good_friday": 0.88,
    "holy_week": 0.93,
    "st_patricks_parade": 1.15,
    "pride_sunday": 1.10,
}
WEEKDAY_PROFILE = np.array([1.00, 1.03, 1.04, 1.03, 0.97])

# Invented words for station names (none is a CTA station name).
_WORDS = (
    "Alder", "Aspen", "Birch", "Brook", "Cedar", "Clover", "Copper", "Crescent", "Dale", "Ember",
    "Fern", "Flint", "Garnet", "Glen", "Grove", "Harbor", "Hazel", "Heath", "Hollow", "Iris",
    "Juniper", "Laurel", "Larch", "Maple", "Meadow", "Mill", "Orchard", "Pine", "Poplar", "Quarry",
    "Ridge", "Rowan", "Sage", "Spruce", "Summit", "Thistle", "Timber", "Willow", "Yarrow", "Zinnia",
)  # fmt: skip


@dataclass(frozen=True)
class SeriesKind:
    """What differs between the routes and the stations file."""

    name: str  # ROUTES or STATIONS
    stream: int  # second word of the generator's seed
    level_low: float
    level_high: float
    season_peak_day: float  # day of year of the yearly maximum


ROUTE_KIND = SeriesKind(ROUTES, 1, 1_000.0, 30_000.0, 200.0)
STATION_KIND = SeriesKind(STATIONS, 2, 500.0, 15_000.0, 280.0)


@dataclass(frozen=True)
class Event:
    """A documented feature of a file: a bad row (``bad``) or a life event of a series.

    ``series`` is the route id or station_id as written on that date; ``date`` the day it
    concerns (``None`` for the impossible date, whose text is ``cell``); ``row`` the 0-based data
    row where the event is one row (file line = row + 2); ``cell`` the text written in the cell
    that makes the row bad (or the new id/name, or the level-shift factor); ``true_rides`` the
    series' true value that day, which the totals count."""

    file: str
    kind: str
    series: str
    date: date | None
    row: int | None = None
    cell: str | None = None
    true_rides: int | None = None
    bad: bool = False
    detail: str = ""


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
    calendar = _Calendar.of(dates)
    shock = np.exp(np.random.default_rng([seed, 0]).normal(0.0, 0.03, len(dates)) - 0.03**2 / 2)
    route_rng = np.random.default_rng([seed, ROUTE_KIND.stream])
    station_rng = np.random.default_rng([seed, STATION_KIND.stream])
    route_ids = _route_ids(routes, route_rng)
    station_ids, station_names = _stations(stations, station_rng)
    route_panel = _panel(ROUTE_KIND, route_ids, None, calendar, shock, route_rng)
    station_panel = _panel(STATION_KIND, station_ids, station_names, calendar, shock, station_rng)
    route_frame, route_events = route_panel.file(calendar)
    station_frame, station_events = station_panel.file(calendar)
    bus = route_panel.daily_sum()
    rail = station_panel.daily_sum()
    totals = pd.DataFrame(
        {
            "service_date": calendar.text,
            "day_type": calendar.types,
            "bus": _text(bus),
            "rail_boardings": _text(rail),
            "total_rides": _text(bus + rail),
        }
    )
    events = tuple(route_events + station_events)
    return SyntheticRidership(totals, route_frame, station_frame, events, start, end, seed)


@dataclass(frozen=True)
class _Calendar:
    dates: pd.DatetimeIndex
    text: np.ndarray  # MM/DD/YYYY, object
    types: np.ndarray  # W/A/U, object
    shape_index: np.ndarray  # 0..4 weekday Mon..Fri, 5 Saturday service, 6 Sunday service
    holiday_log: np.ndarray  # log of the calendar flags' combined effect

    @classmethod
    def of(cls, dates: pd.DatetimeIndex) -> "_Calendar":
        types = day_types(dates).astype(object)
        weekday = dates.day_of_week.to_numpy()
        shape_index = np.where(types == SUNDAY_HOLIDAY, 6, np.where(types == SATURDAY, 5, np.minimum(weekday, 4)))
        flags = calendar_features(dates, list(HOLIDAY_EFFECTS)).to_numpy()
        holiday_log = flags @ np.log(np.array(list(HOLIDAY_EFFECTS.values())))
        text = np.array(dates.strftime(DATE_FORMAT), dtype=object)
        return cls(dates, text, types, shape_index, holiday_log)

    def at(self, fraction: float) -> int:
        return int(fraction * (len(self.dates) - 1))


@dataclass
class _Panel:
    kind: SeriesKind
    ids: np.ndarray  # object, one per series
    names: np.ndarray | None  # stations only
    values: np.ndarray  # (S, D) int64, true values
    present: np.ndarray  # (S, D) bool, a row is written
    renamed_from: int | None  # day of the identity change of series 4, if any
    life_events: list[Event]

    def daily_sum(self) -> np.ndarray:
        return np.where(self.present, self.values, 0).sum(axis=0)

    def id_on(self, series: int, day: int) -> str:
        return _id_on(self.kind, self.ids, series, day, self.renamed_from)

    def file(self, calendar: _Calendar) -> tuple[pd.DataFrame, list[Event]]:
        """The file's rows (date-major) with the bad rows applied, and the events with rows."""
        present_by_day = self.present.T  # (D, S): np.nonzero walks it date-major
        day, series = np.nonzero(present_by_day)
        position = np.cumsum(present_by_day.ravel()).reshape(present_by_day.shape) - 1
        ids = self.ids[series]
        names = self.names[series] if self.names is not None else None
        if self.renamed_from is not None:
            changed = (series == 4) & (day >= self.renamed_from)
            if names is None:
                ids[changed] = f"{self.ids[4]}{RENUMBER_SUFFIX}"
            else:
                names[changed] = f"{self.names[4]}{RENAME_SUFFIX}"
        columns: dict[str, np.ndarray] = {"route": ids} if names is None else {"station_id": ids, "stationname": names}
        columns["date"] = calendar.text[day]
        columns["daytype"] = calendar.types[day]
        columns["rides"] = rides = _text(self.values[series, day])

        trunk = 0
        true = self.values[trunk]
        bad: list[Event] = []
        for kind, k in (("negative_rides", calendar.at(0.2)), ("non_numeric_rides", calendar.at(0.35))):
            row = int(position[k, trunk])
            rides[row] = (str(-true[k]) if true[k] > 0 else "-1") if kind == "negative_rides" else NON_NUMERIC
            bad.append(Event(self.kind.name, kind, self.id_on(trunk, k), calendar.dates[k].date(), row, rides[row], int(true[k]), True))

        # Extra rows, each right after the trunk's row of its day, in this (date) order.
        k_date, k_conflict, k_exact = calendar.at(0.5), calendar.at(0.65), calendar.at(0.8)
        extras = [
            ("impossible_date", k_date, f"02/30/{calendar.dates[k_date].year}", "W", str(true[k_date])),
            ("duplicate_conflicting", k_conflict, calendar.text[k_conflict], calendar.types[k_conflict], str(int(1.5 * true[k_conflict]) + 1)),
            ("duplicate_exact", k_exact, calendar.text[k_exact], calendar.types[k_exact], str(true[k_exact])),
        ]  # fmt: skip
        after = np.array([position[k, trunk] for _, k, *_ in extras], dtype=np.int64)
        for name in columns:
            cells = []
            for kind, k, when, when_type, value in extras:
                cell = {"route": self.id_on(trunk, k), "station_id": self.id_on(trunk, k), "date": when, "daytype": when_type, "rides": value}
                cells.append(cell.get(name, self.names[trunk] if self.names is not None else None))
            columns[name] = np.insert(columns[name], after + 1, np.array(cells, dtype=object))
        for j, (kind, k, when, _, value) in enumerate(extras):
            bad.append(
                Event(self.kind.name, kind, self.id_on(trunk, k), None if kind == "impossible_date" else calendar.dates[k].date(),
                      int(after[j]) + 1 + j, when if kind == "impossible_date" else value, int(true[k]), True)
            )  # fmt: skip

        def final_row(k: int, s: int) -> int:
            raw = int(position[k, s])
            return raw + int(np.sum(after < raw))

        events = [
            replace(e, row=final_row(_day_index(calendar, e.date), int(np.flatnonzero(self.ids == e.series)[0])))
            if e.kind == "zero_rides" else e
            for e in self.life_events
        ]  # fmt: skip
        return pd.DataFrame(columns), events + bad


def _day_index(calendar: _Calendar, day: date | None) -> int:
    return int(calendar.dates.get_loc(pd.Timestamp(day)))


def _panel(
    kind: SeriesKind,
    ids: np.ndarray,
    names: np.ndarray | None,
    calendar: _Calendar,
    shock: np.ndarray,
    rng: np.random.Generator,
) -> _Panel:
    count, days = len(ids), len(calendar.dates)
    years = np.arange(days) / 365.25
    doy = calendar.dates.day_of_year.to_numpy()

    level = np.exp(rng.uniform(np.log(kind.level_low), np.log(kind.level_high), count))
    week = np.empty((count, 7))
    week[:, :5] = WEEKDAY_PROFILE * (1.0 + rng.normal(0.0, 0.02, (count, 5)))
    week[:, 5] = rng.uniform(0.45, 0.75, count)
    week[:, 6] = week[:, 5] - rng.uniform(0.15, 0.25, count)  # Sunday service below Saturday: 0.20..0.60
    week[:, 6] = np.clip(week[:, 6], 0.25, 0.55)
    amplitude = rng.uniform(0.04, 0.15, count)
    peak = kind.season_peak_day + rng.normal(0.0, 20.0, count)
    growth = rng.normal(-0.01, 0.02, count)
    sensitivity = rng.uniform(0.6, 1.4, count)
    sigma = rng.uniform(0.03, 0.08, count)

    log_values = (
        np.log(level)[:, None]
        + np.log(week[:, calendar.shape_index])
        + np.log1p(amplitude[:, None] * np.cos(2 * np.pi * (doy[None, :] - peak[:, None]) / 365.25))
        + growth[:, None] * years[None, :]
        + sensitivity[:, None] * calendar.holiday_log[None, :]
        + np.log(shock)[None, :]
        + sigma[:, None] * rng.standard_normal((count, days))
        - sigma[:, None] ** 2 / 2
    )

    present = np.ones((count, days), dtype=bool)
    life_events: list[Event] = []
    first = np.zeros(count, dtype=np.int64)
    last = np.full(count, days - 1, dtype=np.int64)
    for i in range(1, count):
        cycle = (0.618 * (i // 20)) % 1.0
        if i % 20 == 1:
            first[i] = calendar.at(0.1 + 0.8 * ((0.3 + cycle) % 1.0))
            present[i, : first[i]] = False
        elif i % 20 == 2:
            last[i] = calendar.at(0.1 + 0.8 * ((0.7 + cycle) % 1.0))
            present[i, last[i] + 1 :] = False

    renamed_from = calendar.at(0.55) if count > 4 else None
    # Level shifts, inside each series' life (drawn for every series, in order, so the draws
    # do not depend on which series have life events).
    shift_count = rng.choice(3, size=count, p=[0.5, 0.35, 0.15])
    shift_u = rng.random((count, 2))
    shift_factor = np.clip(np.exp(rng.normal(0.0, 0.15, (count, 2))), 0.6, 1.5)
    for i in range(count):
        for j in range(int(shift_count[i])):
            span = int(last[i] - first[i])
            if span < 1:
                continue
            k = int(first[i] + 1 + int(shift_u[i, j] * span))
            k = min(k, int(last[i]))
            log_values[i, k:] += np.log(shift_factor[i, j])
            life_events.append(
                Event(kind.name, "level_shift", _id_on(kind, ids, i, k, renamed_from), calendar.dates[k].date(),
                      cell=f"{shift_factor[i, j]:.3f}", detail=f"×{shift_factor[i, j]:.3f} from this day on")
            )  # fmt: skip

    values = np.rint(np.exp(log_values)).astype(np.int64)

    for i in range(1, count):
        if i % 20 == 1:
            life_events.append(Event(kind.name, "opening", str(ids[i]), calendar.dates[first[i]].date(), detail="first day with rows"))
        elif i % 20 == 2:
            life_events.append(Event(kind.name, "closure", str(ids[i]), calendar.dates[last[i]].date(), detail="last day with rows"))
    if count > 3:
        gap = int(np.clip(days // 8, 7, 42))
        begin = calendar.at(0.45)
        present[3, begin : begin + gap] = False
        life_events.append(
            Event(kind.name, "suspension", str(ids[3]), calendar.dates[begin].date(),
                  detail=f"no rows for {gap} days, {calendar.dates[begin].date()} .. {calendar.dates[begin + gap - 1].date()}")
        )  # fmt: skip
    if renamed_from is not None:
        if kind.name == ROUTES:
            new = f"{ids[4]}{RENUMBER_SUFFIX}"
            life_events.append(Event(kind.name, "renumbered", str(ids[4]), calendar.dates[renamed_from].date(), cell=new,
                                     detail=f"route {ids[4]} continues as {new} from this day"))  # fmt: skip
        else:
            new = f"{names[4]}{RENAME_SUFFIX}"
            life_events.append(Event(kind.name, "renamed", str(ids[4]), calendar.dates[renamed_from].date(), cell=new,
                                     detail=f"stationname {names[4]!r} becomes {new!r} from this day"))  # fmt: skip
    if count > 5:
        begin = calendar.at(0.6)
        values[5, begin : begin + ZERO_DAYS] = 0
        for k in range(begin, begin + ZERO_DAYS):
            life_events.append(Event(kind.name, "zero_rides", str(ids[5]), calendar.dates[k].date(), cell="0", true_rides=0))
    return _Panel(kind, ids, names, values, present, renamed_from, life_events)


def _id_on(kind: SeriesKind, ids: np.ndarray, series: int, day: int, renamed_from: int | None) -> str:
    if kind.name == ROUTES and series == 4 and renamed_from is not None and day >= renamed_from:
        return f"{ids[series]}{RENUMBER_SUFFIX}"
    return str(ids[series])


def _route_ids(count: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct route ids in series order: drawn numbers, ascending, some with an X (express),
    N (night) or J (jump) prefix."""
    pool = max(200, 2 * count)
    numbers = np.sort(rng.choice(np.arange(1, pool + 1), size=count, replace=False))
    u = rng.random(count)
    prefix = np.where(u < 0.06, "X", np.where(u < 0.10, "N", np.where(u < 0.13, "J", "")))
    return np.array([f"{p}{n}" for p, n in zip(prefix, numbers)], dtype=object)


def _stations(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct 5-digit station ids (ascending multiples of 10) and invented two-word names."""
    ids = np.sort(rng.choice(np.arange(4001, 5000), size=count, replace=False)) * 10
    pairs = [(a, b) for a in _WORDS for b in _WORDS if a != b]
    chosen = rng.choice(len(pairs), size=count, replace=False)
    separator = np.where(rng.random(count) < 0.7, "/", "-")
    names = [f"{pairs[c][0]}{s}{pairs[c][1]}" for c, s in zip(chosen, separator)]
    return np.array([str(i) for i in ids], dtype=object), np.array(names, dtype=object)


def _text(values: np.ndarray) -> np.ndarray:
    """Integers as the text the file holds (an object array of str)."""
    return np.array(list(map(str, values.tolist())), dtype=object)
