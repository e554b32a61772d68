"""Weather covariates with an as-of contract, and the regressors ridge draws from them (issue 22).

Two kinds of weather reach a model, both through the history frame the walk-forward engine cuts
at every cutoff (``history.loc[:cutoff]``), so the engine's one leakage guard covers them:

* **observed** daily weather, one column per variable (``wx:tmax_f``, …), on the row of the day
  it was observed: a forecast at cutoff c sees the days ≤ c;
* **forecast** weather from a *vintage*: the forecast issued on day d for days d + 1 .. d + L,
  one column per variable and lead (``wxf03:snow_in``), on the row of its **issue** day d: a
  forecast at cutoff c sees the vintages issued ≤ c, and reads the one issued at c for its target
  days c + h (lead h). A day without a vintage has NaN there.

A model fitted where the cutoff's row has a vintage uses the forecast weather of its target days
(``forecast`` features); otherwise only what was observed up to the cutoff. Its training rows
take, for each past anchor a, the vintage issued at a where there is one, else the weather
observed on the (past) target day: past vintages are rare in production, and a target day at or
before the cutoff is observed by then.

Backtests before real vintages exist build the vintage columns themselves (:func:`vintage_frame`
from :func:`simulated_vintages` or :func:`oracle_vintages`); which ones a run used is in the
model's name (``tasks/core/models/catalog.py``).

Pure: frames and arrays in and out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

VARIABLES = ("tmax_f", "tmin_f", "prcp_in", "snow_in", "snwd_in")
"""Daily O'Hare weather in the GHCN convention: °F and inches."""
FORECAST_VARIABLES = ("tmax_f", "prcp_in", "snow_in")
"""What a forecast vintage gives per target day (snow depth is not forecast)."""
MAX_LEAD = 14
OBSERVED_PREFIX = "wx:"
COLD_F = 20.0
HOT_F = 85.0
PRCP_CAP_IN = 2.0


def observed_column(variable: str) -> str:
    return f"{OBSERVED_PREFIX}{variable}"


def forecast_column(variable: str, lead: int) -> str:
    return f"wxf{lead:02d}:{variable}"


def is_weather_column(column: object) -> bool:
    return str(column).startswith((OBSERVED_PREFIX, "wxf"))


def observed_frame(observed: pd.DataFrame) -> pd.DataFrame:
    """Observed daily weather (``DatetimeIndex``; columns among :data:`VARIABLES`) as history
    columns ``wx:<variable>``."""
    present = [v for v in VARIABLES if v in observed.columns]
    return observed[present].rename(columns=observed_column).astype(np.float64)


def vintage_frame(vintages: pd.DataFrame, max_lead: int = MAX_LEAD) -> pd.DataFrame:
    """Long vintages (``issued, ds, <variables>``; ``lead = ds - issued`` in days) as history
    columns ``wxf<lead>:<variable>`` on the row of their issue day; leads beyond ``max_lead``
    are dropped, a day without a vintage is absent (NaN once joined)."""
    if vintages.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="ds"))
    frame = vintages.assign(lead=(pd.to_datetime(vintages["ds"]) - pd.to_datetime(vintages["issued"])).dt.days)
    frame = frame[(frame["lead"] >= 1) & (frame["lead"] <= max_lead)]
    present = [v for v in FORECAST_VARIABLES if v in frame.columns]
    wide = frame.pivot_table(index="issued", columns="lead", values=present, aggfunc="last")
    wide.columns = [forecast_column(variable, int(lead)) for variable, lead in wide.columns]
    wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index), name="ds")
    return wide.astype(np.float64)


def oracle_vintages(observed: pd.DataFrame, issued: pd.DatetimeIndex, max_lead: int = MAX_LEAD) -> pd.DataFrame:
    """Vintages that knew the future: the weather observed on each target day. An upper bound
    for a weather-aware model, never its accuracy."""
    leads = np.arange(1, max_lead + 1)
    issue = np.repeat(pd.DatetimeIndex(issued).values, len(leads))
    targets = pd.DatetimeIndex(issue) + pd.to_timedelta(np.tile(leads, len(issued)), unit="D")
    truth = observed.reindex(columns=list(FORECAST_VARIABLES)).reindex(targets)
    return pd.DataFrame({"issued": issue, "ds": targets, **{v: truth[v].to_numpy() for v in FORECAST_VARIABLES}})


@dataclass(frozen=True)
class NoiseModel:
    """How far a forecast of each lead (days) is from what was then observed, from published
    verification (docs/weather.md#simulated-forecasts, with the sources):

    * maximum temperature: MAE by lead 1..7 in °F (``tmax_mae_f``), RMSE = ``rmse_per_mae`` × MAE
      (the heavy tails of NWS errors: 3.80 / 2.80 in Brooks & Doswell 1996), and beyond day 7 the
      forecast-observation correlations ``long_lead_correlation`` (day 8, 9, …; 0: no skill);
    * precipitation and snowfall: the correlation of forecast and observed amounts on a latent
      normal scale by lead (``amount_correlation``), which sets the misses and false alarms.

    A forecast is drawn as a calibrated forecast would be: the target day's observed value is
    mapped to the normal scale through its climatology (the same ±15 days of every year), a
    signal with the lead's correlation to it is drawn, the forecast is the expected value given
    that signal, mapped back; at no skill it is the season's median."""

    tmax_mae_f: tuple[float, ...] = (2.5, 2.9, 3.4, 3.9, 4.4, 5.0, 5.5)
    rmse_per_mae: float = 1.36
    long_lead_correlation: tuple[float, ...] = (0.42, 0.32, 0.21, 0.15, 0.10, 0.05, 0.0)
    amount_correlation: tuple[float, ...] = (0.80, 0.70, 0.62, 0.54, 0.46, 0.38, 0.30, 0.20, 0.18, 0.10, 0.07, 0.05, 0.02, 0.0)

    def tmax_correlation(self, lead: int, climate_sd: np.ndarray) -> np.ndarray:
        if lead <= len(self.tmax_mae_f):
            rmse = self.rmse_per_mae * self.tmax_mae_f[lead - 1]
            return np.sqrt(np.clip(1.0 - (rmse / climate_sd) ** 2, 0.0, 1.0))
        late = self.long_lead_correlation
        return np.full(climate_sd.shape, late[min(lead - len(self.tmax_mae_f), len(late)) - 1])

    def amount(self, lead: int) -> float:
        return self.amount_correlation[min(lead, len(self.amount_correlation)) - 1]


CLIMATE_WINDOW_DAYS = 15


def simulated_vintages(
    observed: pd.DataFrame, issued: pd.DatetimeIndex, noise: NoiseModel, seed: int, max_lead: int = MAX_LEAD,
) -> pd.DataFrame:
    """A vintage per day of ``issued`` simulated from the weather observed on its target days
    (:class:`NoiseModel`). Each issue day's errors come from a generator seeded by (``seed``, the
    day), so a vintage is the same whichever backtest asks for it; the climatology is the whole
    ``observed`` frame's (a device of the simulation, which reads the target days anyway)."""
    observed = observed.reindex(columns=list(FORECAST_VARIABLES)).astype(np.float64)
    issued = pd.DatetimeIndex(issued)
    leads = np.arange(1, max_lead + 1)
    issue = np.repeat(issued.values, len(leads))
    lead_of = np.tile(leads, len(issued))
    targets = pd.DatetimeIndex(issue) + pd.to_timedelta(lead_of, unit="D")
    shape = (len(FORECAST_VARIABLES), max_lead)
    errors = np.stack([_issue_day_generator(seed, day).standard_normal(shape) for day in issued]) if len(issued) else np.zeros((0, *shape))
    out = {"issued": issue, "ds": targets}
    for k, variable in enumerate(FORECAST_VARIABLES):
        climate = _Climatology(observed[variable], seed + k)
        latent, sd = climate.latent(targets)
        if variable == "tmax_f":
            rho = np.empty(len(targets))
            for lead in leads:
                at = lead_of == lead
                rho[at] = noise.tmax_correlation(int(lead), sd[at])
        else:
            rho = np.array([noise.amount(int(lead)) for lead in lead_of])
        # The forecaster's signal correlates rho with the truth; calibrated, it reports the
        # expected value given that signal (rho x signal): error variance 1 - rho^2, and at no
        # skill the season's median, never a random guess.
        signal = rho * latent + np.sqrt(1.0 - rho**2) * errors[:, k, :].reshape(-1)
        moved = rho * signal
        out[variable] = climate.value(targets, moved)
    return pd.DataFrame(out)


def _issue_day_generator(seed: int, day: pd.Timestamp) -> np.random.Generator:
    return np.random.default_rng([seed, int(day.strftime("%Y%m%d"))])


class _Climatology:
    """Per day of the year, the sorted values of the same ±15 days of every year of ``values``;
    maps a day's value to the normal scale (a randomised PIT: ties such as dry days spread
    evenly) and a normal-scale value back to the season's quantile."""

    def __init__(self, values: pd.Series, seed: int) -> None:
        values = values.dropna()
        doy = _day_of_year(values.index)
        self.sorted = {}
        for day in range(1, 366):
            distance = np.abs(doy - day)
            near = np.minimum(distance, 365 - distance) <= CLIMATE_WINDOW_DAYS
            self.sorted[day] = np.sort(values.to_numpy()[near])
        self.values = values
        self.spread = np.random.default_rng(seed).random(len(values))

    def latent(self, days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """Each day's observed value on the normal scale (NaN where not observed), and its
        season's standard deviation."""
        position = self.values.index.get_indexer(days)
        doy = _day_of_year(days)
        z, sd = np.full(len(days), np.nan), np.full(len(days), np.nan)
        for day in np.unique(doy):
            ref = self.sorted[int(day)]
            at = (doy == day)
            sd[at] = ref.std() if len(ref) else np.nan
            known = at & (position >= 0)
            x = self.values.to_numpy()[position[known]]
            below = np.searchsorted(ref, x, side="left")
            ties = np.searchsorted(ref, x, side="right") - below
            u = (below + self.spread[position[known]] * (ties + 1)) / (len(ref) + 1)
            z[known] = _normal_quantile(u)
        return z, sd

    def value(self, days: pd.DatetimeIndex, latent: np.ndarray) -> np.ndarray:
        out = np.full(len(days), np.nan)
        doy = _day_of_year(days)
        u = _normal_cdf(latent)
        for day in np.unique(doy):
            ref = self.sorted[int(day)]
            at = (doy == day) & np.isfinite(u)
            if len(ref):
                out[at] = ref[np.clip((u[at] * len(ref)).astype(int), 0, len(ref) - 1)]
        return out


def _day_of_year(days: pd.DatetimeIndex) -> np.ndarray:
    return np.minimum(pd.DatetimeIndex(days).day_of_year.to_numpy(), 365)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _normal_quantile(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(u)


@dataclass(frozen=True)
class WeatherArrays:
    """A series' weather by day position over its history and horizon (as ``Prepared``):
    ``observed[v]`` (NaN after the cutoff), ``forecast[v]`` (rows: issue day, columns: lead
    1..max_lead) and whether the cutoff's own vintage exists (``use_forecast``)."""

    observed: Mapping[str, np.ndarray]
    forecast: Mapping[str, np.ndarray]
    use_forecast: bool


@dataclass(frozen=True)
class WeatherFeatures:
    """Which weather regressors a direct model adds. ``anchor_cold_horizons``: the cold index of
    the cutoff day itself (weather persists a day or two) for h up to this; 0: none."""

    max_lead: int = MAX_LEAD
    anchor_cold_horizons: int = 0

    def spec(self) -> dict[str, Any]:
        return {"max_lead": self.max_lead, "anchor_cold_horizons": self.anchor_cold_horizons}

    def arrays(self, history: pd.DataFrame, n_observed: int, horizon: int) -> WeatherArrays:
        """The arrays for ``history`` (its first ``n_observed`` rows are the series' days, up to
        the cutoff) and ``horizon`` days after it."""
        total = n_observed + horizon
        observed = {}
        for variable in VARIABLES:
            column = observed_column(variable)
            values = np.full(total, np.nan)
            if column in history.columns:
                values[:n_observed] = history[column].to_numpy(np.float64)[:n_observed]
            observed[variable] = values
        forecast = {}
        for variable in FORECAST_VARIABLES:
            grid = np.full((total, self.max_lead), np.nan)
            for lead in range(1, self.max_lead + 1):
                column = forecast_column(variable, lead)
                if column in history.columns:
                    grid[:n_observed, lead - 1] = history[column].to_numpy(np.float64)[:n_observed]
            forecast[variable] = grid
        use = n_observed > 0 and bool(np.isfinite(forecast["tmax_f"][n_observed - 1]).any())
        return WeatherArrays(observed=observed, forecast=forecast, use_forecast=use)

    def columns(self, weather: WeatherArrays, anchors: np.ndarray, h: int) -> list[np.ndarray]:
        """The regressors of rows (``anchors``, ``h``): the target day's cold, heat, snowfall and
        precipitation (from the anchor's vintage, else the observed day, else none) when the fit
        uses forecasts, and the anchor's own cold index for the first horizons."""
        out: list[np.ndarray] = []
        if weather.use_forecast and h <= self.max_lead:
            target = anchors + h
            tmax = _target_value(weather, "tmax_f", anchors, target, h)
            snow = _target_value(weather, "snow_in", anchors, target, h)
            prcp = _target_value(weather, "prcp_in", anchors, target, h)
            out += [
                np.nan_to_num(np.maximum(0.0, COLD_F - tmax) / 10.0),
                np.nan_to_num(np.maximum(0.0, tmax - HOT_F) / 10.0),
                np.nan_to_num(snow),
                np.nan_to_num(np.minimum(prcp, PRCP_CAP_IN)),
            ]
        if self.anchor_cold_horizons:
            cold = np.nan_to_num(np.maximum(0.0, COLD_F - weather.observed["tmax_f"][anchors]) / 10.0)
            out.append(cold if h <= self.anchor_cold_horizons else np.zeros(len(anchors)))
        return out

    def n_columns(self, weather: WeatherArrays, h: int) -> int:
        """How many regressors :meth:`columns` returns for horizon ``h``."""
        return (4 if weather.use_forecast and h <= self.max_lead else 0) + (1 if self.anchor_cold_horizons else 0)


def _target_value(weather: WeatherArrays, variable: str, anchors: np.ndarray, target: np.ndarray, h: int) -> np.ndarray:
    issued = weather.forecast[variable][anchors, h - 1]
    return np.where(np.isfinite(issued), issued, weather.observed[variable][target])


def weather_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if is_weather_column(c)]


def join_weather(history: pd.DataFrame, frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``history`` with the weather frames' columns joined on its days (NaN where they have none)."""
    out = history
    for frame in frames:
        if len(frame.columns):
            out = out.join(frame.reindex(history.index), how="left")
    return out
