"""Threshold calibration on control sections, IgG calling and per-section summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd


def calibrate_threshold(control_ring_igg, percentile: float = 99.0) -> float:
    """Return the ring-IgG threshold: a high percentile of control-IgG rings.

    Parameters
    ----------
    control_ring_igg : array_like
        ``ring_igg`` values of neurons in control-IgG sections (border neurons
        usually excluded); NaNs are ignored.
    percentile : float
        Percentile (0-100) of the control values taken as threshold.

    Returns
    -------
    float
        The threshold.

    Raises
    ------
    ValueError
        If there is no finite control value or the percentile is out of range.

    Examples
    --------
    >>> calibrate_threshold([1.0, 1.1, 0.9, 1.05], percentile=50)
    1.025
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    v = np.asarray(control_ring_igg, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("no control ring_igg values to calibrate the threshold on")
    return float(np.percentile(v, percentile))


def call_igg(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Call each neuron IgG-positive when its ``ring_igg`` is above ``threshold``.

    Parameters
    ----------
    table : pandas.DataFrame
        Table with a ``ring_igg`` column.
    threshold : float
        Threshold on ``ring_igg`` (see :func:`calibrate_threshold`).

    Returns
    -------
    pandas.DataFrame
        A copy with a boolean ``igg_positive`` column (NaN ring_igg -> False).
    """
    if "ring_igg" not in table:
        raise KeyError("table has no 'ring_igg' column")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    out = table.copy()
    out["igg_positive"] = (out["ring_igg"].to_numpy(dtype=float) > threshold).astype(bool)
    return out


def summarize_section(table: pd.DataFrame, exclude_border: bool = True) -> dict:
    """Summarise one section's neuron table.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-neuron table (``ring_igg``, ``touches_border`` and, once called,
        ``igg_positive``).
    exclude_border : bool
        Leave out neurons touching the image border.

    Returns
    -------
    dict
        ``n_neurons, n_igg_positive, pct_igg_positive, median_ring_igg`` (NaN where
        undefined; ``n_igg_positive`` is NaN if the table was not called).
    """
    t = table
    if exclude_border and "touches_border" in t:
        t = t[~t["touches_border"].astype(bool)]
    n = int(len(t))
    if "igg_positive" in t:
        npos = int(t["igg_positive"].astype(bool).sum())
        pct = 100.0 * npos / n if n else float("nan")
    else:
        npos, pct = float("nan"), float("nan")
    r = t["ring_igg"].to_numpy(dtype=float) if "ring_igg" in t else np.zeros(0)
    r = r[np.isfinite(r)]
    return {"n_neurons": n, "n_igg_positive": npos, "pct_igg_positive": pct,
            "median_ring_igg": float(np.median(r)) if r.size else float("nan")}
