"""Features for direct multi-horizon regression on log ridership, known at the cutoff.

One training row is an (anchor day ``a``, horizon ``h``) pair: the target is ``log y`` on
``t = a + h``, expressed relative to a **baseline**, the mean log of the last four ordinary days
of the target's kind seen by ``a`` (same weekday; for a Sunday-service holiday on another weekday,
Sundays, whose level a holiday follows far more closely than its own weekday's). Every regressor
is computed from values on days ``<= a`` or from the calendar of ``t``, so a row built at the
cutoff uses nothing after it, and the same code builds the training rows (every past anchor) and
the forecast row (the cutoff itself).

*Ordinary* days are those without a calendar flag and not outliers. A day is an outlier when its
log differs by more than ``outlier_threshold`` from the median of the four same weekdays before
it (a snowstorm, a polar vortex, a strike): left in, one such day drags a four-week baseline for a
month (measured: the -1.9 log day of 2019-01-30 cost ~9,000 MAE in March 2019). The rule only
looks back, and it compares with raw past values, so a lasting break (March 2020) is accepted as
the new level after three weeks instead of being rejected for ever. A station has its own,
wider threshold (``station_outlier_threshold``): there a game, a festival or a closure moves a day
by 0.25 log every week or two, and rejecting all of them left the baselines few and stale
(docs/models-and-accuracy.md, "Stations").

Regressors (all relative to the baseline unless said otherwise):

* the last same-kind value and the means of the last 2 and 8: how the baseline is moving;
* the mean deviation of the last 3, 7 and 14 days from their own four-week baselines: the
  current level, whatever the weekday (reacts to a break within days);
* for a weekday target, the mean of the last 5 and 10 weekdays (10 values, not 4: less noise);
  the weekdays' levels differ (the weekday dummies learn by how much), so once a level shift
  lies in the window, the target's baseline is first moved to the weekdays' mean through the
  week's shape of the last ``weekday_shape_weeks`` weeks, not the one the dummies learned over
  years mostly before the break (after 2020 hybrid work reshaped the week: rail's Fridays ran
  9 % above ridge's forecasts through 2021);
* last year's and the year before's deviation of the same weekday 52 and 104 weeks earlier from
  its own baseline then (the seasonal shape: summer weekends, August, December);
* weekday one-hot, day-of-year Fourier terms (also times a weekend indicator), calendar flags.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from schemas.series import STATION_PREFIX
from tasks.core.features.calendar_flags import calendar_features
from tasks.core.features.events import EventArrays, EventFeatures
from tasks.core.features.weather import WeatherArrays, WeatherFeatures
from tasks.core.features.level_shifts import (
    LevelShift, ShiftedSeries, ShiftRule, confirming_shifts, detect_level_shifts, ordinary_days,
)

BASELINE_WEEKS = 4
YEAR = 364  # 52 weeks: the same weekday a year earlier
SUNDAY = 6
HISTORY_FOR_BASELINES = 7 * (2 * BASELINE_WEEKS)
"""First anchor with complete baselines (the 8-week mean, outlier reference of the 4 weeks before)."""

DIRECT_FLAGS = (
    "holiday_off_sunday",
    "day_after_thanksgiving",
    "christmas_eve",
    "christmas_week",
    "new_years_eve",
    "january_2",
    "observed_holiday",
    "bridge_day",
    "day_before_thanksgiving",
    "weekend_after_thanksgiving",
    "friday_before_monday_holiday",
    "sunday_before_monday_holiday",
    "mlk_day",
    "presidents_day",
    "columbus_day",
    "veterans_day",
    "good_friday",
    "holy_week",
    "easter_sunday",
    "st_patricks_parade",
    "marathon_sunday",
    "pride_sunday",
    "new_years_day",
    "memorial_day",
    "independence_day",
    "labor_day",
    "thanksgiving",
    "christmas_day",
)


@dataclass(frozen=True)
class Prepared:
    """Per-day arrays over the history plus the horizon (positions after the cutoff hold NaN
    values but calendar data): everything :meth:`DirectFeatures.design` indexes."""

    n_observed: int
    log_values: np.ndarray
    clean: np.ndarray
    weekday: np.ndarray
    day_of_year: np.ndarray
    flags: np.ndarray
    holiday: np.ndarray
    same_kind_mean: dict[int, np.ndarray]
    last_same_kind: np.ndarray
    last_known_same_kind: np.ndarray
    recent_deviation: dict[int, np.ndarray]
    weekday_level: dict[int, np.ndarray]
    shifts: ShiftedSeries | None = None
    weekday_shape: np.ndarray | None = None  # per day: its weekday's recent offset from the week
    weather: WeatherArrays | None = None
    events: EventArrays | None = None


@dataclass(frozen=True)
class DirectFeatures:
    """The feature recipe; every option changes the model, so all of them are in ``spec``."""

    flags: tuple[str, ...] = DIRECT_FLAGS
    outlier_threshold: float = 0.25
    station_outlier_threshold: float = 1.0
    fourier_terms: int = 3
    year_over_year: bool = True
    weekday_level: bool = True
    # A young regime's size from its latest weekday (level_shifts' docstring; chosen on 2020).
    level_shifts: ShiftRule | None = field(default_factory=lambda: ShiftRule(refine_days=1, refine_weekdays=True))
    young_regime_weeks: int = 8
    # After a level shift, the weekdays' shape from this many weeks (module docstring; chosen on
    # 2019 and 2021 among 8, 26 and 52: 0 turns it off).
    weekday_shape_weeks: int = 52
    young_baseline_weeks: int = 1
    young_baseline_keeps_outliers: bool = True
    # Weather regressors (tasks/core/features/weather.py) from the history's weather columns.
    weather: WeatherFeatures | None = None
    # Game-day regressors (tasks/core/features/events.py) for stations, from the history's event
    # columns; a total's features never read them.
    events: EventFeatures | None = None

    def spec(self) -> dict[str, Any]:
        weather = {"weather": self.weather.spec()} if self.weather is not None else {}
        events = {"events": self.events.spec()} if self.events is not None else {}
        return {
            **weather,
            **events,
            "flags": list(self.flags),
            "outlier_threshold": self.outlier_threshold,
            "station_outlier_threshold": self.station_outlier_threshold,
            "fourier_terms": self.fourier_terms,
            "year_over_year": self.year_over_year,
            "weekday_level": self.weekday_level,
            "level_shifts": self.level_shifts.spec() if self.level_shifts else None,
            "young_regime_weeks": self.young_regime_weeks,
            "weekday_shape_weeks": self.weekday_shape_weeks,
            "young_baseline_weeks": self.young_baseline_weeks,
            "young_baseline_keeps_outliers": self.young_baseline_keeps_outliers,
        }

    def prepare(
        self, values: np.ndarray, first_day: pd.Timestamp, horizon: int, confirmations: Sequence[LevelShift] = (),
        *, unique_id: str, covariates: pd.DataFrame | None = None,
    ) -> Prepared:
        """Arrays for ``values`` (one per day from ``first_day``) and ``horizon`` days after.
        ``confirmations``: the system totals' level shifts on the same days (see level_shifts);
        ``unique_id`` decides which shift rule applies (a part of the system needs a longer run);
        ``covariates``: the history frame whose weather columns the weather regressors read
        (its rows are ``values``' days)."""
        n = len(values)
        days = pd.date_range(first_day, periods=n + horizon, freq="D")
        log_values = np.full(n + horizon, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_values[:n] = np.where(values > 0, np.log(values), np.nan)
        all_flags = calendar_features(days)
        flags = all_flags[list(self.flags)].to_numpy() if self.flags else np.zeros((len(days), 0))
        holiday = all_flags["holiday_off_sunday"].to_numpy() > 0
        special = all_flags[list(self.flags) or ["holiday_off_sunday"]].to_numpy().any(axis=1) | holiday
        found = self.level_shifts_found(log_values[:n], all_flags.iloc[:n], confirmations, unique_id=unique_id)
        shifts = found if self.is_young(found, n) else None
        if shifts is not None:
            # The past re-expressed at today's level: baselines re-anchor once a break is detected.
            log_values[:n] += shifts.offset
        clean = np.where(special, np.nan, log_values)
        latest = shifts.latest() if shifts is not None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are expected
            threshold = self.outlier_threshold_for(unique_id)
            if threshold > 0:
                reference = np.nanmedian(_weekly_lags(clean, 1, BASELINE_WEEKS), axis=0)
                ordinary = clean
                clean = np.where(np.abs(clean - reference) > threshold, np.nan, clean)
                if latest is not None and self.young_baseline_keeps_outliers:
                    # The rule's reference (four weeks back) is stale while a new level still
                    # moves: April 2020's Wednesdays fell 0.25 below it week after week, were
                    # all rejected, and their baseline stayed at 04-01's level (ridge +30 % on
                    # every Wednesday to mid-May). After the regime's first week (still in free
                    # fall, where the re-expressed past is the better guess) only the calendar
                    # decides which of its days count.
                    settled = latest.start + 7
                    clean[settled:] = ordinary[settled:]
            same_kind_mean = {k: np.nanmean(_weekly_lags(clean, 0, k), axis=0) for k in (2, BASELINE_WEEKS, 8)}
            if latest is not None:
                # While a new level is young it may still be moving (March 2020 fell for five
                # weeks): baselines come from its latest same-kind days, not four weeks of them.
                young = slice(latest.start, latest.start + 7 * self.young_regime_weeks)
                since = clean.copy()
                since[: latest.start] = np.nan
                fresh = np.nanmean(_weekly_lags(since, 0, self.young_baseline_weeks), axis=0)
                for mean in same_kind_mean.values():
                    mean[young] = np.where(np.isfinite(fresh), fresh, mean)[young]
            last = clean.copy()
            for weeks in range(1, BASELINE_WEEKS):
                last = np.where(np.isnan(last), _shift(clean, 7 * weeks), last)
            deviation = clean - np.nanmean(_weekly_lags(clean, 1, BASELINE_WEEKS), axis=0)
            recent = {k: np.nanmean(_daily_lags(deviation, k), axis=0) for k in (3, 7, 14)}
            weekday = days.day_of_week.to_numpy()
            weekday_clean = np.where(weekday < 5, clean, np.nan)
            level = {k: np.nanmean(_daily_lags(weekday_clean, k), axis=0) for k in (7, 14)}
            broken = found is not None and bool(found.shifts) and self.weekday_shape_weeks > 0
            shape = _weekday_shape(weekday_clean, self.weekday_shape_weeks) if broken else None
        return Prepared(
            n_observed=n,
            log_values=log_values,
            clean=clean,
            weekday=weekday,
            day_of_year=days.day_of_year.to_numpy(),
            flags=flags,
            holiday=holiday,
            same_kind_mean=same_kind_mean,
            last_same_kind=last,
            last_known_same_kind=_last_known_same_weekday(clean),
            recent_deviation=recent,
            weekday_level=level,
            shifts=shifts,
            weekday_shape=shape,
            weather=self.weather.arrays(covariates, n, horizon) if self.weather is not None and covariates is not None else None,
            events=self.event_arrays(covariates, values, horizon, unique_id),
        )

    def event_arrays(self, covariates: pd.DataFrame | None, values: np.ndarray, horizon: int, unique_id: str) -> EventArrays | None:
        """A station's game-day grids; None for a total or a station younger than a year."""
        if self.events is None or covariates is None or not unique_id.startswith(STATION_PREFIX):
            return None
        if np.count_nonzero(np.isfinite(values)) < self.events.min_history_days:
            return None
        return self.events.arrays(covariates, len(values), horizon)

    def outlier_threshold_for(self, unique_id: str) -> float:
        """The log deviation beyond which a day of ``unique_id`` is an outlier (0: no outliers)."""
        return self.station_outlier_threshold if unique_id.startswith(STATION_PREFIX) else self.outlier_threshold

    def confirmations(self, history: pd.DataFrame, unique_id: str) -> tuple[LevelShift, ...]:
        """The system totals' level shifts in ``history`` (daily, one column per series) that may
        confirm a shorter run of ``unique_id`` (none when level shifts are off)."""
        if self.level_shifts is None or not self.young_regime_weeks:
            return ()
        return confirming_shifts(history, unique_id, ordinary_days(calendar_features(history.index)), self.level_shifts)

    def level_shifts_found(
        self, log_values: np.ndarray, flags: pd.DataFrame, confirmations: Sequence[LevelShift] = (), *, unique_id: str
    ) -> ShiftedSeries | None:
        """The level shifts of the series seen from its last day (None when no rule uses them)."""
        if self.level_shifts is None or not (self.young_regime_weeks or self.weekday_shape_weeks):
            return None
        rule = self.level_shifts.for_series(unique_id)
        weekday = flags.index.day_of_week.to_numpy()
        return detect_level_shifts(log_values, ordinary_days(flags), rule, confirmations, weekday=weekday)

    def is_young(self, found: ShiftedSeries | None, n_observed: int) -> bool:
        """Whether the latest shift started less than ``young_regime_weeks`` before the last of
        ``n_observed`` days. Only a young regime re-anchors the baselines: once a new level is older
        than that, the outlier rule has long accepted it and the four-week baselines hold only its
        days, so the model is the calm-year one (and its calm-year accuracy does not move)."""
        latest = found.latest() if found is not None else None
        return latest is not None and n_observed - 1 - latest.start < 7 * self.young_regime_weeks

    def design(self, p: Prepared, anchors: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The regressor matrix (one row per anchor) and the baseline for horizon ``h``.

        A row whose baseline is still undefined (the latest day of the kind missing too) has a
        NaN baseline; training drops it.
        """
        target = anchors + h
        kind = np.where(p.holiday[target], SUNDAY, p.weekday[target])
        # The latest day of the target's kind at or before the anchor.
        latest = anchors - (p.weekday[anchors] - kind) % 7
        base = p.same_kind_mean[BASELINE_WEEKS][latest]
        # Four weeks without an ordinary day of the kind (a holiday season, a run of storms):
        # eight weeks, else the latest value itself, rather than no forecast.
        base = np.where(np.isnan(base), p.same_kind_mean[8][latest], base)
        base = np.where(np.isnan(base), p.log_values[latest], base)
        # A kind not seen for eight weeks (a station reopening after months closed): its last
        # known level, however old, rather than no forecast at all.
        base = np.where(np.isnan(base), p.last_known_same_kind[latest], base)
        columns = [
            p.last_same_kind[latest] - base,
            p.same_kind_mean[2][latest] - base,
            p.same_kind_mean[8][latest] - base,
            p.recent_deviation[3][anchors],
            p.recent_deviation[7][anchors],
            p.recent_deviation[14][anchors],
        ]
        if self.weekday_level:
            ordinary_weekday = (p.weekday[target] < 5) & ~p.holiday[target]
            # The target's baseline moved to the weekdays' mean by the recent shape (after a break).
            reference = base if p.weekday_shape is None else base - np.nan_to_num(p.weekday_shape[latest])
            for k in (7, 14):
                columns.append(np.where(ordinary_weekday, p.weekday_level[k][anchors] - reference, 0.0))
        if self.year_over_year:
            for lag in (YEAR, 2 * YEAR):
                then = latest - lag
                valid = then - 7 * (BASELINE_WEEKS - 1) >= 0
                then, past = np.where(valid, then, 0), np.where(valid, target - lag, 0)
                columns.append(np.where(valid, p.clean[past] - p.same_kind_mean[BASELINE_WEEKS][then], np.nan))
        weekday = p.weekday[target]
        columns.extend((weekday == d).astype(float) for d in range(7))
        weekend = (weekday >= 5).astype(float)
        angle = 2 * np.pi * p.day_of_year[target] / 365.25
        for k in range(1, self.fourier_terms + 1):
            sin, cos = np.sin(k * angle), np.cos(k * angle)
            columns.extend((sin, cos, weekend * sin, weekend * cos))
        if self.weather is not None and p.weather is not None:
            columns.extend(self.weather.columns(p.weather, anchors, h))
        if self.events is not None and p.events is not None:
            columns.extend(self.events.columns(p.events, anchors, latest, h))
        X = np.column_stack([*columns, p.flags[target]])
        return np.where(np.isfinite(X), X, 0.0), base

    def n_columns(self, prepared: Prepared | None = None, h: int = 1) -> int:
        """How many regressors :meth:`design` returns on ``prepared`` for horizon ``h`` (without
        ``prepared``: on a series with no weather or event columns, whose count depends on the
        data)."""
        weekday_level = 2 if self.weekday_level else 0
        yoy = 2 if self.year_over_year else 0
        count = 6 + weekday_level + yoy + 7 + 4 * self.fourier_terms + len(self.flags)
        if prepared is not None and self.weather is not None and prepared.weather is not None:
            count += self.weather.n_columns(prepared.weather, h)
        if prepared is not None and self.events is not None and prepared.events is not None:
            count += self.events.n_columns(prepared.events)
        return count


def _weekday_shape(weekday_values: np.ndarray, weeks: int) -> np.ndarray:
    """Per day, the mean over its weekday's last ``weeks`` values (it included) of each one's
    offset from the mean of the weekdays in the seven days ending on it: where that weekday sits
    in the week lately. Looks back only. ``weekday_values``: NaN on weekends and excluded days."""
    offset = weekday_values - np.nanmean(_daily_lags(weekday_values, 7), axis=0)
    return np.nanmean(_weekly_lags(offset, 0, weeks), axis=0)


def _last_known_same_weekday(values: np.ndarray) -> np.ndarray:
    """Per day, the latest finite value of the same weekday at or before it (NaN before any)."""
    out = np.full_like(values, np.nan)
    for first in range(7):
        out[first::7] = pd.Series(values[first::7]).ffill().to_numpy()
    return out


def _shift(values: np.ndarray, lag: int) -> np.ndarray:
    """``values[p - lag]`` at position ``p`` (NaN before the start); only ever looks back."""
    out = np.full_like(values, np.nan)
    out[lag:] = values[: len(values) - lag] if lag else values
    return out


def _weekly_lags(values: np.ndarray, first: int, weeks: int) -> np.ndarray:
    return np.stack([_shift(values, 7 * j) for j in range(first, first + weeks)])


def _daily_lags(values: np.ndarray, days: int) -> np.ndarray:
    return np.stack([_shift(values, j) for j in range(days)])
