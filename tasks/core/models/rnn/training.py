"""Seeded, fast training of one network on numpy windows (the seed's recipe, Keras 3 levers).

Speed levers measured in NOTES-keras3.md: windows built once in numpy and fed through
``from_tensor_slices``; ``jit_compile=True`` (XLA is off by default on CPU-only TF);
``steps_per_execution`` covering the epoch so one graph call runs it; one op thread
(:func:`limit_threads`, a process-wide choice left to the caller). Unrolling the 56-step loop
was measured not to pay with XLA (same seconds per epoch, 3-5x longer compilation), so
``ModelConfig.unroll`` stays off by default.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tasks.core.models.rnn.architectures import build_model
from tasks.core.models.rnn.config import ModelConfig, TrainingConfig
from tasks.core.models.rnn.promotion import TrainingDiverged

SHUFFLE_BUFFER_BATCHES = 8  # the seed's local shuffle buffer: 8 batches


def limit_threads(intra_op: int = 1, inter_op: int = 1) -> bool:
    """Run TensorFlow ops on few threads: faster for these tiny networks and fair to neighbours.

    TensorFlow accepts this only before its runtime starts; returns False (and changes nothing)
    when it is too late in this process.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        return False
    return True


def training_dataset(inputs: np.ndarray, targets: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled batches with the seed's order: one seeded permutation, then a seeded local reshuffle
    every epoch (what ``timeseries_dataset_from_array(shuffle=True, seed=...)`` does), so the fast
    pipeline visits windows in exactly the notebook's order."""
    order = np.arange(len(inputs))
    np.random.RandomState(seed).shuffle(order)
    dataset = tf.data.Dataset.from_tensor_slices((inputs[order], targets[order]))
    dataset = dataset.shuffle(SHUFFLE_BUFFER_BATCHES * batch_size, seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def whole_batch_dataset(inputs: np.ndarray, targets: np.ndarray) -> tf.data.Dataset:
    # Validation MAE is a mean over windows whatever the batching: one batch is one cheap step.
    return tf.data.Dataset.from_tensors((inputs, targets))


def make_optimizer(model: ModelConfig, training: TrainingConfig) -> keras.optimizers.Optimizer:
    rate = training.learning_rate_for(model)
    if training.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    return keras.optimizers.SGD(learning_rate=rate, momentum=training.momentum)


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch: the first one also pays tracing and XLA compilation."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


@dataclass(frozen=True)
class TrainingOutcome:
    """A trained network (best validation weights restored) and how training went."""

    model: keras.Model
    epochs_run: int
    best_epoch: int  # 1-based
    best_validation_mae: float  # in model units, as Keras measured it (early-stopping criterion)
    seconds: float
    first_epoch_seconds: float  # includes tracing and compilation
    steady_epoch_seconds: float  # mean of the later epochs

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs_run, 1)


def fit_network(
    model_config: ModelConfig,
    training: TrainingConfig,
    unique_id: str,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    initial_weights: list[np.ndarray] | None = None,
) -> TrainingOutcome:
    """Train from a fixed seed: the same data and configs give bitwise the same weights on one CPU.
    ``initial_weights`` (a warm start, e.g. the champion's): start from them instead of the
    seeded initialisation; weights of other shapes raise ``ValueError``."""
    keras.utils.set_random_seed(training.seed)  # Python, numpy and TF seeds: initial weights too
    train_inputs, train_targets = train
    steps_per_epoch = math.ceil(len(train_inputs) / training.batch_size)
    network = build_model(model_config, unique_id)
    if initial_weights is not None:
        network.set_weights(initial_weights)
    network.compile(
        loss=keras.losses.Huber(),
        optimizer=make_optimizer(model_config, training),
        metrics=["mae"],
        jit_compile=training.jit_compile,
        steps_per_execution=training.steps_per_execution or steps_per_epoch,
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_mae", patience=training.patience, restore_best_weights=True
    )
    clock = EpochClock()
    started = time.perf_counter()
    history = network.fit(
        training_dataset(train_inputs, train_targets, training.batch_size, training.seed),
        validation_data=whole_batch_dataset(*validation),
        epochs=training.max_epochs,
        # TerminateOnNaN: a diverged run stops at once instead of burning its remaining epochs.
        callbacks=[stopper, clock, keras.callbacks.TerminateOnNaN()],
        shuffle=False,  # the dataset shuffles; Keras would ignore (and warn about) shuffle=True
        verbose=0,
    )
    seconds = time.perf_counter() - started
    losses = history.history["loss"]
    if not np.isfinite(losses).all():
        # restore_best_weights may have put back finite weights, but from a run that blew up:
        # the caller records the failure rather than keeping such a network.
        raise TrainingDiverged(f"training loss became non-finite at epoch {int(np.argmin(np.isfinite(losses))) + 1}")
    val_mae = history.history["val_mae"]
    best = int(np.argmin(val_mae))
    later = clock.seconds[1:] or clock.seconds
    return TrainingOutcome(
        network, len(val_mae), best + 1, float(val_mae[best]), seconds, clock.seconds[0], float(np.mean(later))
    )
