"""Agreement between raters or methods: ICC(A,1) and Bland-Altman limits of agreement."""

from __future__ import annotations

import numpy as np

__all__ = ["icc_a1", "bland_altman"]


def icc_a1(ratings: np.ndarray) -> float:
    """Intraclass correlation ICC(A,1): two-way random effects, absolute agreement, single rater.

    McGraw & Wong (1996) case 2A, single measure; identical to Shrout & Fleiss (1979)
    ICC(2,1):

    ``ICC(A,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)``

    with ``MSR`` the between-subjects (rows) mean square, ``MSC`` the between-raters
    (columns) mean square and ``MSE`` the residual mean square of the two-way ANOVA
    without replication. Systematic differences between raters lower it (absolute
    agreement), unlike the consistency ICC.

    Parameters
    ----------
    ratings : array_like, shape (n_subjects, k_raters)
        One row per subject (e.g. section), one column per rater or method (e.g.
        manual count, automated count). No missing values.

    Returns
    -------
    float
        ICC(A,1); NaN when undefined (all ratings equal).

    Examples
    --------
    Shrout & Fleiss (1979), Table 2 (6 targets, 4 judges): ICC(2,1) = 0.29.

    >>> y = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
    ...      [6, 2, 4, 7]]
    >>> round(icc_a1(y), 2)
    0.29
    """
    y = np.asarray(ratings, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError("ratings must be 2-D with at least 2 subjects and 2 raters")
    if not np.all(np.isfinite(y)):
        raise ValueError("ratings must be finite (no missing values)")
    n, k = y.shape
    grand = y.mean()
    rows = y.mean(axis=1)
    cols = y.mean(axis=0)
    msr = k * np.sum((rows - grand) ** 2) / (n - 1)
    msc = n * np.sum((cols - grand) ** 2) / (k - 1)
    resid = y - rows[:, None] - cols[None, :] + grand
    mse = np.sum(resid**2) / ((n - 1) * (k - 1))
    den = msr + (k - 1) * mse + k * (msc - mse) / n
    if den == 0:
        return float("nan")
    return float((msr - mse) / den)


def bland_altman(a: np.ndarray, b: np.ndarray, *, z: float = 1.96) -> dict:
    """Bland-Altman bias and 95 % limits of agreement between two methods.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Paired measurements of the same subjects (e.g. automated and manual IENFD).
    z : float
        Normal quantile of the limits (1.96 for 95 %).

    Returns
    -------
    dict
        ``n``; ``bias`` (mean of ``a - b``); ``sd`` (standard deviation of the
        differences, ddof 1); ``lower`` and ``upper`` (``bias -/+ z * sd``);
        ``mean_abs_diff``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("a and b must be 1-D arrays of the same length")
    d = a - b
    n = int(d.size)
    bias = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    return {"n": n, "bias": bias, "sd": sd, "lower": bias - z * sd, "upper": bias + z * sd,
            "mean_abs_diff": float(np.abs(d).mean()) if n else float("nan")}
