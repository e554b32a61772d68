"""Model families by name: the one place that maps a ``model`` value to its forecaster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from schemas.errors import InvalidInput
from tasks.core.models.forecaster import SERIES, Forecaster

STATISTICAL_MODELS = ("naive", "sarima", "sarimax", "sarimax_log", "ridge")
GLOBAL_MODELS = ("global_ridge",)
"""Fitted once per cutoff across every station of a run (``tasks/core/models/global_ridge.py``);
fitted like the statistical models, never part of the totals' production set."""
RNN_MODELS = (
    "linear", "simple_rnn", "deep_rnn", "mulvar_rnn", "multitask_rnn", "s2v_14", "seq2seq",
    "ln_rnn", "lstm", "gru", "conv_gru", "wavenet",
)  # fmt: skip
WEATHER_MODELS = ("ridge_weather", "ridge_weather_obs", "ridge_weather_sim", "ridge_weather_oracle")
"""``ridge`` with weather regressors (``tasks/core/features/weather.py``); the name says which
weather its forecasts may read: ``ridge_weather`` the stored forecast vintages issued by each
cutoff and the weather observed up to it (production); ``_obs`` only the observed weather
(``observed-to-cutoff``, honest in any backtest); ``_sim`` vintages simulated from the observed
weather plus forecast errors of published size (``simulated-forecast``); ``_oracle`` the observed
weather of the target days (``oracle``: an upper bound, never a model's accuracy)."""
WEATHER_MODES = {
    "ridge_weather": "vintages", "ridge_weather_obs": "observed-to-cutoff",
    "ridge_weather_sim": "simulated-forecast", "ridge_weather_oracle": "oracle",
}  # fmt: skip
EVENT_MODELS = ("ridge",)
"""Models whose station forecasts read the game days (``tasks/core/features/events.py``)."""
COMBINATION_MODELS = ("ensemble",)
"""Models made from other models' stored forecasts (``tasks/core/models/ensemble.py``)."""
ALL_MODELS = STATISTICAL_MODELS + GLOBAL_MODELS + WEATHER_MODELS + RNN_MODELS + COMBINATION_MODELS
MODEL_TRAINING_DAYS: dict[str, int] = {
    "sarimax": 400, "sarimax_log": 400, "ridge": 2557, "global_ridge": 1095, **{m: 2557 for m in WEATHER_MODELS},
}  # fmt: skip
"""Models whose tuned training window differs from the engine's default (182 days)."""

ModelName = Literal[
    "naive", "sarima", "sarimax", "sarimax_log", "ridge", "global_ridge", "ridge_weather", "ridge_weather_obs",
    "ridge_weather_sim", "ridge_weather_oracle", "linear", "simple_rnn", "deep_rnn", "mulvar_rnn", "multitask_rnn", "s2v_14",
    "seq2seq", "ln_rnn", "lstm", "gru", "conv_gru", "wavenet", "ensemble",
]  # fmt: skip
SeriesName = str  # an id (bus, rail, route:9, station:40380) or a pattern (route:*); checked against the store


@dataclass(frozen=True)
class SarimaOptions:
    order: tuple[int, int, int] = (1, 0, 0)
    seasonal_order: tuple[int, int, int, int] = (0, 1, 1, 7)
    concentrate_scale: bool = False


def default_training_days(model: str) -> int:
    """The rolling window (days before and including the cutoff) a statistical model was tuned on."""
    from tasks.core.walk_forward import DEFAULT_TRAINING_DAYS

    return MODEL_TRAINING_DAYS.get(model, DEFAULT_TRAINING_DAYS)


def is_rnn(model: str) -> bool:
    return model in RNN_MODELS


def is_combination(model: str) -> bool:
    return model in COMBINATION_MODELS


MODEL_FAMILIES = ("statistical", "rnn", "combination", "reconciled", "other")


def model_family(model: str) -> str:
    """The family a model name belongs to (one of :data:`MODEL_FAMILIES`; ``other`` if unknown)."""
    from tasks.core.models.reconcile import is_reconciled

    if is_reconciled(model):
        return "reconciled"
    if model in STATISTICAL_MODELS or model in GLOBAL_MODELS or model in WEATHER_MODELS:
        return "statistical"
    return "rnn" if is_rnn(model) else "combination" if is_combination(model) else "other"


def statistical_forecaster(model: str, sarima: SarimaOptions = SarimaOptions()) -> Forecaster:
    from tasks.core.features.direct import DirectFeatures
    from tasks.core.features.events import EventFeatures
    from tasks.core.features.weather import WeatherFeatures
    from tasks.core.models.global_ridge import GlobalRidgeForecaster
    from tasks.core.models.naive import SeasonalNaiveForecaster
    from tasks.core.models.ridge import RidgeForecaster
    from tasks.core.models.sarima import SarimaForecaster
    from tasks.core.models.sarimax import SarimaxForecaster

    if model == "naive":
        return SeasonalNaiveForecaster()
    if model == "sarima":
        return SarimaForecaster(
            order=sarima.order, seasonal_order=sarima.seasonal_order, concentrate_scale=sarima.concentrate_scale
        )
    if model == "sarimax":
        return SarimaxForecaster()
    if model == "sarimax_log":
        # Worse alone than the level scale (backtest), but its errors are the ones ridge (also on
        # logs) does not make: as ridge's ensemble partner it gave the best h=1 of every model.
        return SarimaxForecaster(log=True, name="sarimax_log")
    if model == "ridge":
        return RidgeForecaster(features=DirectFeatures(events=EventFeatures()))
    if model == "global_ridge":
        return GlobalRidgeForecaster()
    if model in WEATHER_MODELS:
        return RidgeForecaster(features=DirectFeatures(weather=WeatherFeatures()), name=model)
    known = STATISTICAL_MODELS + GLOBAL_MODELS + WEATHER_MODELS
    raise ValueError(f"unknown statistical model {model!r}; known: {', '.join(known)}")


def rnn_forecaster(model: str, training, improved_recipe: bool = False) -> Forecaster:
    """The RNN family ``model`` with ``training`` (a ``TrainingConfig``): the seed's recipe, or
    the benchmark's (standardised series, Adam) with ``improved_recipe``. The retrain task asks
    this function for its forecaster, so tests can put a faulty one in its place."""
    from tasks.core.models.rnn import RnnForecaster

    if not is_rnn(model):
        raise ValueError(f"unknown RNN model {model!r}; known: {', '.join(RNN_MODELS)}")
    make = RnnForecaster.recommended if improved_recipe else RnnForecaster.named
    return make(model, training=training)


def check_models(models: Sequence[str]) -> None:
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise InvalidInput(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(ALL_MODELS)}")


def check_series(series: Sequence[str]) -> None:
    unknown = [s for s in series if s not in SERIES]
    if unknown:
        raise InvalidInput(f"unknown series {', '.join(unknown)}; known: {', '.join(SERIES)}")
