"""Typed configuration of the RNN family: what each architecture reads and predicts, and how it trains.

Kept free of TensorFlow so that flows and cards can build, hash and print configurations without
paying for ``import tensorflow`` (~620 MB, seconds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import pandas as pd

from tasks.core.features.calendar_flags import calendar_features

InputKind = Literal["univariate", "multivariate"]
# one_step: predicts day t+1 (iterated for longer horizons); vector: t+1..t+H from the last step;
# sequence: t'+1..t'+H at every time step t' of the window (seq2seq training, the last step serves).
OutputKind = Literal["one_step", "vector", "sequence"]

# What a multivariate model reads from the calendar at each input day:
# next_day_type: the seed's one-hot day type of the following day. Cards written before calendar
#   inputs existed have no "calendar" key and mean this, so it must stay the dataclass default.
# target_days: the day type one-hot and every calendar_features flag of each day the output at
#   that step forecasts: the next day (one-step models, again at each iteration) or the next H days
#   (vector and sequence models). Dates only, so days after the cutoff are known without data.
CalendarInputs = Literal["next_day_type", "target_days"]

SERIES_COLUMNS = ("bus", "rail")
#: Order of the day-type one-hot, as the seed's ``pd.get_dummies`` produced it.
NEXT_DAY_TYPES = ("A", "U", "W")


RNN_CALENDAR_FLAGS = ("holiday_off_sunday", "day_after_thanksgiving", "christmas_to_new_year")
"""The flags the production RNNs were measured with (walk-forward 2019-03..05: multitask_rnn rail
31,307 → 27,958 mean MAE h1..14). ``calendar_features`` has more (the statistical models use
them); a flag reaches the RNNs only once a walk-forward supports adding it here."""


def current_calendar_flags() -> tuple[str, ...]:
    """The flags a new RNN config reads: :data:`RNN_CALENDAR_FLAGS`, as ``calendar_features``
    still provides them (a removed flag fails loudly at the next training)."""
    provided = set(calendar_features(pd.DatetimeIndex(["2000-01-03"])).columns)
    return tuple(f for f in RNN_CALENDAR_FLAGS if f in provided)


@dataclass(frozen=True)
class ArchitectureSpec:
    """What an architecture consumes and emits, plus the seed's learning rate for it."""

    inputs: InputKind
    outputs: OutputKind
    learning_rate: float
    multitask: bool = False  # predicts bus and rail together (one_step only)
    seq_length: int = 56
    layers: int = 1
    calendar: CalendarInputs = "next_day_type"


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "linear": ArchitectureSpec("univariate", "one_step", 0.02),
    "simple_rnn": ArchitectureSpec("univariate", "one_step", 0.05),
    "deep_rnn": ArchitectureSpec("univariate", "one_step", 0.01, layers=3),
    "mulvar_rnn": ArchitectureSpec("multivariate", "one_step", 0.05),
    # The production pair reads the calendar of its target days (issue 10); the others the seed's.
    "multitask_rnn": ArchitectureSpec("multivariate", "one_step", 0.02, multitask=True, calendar="target_days"),
    "s2v_14": ArchitectureSpec("multivariate", "vector", 0.02),
    "seq2seq": ArchitectureSpec("multivariate", "sequence", 0.1, calendar="target_days"),
    "ln_rnn": ArchitectureSpec("multivariate", "sequence", 0.1),
    "lstm": ArchitectureSpec("multivariate", "sequence", 0.1),
    "gru": ArchitectureSpec("multivariate", "sequence", 0.1),
    # The seed trains the Conv1D+GRU on 112-day windows (the stride-2 convolution halves them).
    "conv_gru": ArchitectureSpec("multivariate", "sequence", 0.1, seq_length=112),
    "wavenet": ArchitectureSpec("multivariate", "sequence", 0.1),
}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of one network. Build with :meth:`for_architecture` to get the seed's defaults."""

    architecture: str
    seq_length: int = 56
    units: int = 32
    horizon: int = 14  # outputs of vector/sequence models; one-step models iterate instead
    layers: int = 1  # stacked recurrent layers (deep_rnn: 3)
    conv_kernel: int = 4  # conv_gru front end
    conv_stride: int = 2
    wavenet_dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    unroll: bool = False
    # "fixed": riders / scale, the seed's 1e6 (values near 0.1-1.5, no statistics to store).
    # "standardize": (riders - mean) / std per series over the training days, stored in the card;
    # with Adam it beat the seed's recipe on every seed tried (see IMPROVED_RECIPE).
    # "window_log": log riders / scale, then each input window minus its own mean per series (the
    # targets minus the same means): the network sees a window's shape, never its level, so a
    # level it was not trained on (March 2020, the 2021 recovery) is not pulled back to the
    # training years' (one-step models only: each iterated step re-centres its own window).
    scaling: Literal["fixed", "standardize", "window_log"] = "fixed"
    scale: float = 1e6
    calendar: CalendarInputs = "next_day_type"
    # Pinned when the config is made (None: every current flag), so a trained model keeps reading
    # the flags it learned even after calendar_features gains new ones.
    calendar_flags: tuple[str, ...] | None = None
    # Train and forecast from the history with every day before a detected level shift moved to
    # the latest regime's level (tasks.core.features.level_shifts.at_current_level, seen from the
    # cutoff): a window that reaches back across March 2020 then shows one level, not a cliff.
    level_shifts: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; known: {sorted(ARCHITECTURES)}")
        if self.scaling not in ("fixed", "standardize", "window_log"):
            raise ValueError(f"unknown scaling {self.scaling!r}: 'fixed', 'standardize' or 'window_log'")
        if self.scaling == "window_log" and self.spec.outputs != "one_step":
            raise ValueError(f"window_log scaling is for one-step models; {self.architecture} is {self.spec.outputs}")
        if self.seq_length < 2 or self.horizon < 1 or self.units < 1:
            raise ValueError("seq_length >= 2, horizon >= 1 and units >= 1 are required")
        if self.architecture == "conv_gru" and (self.seq_length - self.conv_kernel) % self.conv_stride:
            # Otherwise the last convolution output does not end on the window's last day.
            raise ValueError("conv_gru needs (seq_length - conv_kernel) divisible by conv_stride")
        if self.calendar not in ("next_day_type", "target_days"):
            raise ValueError(f"unknown calendar inputs {self.calendar!r}: 'next_day_type' or 'target_days'")
        if self.calendar == "target_days" and self.spec.inputs == "univariate":
            raise ValueError(f"{self.architecture} reads one series only: it takes no calendar inputs")
        flags = self.calendar_flags
        if self.calendar == "next_day_type" and flags:
            raise ValueError("calendar flags need calendar='target_days'")
        if flags is None:
            flags = current_calendar_flags() if self.calendar == "target_days" else ()
        object.__setattr__(self, "calendar_flags", tuple(flags))

    @classmethod
    def for_architecture(cls, architecture: str, **overrides: Any) -> "ModelConfig":
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
        spec = ARCHITECTURES[architecture]
        defaults = {"seq_length": spec.seq_length, "layers": spec.layers, "calendar": spec.calendar}
        return cls(architecture=architecture, **{**defaults, **overrides})

    @property
    def spec(self) -> ArchitectureSpec:
        return ARCHITECTURES[self.architecture]

    def series_columns(self, unique_id: str) -> tuple[str, ...]:
        """Ridership columns the inputs read (the rest of the inputs come from the calendar)."""
        return (unique_id,) if self.spec.inputs == "univariate" else ("bus", "rail")

    @property
    def calendar_lead_days(self) -> int:
        """How many days after each input day its calendar inputs describe."""
        if self.calendar == "next_day_type" or self.spec.outputs == "one_step":
            return 1
        return self.horizon

    def calendar_columns(self) -> tuple[str, ...]:
        """Names of the calendar inputs, in the order the windows hold them."""
        if self.spec.inputs == "univariate":
            return ()
        if self.calendar == "next_day_type":
            return tuple(f"next_day_{code}" for code in NEXT_DAY_TYPES)
        per_day = (*(f"type_{code}" for code in NEXT_DAY_TYPES), *self.calendar_flags)
        return tuple(f"day+{lead}_{name}" for lead in range(1, self.calendar_lead_days + 1) for name in per_day)

    def input_columns(self, unique_id: str) -> tuple[str, ...]:
        return self.series_columns(unique_id) + self.calendar_columns()

    def target_columns(self, unique_id: str) -> tuple[str, ...]:
        return ("bus", "rail") if self.spec.multitask else (unique_id,)

    def output_steps(self) -> slice:
        """Which window days the model's per-step outputs belong to (sequence models only)."""
        if self.architecture == "conv_gru":
            return slice(self.conv_kernel - 1, None, self.conv_stride)
        return slice(None)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the seed's recipe (Huber, SGD momentum 0.9, early stopping on val MAE)."""

    learning_rate: float | None = None  # None: the seed's rate for the architecture
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.9
    max_epochs: int = 500
    patience: int = 50
    batch_size: int = 32
    seed: int = 42
    train_days: int = 1096  # 2016-01-01..2018-12-31 in the seed
    validation_days: int = 151  # 2019-01-01..2019-05-31 in the seed
    jit_compile: bool = True
    steps_per_execution: int | None = None  # None: one call runs a whole epoch

    def learning_rate_for(self, model: ModelConfig) -> float:
        return self.learning_rate if self.learning_rate is not None else model.spec.learning_rate


#: (ModelConfig overrides, TrainingConfig overrides) of the production recipe. Adam(1e-3) over the
#: seed's SGD: mulvar_rnn's next-day MAE 22,177 +/- 160 vs 23,720 +/- 623 over seeds 42/1/2, and the
#: best 14-day MAE with multitask_rnn (bench/bench_rnn.py, with "standardize" scaling). Since
#: 2026-12-05 windows centred on their own log level and the history at the latest regime's
#: level: standardised, multitask_rnn forecast 3-5 times the actuals in spring 2020 and drifted
#: back to the pre-2020 level in 2021 (docs/models-and-accuracy.md, "multitask_rnn and regimes").
IMPROVED_RECIPE: tuple[dict[str, Any], dict[str, Any]] = (
    {"scaling": "window_log", "level_shifts": True},
    {"optimizer": "adam", "learning_rate": 1e-3},
)


@dataclass(frozen=True)
class DataSplit:
    """Inclusive date ranges: training days, then validation days ending at the cutoff."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp

    @classmethod
    def ending_at(cls, cutoff: pd.Timestamp | str, train_days: int, validation_days: int) -> "DataSplit":
        day = pd.Timedelta(days=1)
        validation_end = pd.Timestamp(cutoff).normalize()
        validation_start = validation_end - (validation_days - 1) * day
        train_end = validation_start - day
        return cls(train_end - (train_days - 1) * day, train_end, validation_start, validation_end)

    @classmethod
    def from_dates(cls, train_start: str, train_end: str, validation_start: str, validation_end: str) -> "DataSplit":
        return cls(*(pd.Timestamp(d).normalize() for d in (train_start, train_end, validation_start, validation_end)))

    @property
    def cutoff(self) -> pd.Timestamp:
        return self.validation_end

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name).date().isoformat() for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class ConfigBundle:
    """Everything that determines a trained model besides the data: hashed into its version."""

    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def as_dict(self) -> dict[str, Any]:
        model = dataclasses.asdict(self.model)
        if not model["level_shifts"]:
            # Added later: left out when off, so the configs (and versions) of earlier models hash as before.
            del model["level_shifts"]
        return {"model": model, "training": dataclasses.asdict(self.training)}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "ConfigBundle":
        model = dict(payload["model"])
        model["wavenet_dilations"] = tuple(model.get("wavenet_dilations", ModelConfig.wavenet_dilations))
        # A card without "calendar" predates calendar inputs: the dataclass default (the seed's
        # next-day type, no flags) is what that network was trained on.
        if model.get("calendar_flags") is not None:
            model["calendar_flags"] = tuple(model["calendar_flags"])
        return cls(ModelConfig(**model), TrainingConfig(**payload["training"]))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()
