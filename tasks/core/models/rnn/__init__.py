"""Keras RNN forecasters for daily ridership (Hands-On ML ch. 15), as a pure core.

No Prefect, no storage, no file access: the registry in :mod:`storage.registry` saves and loads
the networks this package trains. Names are resolved lazily (PEP 562), so importing the
TensorFlow-free parts (``config``, ``windows``) or this package does not import TensorFlow;
the first use of a Keras-backed name does.

Typical use (what the Prefect tasks wire together)::

    forecaster = RnnForecaster.recommended("multitask_rnn")   # or .named(...) for the seed's recipe
    challenger = forecaster.fit(history, "rail")            # trains at history's last day
    decision = decide_promotion(challenger, champion, history)
    fitted = RnnFitted.from_saved(network, card)             # champion from the registry
    forecast = fitted.forecast(history, horizon=14)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHITECTURES": "config",
    "IMPROVED_RECIPE": "config",
    "ConfigBundle": "config",
    "DataSplit": "config",
    "ModelConfig": "config",
    "TrainingConfig": "config",
    "build_model": "architectures",
    "Evaluation": "evaluation",
    "evaluate_network": "evaluation",
    "forecast_paths": "evaluation",
    "should_promote": "promotion",
    "TrainingDiverged": "promotion",
    "untrustworthy": "promotion",
    "PromotionDecision": "forecaster",
    "RnnFitted": "forecaster",
    "RnnForecaster": "forecaster",
    "decide_promotion": "forecaster",
    "model_version": "forecaster",
    "train_challenger": "forecaster",
    "with_promotion": "forecaster",
    "LayerNormSimpleRNNCell": "layers",
    "limit_threads": "training",
    "Challenger": "challengers",
    "TrainingJob": "challengers",
    "train_checked": "challengers",
    "train_many": "challengers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
