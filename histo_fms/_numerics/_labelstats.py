"""Per-label minimum and maximum in one compiled pass (scipy's ``ndimage.minimum``)."""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _extrema(values: np.ndarray, labels: np.ndarray, n: int, lo: np.ndarray, hi: np.ndarray,
             seen: np.ndarray) -> None:
    for i in range(labels.size):
        k = labels[i]
        if k < 1 or k > n:
            continue
        v = values[i]
        if not seen[k]:
            seen[k] = True
            lo[k] = v
            hi[k] = v
        else:
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v


def label_extrema(values: np.ndarray, labels: np.ndarray, n: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of ``values`` over each label ``1..n``.

    ``scipy.ndimage.minimum(values, labels, np.arange(1, n + 1))`` and ``maximum`` (the
    same values: a minimum selects one of the inputs) for labels that are all present
    and values without NaN, in one pass instead of two sorts.

    Parameters
    ----------
    values : ndarray
        Real values (no NaN), shape of ``labels``.
    labels : ndarray of int
        Labels (0 and ids above ``n`` are ignored).
    n : int
        Largest label id.

    Returns
    -------
    lo, hi : ndarray, shape (n,)
        Per-label minimum and maximum of ids ``1..n``, the dtype of ``values`` (0 for an
        id without pixels, as scipy gives).
    """
    v = np.ascontiguousarray(values).ravel()
    lab = np.ascontiguousarray(labels).ravel()
    if v.shape != lab.shape:
        raise ValueError(f"values shape {np.shape(values)} differs from {np.shape(labels)}")
    n = int(n)
    lo = np.zeros(n + 1, v.dtype)
    hi = np.zeros(n + 1, v.dtype)
    if n > 0 and v.size:
        _extrema(v, lab, n, lo, hi, np.zeros(n + 1, np.bool_))
    return lo[1:], hi[1:]
