"""Settings: read from the environment in this one place, then passed down as plain values.

Every variable is optional; the defaults run the job on this machine with local storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from schemas.errors import InvalidInput
from schemas.series import DERIVED_SERIES
from storage.locks import LockPolicy
from storage.weather_sources import NCEI_DAILY_SUMMARIES, OPEN_METEO_FORECAST
from tasks.core.data.activity import PATTERN_CHARACTERS
from tasks.core.calibration import CALIBRATION_METHODS
from tasks.core.evaluation.alerts import DEFAULT_COVERAGE_THRESHOLD, DEFAULT_COVERAGE_WINDOW_DAYS, DEFAULT_MIN_DAYS
from tasks.core.models.catalog import STATISTICAL_MODELS
from tasks.core.models.reconcile import METHODS as RECONCILIATION_METHODS

PORTAL_CSV_URL = "https://data.cityofchicago.org/api/views/6iiy-9s97/rows.csv?accessType=DOWNLOAD"
OFFLINE_SNAPSHOT_FILE = "CTA_-_Ridership_-_Daily_Boarding_Totals.csv.gz"
STATION_PORTAL_CSV_URL = "https://data.cityofchicago.org/api/views/5neh-572f/rows.csv?accessType=DOWNLOAD"
STATION_SNAPSHOT_FILE = "CTA_-_Ridership_-__L__Station_Entries_-_Daily_totals.csv.gz"
STATION_LOCATIONS_FILE = "CTA_-_System_Information_-_List_of__L__Stops.csv"
WEATHER_SNAPSHOT_FILE = "ohare_weather_daily_1995-2024.csv.gz"
EVENT_SCHEDULE_FILE = "retrosheet_chicago_home_schedule_2012-2021.txt"


def _project_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _bundled(name: str) -> str:
    return str(_project_dir() / "data" / name)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


TASK_RUNNERS = ("default", "dask")
"""Where the statistical fits run: ``default`` in the flow's process (a process pool of
``workers`` for backfills), ``dask`` on a Dask cluster (``flows/scale_out.py``)."""


def _task_runner(env: Mapping[str, str], address: str | None) -> str:
    runner = env.get("RIDERSHIP_TASK_RUNNER", "").strip() or ("dask" if address else "default")
    if runner not in TASK_RUNNERS:
        raise InvalidInput(f"RIDERSHIP_TASK_RUNNER={runner!r}: use one of {', '.join(TASK_RUNNERS)}")
    if address and runner != "dask":
        raise InvalidInput(f"RIDERSHIP_DASK_ADDRESS is set but RIDERSHIP_TASK_RUNNER={runner}: unset one of them")
    return runner


def _hierarchies(value: str) -> tuple[tuple[str, str], ...]:
    """``parent=pattern,…`` → ``((parent, pattern), …)``; a parent must be a derived series id
    (schemas.series.DERIVED_SERIES) and appear once."""
    pairs = []
    for item in _csv(value):
        parent, equals, pattern = (part.strip() for part in item.partition("="))
        if not equals or not pattern or not PATTERN_CHARACTERS.match(pattern):
            raise InvalidInput(f"RIDERSHIP_HIERARCHIES: {item!r} is not parent=pattern (e.g. rail_entries=station:*)")
        if parent not in DERIVED_SERIES:
            raise InvalidInput(f"RIDERSHIP_HIERARCHIES: parent {parent!r} is not a derived series; known: {', '.join(DERIVED_SERIES)}")
        if parent in (p for p, _ in pairs):
            raise InvalidInput(f"RIDERSHIP_HIERARCHIES: parent {parent} is declared twice")
        pairs.append((parent, pattern))
    return tuple(pairs)


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    # A share, not a percentage: "65" would make every model alert every night without this check.
    value = env.get(name, str(default))
    share = float(value)
    if not 0 < share <= 1:
        raise InvalidInput(f"{name}={value!r}: a share in (0, 1], e.g. 0.65")
    return share


def _alert_days(env: Mapping[str, str], name: str, default: int) -> int:
    # Shorter than the days a model needs scored before it may alert, the alert could never fire.
    value = env.get(name, str(default))
    days = int(value)
    if days < DEFAULT_MIN_DAYS:
        raise InvalidInput(f"{name}={value!r}: at least {DEFAULT_MIN_DAYS} days, the days a model needs scored to alert")
    return days


def _at_least_one(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, str(default))
    if not value.strip().isdigit() or int(value) < 1:
        raise InvalidInput(f"{name}={value!r}: a whole number of days, at least 1")
    return int(value)


def _reconciliation(value: str) -> str:
    method = value.strip()
    if method not in RECONCILIATION_METHODS:
        raise InvalidInput(f"RIDERSHIP_RECONCILIATION={method!r}: use one of {', '.join(RECONCILIATION_METHODS)}")
    return method


def _calibration(value: str) -> str:
    method = value.strip()
    if method not in CALIBRATION_METHODS:
        raise InvalidInput(f"RIDERSHIP_CALIBRATION={method!r}: use one of {', '.join(CALIBRATION_METHODS)}")
    return method


@dataclass(frozen=True)
class Settings:
    """The job's configuration. ``Settings.from_env()`` documents each variable."""

    source: str = PORTAL_CSV_URL
    # The route and station files (portal: Bus Routes - Daily Totals by Route, 'L' Station
    # Entries - Daily totals), ingested after the totals when set ("" for none). Planners staff
    # stations, so the stations are on by default; the routes are off.
    route_source: str = ""
    station_source: str = STATION_PORTAL_CSV_URL
    # Seeds an empty store when the source cannot be reached; "" disables the fallback.
    offline_snapshot: str = field(default_factory=lambda: _bundled(OFFLINE_SNAPSHOT_FILE))
    # The same for the station file, when the store holds no station series yet.
    station_offline_snapshot: str = field(default_factory=lambda: _bundled(STATION_SNAPSHOT_FILE))
    # The 'L' stops list whose coordinates place the stations on the report's map; "": no map.
    station_locations: str = field(default_factory=lambda: _bundled(STATION_LOCATIONS_FILE))
    # O'Hare's weather (storage/weather_sources.py): base URLs of the observed days (NCEI) and of
    # the daily forecast (Open-Meteo, non-commercial free tier: see README); "" turns one off.
    weather_observed_source: str = NCEI_DAILY_SUMMARIES
    weather_forecast_source: str = OPEN_METEO_FORECAST
    # The observed history 1995-2024 that seeds an empty weather store; "" for none.
    weather_offline_snapshot: str = field(default_factory=lambda: _bundled(WEATHER_SNAPSHOT_FILE))
    # The ball games at Wrigley Field and the White Sox's park (Retrosheet schedule rows), the
    # stations' game-day regressors in ridge; "" for none.
    event_schedule: str = field(default_factory=lambda: _bundled(EVENT_SCHEDULE_FILE))
    # Each run asks for the last days again (NCEI fills and corrects recent days for a while).
    weather_observed_days: int = 30
    # The totals file grows by one line a day (0.27 MB for 2001-2021); a cap keeps a runaway or
    # hostile download from exhausting memory.
    max_source_bytes: int = 64 * 2**20
    source_timeout_s: float = 120.0
    source_retry_delay_s: float = 10.0  # first retry; then 2x, 4x (three retries)
    storage: str = field(default_factory=lambda: str(_project_dir() / "var" / "storage"))
    # Every series of the store by default: the system totals, the 'L' stations and their sum. A
    # default pattern that matches nothing (no station file ingested) is skipped; a pattern set in
    # RIDERSHIP_SERIES must match.
    series: tuple[str, ...] = ("bus", "rail", "rail_entries", "station:*")
    series_from_env: bool = False
    horizon: int = 14
    # Rolling 182 days, chosen by a backtest (docs/models-and-accuracy.md); an expanding window from
    # RIDERSHIP_SARIMA_TRAIN_START is used when RIDERSHIP_SARIMA_TRAIN_DAYS is set to 0.
    sarima_train_start: str = "2018-01-01"
    sarima_train_days: int | None = 182
    # Backtest (docs/models-and-accuracy.md): both RNNs trail ridge by a third; multitask_rnn trains in a
    # third of seq2seq's time for the same accuracy, so it alone stays the weekly RNN.
    statistical_models: tuple[str, ...] = STATISTICAL_MODELS
    # The production set of every series but the system totals (stations, routes, rail_entries):
    # chosen by the station backtest (docs/models-and-accuracy.md, "Stations").
    many_series_models: tuple[str, ...] = ("naive", "ridge")
    rnn_models: tuple[str, ...] = ("multitask_rnn",)
    rnn_improved_recipe: tuple[str, ...] = ("mulvar_rnn", "multitask_rnn")
    rnn_train_days: int = 1096
    rnn_validation_days: int = 151
    rnn_max_epochs: int = 500
    retrain_weekday: int = 0  # Monday
    # Processes training a batch of RNN challengers side by side (then replayed in walk-forward
    # order: the serial run's registry and forecasts); 0 or 1: one after the other in the flow.
    rnn_parallel: int = 0
    # A process keeps about 30 MB of every network it trains (TensorFlow issue 61791): a run with
    # more retrains than this trains them in worker processes, each replaced after this many.
    rnn_trainings_per_process: int = 20
    # Train each weekly challenger from the weights of the champion as of its cutoff (measured in
    # docs/scale-out.md, "Parallel RNN retrains"; off: from the seeded initialisation). A chain: each
    # training waits for the previous promotion vote, so it cannot go with rnn_parallel.
    rnn_warm_start: bool = False
    ensemble_members: tuple[str, ...] = ("ridge", "sarimax_log")
    ensemble_method: str = "inverse_mae"
    # Bands rescaled from each model's matured errors (tasks/core/calibration.py), chosen on the
    # 2019 and 2021 backtests (docs/models-and-accuracy.md#calibration); the stations are left out
    # because a night would read a year of their per-station files.
    calibration: str = "aci"
    calibration_series: tuple[str, ...] = ("bus", "rail", "rail_entries")
    # A parent is the daily sum of its children (derived at ingest); every model's forecasts of a
    # hierarchy are reconciled into <model>@reconciled (tasks/core/models/reconcile.py).
    hierarchies: tuple[tuple[str, str], ...] = (("rail_entries", "station:*"),)
    # Chosen on two small backtests (docs/hierarchy.md): the parent loses least, the stations nothing.
    reconciliation: str = "mint_shrink_cc"
    # A model alerts when its 80 % band held fewer than this share of the actuals of the last
    # coverage_alert_days days (tasks/core/evaluation/alerts.py; measured in docs/models-and-accuracy.md).
    coverage_alert_threshold: float = DEFAULT_COVERAGE_THRESHOLD
    coverage_alert_days: int = DEFAULT_COVERAGE_WINDOW_DAYS
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    task_runner: str = "default"
    # An existing scheduler ("tcp://host:8786"); None with task_runner "dask": a temporary
    # distributed.LocalCluster of dask_workers processes, one thread each, for the run.
    dask_address: str | None = None
    dask_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Runs sharing a root queue for the short read-merge-write sections (storage/locks.py):
    # a nightly waits out a long scoring of a backfill rather than failing.
    lock_wait_s: float = 1800.0
    lock_lease_s: float = 900.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ``RIDERSHIP_*`` variables.

        RIDERSHIP_SOURCE            raw CSV: URL, local path or fsspec URL (default: Chicago Data Portal)
        RIDERSHIP_ROUTE_SOURCE      the bus-route daily totals file the nightly run also ingests (default: none)
        RIDERSHIP_STATION_SOURCE    the 'L' station entries file the nightly run also ingests (default:
                                    the Chicago Data Portal's export of dataset 5neh-572f; empty: none)
        RIDERSHIP_OFFLINE_SNAPSHOT  file that seeds an empty store when the source cannot be reached
                                    (default: the bundled data/ snapshot; empty: no fallback)
        RIDERSHIP_STATION_OFFLINE_SNAPSHOT  file that seeds the stations when RIDERSHIP_STATION_SOURCE
                                    cannot be reached and the store holds no station series (default:
                                    the bundled data/ station snapshot; empty: no fallback)
        RIDERSHIP_STATION_LOCATIONS the 'L' stops list (portal CSV: MAP_ID, STATION_NAME, Location) that
                                    places stations on the report's map (default: the bundled data/
                                    copy; empty: no map)
        RIDERSHIP_WEATHER_OBSERVED_SOURCE  base URL of NOAA NCEI's Access Data Service, asked for
                                    O'Hare's daily summaries (default: the public service; empty: off)
        RIDERSHIP_WEATHER_FORECAST_SOURCE  base URL of Open-Meteo's forecast API, asked for O'Hare's
                                    16-day daily forecast, stored as the run date's vintage
                                    (default: the free, non-commercial endpoint; empty: off)
        RIDERSHIP_WEATHER_OFFLINE_SNAPSHOT  daily weather file that seeds an empty weather store
                                    (default: the bundled data/ history 1995-2024; empty: none)
        RIDERSHIP_WEATHER_OBSERVED_DAYS  observed days fetched again on every run, at least 1 (default: 30)
        RIDERSHIP_EVENT_SCHEDULE    the published game schedules (Retrosheet YYYYSKED.TXT rows) whose home
                                    games are the stations' game days in ridge (default: the bundled
                                    data/ Cubs and White Sox home schedules 2012-2021; empty: none)
        RIDERSHIP_MAX_SOURCE_MB     a raw file larger than this is rejected unread (default: 64)
        RIDERSHIP_SOURCE_TIMEOUT_S  a download must finish within this many seconds (default: 120)
        RIDERSHIP_SOURCE_RETRY_DELAY_S  first retry delay of a transient failure; doubles, 3 retries (default: 10)
        RIDERSHIP_STORAGE           storage root: local path or fsspec URL (default: ./var/storage)
        RIDERSHIP_SERIES            comma-separated series ids or patterns to forecast (default:
                                    bus,rail,rail_entries,station:*, each default pattern where the
                                    store has it;
                                    e.g. bus,rail,route:*,station:* or *)
        RIDERSHIP_HORIZON           days ahead forecast from each cutoff (default: 14)
        RIDERSHIP_SARIMA_TRAIN_DAYS   SARIMA's rolling window in days (default: 182; 0: expanding)
        RIDERSHIP_SARIMA_TRAIN_START  first date of the expanding window when TRAIN_DAYS is 0 (default: 2018-01-01)
        RIDERSHIP_STATISTICAL_MODELS  the statistical models of the nightly set (default: all five)
        RIDERSHIP_MANY_SERIES_MODELS  the production set for every series but bus and rail (stations,
                                    routes, rail_entries) when a run uses the production sets
                                    (default: naive,ridge)
        RIDERSHIP_RNN_MODELS        production RNN architectures (default: multitask_rnn)
        RIDERSHIP_RNN_IMPROVED_RECIPE  architectures trained with Adam on level-free windows (log riders
                                    minus each window's mean, at the latest regime's level) instead of
                                    the book's ÷1e6 scaling and SGD (default: mulvar_rnn,multitask_rnn)
        RIDERSHIP_RNN_TRAIN_DAYS    days an RNN trains on, before its validation days (default: 1096)
        RIDERSHIP_RNN_VALIDATION_DAYS  days ending at the cutoff for early stopping and promotion (default: 151)
        RIDERSHIP_RNN_MAX_EPOCHS    epoch cap for RNN training (default: 500)
        RIDERSHIP_RETRAIN_WEEKDAY   weekday of the weekly RNN retrain, 0=Monday (default: 0)
        RIDERSHIP_RNN_PARALLEL      worker processes that train the due RNN challengers of a run side
                                    by side, replayed in walk-forward order (default: 0, one after
                                    the other in the flow's process)
        RIDERSHIP_RNN_TRAININGS_PER_PROCESS  a run with more RNN retrains than this (a long backfill)
                                    trains them in worker processes replaced after this many, as
                                    TensorFlow keeps ~30 MB per training in a process (default: 20)
        RIDERSHIP_RNN_WARM_START    1: train each RNN challenger from the champion's weights (default: 0;
                                    not with RIDERSHIP_RNN_PARALLEL > 1)
        RIDERSHIP_ENSEMBLE_MEMBERS  models the ensemble combines (default: see Settings; empty: no ensemble)
        RIDERSHIP_ENSEMBLE_METHOD   mean, median or inverse_mae (default: inverse_mae)
        RIDERSHIP_CALIBRATION       aci (bands rescaled from the model's matured errors of the last
                                    year; the bands as forecast kept as <model>@raw) or none
                                    (default: aci)
        RIDERSHIP_CALIBRATION_SERIES  comma-separated series patterns whose bands are calibrated
                                    (default: bus,rail,rail_entries)
        RIDERSHIP_HIERARCHIES       comma-separated parent=pattern pairs: the parent (a derived series,
                                    schemas.series.DERIVED_SERIES) is the daily sum of the series
                                    matching the pattern, recomputed at every route or station ingest,
                                    and each model's forecasts of parent and children are reconciled
                                    into <model>@reconciled (default: rail_entries=station:*; empty: none)
        RIDERSHIP_RECONCILIATION    how: mint_shrink (MinT, the covariance of the model's matured errors
                                    shrunk towards its diagonal; wls_struct while too few),
                                    mint_shrink_cc (shrunk towards a constant correlation instead),
                                    wls_struct or bottom_up (default: mint_shrink_cc)
        RIDERSHIP_COVERAGE_ALERT    a model alerts when its 80% band held fewer than this share of
                                    the last RIDERSHIP_COVERAGE_ALERT_DAYS days' actuals (default: 0.40)
        RIDERSHIP_COVERAGE_ALERT_DAYS  the days of target dates that alert looks back over, at least 14
                                    (default: 14)
        RIDERSHIP_WORKERS           worker processes for parallel fits (default: CPU count)
        RIDERSHIP_TASK_RUNNER       where the statistical fits run: default (the flow's process and
                                    a process pool of RIDERSHIP_WORKERS) or dask (default: dask
                                    when RIDERSHIP_DASK_ADDRESS is set, else default)
        RIDERSHIP_DASK_ADDRESS      scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786
                                    (default: none; with RIDERSHIP_TASK_RUNNER=dask a temporary
                                    LocalCluster is started for the run)
        RIDERSHIP_DASK_WORKERS      worker processes of that temporary LocalCluster, one thread
                                    each (default: CPU count)
        RIDERSHIP_LOCK_WAIT_S       how long a run waits for another run's storage lease (default: 1800)
        RIDERSHIP_LOCK_LEASE_S      a lease older than this belongs to a dead run and is broken (default: 900)
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        train_days = int(env.get("RIDERSHIP_SARIMA_TRAIN_DAYS", defaults.sarima_train_days))
        dask_address = env.get("RIDERSHIP_DASK_ADDRESS", "").strip() or None
        rnn_parallel = int(env.get("RIDERSHIP_RNN_PARALLEL", defaults.rnn_parallel))
        warm_start = env.get("RIDERSHIP_RNN_WARM_START", "0").strip().lower() in ("1", "true", "yes")
        if warm_start and rnn_parallel > 1:
            raise InvalidInput(
                "RIDERSHIP_RNN_WARM_START and RIDERSHIP_RNN_PARALLEL > 1 exclude each other: a warm-started "
                "retrain starts from the champion the previous retrain's vote chose, so retrains run in order"
            )
        return cls(
            source=env.get("RIDERSHIP_SOURCE", defaults.source),
            route_source=env.get("RIDERSHIP_ROUTE_SOURCE", defaults.route_source),
            station_source=env.get("RIDERSHIP_STATION_SOURCE", defaults.station_source),
            max_source_bytes=int(float(env.get("RIDERSHIP_MAX_SOURCE_MB", defaults.max_source_bytes / 2**20)) * 2**20),
            source_timeout_s=float(env.get("RIDERSHIP_SOURCE_TIMEOUT_S", defaults.source_timeout_s)),
            source_retry_delay_s=float(env.get("RIDERSHIP_SOURCE_RETRY_DELAY_S", defaults.source_retry_delay_s)),
            offline_snapshot=env.get("RIDERSHIP_OFFLINE_SNAPSHOT", defaults.offline_snapshot),
            station_offline_snapshot=env.get("RIDERSHIP_STATION_OFFLINE_SNAPSHOT", defaults.station_offline_snapshot),
            station_locations=env.get("RIDERSHIP_STATION_LOCATIONS", defaults.station_locations),
            weather_observed_source=env.get("RIDERSHIP_WEATHER_OBSERVED_SOURCE", defaults.weather_observed_source).strip(),
            weather_forecast_source=env.get("RIDERSHIP_WEATHER_FORECAST_SOURCE", defaults.weather_forecast_source).strip(),
            weather_offline_snapshot=env.get("RIDERSHIP_WEATHER_OFFLINE_SNAPSHOT", defaults.weather_offline_snapshot),
            weather_observed_days=_at_least_one(env, "RIDERSHIP_WEATHER_OBSERVED_DAYS", defaults.weather_observed_days),
            event_schedule=env.get("RIDERSHIP_EVENT_SCHEDULE", defaults.event_schedule).strip(),
            storage=env.get("RIDERSHIP_STORAGE", defaults.storage),
            series=_csv(env.get("RIDERSHIP_SERIES", ",".join(defaults.series))),
            series_from_env=bool(env.get("RIDERSHIP_SERIES", "").strip()),
            horizon=int(env.get("RIDERSHIP_HORIZON", defaults.horizon)),
            sarima_train_start=env.get("RIDERSHIP_SARIMA_TRAIN_START", defaults.sarima_train_start),
            sarima_train_days=train_days or None,
            statistical_models=_csv(env.get("RIDERSHIP_STATISTICAL_MODELS", ",".join(defaults.statistical_models))),
            many_series_models=_csv(env.get("RIDERSHIP_MANY_SERIES_MODELS", ",".join(defaults.many_series_models))),
            rnn_models=_csv(env.get("RIDERSHIP_RNN_MODELS", ",".join(defaults.rnn_models))),
            rnn_improved_recipe=_csv(env.get("RIDERSHIP_RNN_IMPROVED_RECIPE", ",".join(defaults.rnn_improved_recipe))),
            rnn_train_days=int(env.get("RIDERSHIP_RNN_TRAIN_DAYS", defaults.rnn_train_days)),
            rnn_validation_days=int(env.get("RIDERSHIP_RNN_VALIDATION_DAYS", defaults.rnn_validation_days)),
            rnn_max_epochs=int(env.get("RIDERSHIP_RNN_MAX_EPOCHS", defaults.rnn_max_epochs)),
            retrain_weekday=int(env.get("RIDERSHIP_RETRAIN_WEEKDAY", defaults.retrain_weekday)),
            rnn_parallel=rnn_parallel,
            rnn_trainings_per_process=int(env.get("RIDERSHIP_RNN_TRAININGS_PER_PROCESS", defaults.rnn_trainings_per_process)),
            rnn_warm_start=warm_start,
            ensemble_members=_csv(env.get("RIDERSHIP_ENSEMBLE_MEMBERS", ",".join(defaults.ensemble_members))),
            ensemble_method=env.get("RIDERSHIP_ENSEMBLE_METHOD", defaults.ensemble_method),
            calibration=_calibration(env.get("RIDERSHIP_CALIBRATION", defaults.calibration)),
            calibration_series=_csv(env.get("RIDERSHIP_CALIBRATION_SERIES", ",".join(defaults.calibration_series))),
            hierarchies=_hierarchies(env.get("RIDERSHIP_HIERARCHIES", ",".join(f"{p}={c}" for p, c in defaults.hierarchies))),
            reconciliation=_reconciliation(env.get("RIDERSHIP_RECONCILIATION", defaults.reconciliation)),
            coverage_alert_threshold=_share(env, "RIDERSHIP_COVERAGE_ALERT", defaults.coverage_alert_threshold),
            coverage_alert_days=_alert_days(env, "RIDERSHIP_COVERAGE_ALERT_DAYS", defaults.coverage_alert_days),
            workers=int(env.get("RIDERSHIP_WORKERS", defaults.workers)),
            task_runner=_task_runner(env, dask_address),
            dask_address=dask_address,
            dask_workers=int(env.get("RIDERSHIP_DASK_WORKERS", defaults.dask_workers)),
            lock_wait_s=float(env.get("RIDERSHIP_LOCK_WAIT_S", defaults.lock_wait_s)),
            lock_lease_s=float(env.get("RIDERSHIP_LOCK_LEASE_S", defaults.lock_lease_s)),
        )

    @property
    def extra_sources(self) -> tuple[str, ...]:
        return tuple(s for s in (self.route_source, self.station_source) if s)

    def lock_policy(self) -> LockPolicy:
        return LockPolicy(wait_s=self.lock_wait_s, lease_s=self.lock_lease_s)


# Prefect defaults this job ships with; an explicit environment variable always wins.
PREFECT_DEFAULTS = {
    # Prefect's temporary local server takes 15-25 s to start here; its default 20 s timeout
    # fails under load.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}


def apply_prefect_defaults(environ: dict[str, str] | None = None) -> None:
    """Set the shipped Prefect defaults where the environment does not set them already."""
    env = os.environ if environ is None else environ
    for name, value in PREFECT_DEFAULTS.items():
        env.setdefault(name, value)
