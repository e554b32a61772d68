"""Event regressors known in advance (ball games at a venue), through the history frame.

A game schedule is published before the season, so a game on a target day is known at any
cutoff, like the calendar. It still reaches a model through the history frame the walk-forward
engine cuts at every cutoff, as lead columns: ``ev03:CHN`` on the row of day d is 1.0 when the
venue ``CHN`` has a game on d + 3 (0.0 when not, NaN in a season the schedule does not have).
The forecast row (the cutoff) reads leads 1..14 for its target days; a training row (anchor a)
the same leads of a; lead 0 tells which past days were game days. Nothing a model reads comes
from a row after its cutoff, so the engine's one leakage guard covers events as it covers the
series and the weather.

Why, from the real station file (2019-04-01..14): Addison on the Red Line (Wrigley Field)
carried 10,064-14,425 entries on Cubs home game days against 5,300-6,400 on the weekdays
around them; Sox-35th 7,113 and 6,745 on the White Sox's first home days against about 3,900.
A station's ridge fitted without them takes the game weeks for noise and the games for outliers.

Two regressors per venue for a station: a game on the target day, and the share of the four
same-weekday days the baseline is made of that were game days (a baseline full of game Saturdays
is too high for a Saturday without one). Every station gets every venue's columns and its own
fit decides what they are worth (a game draws riders from stations far from the park too).

Pure: frames and arrays in and out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

MAX_LEAD = 14
BASELINE_WEEKS = 4
EVENT_PREFIX = "ev"


def event_column(venue: str, lead: int) -> str:
    return f"{EVENT_PREFIX}{lead:02d}:{venue}"


def is_event_column(column: object) -> bool:
    text = str(column)
    return text.startswith(EVENT_PREFIX) and text[2:4].isdigit() and text[4:5] == ":"


def event_frame(events: pd.DataFrame, days: pd.DatetimeIndex, coverage: Mapping[str, Sequence[int]], max_lead: int = MAX_LEAD) -> pd.DataFrame:
    """The lead columns for ``days`` (the history's index) from ``events`` (``date``, ``venue``;
    :func:`tasks.core.data.events.parse_schedule`): per venue and lead 0..``max_lead``, 1.0 where
    the venue has a game ``lead`` days after the row's day, 0.0 where it has none, NaN where that
    day's year is not in the venue's ``coverage`` (a season the schedule lacks is unknown)."""
    columns: dict[str, np.ndarray] = {}
    for venue in sorted(coverage):
        game_days = pd.DatetimeIndex(events.loc[events["venue"] == venue, "date"]).normalize()
        seasons = np.asarray(coverage[venue])
        for lead in range(max_lead + 1):
            target = days + pd.Timedelta(days=lead)
            known = np.isin(target.year, seasons)
            columns[event_column(venue, lead)] = np.where(known, target.isin(game_days).astype(float), np.nan)
    return pd.DataFrame(columns, index=days)


def join_events(history: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``history`` with the event columns of ``frame`` (built on its own index) joined."""
    if not len(frame.columns):
        return history
    return history.join(frame.reindex(history.index), how="left")


@dataclass(frozen=True)
class EventArrays:
    """Per venue, the lead grid over a series' days (rows: history then horizon; columns: lead
    0..max_lead; NaN after the cutoff's row)."""

    leads: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class EventFeatures:
    """Which event regressors a direct model adds (two per venue found in the history)."""

    max_lead: int = MAX_LEAD
    baseline_share: bool = True
    # A station with less than a year of its own days has seen at most part of one season: its
    # fit took a few game days for a rule (Washington/Wabash, opened 2017-08-31, forecast 3.7
    # times its error without them at 2018-04-01). It gets no event regressors until then.
    min_history_days: int = 365

    def spec(self) -> dict[str, Any]:
        return {"max_lead": self.max_lead, "baseline_share": self.baseline_share, "min_history_days": self.min_history_days}

    def arrays(self, history: pd.DataFrame, n_observed: int, horizon: int) -> EventArrays | None:
        """The grids of the venues with lead columns in ``history`` (None when it has none)."""
        venues = sorted({str(c).split(":", 1)[1] for c in history.columns if is_event_column(c)})
        if not venues:
            return None
        leads = {}
        for venue in venues:
            grid = np.full((n_observed + horizon, self.max_lead + 1), np.nan)
            for lead in range(self.max_lead + 1):
                column = event_column(venue, lead)
                if column in history.columns:
                    grid[:n_observed, lead] = history[column].to_numpy(np.float64)[:n_observed]
            leads[venue] = grid
        return EventArrays(leads=leads)

    def columns(self, events: EventArrays, anchors: np.ndarray, latest: np.ndarray, h: int) -> list[np.ndarray]:
        """The regressors of rows (``anchors``, ``h``) whose baseline ends at ``latest`` (the last
        day of the target's kind at or before the anchor): per venue, a game on the target day
        (from the anchor's row) and the share of game days among the baseline's four weeks."""
        out: list[np.ndarray] = []
        for venue in sorted(events.leads):
            grid = events.leads[venue]
            out.append(np.nan_to_num(grid[anchors, h]) if h <= self.max_lead else np.zeros(len(anchors)))
            if self.baseline_share:
                weeks = [latest - 7 * j for j in range(BASELINE_WEEKS)]
                played = np.stack([np.where(w >= 0, grid[np.maximum(w, 0), 0], np.nan) for w in weeks])
                known = np.isfinite(played).sum(axis=0)
                games = np.nansum(played, axis=0)
                out.append(np.divide(games, known, out=np.zeros(len(anchors)), where=known > 0))
        return out

    def n_columns(self, events: EventArrays) -> int:
        """How many regressors :meth:`columns` returns on ``events``."""
        return len(events.leads) * (2 if self.baseline_share else 1)
