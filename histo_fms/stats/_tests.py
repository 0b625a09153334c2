"""Group comparisons on per-unit tables: Mann-Whitney U, Kruskal-Wallis, Holm."""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
from scipy import stats as sps

STATS_COLUMNS = ["readout", "unit", "test", "group_a", "group_b", "n_a", "n_b", "statistic",
                 "p", "p_adjusted", "effect_size", "effect_size_name", "estimate",
                 "estimate_name", "ci_low", "ci_high", "note"]
_MAX_PERMUTATIONS = 20_000
#: Fewer units than this in a group: every test says so (and the mixed model gives no p).
MIN_UNITS_PER_GROUP = 3


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    Parameters
    ----------
    pvalues : array_like
        Raw p-values; NaN stays NaN and is not counted.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, (m - i) * p[idx])
        out[idx] = min(1.0, running)
    return out


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta, P(a > b) - P(a < b) (equals the rank-biserial correlation).

    Parameters
    ----------
    a, b : array_like
        The two samples.

    Returns
    -------
    float
        In [-1, 1]; positive when ``a`` tends to be larger.
    """
    a = np.asarray(a, dtype=float)[:, None]
    b = np.asarray(b, dtype=float)[None, :]
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float((np.sign(a - b)).mean())


def hodges_lehmann(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95
                   ) -> tuple[float, float, float]:
    """Hodges-Lehmann shift estimate of ``a - b`` with a distribution-free CI.

    Parameters
    ----------
    a, b : array_like
        The two samples.
    confidence : float
        Confidence level of the interval (Moses' interval from the exact Mann-Whitney
        null distribution while at most 20 000 arrangements, else its normal approximation).

    Returns
    -------
    tuple of float
        ``(estimate, ci_low, ci_high)``; the CI is NaN when the samples are too small
        to reach the level (e.g. 3 vs 3 at 95 %).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan"), float("nan")
    d = np.sort((a[:, None] - b[None, :]).ravel())
    est = float(np.median(d))
    n1, n2 = a.size, b.size
    alpha = 1 - confidence
    if comb(n1 + n2, n1) <= _MAX_PERMUTATIONS:
        # exact: [d[k], d[N-1-k]] covers with probability 1 - 2 P(U <= k) (no ties)
        cdf = np.cumsum(_u_null_counts(n1, n2)) / comb(n1 + n2, n1)
        ok = np.flatnonzero(2 * cdf <= alpha + 1e-12)
        k = int(ok[-1]) if ok.size else -1
    else:
        z = sps.norm.ppf(1 - alpha / 2)
        k = int(np.floor(n1 * n2 / 2 - z * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))) - 1
    if k < 0:
        return est, float("nan"), float("nan")
    return est, float(d[k]), float(d[d.size - 1 - k])


def _u_null_counts(n1: int, n2: int) -> np.ndarray:
    """Count the arrangements giving each U = 0..n1*n2 (no ties), by recursion on sizes."""
    # f[m][n] is the count vector for sizes (m, n): f(m, n) = f(m-1, n) shifted by n + f(m, n-1)
    f = [[np.ones(1, dtype=float) for _ in range(n2 + 1)] for _ in range(n1 + 1)]
    for m in range(1, n1 + 1):
        for n in range(1, n2 + 1):
            out = np.zeros(m * n + 1)
            prev_a = f[m - 1][n]
            out[n: n + prev_a.size] += prev_a
            prev_b = f[m][n - 1]
            out[: prev_b.size] += prev_b
            f[m][n] = out
    return f[n1][n2]


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sided Mann-Whitney U test with effect sizes.

    Exact p-values when both samples are small (< 8) and untied; with ties, an exact
    permutation p over all relabellings while there are at most 20 000 of them; else the
    normal approximation with tie and continuity correction.

    Parameters
    ----------
    a, b : array_like
        Values of the two groups, one per unit.

    Returns
    -------
    dict
        ``statistic`` (U of ``a``), ``p``, ``method``, ``cliffs_delta``, ``hl`` (Hodges-Lehmann
        shift ``a - b``), ``ci_low``, ``ci_high``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        nan = float("nan")
        return {"statistic": nan, "p": nan, "method": "", "cliffs_delta": nan, "hl": nan,
                "ci_low": nan, "ci_high": nan}
    ties = np.unique(np.concatenate([a, b])).size < a.size + b.size
    if not ties and max(a.size, b.size) < 8:
        method, how = "exact", "exact"
    elif comb(a.size + b.size, a.size) <= _MAX_PERMUTATIONS:
        # with ties the U-table is wrong; enumerate every relabelling instead (exact too)
        method, how = "exact permutation", sps.PermutationMethod(n_resamples=_MAX_PERMUTATIONS)
    else:
        method, how = "asymptotic", "asymptotic"
    res = sps.mannwhitneyu(a, b, alternative="two-sided", method=how)
    hl, lo, hi = hodges_lehmann(a, b)
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "method": method,
            "cliffs_delta": cliffs_delta(a, b), "hl": hl, "ci_low": lo, "ci_high": hi}


def _row(**kw: object) -> dict:
    row = dict.fromkeys(STATS_COLUMNS, np.nan)
    row.update({"note": "", "estimate_name": "", "effect_size_name": ""})
    row.update(kw)
    return row


def compare_groups(
    table: pd.DataFrame,
    value: str,
    *,
    group: str = "group",
    readout: str | None = None,
    unit: str | None = None,
    groups: list[str] | None = None,
) -> pd.DataFrame:
    """Compare a per-unit readout between groups, one tidy row per test.

    Two groups: Mann-Whitney U (effect size Cliff's delta = rank-biserial r; estimate
    Hodges-Lehmann shift with 95 % CI). More groups: Kruskal-Wallis (effect size
    epsilon squared) plus pairwise Mann-Whitney U, Holm-adjusted.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per unit (from :func:`aggregate_drg` / :func:`aggregate_skin`).
    value : str
        Column to compare.
    group : str
        Group column.
    readout : str or None
        Name written in the ``readout`` column (default ``value``).
    unit : str or None
        Unit written in the ``unit`` column (default the table's ``unit`` column).
    groups : list of str or None
        Groups in order (default sorted).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STATS_COLUMNS`.
    """
    readout = readout or value
    if unit is None:
        unit = str(table["unit"].iloc[0]) if "unit" in table and len(table) else ""
    t = table[[group, value]].copy()
    t[value] = pd.to_numeric(t[value], errors="coerce")
    t = t[np.isfinite(t[value])]
    if groups is None:
        groups = sorted(t[group].astype(str).unique())
    samples = {g: t.loc[t[group].astype(str) == g, value].to_numpy() for g in groups}
    groups = [g for g in groups if samples[g].size > 0]
    rows = []
    if len(groups) < 2:
        rows.append(_row(readout=readout, unit=unit, test="none",
                         group_a=groups[0] if groups else "", group_b="",
                         n_a=samples[groups[0]].size if groups else 0, n_b=0,
                         note="fewer than two groups with data; no test"))
        return pd.DataFrame(rows, columns=STATS_COLUMNS)
    pairs = [(groups[i], groups[j]) for i in range(len(groups)) for j in range(i + 1, len(groups))]
    if len(groups) > 2:
        h, p = sps.kruskal(*[samples[g] for g in groups])
        n = sum(samples[g].size for g in groups)
        rows.append(_row(readout=readout, unit=unit, test="Kruskal-Wallis",
                         group_a=" vs ".join(groups), group_b="", n_a=n, n_b=np.nan,
                         statistic=float(h), p=float(p), p_adjusted=float(p),
                         effect_size=float(h) / (n - 1) if n > 1 else np.nan,
                         effect_size_name="epsilon_squared",
                         note="n_a is the total number of units; "
                              + ", ".join(f"n_{g}={samples[g].size}" for g in groups)
                              + ("; fewer than 3 units in a group: p is approximate"
                                 if min(samples[g].size for g in groups) < MIN_UNITS_PER_GROUP
                                 else "")))
    mw = [mann_whitney(samples[a], samples[b]) for a, b in pairs]
    padj = holm([m["p"] for m in mw]) if len(pairs) > 1 else [m["p"] for m in mw]
    for (a, b), m, pa in zip(pairs, mw, padj, strict=True):
        notes = [f"{m['method']} p"]
        if len(pairs) > 1:
            notes.append(f"Holm-adjusted over {len(pairs)} pairwise tests")
        if min(samples[a].size, samples[b].size) < MIN_UNITS_PER_GROUP:
            notes.append(f"fewer than {MIN_UNITS_PER_GROUP} units in a group: p cannot be small")
        rows.append(_row(readout=readout, unit=unit, test="Mann-Whitney U", group_a=a, group_b=b,
                         n_a=samples[a].size, n_b=samples[b].size, statistic=m["statistic"],
                         p=m["p"], p_adjusted=float(pa), effect_size=m["cliffs_delta"],
                         effect_size_name="cliffs_delta (= rank-biserial r, a vs b)",
                         estimate=m["hl"], estimate_name="Hodges-Lehmann shift a - b",
                         ci_low=m["ci_low"], ci_high=m["ci_high"], note="; ".join(notes)))
    return pd.DataFrame(rows, columns=STATS_COLUMNS)
