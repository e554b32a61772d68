"""The report's weather section (issue 22 item 5): the vintage's assumptions per target day and
the days a weather-aware forecast moved for."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.evaluation.page import Heading, Paragraph, Table
from tasks.core.evaluation.weather_section import adjusted_days, weather_section

CUTOFF = pd.Timestamp("2019-04-13")


def vintage() -> pd.DataFrame:
    days = pd.date_range(CUTOFF, periods=16)  # lead 0 (the issue day) .. 15
    frame = pd.DataFrame({"issued": CUTOFF, "ds": days, "tmax_f": 55.0, "prcp_in": 0.0, "snow_in": 0.0})
    frame.loc[frame["ds"] == "2019-04-14", ["tmax_f", "prcp_in", "snow_in"]] = [31.0, 0.9, 5.4]  # the snowstorm
    frame.loc[frame["ds"] == "2019-04-20", "tmax_f"] = 88.0
    return frame


def forecasts(models: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"cutoff": CUTOFF, "model": models, "unique_id": "bus", "ds": CUTOFF + pd.Timedelta(days=1)})


def test_the_vintage_shows_per_target_day_with_the_adjusted_days_marked():
    blocks = weather_section(vintage(), forecasts(["ridge", "ridge_weather"]), CUTOFF)
    assert isinstance(blocks[0], Heading) and blocks[0].text == "Weather"
    assert "ridge_weather read it" in blocks[1].text
    table = next(b for b in blocks if isinstance(b, Table))
    assert len(table.rows) == 14  # leads 1..14 only: not the issue day, not lead 15
    marked = [row[0] for row in table.rows if row[-1] == "yes"]
    assert marked == ["Sun 2019-04-14", "Sat 2019-04-20"]
    snowstorm = table.rows[0]
    assert snowstorm[1:4] == ["31", "0.90", "5.4"]


def test_without_a_vintage_a_weather_aware_model_says_it_used_observed_weather_only():
    (heading, note) = weather_section(None, forecasts(["ridge_weather"]), CUTOFF)
    assert isinstance(note, Paragraph) and "observed-to-cutoff" in note.text and "ridge_weather" in note.text
    assert weather_section(None, forecasts(["ridge"]), CUTOFF) == []  # nothing to say
    assert weather_section(vintage(), forecasts(["ridge"]), None) == []


def test_adjusted_days_follow_the_regressors_thresholds():
    rows = pd.DataFrame({"tmax_f": [19.0, 20.0, 85.0, 86.0, 50.0, 50.0], "prcp_in": [0, 0, 0, 0, 0.5, 0.49], "snow_in": [0, 0, 0, 0, 0, 0.99]})
    np.testing.assert_array_equal(adjusted_days(rows), [True, False, False, True, True, False])
