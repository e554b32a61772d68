"""The report's weather section (issue 22): the forecast weather the latest forecasts assumed
per target day, and which of those days a weather-aware model's forecast moved for.

Pure: the vintage and the forecasts in, page blocks out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.evaluation.page import Block, Heading, Paragraph, Table, formatter, row_cells
from tasks.core.features.weather import COLD_F, HOT_F
from tasks.core.models.catalog import WEATHER_MODELS

SNOW_IN = 1.0
RAIN_IN = 0.5


def weather_section(vintage: pd.DataFrame | None, forecasts: pd.DataFrame, cutoff: pd.Timestamp | None) -> list[Block]:
    """``vintage``: the forecast vintage issued at ``cutoff`` (``ds, tmax_f, prcp_in, snow_in``;
    None or empty: none was), the one a weather-aware model's forecast from ``cutoff`` reads.
    Nothing when the run has no weather-aware model and no vintage."""
    if cutoff is None:
        return []
    at = forecasts[forecasts["cutoff"] == cutoff] if len(forecasts) else forecasts
    models = sorted({str(m) for m in at["model"].unique()} & set(WEATHER_MODELS)) if len(at) else []
    if (vintage is None or vintage.empty) and not models:
        return []
    blocks: list[Block] = [Heading(2, "Weather")]
    if vintage is None or vintage.empty:
        blocks.append(Paragraph(
            f"No forecast vintage was issued by cutoff {cutoff:%Y-%m-%d}: {', '.join(models)} used only the weather "
            "observed up to it (observed-to-cutoff), no target-day weather."
        ))  # fmt: skip
        return blocks
    rows = vintage[(vintage["ds"] > cutoff) & (vintage["ds"] <= cutoff + pd.Timedelta(days=14))].sort_values("ds")
    flagged = adjusted_days(rows)
    used = f"{', '.join(models)} read it" if models else "no weather-aware model ran (ridge_weather is opt-in)"
    blocks.append(Paragraph(
        f"Forecast weather at O'Hare from the vintage issued {cutoff:%Y-%m-%d} (the one cutoff {cutoff:%Y-%m-%d} may use; "
        f"{used}). Marked: target days with snowfall ≥ {SNOW_IN:g} in, precipitation ≥ {RAIN_IN:g} in, a high below "
        f"{COLD_F:g} °F or above {HOT_F:g} °F, where a weather-aware forecast moves away from the calendar's."
    ))  # fmt: skip
    table = pd.DataFrame({
        "day": rows["ds"].dt.strftime("%a %Y-%m-%d"), "high": rows["tmax_f"], "precipitation": rows["prcp_in"],
        "snowfall": rows["snow_in"], "adjusted": np.where(flagged, "yes", ""),
    })  # fmt: skip
    columns = [
        ("Target day", "day", str), ("High °F", "high", formatter("{:.0f}")),
        ("Precip. in", "precipitation", formatter("{:.2f}")), ("Snowfall in", "snowfall", formatter("{:.1f}")),
        ("Weather-adjusted", "adjusted", str),
    ]  # fmt: skip
    blocks.append(Table(
        headers=[label for label, _, _ in columns],
        rows=[row_cells(row, columns) for row in table.itertuples(index=False)],
        numeric=[False, True, True, True, False],
    ))  # fmt: skip
    return blocks


def adjusted_days(rows: pd.DataFrame) -> np.ndarray:
    """Target days whose forecast weather sets a weather regressor far from calm (the thresholds
    of :mod:`tasks.core.features.weather`, snowfall and precipitation at a notable amount)."""
    tmax = rows["tmax_f"].to_numpy(np.float64)
    return (
        (rows["snow_in"].to_numpy(np.float64) >= SNOW_IN) | (rows["prcp_in"].to_numpy(np.float64) >= RAIN_IN)
        | (tmax < COLD_F) | (tmax > HOT_F)
    )  # fmt: skip

