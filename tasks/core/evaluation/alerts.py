"""Alerts on the metrics table: a model whose MAPE over a window is above a threshold.

Pure: the metrics frame in (:mod:`tasks.core.evaluation.scoring`), alerts out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from schemas.metrics import ALL_HORIZONS
from tasks.core.evaluation.scoring import DEFAULT_ALERT_WINDOW, metrics_at

DEFAULT_MAPE_THRESHOLD = 15.0


@dataclass(frozen=True)
class MapeAlert:
    """A model whose MAPE over a window exceeded the alert threshold."""

    unique_id: str
    model: str
    window: str
    eval_date: pd.Timestamp
    h: int
    mape: float
    threshold: float

    @property
    def message(self) -> str:
        horizons = "all horizons" if self.h == ALL_HORIZONS else f"h={self.h}"
        return (
            f"{self.unique_id}/{self.model}: MAPE {self.mape:.1f}% over {self.window} ({horizons}) "
            f"exceeds {self.threshold:g}%"
        )

    def as_record(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields, for a Prefect artifact or a log line."""
        return {
            "unique_id": self.unique_id,
            "model": self.model,
            "window": self.window,
            "eval_date": self.eval_date.date().isoformat(),
            "h": self.h,
            "mape": self.mape,
            "threshold": self.threshold,
            "message": self.message,
        }


def mape_alerts(
    metrics: pd.DataFrame,
    threshold: float = DEFAULT_MAPE_THRESHOLD,
    window: str = DEFAULT_ALERT_WINDOW,
    h: int = ALL_HORIZONS,
    eval_date: pd.Timestamp | str | None = None,
) -> list[MapeAlert]:
    """Models whose MAPE over ``window`` (pooled horizons by default) is above ``threshold`` %.

    A model without a MAPE (nothing scored yet) raises no alert: the report shows its pending count.
    """
    rows = metrics_at(metrics, window, eval_date)
    over = rows[(rows["h"] == h) & (rows["mape"] > threshold)].sort_values(["unique_id", "model"], kind="stable")
    return [
        MapeAlert(
            unique_id=str(row.unique_id),
            model=str(row.model),
            window=window,
            eval_date=pd.Timestamp(row.eval_date),
            h=int(row.h),
            mape=float(row.mape),
            threshold=float(threshold),
        )
        for row in over.itertuples(index=False)
    ]
