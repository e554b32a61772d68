"""Forecast reconciliation of a one-level hierarchy: a parent that is the sum of its children.

Nodes are ordered ``[parent, child_1, …, child_n]``; base forecasts ``ŷ`` are coherent when
``c · ŷ = 0`` with ``c = [1, -1, …, -1]``. The trace-minimising reconciliation (MinT, Wickramasuriya,
Athanasopoulos & Hyndman 2019) with error covariance ``W`` is usually written
``ỹ = S (Sᵀ W⁻¹ S)⁻¹ Sᵀ W⁻¹ ŷ``; with one constraint it is the same oblique projection as

    ỹ = ŷ − W c (c · ŷ) / (cᵀ W c)

which needs no inverse of ``W`` (a shrunk covariance of 146 nodes from a few dozen error rows is
badly conditioned) and costs O(n) per horizon with a diagonal ``W``. Tests check it against the
textbook form. Methods (:data:`METHODS`):

* ``bottom_up``: the children's base forecasts stand; the parent is their sum.
* ``wls_struct``: ``W = diag(n, 1, …, 1)`` (the number of bottom series under each node): the
  incoherence ``d = ŷ_parent − Σ ŷ_child`` is split half to the parent, ``d / 2n`` to each child.
* ``mint_shrink``: ``W`` = the Schäfer–Strimmer shrinkage of the covariance of the model's own
  matured errors towards its diagonal; ``mint_shrink_cc`` the same towards a constant
  correlation (:func:`shrunk_covariance`). The errors are those of the model's forecasts from
  earlier cutoffs whose targets had been published by the cutoff (``ds ≤ cutoff − publication
  lag``; nothing later, so no leakage) and fall in the last ``lookback_days`` days, all horizons
  pooled: one row per (earlier cutoff, target) where **every** node has an error.
  With fewer than ``min_errors`` such rows (a young station, the first weeks of a backtest) the
  cutoff falls back to ``wls_struct``, and ``model_version`` says so. The same ``W`` serves every
  horizon (a horizon's covariance scaled by a constant gives the same projection).

Intervals: each node's bounds and quantiles move by the same amount as its point forecast (``ỹ − ŷ``), so a
band keeps its base width and stays nested around the reconciled point; the parent's band is not
re-derived from the children's (it would need their joint distribution). Reconciled forecasts are
not clipped at zero: clipping would undo the coherence they exist for.

Pure: numpy and frames in and out; no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from schemas.forecasts import QUANTILE_COLUMNS
from tasks.core.quantiles import shift_distribution

METHODS = ("mint_shrink", "mint_shrink_cc", "wls_struct", "bottom_up")
MINT_TARGETS = {"mint_shrink": "diagonal", "mint_shrink_cc": "constant_correlation"}
"""The MinT methods and the shrinkage target of their covariance."""
SUFFIX = "@reconciled"
BOUNDS = ("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95")
OUTPUT_COLUMNS = ["unique_id", "cutoff", "ds", "h", "model", "y_hat", *BOUNDS, *QUANTILE_COLUMNS, "model_version"]

Method = Literal["mint_shrink", "mint_shrink_cc", "wls_struct", "bottom_up"]
Target = Literal["diagonal", "constant_correlation"]


@dataclass(frozen=True)
class ReconcileSpec:
    method: Method = "mint_shrink"
    lookback_days: int = 56
    min_errors: int = 28

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown reconciliation method {self.method!r}; known: {', '.join(METHODS)}")


def reconciled_name(model: str) -> str:
    return f"{model}{SUFFIX}"


def is_reconciled(model: str) -> bool:
    return model.endswith(SUFFIX)


# -- the maths: matrices in, matrices out ---------------------------------------------------------


def constraint(n_children: int) -> np.ndarray:
    return np.concatenate([[1.0], -np.ones(n_children)])


def project(base: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """MinT with error covariance ``covariance`` (a full matrix, or a vector: its diagonal) for
    base forecasts ``base`` (horizons × nodes, parent first)."""
    c = constraint(base.shape[1] - 1)
    wc = covariance * c if covariance.ndim == 1 else covariance @ c
    spread = float(c @ wc)
    if not spread > 0:
        raise ValueError("the covariance gives the constraint no variance: cannot reconcile")
    return base - np.outer(base @ c, wc) / spread


def bottom_up(base: np.ndarray) -> np.ndarray:
    reconciled = base.copy()
    reconciled[:, 0] = base[:, 1:].sum(axis=1)
    return reconciled


def structural_weights(n_children: int) -> np.ndarray:
    """``wls_struct``'s diagonal: how many bottom series each node adds up."""
    return np.concatenate([[float(n_children)], np.ones(n_children)])


def shrunk_covariance(errors: np.ndarray, target: Target = "diagonal") -> tuple[np.ndarray, float]:
    """Schäfer & Strimmer's (2005) shrinkage of the sample covariance of ``errors`` (rows ×
    nodes), and the intensity λ ∈ [0, 1] it chose: the estimated variance of the sample
    correlations over their squared distance to the target's, off the diagonal. Centred, with
    n − 1, as in the paper and in hierarchicalforecast's ``mint_shrink``.

    ``target``: ``diagonal`` shrinks every correlation towards 0 (the paper's target D; the same
    W as hierarchicalforecast to 1e-9 on a random example, checked once); ``constant_correlation``
    towards their mean r̄ (the paper's target F, on the correlation scale), which keeps the part
    of the stations' errors they share (weather, events): shrunk towards 0, the sum of 145
    children's errors looks far less variable than it is. Its λ leaves out the estimation error of
    r̄ itself, one mean over ~10,000 pairs. Variances are never shrunk; a node with no error
    variance keeps a zero row and column (its forecast is left as it is)."""
    rows = errors.shape[0]
    centred = errors - errors.mean(axis=0)
    covariance = centred.T @ centred / (rows - 1)
    scale = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        standard = np.where(scale > 0, centred / scale, 0.0)
    products = standard.T @ standard  # Σ_k w_kij, w_kij = x_ki x_kj
    correlation = products / (rows - 1)
    variance = rows / (rows - 1) ** 3 * ((standard**2).T @ (standard**2) - products**2 / rows)
    off = ~np.eye(len(scale), dtype=bool)
    towards = float(correlation[off].mean()) if target == "constant_correlation" and off.any() else 0.0
    size = float(((correlation[off] - towards) ** 2).sum())
    intensity = 1.0 if size == 0 else float(np.clip(variance[off].sum() / size, 0.0, 1.0))
    aim = towards * np.outer(scale, scale)
    np.fill_diagonal(aim, np.diag(covariance))
    return intensity * aim + (1.0 - intensity) * covariance, intensity


# -- frames: one model's forecasts of one hierarchy at one cutoff ---------------------------------


@dataclass(frozen=True)
class Outcome:
    """A cutoff's reconciled rows (empty when skipped) and why it was skipped, if it was."""

    rows: pd.DataFrame
    skipped: str | None = None


def matured_errors(
    past: pd.DataFrame, actuals: pd.DataFrame, nodes: Sequence[str], cutoff: pd.Timestamp, known: pd.Timestamp,
    lookback_days: int,
) -> np.ndarray:
    """Errors ``y − ŷ`` (rows × ``nodes``) of ``past`` (one model's contract rows) from cutoffs
    before ``cutoff`` whose targets lie in ``(known − lookback_days, known]``, scored against the
    actuals up to ``known``; only rows where every node has an error."""
    first = known - pd.Timedelta(days=lookback_days)
    rows = past[
        (past["cutoff"] < cutoff) & (past["ds"] > first) & (past["ds"] <= known) & past["unique_id"].isin(nodes)
    ]  # fmt: skip
    scored = rows.merge(actuals[actuals["ds"] <= known], on=["unique_id", "ds"], how="inner")
    if scored.empty:
        return np.empty((0, len(nodes)))
    scored = scored.assign(error=scored["y"].astype(float) - scored["y_hat"])
    table = scored.pivot_table(index=["cutoff", "ds"], columns="unique_id", values="error", aggfunc="first")
    return table.reindex(columns=list(nodes)).dropna().to_numpy(dtype=float)


def covariance_for(spec: ReconcileSpec, errors: np.ndarray, n_children: int) -> tuple[np.ndarray, str]:
    """``W`` for ``spec.method`` and how it was chosen (for ``model_version``)."""
    if spec.method == "wls_struct":
        return structural_weights(n_children), "wls_struct"
    if errors.shape[0] < spec.min_errors:
        reason = f"wls_struct, {spec.method} had {errors.shape[0]} complete error rows < {spec.min_errors}"
        return structural_weights(n_children), reason
    covariance, intensity = shrunk_covariance(errors, MINT_TARGETS[spec.method])
    if not float(constraint(n_children) @ covariance @ constraint(n_children)) > 0:
        return structural_weights(n_children), f"wls_struct, {spec.method} gave the constraint no variance"
    return covariance, f"{spec.method} lambda={intensity:.3f} rows={errors.shape[0]}"


def reconcile_cutoff(
    spec: ReconcileSpec, at_cutoff: pd.DataFrame, past: pd.DataFrame, actuals: pd.DataFrame, parent: str,
    children: Sequence[str], cutoff: pd.Timestamp, publication_lag: int = 0,
) -> Outcome:
    """One model's reconciled rows (``<model>@reconciled``) for ``parent`` and ``children`` at
    ``cutoff``. ``at_cutoff``: the model's contract rows at the cutoff; ``past``: its rows from
    earlier cutoffs (mint_shrink's errors); ``actuals``: long ``unique_id, ds, y``. Skipped, with
    the reason, when the parent or any child has no forecast at the cutoff."""
    cutoff = pd.Timestamp(cutoff)
    nodes = [parent, *children]
    # A series outside the hierarchy, or a child not active at this cutoff, is no node here.
    rows = at_cutoff[(at_cutoff["cutoff"] == cutoff) & at_cutoff["unique_id"].isin(nodes)]
    present = set(rows["unique_id"])
    missing = [n for n in nodes if n not in present]
    if missing or not children:
        return Outcome(_empty(), _skip_reason(parent, missing, len(children)))
    wide = rows.pivot(index="h", columns="unique_id", values="y_hat").reindex(columns=nodes).dropna()
    if wide.empty:
        return Outcome(_empty(), "no horizon is forecast for every node")
    base = wide.to_numpy(dtype=float)
    if spec.method == "bottom_up":
        reconciled, how = bottom_up(base), "bottom_up"
    else:
        errors = np.empty((0, len(nodes)))
        if spec.method in MINT_TARGETS:
            known = cutoff - pd.Timedelta(days=publication_lag)
            errors = matured_errors(past, actuals, nodes, cutoff, known, spec.lookback_days)
        covariance, how = covariance_for(spec, errors, len(children))
        reconciled = project(base, covariance)
    shift = pd.DataFrame(reconciled - base, index=wide.index, columns=nodes)
    return Outcome(_shifted_rows(rows, wide.index, shift, how))


def _skip_reason(parent: str, missing: Sequence[str], n_children: int) -> str:
    if not n_children:
        return f"no active child of {parent}"
    if parent in missing:
        return f"no forecast of the parent {parent}"
    shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
    return f"{len(missing)} of {n_children} active children of {parent} have no forecast ({shown})"


def _shifted_rows(rows: pd.DataFrame, horizons: pd.Index, shift: pd.DataFrame, how: str) -> pd.DataFrame:
    """The base rows moved by ``shift`` (h × node), with the reconciled model's name and version."""
    kept = rows[rows["h"].isin(horizons)].copy()
    move = shift.stack().rename("move")
    move.index.names = ["h", "unique_id"]
    kept = kept.join(move, on=["h", "unique_id"])
    kept = shift_distribution(kept.reindex(columns=[*OUTPUT_COLUMNS, "move"]), kept["move"].to_numpy())  # NaN bounds stay NaN
    model = str(kept["model"].iloc[0])
    digest = hashlib.sha1(
        ";".join(sorted(f"{u}={v}" for u, v in zip(kept["unique_id"], kept["model_version"]))).encode()
    ).hexdigest()[:12]
    nodes = shift.shape[1]
    kept["model_version"] = [f"reconciled[{how}]({model}={v}; {nodes} nodes, bases #{digest})" for v in kept["model_version"]]
    kept["model"] = reconciled_name(model)
    return kept[OUTPUT_COLUMNS].sort_values(["unique_id", "h"]).reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=OUTPUT_COLUMNS)


def reconcile_forecasts(
    spec: ReconcileSpec, stored: pd.DataFrame, actuals: pd.DataFrame, parent: str,
    children_at: dict[pd.Timestamp, list[str]], publication_lag: int = 0,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, str]]:
    """One model's reconciled rows at every cutoff of ``children_at`` (cutoff → the children
    active then) and the reasons of the cutoffs skipped. ``stored``: the model's rows of the
    hierarchy's nodes, from ``lookback_days + horizon`` days before the first cutoff to the last."""
    parts, skipped = [], {}
    for cutoff in sorted(children_at):
        outcome = reconcile_cutoff(
            spec, stored[stored["cutoff"] == cutoff], stored[stored["cutoff"] < cutoff], actuals, parent,
            children_at[cutoff], cutoff, publication_lag,
        )
        if outcome.skipped:
            skipped[cutoff] = outcome.skipped
        elif not outcome.rows.empty:
            parts.append(outcome.rows)
    return (pd.concat(parts, ignore_index=True) if parts else _empty()), skipped
