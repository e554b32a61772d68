"""The report's station section, for the planners who staff 'L' stations: accuracy over the
stations, the worst and best stations by name, error by station size, and the station map.

Pure, like :mod:`tasks.core.evaluation.aggregate` (whose scores it reuses, so a station's MAE and
counts are the metrics table's). Terms, for one model over one window, pooled over h=1..H:

* a station's ``level`` — its mean daily entries over the window's target dates (the same for
  every model), its size;
* a station's WAPE — ``100 * sum |y_hat - y| / sum y`` over its scored forecasts;
* size groups — the stations ranked by level (smallest first, ties by id) and cut into
  ``SIZE_GROUPS`` groups of equal count (the last groups one smaller when the count does not
  divide): group ``1 + rank * k // n`` for ranks 0..n-1 and ``k = min(SIZE_GROUPS, n)``; a
  group's WAPE pools every forecast of its stations;
* change vs last year — the h=1 forecast of the latest cutoff against the actual
  ``SAME_WEEKDAY_LAST_YEAR`` days (52 weeks) before its target, the same weekday: ``100 *
  (y_hat / y_last_year - 1)``; none where that actual is missing or 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from schemas.metrics import ALL_HORIZONS
from schemas.series import STATION_PREFIX
from tasks.core.evaluation.aggregate import aggregate_leaderboard, series_scores
from tasks.core.evaluation.page import NOTHING, Block, Heading, Image, Paragraph, Table, formatter, row_cells
from tasks.core.evaluation.plots import Chart, station_map_png
from tasks.core.evaluation.scoring import Window, actuals_long

SIZE_GROUPS = 4
EXTREME_STATIONS = 10
SAME_WEEKDAY_LAST_YEAR = 364
MAP_FILE = "station_map.png"

_percent, _boardings, _ratio, _count = formatter("{:.1f}%"), formatter("{:,.0f}"), formatter("{:.2f}"), formatter("{:,d}")
_signed_percent = formatter("{:+.1f}%")


def is_station(unique_id: str) -> bool:
    return str(unique_id).startswith(STATION_PREFIX)


def station_names(ids: Sequence[str], catalog: pd.DataFrame | None, locations: pd.DataFrame | None) -> dict[str, str]:
    """Each station's name: the store's catalog (the ridership file's latest name), else the
    stops list's station name, else its bare id."""
    names = {unique_id: unique_id.removeprefix(STATION_PREFIX) for unique_id in ids}
    if locations is not None:
        from_stops = dict(zip(STATION_PREFIX + locations["station_id"].astype(str), locations["name"]))
        names.update({k: str(v) for k, v in from_stops.items() if k in names and isinstance(v, str) and v})
    if catalog is not None:
        known = dict(zip(catalog["unique_id"].astype(str), catalog["name"]))
        names.update({k: str(v) for k, v in known.items() if k in names and isinstance(v, str) and v})
    return names


def station_wape(scores: pd.DataFrame, h: int = ALL_HORIZONS) -> pd.DataFrame:
    """One row per model and station at ``h``: ``model, unique_id, wape, mae, level, count``."""
    rows = scores[(scores["h"] == h) & scores["unique_id"].map(is_station)]
    wape = 100.0 * rows["abs_error"] / rows["abs_actual"].where(rows["abs_actual"] > 0)
    out = rows.assign(wape=wape)[["model", "unique_id", "wape", "mae", "level", "count"]]
    return out.reset_index(drop=True)


def size_groups(levels: pd.Series, groups: int = SIZE_GROUPS) -> pd.Series:
    """Each station's size group, 1 (smallest) .. k (module docstring), indexed like ``levels``
    (station id → mean daily entries); stations without a level are left out."""
    known = levels.dropna()
    if known.empty:
        return pd.Series(dtype=np.int64)
    order = pd.DataFrame({"id": known.index.astype(str), "level": known.to_numpy()}, index=known.index)
    order = order.sort_values(["level", "id"], kind="stable")
    n, k = len(order), min(groups, len(order))
    group = 1 + (np.arange(n) * k) // n
    return pd.Series(group.astype(np.int64), index=order.index).reindex(known.index)


def error_by_size(scores: pd.DataFrame, groups: int = SIZE_GROUPS) -> pd.DataFrame:
    """WAPE h=1..H per size group and model: ``group, stations, level_min, level_max`` then one
    column per model (its pooled WAPE over the group's stations it scored)."""
    rows = scores[(scores["h"] == ALL_HORIZONS) & scores["unique_id"].map(is_station)]
    levels = rows.drop_duplicates("unique_id").set_index("unique_id")["level"]
    group_of = size_groups(levels, groups)
    if group_of.empty:
        return pd.DataFrame(columns=["group", "stations", "level_min", "level_max"])
    rows = rows[rows["unique_id"].isin(group_of.index)].assign(group=lambda r: r["unique_id"].map(group_of))
    sums = rows.groupby(["group", "model"])[["abs_error", "abs_actual"]].sum()
    wape = (100.0 * sums["abs_error"] / sums["abs_actual"].where(sums["abs_actual"] > 0)).unstack("model")
    known = levels.loc[group_of.index]
    summary = known.groupby(group_of).agg(stations="size", level_min="min", level_max="max")
    return summary.join(wape).rename_axis("group").reset_index()


def change_vs_last_year(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, cutoff: pd.Timestamp, model: str, h: int = 1
) -> pd.DataFrame:
    """Per station, ``model``'s forecast at ``cutoff`` for ``cutoff + h`` against the same
    weekday a year before: ``unique_id, ds, y_hat, y_last_year, change`` (percent; NaN where
    the actual a year before is missing or 0)."""
    rows = forecasts[
        (forecasts["cutoff"] == cutoff) & (forecasts["h"] == h) & (forecasts["model"].astype(str) == model)
        & forecasts["unique_id"].astype(str).map(is_station)
    ]  # fmt: skip
    out = pd.DataFrame({"unique_id": rows["unique_id"].astype(str).to_numpy(), "ds": rows["ds"].to_numpy(), "y_hat": rows["y_hat"].to_numpy(np.float64)})
    if out.empty:
        return out.assign(y_last_year=pd.Series(dtype=np.float64), change=pd.Series(dtype=np.float64))
    long = actuals_long(actuals, series=sorted(out["unique_id"].unique()))
    before = long.set_index(["unique_id", "ds"])["y"]
    keys = pd.MultiIndex.from_arrays([out["unique_id"], out["ds"] - pd.Timedelta(days=SAME_WEEKDAY_LAST_YEAR)])
    out["y_last_year"] = before.reindex(keys).to_numpy(np.float64)
    out["change"] = 100.0 * (out["y_hat"] / out["y_last_year"].where(out["y_last_year"] > 0) - 1.0)
    return out.sort_values("unique_id").reset_index(drop=True)


def station_section(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    window_rows: pd.DataFrame,
    window: str,
    reference_model: str,
    latest_cutoff: pd.Timestamp | None,
    catalog: pd.DataFrame | None,
    locations: pd.DataFrame | None,
    all_h: str,
) -> tuple[list[Block], list[Chart]]:
    """The station section's blocks and its map; nothing when no station was forecast."""
    ids = sorted({*forecasts["unique_id"].astype(str), *window_rows["unique_id"].astype(str)})
    stations = [s for s in ids if is_station(s)]
    if not stations:
        return [], []
    names = station_names(stations, catalog, locations)
    blocks: list[Block] = [Heading(2, f"Stations ({len(stations)})")]
    scores = _station_scores(forecasts, actuals, window_rows, stations)
    board = _by_wape(aggregate_leaderboard(scores, reference_model)) if not scores.empty else pd.DataFrame()
    if board.empty:
        blocks.append(Paragraph(f"No station forecasts scored in window {window} yet."))
    else:
        scored = scores.loc[scores["h"] == ALL_HORIZONS, "unique_id"].nunique()
        blocks.append(Paragraph(
            f"{scored} of the {len(stations)} stations scored in window {window}. WAPE = total absolute error / "
            "total entries, in percent; 'MAE mean' averages the stations' MAE; 'vs ref' = the volume-weighted "
            f"MAE over the reference's ({reference_model}); a station's size is its mean daily entries over the window."
        ))  # fmt: skip
        blocks += [Heading(3, f"Leaderboard over stations ({all_h})"), _board_table(board, all_h)]
        leader = str(board["model"].iloc[0])
        per_station = station_wape(scores)
        blocks += [
            Heading(3, f"{leader}: worst and best stations by WAPE {all_h}"),
            _extremes_table(per_station[per_station["model"] == leader], names),
            Heading(3, f"Error by station size (WAPE {all_h}, groups of equal count, smallest first)"),
            _size_table(error_by_size(scores), list(board["model"])),
        ]
    map_blocks, charts = _map(forecasts, actuals, scores, board, latest_cutoff, locations, stations, names, all_h)
    return blocks + map_blocks, charts


def _by_wape(board: pd.DataFrame) -> pd.DataFrame:
    """The board ranked for planners: models that scored the most stations first (a model that
    covers only the easy stations must not lead), then by WAPE h=1..H."""
    ranked = board.assign(_fewer=board["series_all"].max() - board["series_all"])
    ranked = ranked.sort_values(["_fewer", "wape_all", "model"], na_position="last", kind="stable")
    return ranked.drop(columns="_fewer").reset_index(drop=True)


def _label(unique_id: str, names: dict[str, str]) -> str:
    """``Name (id)``, or the bare id where no name is known."""
    number = unique_id.removeprefix(STATION_PREFIX)
    name = names.get(unique_id, number)
    return f"{name} ({number})" if name != number else number


def _station_scores(forecasts: pd.DataFrame, actuals: pd.DataFrame, window_rows: pd.DataFrame, stations: list[str]) -> pd.DataFrame:
    if window_rows.empty:
        return pd.DataFrame()
    span = Window("", window_rows["window_start"].iloc[0], window_rows["window_end"].iloc[0])
    mine = forecasts[forecasts["unique_id"].astype(str).isin(stations)]
    return series_scores(mine, actuals, span, exclude=())


def _board_table(board: pd.DataFrame, all_h: str) -> Table:
    columns = [
        ("Stations", "series_all", _count), ("WAPE h=1", "wape_h1", _percent), (f"WAPE {all_h}", "wape_all", _percent),
        (f"MAE {all_h} mean", "mae_mean_all", _boardings), (f"vs ref {all_h}", "rel_mae_all", _ratio),
        ("Scored", "count_all", _count),
    ]  # fmt: skip
    body = [
        [f"{row.model} (reference)" if row.is_reference else str(row.model), *row_cells(row, columns)]
        for row in board.itertuples(index=False)
    ]
    classes = ["reference" if flag else "" for flag in board["is_reference"]]
    return Table(["Model", *(title for title, _, _ in columns)], body, [False, *([True] * len(columns))], classes)


def _extremes_table(per_station: pd.DataFrame, names: dict[str, str], n: int = EXTREME_STATIONS) -> Table:
    rated = per_station[per_station["wape"].notna()]
    worst = rated.sort_values(["wape", "unique_id"], ascending=[False, True], kind="stable").head(n)
    best = rated.sort_values(["wape", "unique_id"], ascending=[True, True], kind="stable").head(n)
    body = []
    for index in range(max(len(worst), len(best))):
        cells = [str(index + 1)]
        for side in (worst, best):
            if index < len(side):
                row = side.iloc[index]
                cells += [_label(row["unique_id"], names), _percent(row["wape"]), _boardings(row["mae"]), _boardings(row["level"])]
            else:
                cells += [NOTHING] * 4
        body.append(cells)
    headers = ["#", *(f"{side} {column}" for side in ("Worst", "Best") for column in ("station", "WAPE", "MAE", "entries/day"))]
    return Table(headers, body, [True, *([False, True, True, True] * 2)])


def _size_table(by_size: pd.DataFrame, models: list[str]) -> Table:
    models = [m for m in models if m in by_size.columns]
    body = [
        [str(int(row["group"])), _count(int(row["stations"])), f"{_boardings(row['level_min'])}–{_boardings(row['level_max'])}",
         *(_percent(row[m]) for m in models)]
        for _, row in by_size.iterrows()
    ]  # fmt: skip
    return Table(["Size group", "Stations", "Entries/day", *models], body, [True, True, True, *([True] * len(models))])


def _map(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, scores: pd.DataFrame, board: pd.DataFrame,
    latest_cutoff: pd.Timestamp | None, locations: pd.DataFrame | None, stations: list[str],
    names: dict[str, str], all_h: str,
) -> tuple[list[Block], list[Chart]]:
    """The map: coloured by the change vs last year where the latest cutoff has forecasts, else
    by each station's recent WAPE."""
    heading = Heading(3, "Station map")
    if locations is None:
        return [heading, Paragraph("No station coordinates were given: no map.")], []
    coords = locations.assign(unique_id=STATION_PREFIX + locations["station_id"].astype(str))
    coords = coords.drop_duplicates("unique_id").set_index("unique_id")
    values, how = _map_values(forecasts, actuals, scores, board, latest_cutoff, all_h)
    placed = [s for s in stations if s in coords.index and pd.notna(coords.at[s, "lat"]) and pd.notna(coords.at[s, "lon"])]
    unplaced = [s for s in stations if s not in placed]
    blocks: list[Block] = [heading]
    charts: list[Chart] = []
    if placed:
        points = pd.DataFrame({
            "lat": coords.loc[placed, "lat"].to_numpy(np.float64), "lon": coords.loc[placed, "lon"].to_numpy(np.float64),
            "value": values.reindex(placed).to_numpy(np.float64),
        })  # fmt: skip
        caption = f"{len(placed)} 'L' stations coloured by {how['label']}"
        png = station_map_png(points, caption, how["colorbar"], diverging=how["diverging"], missing_label=how["missing"])
        charts.append(Chart(MAP_FILE, caption, png))
        blocks.append(Image(MAP_FILE, caption))
    if unplaced:
        listed = ", ".join(_label(s, names) for s in unplaced)
        blocks.append(Paragraph(f"Not on the map, no coordinates in the stops list ({len(unplaced)}): {listed}.", css_class="note"))
    return blocks, charts


def _map_values(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, scores: pd.DataFrame, board: pd.DataFrame,
    latest_cutoff: pd.Timestamp | None, all_h: str,
) -> tuple[pd.Series, dict]:
    """The value per station to colour by, and how to describe it."""
    ranked = list(board["model"]) if not board.empty else []
    if latest_cutoff is not None:
        at_cutoff = forecasts[(forecasts["cutoff"] == latest_cutoff) & forecasts["unique_id"].astype(str).map(is_station)]
        offered = sorted(at_cutoff["model"].astype(str).unique())
        choice = next((m for m in ranked if m in offered), offered[0] if offered else None)
        if choice is not None:
            change = change_vs_last_year(forecasts, actuals, latest_cutoff, choice)
            if change["change"].notna().any():
                target = pd.Timestamp(change["ds"].iloc[0]).date()
                return change.set_index("unique_id")["change"], {
                    "label": f"{choice}'s forecast for {target} vs the same weekday {SAME_WEEKDAY_LAST_YEAR} days before",
                    "colorbar": "change vs same weekday last year (%)", "diverging": True,
                    "missing": "no forecast or no actual a year before",
                }  # fmt: skip
    if ranked:
        per_station = station_wape(scores)
        leader = per_station[per_station["model"] == ranked[0]].set_index("unique_id")["wape"]
        return leader, {
            "label": f"{ranked[0]}'s recent error (WAPE {all_h})", "colorbar": f"WAPE {all_h} (%)", "diverging": False,
            "missing": "not scored",
        }  # fmt: skip
    return pd.Series(dtype=np.float64), {"label": "position only", "colorbar": "", "diverging": False, "missing": "nothing to show"}
