"""The RNN family behind the shared :class:`~tasks.core.models.forecaster.Forecaster` protocol.

``RnnForecaster.fit`` trains a challenger at the history's last day (train days, then validation
days ending at that cutoff) and returns an :class:`RnnFitted` carrying the network and its card:
a JSON-able record of what was trained, on which data, how well it validated, and (once decided)
whether it was promoted. ``RnnFitted.from_saved`` rebuilds the same object from a network loaded
from the registry and its card, so the daily forecast runs the champion through the same code.

Intervals: empirical quantiles of the validation residuals (actual - forecast) at each horizon,
added to the point forecast. They assume errors after the cutoff resemble validation errors; the
validation span also chose the early-stopping epoch, so they are mildly optimistic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tasks.core.features.level_shifts import at_current_level
from tasks.core.models.forecaster import DEFAULT_LEVELS, Forecast
from tasks.core.models.rnn.config import IMPROVED_RECIPE, ConfigBundle, DataSplit, ModelConfig, TrainingConfig
from tasks.core.models.rnn.evaluation import Evaluation, TrainedNetwork, evaluate_network, forecast_paths
from tasks.core.models.rnn.promotion import should_promote
from tasks.core.models.rnn.training import TrainingOutcome, fit_network
from tasks.core.models.rnn.windows import Scaler, data_fingerprint, slice_days, supervised_windows

# 2: the config records its calendar inputs and the card lists the input columns. A schema-1 card
# (next-day type only) still loads: its config's defaults are the inputs it was trained on.
CARD_SCHEMA = 2
READABLE_CARD_SCHEMAS = (1, 2)


@dataclass
class RnnFitted:
    """A trained network plus its card; implements :class:`tasks.core.models.forecaster.Fitted`."""

    network: keras.Model
    card: dict[str, Any]
    bundle: ConfigBundle = field(init=False)
    trained: TrainedNetwork = field(init=False)

    def __post_init__(self) -> None:
        self.bundle = ConfigBundle.from_dict(self.card["config"])
        self._check_inputs()
        scaler = Scaler.from_dict(self.card["scaler"])
        self.trained = TrainedNetwork(self.network, self.bundle.model, str(self.card["unique_id"]), scaler)

    def _check_inputs(self) -> None:
        # Features are rebuilt from the config at every forecast: refuse a card whose config would
        # build other inputs than the network was trained on, rather than forecast from them.
        unique_id = str(self.card["unique_id"])
        expected = self.bundle.model.input_columns(unique_id)
        recorded = tuple(self.card.get("inputs", expected))
        takes = self.network.input_shape[-1]
        if recorded != expected or takes != len(expected):
            raise ValueError(
                f"{self.card.get('model')}/{unique_id} {self.card.get('version')}: its config builds inputs "
                f"{list(expected)}, but the card records {list(recorded)} and the network takes {takes} features"
            )

    @classmethod
    def from_saved(cls, network: keras.Model, card: Mapping[str, Any]) -> "RnnFitted":
        """Wrap a network loaded from the registry with the card saved beside it."""
        if card.get("schema") not in READABLE_CARD_SCHEMAS:
            raise ValueError(f"unsupported model card schema {card.get('schema')!r} (readable: {READABLE_CARD_SCHEMAS})")
        return cls(network, dict(card))

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def unique_id(self) -> str:
        return str(self.card["unique_id"])

    @property
    def config(self) -> ModelConfig:
        return self.bundle.model

    def forecast(self, history: pd.DataFrame, horizon: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        """Days cutoff+1..cutoff+horizon, where the cutoff is the last row of ``history``."""
        # Only the last window (plus two weeks for same-day-type look-ups) is read.
        tail = model_history(history, self.config, self.unique_id).iloc[-max(self.config.seq_length, 14) :]
        origin = np.array([len(tail) - 1])
        mean = forecast_paths(self.trained, tail, origin, horizon)[0]
        lower, upper = {}, {}
        for level in levels:
            low_q, high_q = (1 - level / 100) / 2, 1 - (1 - level / 100) / 2
            # Where every validation error at a horizon fell on one side (a biased model), the
            # quantile band misses the point forecast; the contract nests y_hat inside every
            # interval, so the band is widened to reach it (np.fmin/fmax keep NaN = no interval).
            lower[level] = np.where(np.isnan(low := mean + self._residual_quantiles(low_q, horizon)), np.nan, np.fmin(low, mean))
            upper[level] = np.where(np.isnan(high := mean + self._residual_quantiles(high_q, horizon)), np.nan, np.fmax(high, mean))
        return Forecast(mean=mean, lower=lower, upper=upper)

    def evaluate(
        self,
        history: pd.DataFrame,
        start: pd.Timestamp,
        end: pd.Timestamp,
        horizon: int | None = None,
        confine_inputs_to_span: bool = False,
    ) -> Evaluation:
        """Score this model on any validation span (used to re-score a champion on a challenger's)."""
        # Seen from the end of the span, as the challenger it is compared with saw its own.
        seen = model_history(history.loc[:end], self.config, self.unique_id)
        return evaluate_network(self.trained, seen, start, end, horizon or self.config.horizon, confine_inputs_to_span)

    def _residual_quantiles(self, probability: float, horizon: int) -> np.ndarray:
        residuals = self.card["validation"]["residuals_by_h"]
        # A one-step model iterated past the validated horizons has no residuals there, and a
        # diverged network's are inf: no interval either way (the promotion check rejects the latter).
        return np.array(
            [np.quantile(residuals[h], probability) if h < len(residuals) and _all_finite(residuals[h]) else np.nan
             for h in range(horizon)]
        )


def _all_finite(values: Sequence[float]) -> bool:
    return len(values) > 0 and bool(np.isfinite(values).all())


@dataclass(frozen=True)
class RnnForecaster:
    """A named architecture with its configuration; implements :class:`tasks.core.models.forecaster.Forecaster`."""

    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # A warm start: train from another version's weights (version, weights) instead of the seeded
    # initialisation (``warm_started``). Off in production unless RIDERSHIP_RNN_WARM_START is set.
    warm_start: tuple[str, list[np.ndarray]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def named(
        cls, architecture: str, training: TrainingConfig | None = None, **model_overrides: Any
    ) -> "RnnForecaster":
        """The seed's recipe for ``architecture`` (÷1e6, SGD momentum, the book's learning rate)."""
        return cls(ModelConfig.for_architecture(architecture, **model_overrides), training or TrainingConfig())

    @classmethod
    def recommended(
        cls, architecture: str, training: TrainingConfig | None = None, **model_overrides: Any
    ) -> "RnnForecaster":
        """The recipe the benchmark favours: standardised series and Adam(1e-3) (IMPROVED_RECIPE),
        on top of ``training``'s other settings (epochs, patience, spans, seed)."""
        recipe_model, recipe_training = IMPROVED_RECIPE
        return cls(
            ModelConfig.for_architecture(architecture, **{**recipe_model, **model_overrides}),
            dataclasses.replace(training or TrainingConfig(), **recipe_training),
        )

    @property
    def name(self) -> str:
        return self.model.architecture

    def warm_started(self, champion: RnnFitted) -> "RnnForecaster":
        """This forecaster, training from ``champion``'s weights where its network has the same
        shapes and config (otherwise unchanged: a cold start)."""
        if champion.bundle.model != self.model:
            return self
        return dataclasses.replace(self, warm_start=(champion.version, champion.network.get_weights()))

    def fit(self, history: pd.DataFrame, unique_id: str) -> RnnFitted:
        split = DataSplit.ending_at(history.index[-1], self.training.train_days, self.training.validation_days)
        return train_challenger(history, unique_id, ConfigBundle(self.model, self.training), split, self.warm_start)


def train_challenger(
    history: pd.DataFrame, unique_id: str, bundle: ConfigBundle, split: DataSplit,
    warm_start: tuple[str, list[np.ndarray]] | None = None,
) -> RnnFitted:
    """Train on ``split``'s training days, stop early on its validation days, score h=1..H there.
    ``warm_start``: (version, weights) to start from instead of the seeded initialisation."""
    config = bundle.model
    history = model_history(history.loc[: split.validation_end], config, unique_id)
    train_frame = slice_days(history, split.train_start, split.train_end)
    validation_frame = slice_days(history, split.validation_start, split.validation_end)
    scaler = Scaler.for_training(config, train_frame)  # training days only: nothing later leaks in
    train = supervised_windows(train_frame, config, unique_id, scaler)
    # Early stopping watches the seed's validation set: windows wholly inside the validation days.
    validation = supervised_windows(validation_frame, config, unique_id, scaler)
    outcome = fit_network(config, bundle.training, unique_id, train, validation, warm_start[1] if warm_start else None)
    trained = TrainedNetwork(outcome.model, config, unique_id, scaler)
    evaluation = evaluate_network(trained, history, split.validation_start, split.validation_end, config.horizon)
    used = slice_days(history, split.train_start, split.validation_end)
    fingerprint = data_fingerprint(used, config.series_columns(unique_id))
    counts = (len(train[0]), len(validation[0]))
    card = model_card(bundle, unique_id, split, scaler, outcome, evaluation, fingerprint, counts)
    if warm_start is not None:
        card["version"] = model_version(bundle, unique_id, split.cutoff, fingerprint, warm_start[0])
        card["training"]["warm_start_from"] = warm_start[0]
    return RnnFitted(outcome.model, card)


def model_history(history: pd.DataFrame, config: ModelConfig, unique_id: str) -> pd.DataFrame:
    """What the network reads: ``history`` as given, or with ``config.level_shifts`` its series at
    the latest regime's level as seen from its last day (a copy; other columns untouched)."""
    if not config.level_shifts:
        return history
    return at_current_level(history, list(config.series_columns(unique_id)))


def model_version(
    bundle: ConfigBundle, unique_id: str, cutoff: pd.Timestamp, fingerprint: str, warm_start_from: str | None = None
) -> str:
    """Deterministic id: retraining the same config on the same data (from the same starting
    weights: the seed's, or a warm start's version) names the same version."""
    start = f"|warm:{warm_start_from}" if warm_start_from else ""
    digest = hashlib.sha256(f"{bundle.digest()}|{unique_id}|{fingerprint}{start}".encode()).hexdigest()
    return f"{cutoff:%Y%m%d}-{digest[:10]}"


def model_card(
    bundle: ConfigBundle,
    unique_id: str,
    split: DataSplit,
    scaler: Scaler,
    outcome: TrainingOutcome,
    evaluation: Evaluation,
    fingerprint: str,
    window_counts: tuple[int, int],
) -> dict[str, Any]:
    return {
        "schema": CARD_SCHEMA,
        "model": bundle.model.architecture,
        "version": model_version(bundle, unique_id, split.cutoff, fingerprint),
        "unique_id": unique_id,
        "architecture": bundle.model.architecture,
        "config": bundle.as_dict(),
        "inputs": list(bundle.model.input_columns(unique_id)),
        "cutoff": split.cutoff.date().isoformat(),
        "split": split.as_dict(),
        "windows": {"train": window_counts[0], "validation": window_counts[1]},
        "scaler": scaler.as_dict(),
        "validation": {
            **evaluation.as_dict(),
            # Keras' early-stopping figure, in model units (for multitask, averaged over both series).
            "keras_val_mae_units": outcome.best_validation_mae,
            "residuals_by_h": [np.round(r, 1).tolist() for r in evaluation.residuals_by_h],
        },
        "validation_mae": evaluation.mae,
        "validation_mape": evaluation.mape,
        "data_fingerprint": fingerprint,
        "libraries": library_versions(),
        "seed": bundle.training.seed,
        "training": {
            "seconds": round(outcome.seconds, 3),
            "epochs_run": outcome.epochs_run,
            "best_epoch": outcome.best_epoch,
            "seconds_per_epoch": round(outcome.seconds_per_epoch, 4),
            "first_epoch_seconds": round(outcome.first_epoch_seconds, 4),
            "steady_epoch_seconds": round(outcome.steady_epoch_seconds, 4),
        },
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "promotion": None,
    }


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    challenger_mae: float
    champion_version: str | None
    champion_mae_on_same_window: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promote,
            "reason": self.reason,
            "challenger_mae": self.challenger_mae,
            "champion_version": self.champion_version,
            "champion_mae_on_same_window": (
                self.champion_mae_on_same_window
                if self.champion_mae_on_same_window is not None and np.isfinite(self.champion_mae_on_same_window)
                else None
            ),
            "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def decide_promotion(challenger: RnnFitted, champion: RnnFitted | None, history: pd.DataFrame) -> PromotionDecision:
    """Re-score the champion on the challenger's validation window, then apply :func:`should_promote`."""
    champion_mae = None
    if champion is not None:
        split = challenger.card["split"]
        try:
            champion_mae = champion.evaluate(
                history,
                pd.Timestamp(split["validation_start"]),
                pd.Timestamp(split["validation_end"]),
                horizon=challenger.config.horizon,
            ).mae
        except ValueError:  # e.g. its windows are longer than the challenger's validation span
            champion_mae = float("nan")
    promote, reason = should_promote(challenger.card["validation_mae"], champion_mae)
    return PromotionDecision(
        promote, reason, challenger.card["validation_mae"], champion.version if champion else None, champion_mae
    )


def with_promotion(card: Mapping[str, Any], decision: PromotionDecision) -> dict[str, Any]:
    """A copy of ``card`` recording the promotion decision (the registry stores it as given)."""
    return {**card, "promotion": decision.as_dict()}
