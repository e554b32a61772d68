"""The generator behind :mod:`tasks.core.data.synth`: the service calendar of the range, one
panel of series per file (levels, weekly shapes, seasons, holidays, shocks, level shifts, noise
and the documented life events) and the file's rows with its bad rows applied. The model and the
rules are documented once, in :mod:`tasks.core.data.synth`."""

from __future__ import annotations
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from schemas.ridership import RAW_COLUMNS
from schemas.series import ROUTES, STATIONS
from tasks.core.features.calendar import SATURDAY, SUNDAY_HOLIDAY, day_types
from tasks.core.features.calendar_flags import calendar_features

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
class SynthCalendar:
    dates: pd.DatetimeIndex
    text: np.ndarray  # MM/DD/YYYY, object
    types: np.ndarray  # W/A/U, object
    shape_index: np.ndarray  # 0..4 weekday Mon..Fri, 5 Saturday service, 6 Sunday service
    holiday_log: np.ndarray  # log of the calendar flags' combined effect

    @classmethod
    def of(cls, dates: pd.DatetimeIndex) -> "SynthCalendar":
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
class Panel:
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

    def file(self, calendar: SynthCalendar) -> tuple[pd.DataFrame, list[Event]]:
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
        columns["rides"] = rides = as_text(self.values[series, day])

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


def _day_index(calendar: SynthCalendar, day: date | None) -> int:
    return int(calendar.dates.get_loc(pd.Timestamp(day)))


def make_panel(
    kind: SeriesKind,
    ids: np.ndarray,
    names: np.ndarray | None,
    calendar: SynthCalendar,
    shock: np.ndarray,
    rng: np.random.Generator,
) -> Panel:
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
    return Panel(kind, ids, names, values, present, renamed_from, life_events)


def _id_on(kind: SeriesKind, ids: np.ndarray, series: int, day: int, renamed_from: int | None) -> str:
    if kind.name == ROUTES and series == 4 and renamed_from is not None and day >= renamed_from:
        return f"{ids[series]}{RENUMBER_SUFFIX}"
    return str(ids[series])


def draw_route_ids(count: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct route ids in series order: drawn numbers, ascending, some with an X (express),
    N (night) or J (jump) prefix."""
    pool = max(200, 2 * count)
    numbers = np.sort(rng.choice(np.arange(1, pool + 1), size=count, replace=False))
    u = rng.random(count)
    prefix = np.where(u < 0.06, "X", np.where(u < 0.10, "N", np.where(u < 0.13, "J", "")))
    return np.array([f"{p}{n}" for p, n in zip(prefix, numbers)], dtype=object)


def draw_stations(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct 5-digit station ids (ascending multiples of 10) and invented two-word names."""
    ids = np.sort(rng.choice(np.arange(4001, 5000), size=count, replace=False)) * 10
    pairs = [(a, b) for a in _WORDS for b in _WORDS if a != b]
    chosen = rng.choice(len(pairs), size=count, replace=False)
    separator = np.where(rng.random(count) < 0.7, "/", "-")
    names = [f"{pairs[c][0]}{s}{pairs[c][1]}" for c, s in zip(chosen, separator)]
    return np.array([str(i) for i in ids], dtype=object), np.array(names, dtype=object)


def as_text(values: np.ndarray) -> np.ndarray:
    """Integers as the text the file holds (an object array of str)."""
    return np.array(list(map(str, values.tolist())), dtype=object)
