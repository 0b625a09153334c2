"""Threshold calibration on control sections, IgG calling and per-section summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._booleans import parse_bool

#: fewer control rings or sections than these: the calibration is flagged
MIN_CONTROL_RINGS = 100
MIN_CONTROL_SECTIONS = 2
#: more than this fraction of control rings above the unbound population: "bimodal"
BIMODAL_FRACTION = 0.10
#: the bootstrap resamples control sections (not only rings) from this many on
MIN_SECTIONS_BOOTSTRAP = 3


def _norm():
    """Return ``scipy.stats.norm``, imported on first use (``scipy.stats`` costs ~1 s to import)."""
    from scipy.stats import norm

    return norm


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


@dataclass
class Calibration:
    """The IgG-positive threshold and how it was obtained.

    Attributes
    ----------
    threshold : float
        Threshold on ``ring_igg``.
    method : str
        ``"robust"`` or ``"percentile"``.
    false_positive_rate : float
        Stated false-positive rate on unbound rings (robust) or ``1 - percentile/100``.
    estimated_fpr : float
        False-positive rate of the threshold on unbound rings as seen in the controls:
        the fraction of control rings above it, less the estimated bound share.
    fraction_above : float
        Fraction of control rings above the threshold.
    bound_fraction : float
        Estimated fraction of control rings above the unbound population (truly bound
        by control IgG, or artefacts).
    location, scale : float
        Robust centre and spread of ``log(ring_igg)`` of unbound control rings (NaN
        for the percentile method).
    n_rings, n_sections : int
        Control rings and sections used.
    bootstrap : ndarray
        Thresholds recomputed on bootstrap resamples of the control sections (and
        their rings): the threshold's own uncertainty.
    warnings : list of str
        Too few controls, bimodal controls.
    """

    threshold: float
    method: str
    false_positive_rate: float
    estimated_fpr: float
    fraction_above: float
    bound_fraction: float
    location: float
    scale: float
    n_rings: int
    n_sections: int
    bootstrap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready summary (for ``run.json``)."""
        b = self.bootstrap
        return {"method": self.method, "threshold": self.threshold,
                "false_positive_rate": self.false_positive_rate,
                "estimated_fpr": self.estimated_fpr, "fraction_above": self.fraction_above,
                "bound_fraction": self.bound_fraction,
                "location_log": self.location, "scale_log": self.scale,
                "n_control_rings": self.n_rings, "n_control_sections": self.n_sections,
                "threshold_ci95": ([float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))]
                                   if b.size else None),
                "warnings": list(self.warnings)}


def _mode(v: np.ndarray) -> float:
    """Mode of a Gaussian kernel density estimate (Silverman bandwidth)."""
    if v.size < 3:
        return float(np.median(v))
    q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    spread = min(float(np.std(v)), float(q75 - q25) / 1.349)
    if not spread > 0:
        return float(q50)
    bw = 0.9 * spread * v.size ** -0.2
    grid = np.linspace(v.min(), v.max(), 512)
    dens = np.zeros(grid.size)
    for chunk in np.array_split(v, max(1, v.size // 2000)):
        dens += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bw) ** 2).sum(axis=1)
    return float(grid[int(np.argmax(dens))])


def unbound_population(log_values, *, iterations: int = 10, clip: float = 2.5
                       ) -> tuple[float, float, float]:
    """Robust centre and spread of the unbound (negative) population of log ring IgG.

    A normal fit by iterative clipping: starting from the mode (the dominant, unbound
    population) and the MAD around it, values
    more than ``clip`` spreads from the centre are set aside (bound rings above;
    objects without a sheath, such as mis-segmented tissue, below) and centre and
    spread are re-estimated from the rest (the spread corrected for the clipping).
    The share of values above ``centre + clip * spread`` beyond the normal tail is
    the bound fraction.

    Parameters
    ----------
    log_values : array_like
        ``log(ring_igg)`` of control rings (finite).
    iterations : int
        Clipping rounds (stops early when stable).
    clip : float
        Clipping distance in spreads.

    Returns
    -------
    centre, spread, bound_fraction : float
    """
    v = np.asarray(log_values, float).ravel()
    if v.size == 0:
        raise ValueError("no control values")
    mu = _mode(v)
    sd = float(np.median(np.abs(v - mu)) / _norm().ppf(0.75))
    if not sd > 0:
        sd = float(np.std(v)) or 1e-6
    # variance of a normal truncated to +-clip, relative to the untruncated one
    shrink = float(np.sqrt(1 - 2 * clip * _norm().pdf(clip) / (2 * _norm().cdf(clip) - 1)))
    for _ in range(max(1, iterations)):
        keep = np.abs(v - mu) <= clip * sd
        if keep.sum() < 3:
            break
        mu_new = float(np.mean(v[keep]))
        sd_new = float(np.std(v[keep]) / shrink) or sd
        done = abs(mu_new - mu) < 1e-6 * (1 + abs(mu)) and abs(sd_new - sd) < 1e-6 * sd
        mu, sd = mu_new, sd_new
        if done:
            break
    above = float(np.mean(v > mu + clip * sd))
    tail = float(_norm().sf(clip))
    pi = float(np.clip((above - tail) / (1 - tail), 0.0, 1.0))
    return mu, sd, pi


def _robust_threshold(v: np.ndarray, fpr: float) -> tuple[float, float, float, float]:
    logv = np.log(np.clip(v, 1e-6, None))
    mu, sd, pi = unbound_population(logv)
    return float(np.exp(mu + _norm().isf(fpr) * sd)), mu, sd, pi


def calibrate(
    control_ring_igg,
    *,
    sections=None,
    method: str = "robust",
    false_positive_rate: float = 0.01,
    percentile: float = 99.0,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> Calibration:
    """Calibrate the IgG-positive threshold on control-IgG rings.

    ``"robust"`` (default): the unbound population of control rings is estimated
    robustly on the log scale (:func:`unbound_population`; a few percent of control
    rings truly bound by control IgG, or objects without a sheath, do not move it)
    and the threshold is set at its ``1 - false_positive_rate`` normal quantile:
    ``exp(centre + z * spread)``.
    ``"percentile"``: the ``percentile`` of the control values
    (:func:`calibrate_threshold`), which bound control rings pull up.

    Parameters
    ----------
    control_ring_igg : array_like
        ``ring_igg`` of control rings (border neurons usually excluded); NaNs ignored.
    sections : array_like, optional
        Section (image) of each value: the bootstrap resamples sections (from three
        on), then rings within each.
    method : {"robust", "percentile"}
        Calibration method.
    false_positive_rate : float
        Stated false-positive rate on unbound rings (robust method), in (0, 0.5).
    percentile : float
        Percentile of the percentile method.
    n_bootstrap : int
        Bootstrap resamples for the threshold's uncertainty (0: none).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    Calibration
        Threshold, the stated and estimated false-positive rates, the controls used,
        bootstrap thresholds and warnings.

    Raises
    ------
    ValueError
        No finite control value, unknown method or a rate out of range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> unbound = np.exp(rng.normal(0.3, 0.2, 2000))
    >>> cal = calibrate(unbound, n_bootstrap=0)
    >>> round(cal.threshold, 1)  # exp(0.3 + 2.326 * 0.2)
    2.1
    """
    if method not in ("robust", "percentile"):
        raise ValueError(f"calibration method must be 'robust' or 'percentile', got {method!r}")
    if not 0 < false_positive_rate < 0.5:
        raise ValueError(f"false_positive_rate must be in (0, 0.5), got {false_positive_rate}")
    v = np.asarray(control_ring_igg, dtype=float).ravel()
    sec = (np.zeros(v.size, int) if sections is None
           else pd.factorize(np.asarray(sections, dtype=object).ravel())[0])
    if sec.size != v.size:
        raise ValueError("sections must have one entry per control value")
    ok = np.isfinite(v)
    v, sec = v[ok], sec[ok]
    if v.size == 0:
        raise ValueError("no control ring_igg values to calibrate the threshold on")
    n_sec = int(np.unique(sec).size)

    def fit(x: np.ndarray) -> tuple[float, float, float, float]:
        if method == "robust":
            return _robust_threshold(x, false_positive_rate)
        return calibrate_threshold(x, percentile), np.nan, np.nan, np.nan

    thr, mu, sd, pi = fit(v)
    if method == "robust":
        fpr = float(false_positive_rate)
    else:
        fpr = 1 - percentile / 100.0
        pi = unbound_population(np.log(np.clip(v, 1e-6, None)))[2]
    above = float(np.mean(v > thr))
    # control rings above the threshold, less those of the bound share
    est = float(np.clip((above - pi) / (1 - pi), 0.0, 1.0))
    boot = np.zeros(0)
    if n_bootstrap > 0 and v.size > 1:
        rng = np.random.default_rng(seed)
        groups = [v[sec == k] for k in np.unique(sec)]
        out = []
        for _ in range(int(n_bootstrap)):
            # sections are resampled only when there are enough of them to say how
            # much sections differ; with one or two, rings within each section
            pick = (rng.integers(0, len(groups), len(groups))
                    if len(groups) >= MIN_SECTIONS_BOOTSTRAP else range(len(groups)))
            x = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in
                                (groups[i] for i in pick)])
            out.append(fit(x)[0])
        boot = np.asarray(out, float)
    warn = []
    if v.size < MIN_CONTROL_RINGS or n_sec < MIN_CONTROL_SECTIONS:
        warn.append(f"few controls: {v.size} control rings in {n_sec} section(s) (want >= "
                    f"{MIN_CONTROL_RINGS} rings and >= {MIN_CONTROL_SECTIONS} sections); the "
                    "threshold is uncertain")
    if pi > BIMODAL_FRACTION:
        warn.append(f"control rings look bimodal: about {100 * pi:.0f} % lie above the unbound "
                    "population (check the control sections and their staining)")
    return Calibration(threshold=float(thr), method=method, false_positive_rate=fpr,
                       estimated_fpr=est, fraction_above=above, bound_fraction=float(pi),
                       location=float(mu), scale=float(sd), n_rings=int(v.size), n_sections=n_sec,
                       bootstrap=boot, warnings=warn)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (as fractions; NaN if n == 0).

    Examples
    --------
    >>> lo, hi = wilson_interval(5, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.022, 0.112)
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = float(_norm().isf((1 - confidence) / 2))
    ph = k / n
    den = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / den
    h = z * np.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k <= 0 else max(0.0, c - h)
    hi = 1.0 if k >= n else min(1.0, c + h)
    return float(lo), float(hi)


def percent_interval(ring_igg, threshold: float, bootstrap=(), confidence: float = 0.95
                     ) -> tuple[float, float]:
    """Confidence interval (in %) of a section's % IgG-positive.

    The Wilson interval of the calls, widened by the threshold's uncertainty: the
    spread of the % called at the bootstrap thresholds is added in quadrature on
    each side.

    Parameters
    ----------
    ring_igg : array_like
        The section's ``ring_igg`` (neurons summarised; NaN are left out, as
        :func:`call_igg` leaves them uncalled; all NaN: NaN, nothing was measured).
    threshold : float
        The threshold used.
    bootstrap : array_like
        Bootstrap thresholds (:attr:`Calibration.bootstrap`); empty: Wilson only.
    confidence : float
        Confidence level.

    Returns
    -------
    low, high : float
        Interval bounds in percent (NaN for an empty section).
    """
    r = np.asarray(ring_igg, float)
    r = r[np.isfinite(r)]
    n = r.size
    if n == 0:  # nothing measured: no interval
        return float("nan"), float("nan")
    pct = 100.0 * float(np.mean(r > threshold))
    lo, hi = (100.0 * x for x in wilson_interval(int(np.sum(r > threshold)), n, confidence))
    b = np.asarray(bootstrap, float)
    if b.size:
        pb = 100.0 * np.mean(r[None, :] > b[:, None], axis=1)
        a = (1 - confidence) / 2
        blo, bhi = np.percentile(pb, [100 * a, 100 * (1 - a)])
        lo = pct - np.hypot(pct - lo, max(pct - blo, 0.0))
        hi = pct + np.hypot(hi - pct, max(bhi - pct, 0.0))
    return float(max(0.0, lo)), float(min(100.0, hi))


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
        A copy with a nullable ``boolean`` ``igg_positive`` column: NA where
        ``ring_igg`` is NaN (a ring that could not be measured is no evidence of
        IgG-negative, so it is left uncalled and out of the % IgG+ denominator).
    """
    if "ring_igg" not in table:
        raise KeyError("table has no 'ring_igg' column")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    out = table.copy()
    r = out["ring_igg"].to_numpy(dtype=float)
    call = pd.array(r > threshold, dtype="boolean")
    call[~np.isfinite(r)] = pd.NA
    out["igg_positive"] = call
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
        ``n_neurons, n_called, n_igg_positive, pct_igg_positive, median_ring_igg``
        (NaN where undefined). ``n_called`` counts the neurons with a call (blank
        calls, from rings whose IgG could not be measured, are left out), and
        ``pct_igg_positive`` is ``100 * n_igg_positive / n_called``. ``n_called`` and
        ``n_igg_positive`` are NaN if the table was not called, and when no neuron's
        ring IgG could be measured: a blank or constant IgG channel is no evidence of
        0 % positive.
    """
    t = table
    if exclude_border and "touches_border" in t:
        t = t[~t["touches_border"].astype(bool)]
    n = int(len(t))
    r = t["ring_igg"].to_numpy(dtype=float) if "ring_igg" in t else np.zeros(0)
    r = r[np.isfinite(r)]
    if "igg_positive" in t and (r.size or not n):
        called = parse_bool(t["igg_positive"], nullable=True)
        ncall = int(called.notna().sum())
        npos = int(called.fillna(False).sum())
        pct = 100.0 * npos / ncall if ncall else float("nan")
    else:
        ncall, npos, pct = float("nan"), float("nan"), float("nan")
    return {"n_neurons": n, "n_called": ncall, "n_igg_positive": npos,
            "pct_igg_positive": pct,
            "median_ring_igg": float(np.median(r)) if r.size else float("nan")}
