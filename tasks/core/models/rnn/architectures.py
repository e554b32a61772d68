"""The chapter-15 networks, built by name from a :class:`ModelConfig`.

Every model takes windows shaped (batch, seq_length, features) in model units and emits
(batch, targets) for one-step models, (batch, horizon) for vector models and
(batch, output days, horizon) for sequence models. Layers carry fixed names so that two builds
of the same config are identical, whatever was built before in the process.
"""

from __future__ import annotations

from typing import Callable

import keras

from tasks.core.models.rnn.config import ModelConfig
from tasks.core.models.rnn.layers import LayerNormSimpleRNNCell


def _inputs(config: ModelConfig, features: int) -> keras.KerasTensor:
    # A fixed window length (not None) lets XLA compile one static loop, and unrolling is possible.
    return keras.Input(shape=(config.seq_length, features), name="window")


def _linear(config: ModelConfig, features: int, outputs: int) -> keras.Model:
    window = _inputs(config, features)
    flat = keras.layers.Flatten(name="flatten")(window)
    return keras.Model(window, keras.layers.Dense(outputs, name="head")(flat), name=config.architecture)


def _stacked_simple_rnn(config: ModelConfig, features: int, outputs: int, sequences_out: bool) -> keras.Model:
    window = _inputs(config, features)
    hidden = window
    for depth in range(config.layers):
        last = depth == config.layers - 1
        hidden = keras.layers.SimpleRNN(
            config.units, return_sequences=sequences_out or not last, unroll=config.unroll, name=f"simple_rnn_{depth}"
        )(hidden)
    head = keras.layers.Dense(outputs, name="head")(hidden)
    return keras.Model(window, head, name=config.architecture)


def _one_step_rnn(config: ModelConfig, features: int, outputs: int) -> keras.Model:
    return _stacked_simple_rnn(config, features, outputs, sequences_out=False)


def _seq2seq(config: ModelConfig, features: int, outputs: int) -> keras.Model:
    return _stacked_simple_rnn(config, features, outputs, sequences_out=True)


def _recurrent_seq2seq(make_layer: Callable[[ModelConfig], keras.layers.Layer]) -> Callable[..., keras.Model]:
    def build(config: ModelConfig, features: int, outputs: int) -> keras.Model:
        window = _inputs(config, features)
        hidden = make_layer(config)(window)
        return keras.Model(window, keras.layers.Dense(outputs, name="head")(hidden), name=config.architecture)

    return build


def _ln_layer(config: ModelConfig) -> keras.layers.Layer:
    cell = LayerNormSimpleRNNCell(config.units, name="ln_simple_rnn_cell")
    return keras.layers.RNN(cell, return_sequences=True, unroll=config.unroll, name="ln_rnn")


def _lstm_layer(config: ModelConfig) -> keras.layers.Layer:
    return keras.layers.LSTM(config.units, return_sequences=True, unroll=config.unroll, name="lstm")


def _gru_layer(config: ModelConfig) -> keras.layers.Layer:
    return keras.layers.GRU(config.units, return_sequences=True, unroll=config.unroll, name="gru")


def _conv_gru(config: ModelConfig, features: int, outputs: int) -> keras.Model:
    window = _inputs(config, features)
    # A strided convolution halves the sequence the GRU must carry state through (the seed's
    # trick for 112-day windows); outputs then exist for every second day (see output_steps).
    conv = keras.layers.Conv1D(
        config.units, config.conv_kernel, strides=config.conv_stride, activation="relu", name="conv"
    )(window)
    hidden = keras.layers.GRU(config.units, return_sequences=True, unroll=config.unroll, name="gru")(conv)
    return keras.Model(window, keras.layers.Dense(outputs, name="head")(hidden), name=config.architecture)


def _wavenet(config: ModelConfig, features: int, outputs: int) -> keras.Model:
    window = _inputs(config, features)
    hidden = window
    for position, rate in enumerate(config.wavenet_dilations):
        # Causal padding keeps one output per day that sees only that day and earlier ones.
        hidden = keras.layers.Conv1D(
            config.units, 2, padding="causal", dilation_rate=rate, activation="relu", name=f"dilated_conv_{position}"
        )(hidden)
    head = keras.layers.Conv1D(outputs, 1, name="head")(hidden)
    return keras.Model(window, head, name=config.architecture)


_BUILDERS: dict[str, Callable[[ModelConfig, int, int], keras.Model]] = {
    "linear": _linear,
    "simple_rnn": _one_step_rnn,
    "deep_rnn": _one_step_rnn,
    "mulvar_rnn": _one_step_rnn,
    "multitask_rnn": _one_step_rnn,
    "s2v_14": _one_step_rnn,
    "seq2seq": _seq2seq,
    "ln_rnn": _recurrent_seq2seq(_ln_layer),
    "lstm": _recurrent_seq2seq(_lstm_layer),
    "gru": _recurrent_seq2seq(_gru_layer),
    "conv_gru": _conv_gru,
    "wavenet": _wavenet,
}


def build_model(config: ModelConfig, unique_id: str) -> keras.Model:
    """An uncompiled network for ``config`` forecasting ``unique_id``."""
    features = len(config.input_columns(unique_id))
    outputs = len(config.target_columns(unique_id)) if config.spec.outputs == "one_step" else config.horizon
    return _BUILDERS[config.architecture](config, features, outputs)
