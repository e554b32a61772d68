"""The champion/challenger rule, as a pure function (no TensorFlow): easy to test and to explain."""

from __future__ import annotations

import math
from typing import Sequence


class TrainingDiverged(ValueError):
    """Training produced a network that cannot be trusted (non-finite loss, MAE or forecast)."""


def untrustworthy(validation_mae: float, forecast: Sequence[float]) -> str | None:
    """Why a freshly trained network must not be saved or promoted, or None if it may be.

    A NaN validation MAE would only lose the promotion vote, yet the version would still be
    stored and could be loaded later; a network that forecasts NaN/inf from its own cutoff
    would poison every forecast it makes. Neither is kept.
    """
    if not math.isfinite(validation_mae):
        return f"validation MAE is not finite ({validation_mae})"
    bad = sum(1 for value in forecast if not math.isfinite(value))
    if bad:
        return f"its forecast at the cutoff has {bad} non-finite value(s)"
    return None


def should_promote(challenger_mae: float, champion_mae_on_same_window: float | None) -> tuple[bool, str]:
    """Promotion rule: the challenger replaces the champion only with a strictly lower validation
    MAE, both measured on the challenger's validation window (a tie keeps the incumbent)."""
    if not math.isfinite(challenger_mae):
        return False, f"challenger validation MAE is not finite ({challenger_mae})"
    if champion_mae_on_same_window is None:
        return True, "no champion yet"
    if not math.isfinite(champion_mae_on_same_window):
        return True, "champion cannot be scored on this validation window"
    if challenger_mae < champion_mae_on_same_window:
        gain = 100 * (1 - challenger_mae / champion_mae_on_same_window)
        champion = champion_mae_on_same_window
        return True, f"MAE {challenger_mae:,.0f} beats champion's {champion:,.0f} ({gain:.1f}% lower)"
    return False, f"MAE {challenger_mae:,.0f} does not beat champion's {champion_mae_on_same_window:,.0f}"
