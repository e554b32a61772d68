"""The seed's layer-normalised SimpleRNN cell, made saveable in Keras 3.

Importing this module registers the cell with Keras' serialisation, which ``load_model`` (safe
mode included) needs before it can rebuild an ``ln_rnn`` model from a ``.keras`` file.
"""

from __future__ import annotations

from typing import Any

import keras

SERIALIZATION_PACKAGE = "ridership_forecast"


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class LayerNormSimpleRNNCell(keras.layers.Layer):
    """SimpleRNN cell whose pre-activation is layer-normalised (Hands-On ML, ch. 15).

    Normalising across units at each step keeps activations in tanh's useful range over long
    sequences, without batch statistics that a recurrent step cannot share.
    """

    def __init__(self, units: int, activation: str = "tanh", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units
        self.activation_name = activation
        self.activation = keras.activations.get(activation)
        # The inner cell has no activation: normalisation comes before the non-linearity.
        self.simple_rnn_cell = keras.layers.SimpleRNNCell(units, activation=None, name="simple_rnn_cell")
        self.layer_norm = keras.layers.LayerNormalization(name="layer_norm")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        # Explicit build: Keras 3 only restores weights of sublayers that exist and are built
        # when the saved file is loaded ("layer_normalization was never built" otherwise).
        self.simple_rnn_cell.build(input_shape)
        self.layer_norm.build((input_shape[0], self.units))
        super().build(input_shape)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        outputs, _ = self.simple_rnn_cell(inputs, states, training=training)
        normalised = self.activation(self.layer_norm(outputs))
        return normalised, [normalised]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": self.activation_name}
