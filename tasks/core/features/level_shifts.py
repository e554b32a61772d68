"""Level shifts: a deviation that persists is a new level, not a run of outliers.

One rule serves both the models and the monitor. Scanning a log series forward, day ``t``
deviates when its log differs by more than ``threshold`` from the median of the ordinary values
of the same weekday 1..4 weeks before; ``persistence`` consecutive ordinary days deviating the
same way are a **level shift** that started on the first of them and is **detected** on the last.
The scan only looks back, so what it finds at a cutoff uses nothing after it.

Once a shift is detected, every value before its start is moved by the shift's size (the median
deviation of its run), so the past is expressed at the new level and the scan goes on against
those moved values: a second step down a week later (March 2020 fell in two) is a second shift.
At the end of the series the size of the newest shift is re-estimated from its latest ordinary
days (``refine_days``), while its same-weekday references still reach back before it: the first
days of a break are rarely its final depth. Ridge's rule re-estimates it from the latest ordinary
**weekday** alone (``refine_days=1, refine_weekdays=True``): in a free fall the latest day is the
nearest to tomorrow's level (rail fell 0.3 log between 03-16 and 03-18, 2020), and weekends moved
less than weekdays (rail's Sundays -1.5 log by late March, its weekdays -1.9), so a Saturday or
Sunday misstated the weekdays, which carry most of the riders. The result is an offset per day
that turns the series into one without its breaks, at today's level: a four-week baseline then
re-anchors on the new level as soon as the break is detected instead of after four weeks.

A shift in a **confirming series** (the system totals, for every other series of the panel)
shortens the run needed: ``confirmed_persistence`` days deviating the same way are a shift when a
confirming series has a shift in that direction that started within ``confirm_days`` of the
run's first day and was detected by its last. A system-wide shock then re-anchors the other
series a day earlier (bus on 2020-03-17, the day rail's break was detected, not 03-18), while a
series alone never breaks on fewer than ``persistence`` days: in 2002-2019 neither total has a
break, so the shorter run can never fire there.

A **part** of the system (a station, a route, ``rail_entries``) needs ``part_persistence`` days
alone: an event moves one station by far more than 0.25 log for days on end (Lollapalooza lifted
the stations around Grant Park on 2019-08-01..04, a Cubs homestand Addison's), where a system
total barely moves. With four days, ridge re-anchored the 2019 stations on such events and its
station error grew by 15 % (docs/models-and-accuracy.md, "Stations"). A system-wide break still
reaches them in ``confirmed_persistence`` days.

Ordinary days are given by the caller (no calendar flag): a holiday or Christmas week is neither
counted in a run nor used as a reference, so holidays are not breaks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from schemas.series import TOTAL_SERIES
from tasks.core.features.calendar_flags import CALENDAR_FLAGS, calendar_features

REFERENCE_WEEKS = 4
MIN_REFERENCES = 2


@dataclass(frozen=True)
class ShiftRule:
    threshold: float = 0.25
    persistence: int = 4
    refine_days: int = 3
    confirmed_persistence: int = 3
    confirm_days: int = 7
    part_persistence: int = 14
    # Ridge's rule (tasks/core/features/direct.py) re-estimates from the latest weekday alone;
    # detection, the breaks stored and the RNNs' history keep the 3-day median.
    refine_weekdays: bool = False

    def spec(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold, "persistence": self.persistence, "refine_days": self.refine_days,
            "confirmed_persistence": self.confirmed_persistence, "confirm_days": self.confirm_days,
            "part_persistence": self.part_persistence,
            **({"refine_weekdays": True} if self.refine_weekdays else {}),
        }

    def for_series(self, unique_id: str) -> "ShiftRule":
        """The rule as it applies to ``unique_id``: a part of the system needs the longer run."""
        return self if unique_id in TOTAL_SERIES else replace(self, persistence=self.part_persistence)


@dataclass(frozen=True)
class LevelShift:
    start: int  # position of the first day at the new level
    detected: int  # position of the day the run reached ``persistence`` days
    size: float  # log change, new level minus old (re-estimated at the end for the newest shift)
    direction: int = 0  # sign of the run as detected: unlike the size, fixed on the detection day


@dataclass(frozen=True)
class ShiftedSeries:
    shifts: tuple[LevelShift, ...]
    offset: np.ndarray  # log offset per day: values + offset is the series at today's level

    def latest(self) -> LevelShift | None:
        return self.shifts[-1] if self.shifts else None


def detect_level_shifts(
    log_values: np.ndarray, ordinary: np.ndarray, rule: ShiftRule = ShiftRule(),
    confirmations: Sequence[LevelShift] = (), weekday: np.ndarray | None = None,
) -> ShiftedSeries:
    """The level shifts of ``log_values`` (one per day; NaN where unknown) seen from its last day.
    ``weekday``: Monday = 0 per day, needed by a rule that refines on weekdays only.

    ``ordinary``: days that may count in a run or serve as a reference (no holiday flag).
    ``confirmations``: the shifts of the confirming series, positions on the same days."""
    n = len(log_values)
    adjusted = np.where(ordinary & np.isfinite(log_values), log_values, np.nan).astype(float)
    starts: list[int] = []
    detections: list[int] = []
    sizes: list[float] = []
    directions: list[int] = []
    after = 0  # days up to a detection are settled: a new run starts after it
    while (found := _first_run(adjusted, after, rule, confirmations)) is not None:
        start, detected, size = found
        adjusted[:start] += size
        starts.append(start)
        detections.append(detected)
        sizes.append(size)
        directions.append(int(np.sign(size)))
        after = detected + 1
    if starts:
        eligible = adjusted
        if rule.refine_weekdays:
            if weekday is None:
                raise ValueError("a rule that refines on weekdays needs each day's weekday")
            eligible = np.where(np.asarray(weekday)[:n] < 5, adjusted, np.nan)
        correction = _refinement(adjusted, eligible, starts[-1], rule.refine_days)
        adjusted[: starts[-1]] += correction
        sizes[-1] += correction
    offset = np.zeros(n)
    for start, size in zip(starts, sizes):
        offset[:start] += size
    shifts = tuple(LevelShift(*shift) for shift in zip(starts, detections, sizes, directions))
    return ShiftedSeries(shifts=shifts, offset=offset)


def _first_run(
    adjusted: np.ndarray, after: int, rule: ShiftRule, confirmations: Sequence[LevelShift]
) -> tuple[int, int, float] | None:
    """The run detected first from ``after`` on: ``persistence`` consecutive comparable days that
    deviate the same way by more than ``threshold``, or ``confirmed_persistence`` such days that a
    confirming shift backs (see the module docstring). (first day, last day, median deviation),
    or None. Days without a value or two references are skipped; they do not break a run."""
    deviation = adjusted - _references(adjusted)
    positions = np.flatnonzero(np.isfinite(deviation))
    positions = positions[positions >= after]
    values = deviation[positions]
    sign = np.where(np.abs(values) > rule.threshold, np.sign(values), 0.0)
    found = [(positions[i + rule.persistence - 1], i, rule.persistence) for i in _runs(sign, rule.persistence)[:1]]
    if confirmations and rule.confirmed_persistence < rule.persistence:
        for i in _runs(sign, rule.confirmed_persistence):
            first, last = positions[i], positions[i + rule.confirmed_persistence - 1]
            if any(
                c.detected <= last and abs(c.start - first) <= rule.confirm_days and c.direction == sign[i]
                for c in confirmations
            ):
                found.append((last, i, rule.confirmed_persistence))
                break
    if not found:
        return None
    _, first, length = min(found)
    run = slice(first, first + length)
    return int(positions[run][0]), int(positions[run][-1]), float(np.median(values[run]))


def _runs(sign: np.ndarray, length: int) -> np.ndarray:
    """Indices where ``length`` consecutive signs are equal and non-zero, in order."""
    if len(sign) < length:
        return np.array([], dtype=int)
    windows = np.lib.stride_tricks.sliding_window_view(sign, length)
    return np.flatnonzero((windows[:, 0] != 0) & (windows == windows[:, :1]).all(axis=1))


def _references(adjusted: np.ndarray) -> np.ndarray:
    """Per day, the median of the same weekday 1..4 weeks before (NaN with fewer than two)."""
    n = len(adjusted)
    lags = np.full((REFERENCE_WEEKS, n), np.nan)
    for week in range(1, REFERENCE_WEEKS + 1):
        lags[week - 1, 7 * week :] = adjusted[: n - 7 * week]
    enough = np.isfinite(lags).sum(axis=0) >= MIN_REFERENCES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
        return np.where(enough, np.nanmedian(lags, axis=0), np.nan)


def _refinement(adjusted: np.ndarray, eligible: np.ndarray, start: int, days: int) -> float:
    """How far the newest shift's size is off, judged on its latest ``days`` ordinary days that
    are ``eligible`` (finite there) against their same-weekday references from before the shift
    (0 once none reach back)."""
    deviations = []
    for t in range(len(adjusted) - 1, start - 1, -1):
        if len(deviations) == days:
            break
        if np.isnan(eligible[t]):
            continue
        before = [adjusted[t - 7 * w] for w in range(1, REFERENCE_WEEKS + 1) if 0 <= t - 7 * w < start]
        before = [v for v in before if not np.isnan(v)]
        if before:
            deviations.append(adjusted[t] - float(np.median(before)))
    return float(np.median(deviations)) if deviations else 0.0


BREAK_COLUMNS = ["unique_id", "start", "detected", "size"]


def ordinary_days(flags: pd.DataFrame) -> np.ndarray:
    """Days without any calendar flag (``calendar_features`` of the dates): those a level-shift
    run may count and compare with. Holidays, their bridges and Christmas week are never breaks."""
    return ~flags[list(CALENDAR_FLAGS)].to_numpy().any(axis=1)


def log_series(history: pd.DataFrame, unique_id: str) -> np.ndarray:
    """The natural log of one column (NaN where missing or not positive)."""
    values = history[unique_id].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log(values), np.nan)


def total_shifts(
    history: pd.DataFrame, ordinary: np.ndarray, rule: ShiftRule = ShiftRule()
) -> dict[str, tuple[LevelShift, ...]]:
    """The shifts of each system total in ``history``, by the plain rule (so two totals never
    confirm each other in a circle)."""
    weekday = pd.DatetimeIndex(history.index).day_of_week.to_numpy()
    return {
        total: detect_level_shifts(log_series(history, total), ordinary, rule, weekday=weekday).shifts
        for total in TOTAL_SERIES if total in history.columns
    }  # fmt: skip


def confirming_shifts(
    history: pd.DataFrame, unique_id: str, ordinary: np.ndarray, rule: ShiftRule = ShiftRule()
) -> tuple[LevelShift, ...]:
    """The shifts of the system totals in ``history`` other than ``unique_id``: what may back a
    shorter run of ``unique_id``."""
    return _of_others(total_shifts(history, ordinary, rule), unique_id)


def _of_others(totals: dict[str, tuple[LevelShift, ...]], unique_id: str) -> tuple[LevelShift, ...]:
    return tuple(shift for total, shifts in totals.items() if total != unique_id for shift in shifts)


def shifted_series(
    history: pd.DataFrame, unique_ids: Sequence[str], rule: ShiftRule = ShiftRule()
) -> tuple[pd.DatetimeIndex, dict[str, ShiftedSeries]]:
    """The daily index of ``history`` and, per series of ``unique_ids``, its level shifts seen
    from the last day; the system totals among its columns confirm the other series' shifts."""
    daily = history.asfreq("D") if len(history) else history
    ordinary = ordinary_days(calendar_features(daily.index))
    totals = total_shifts(daily, ordinary, rule)  # once, not once per series
    weekday = pd.DatetimeIndex(daily.index).day_of_week.to_numpy()
    found = {
        unique_id: detect_level_shifts(
            log_series(daily, unique_id), ordinary, rule.for_series(unique_id), _of_others(totals, unique_id), weekday
        )
        for unique_id in unique_ids
    }  # fmt: skip
    return pd.DatetimeIndex(daily.index), found


def series_breaks(
    history: pd.DataFrame, unique_ids: Sequence[str], rule: ShiftRule = ShiftRule()
) -> pd.DataFrame:
    """The level shifts of each series of ``history`` (daily index, one column per series) as
    seen from its last day: ``unique_id, start, detected, size`` (dates; size in log units).
    The system totals among its columns confirm the other series' shifts."""
    index, found = shifted_series(history, unique_ids, rule)
    rows = [
        (unique_id, index[shift.start], index[shift.detected], shift.size)
        for unique_id, shifted in found.items() for shift in shifted.shifts
    ]  # fmt: skip
    types = {"unique_id": "str", "start": "datetime64[ns]", "detected": "datetime64[ns]", "size": "float64"}
    return pd.DataFrame(rows, columns=BREAK_COLUMNS).astype(types)


def breaks_until(history: pd.DataFrame, series: Sequence[str], end: pd.Timestamp) -> pd.DataFrame:
    """:func:`series_breaks` of those of ``series`` that ``history`` holds, seen from ``end``
    (nothing after it is read)."""
    visible = history.loc[:end]
    return series_breaks(visible, [s for s in series if s in visible.columns])


def at_current_level(
    history: pd.DataFrame, unique_ids: Sequence[str], rule: ShiftRule = ShiftRule()
) -> pd.DataFrame:
    """``history`` (daily, one column per series) with every day of ``unique_ids`` before their
    level shifts moved to the level of the latest regime (multiplied by exp of its log offset);
    days since the latest shift, and series without one, are unchanged. For a model that learns
    levels from years of history (the RNNs): after March 2020 the old level is not a state the
    series returns to. Uses nothing after the last day of ``history``."""
    index, found = shifted_series(history, unique_ids, rule)
    moved = history.reindex(index).copy()
    for unique_id, shifted in found.items():
        if shifted.shifts:
            moved[unique_id] = moved[unique_id] * np.exp(shifted.offset)
    return moved.loc[history.index]


ALERT_DAYS = 7


def regime_alerts(breaks: pd.DataFrame, cutoff: pd.Timestamp, days: int = ALERT_DAYS) -> list[str]:
    """One line per break detected in the ``days`` days up to ``cutoff``: the nightly run's
    alert (a break detected earlier was alerted on then)."""
    recent = breaks[(breaks["detected"] <= cutoff) & (breaks["detected"] > cutoff - pd.Timedelta(days=days))]
    return [
        f"level shift in {row.unique_id}: {100 * (np.exp(row.size) - 1):+.0f}% from {row.start:%Y-%m-%d} "
        f"(detected {row.detected:%Y-%m-%d}); models re-anchor on the new level"
        for row in recent.itertuples()
    ]
