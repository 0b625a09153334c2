"""Quantiles of float32 values quantised to 11 mantissa bits, by one mergeable histogram.

Image-wide statistics (dark level, median, contrast spread, lipofuscin brightness
thresholds) are linear-interpolation quantiles of **quantised** values, so that one
pass over a section's tiles gives them exactly:

* each float32 value ``v`` is quantised by rounding its mantissa toward zero to its
  top 11 bits (the 12 low bits of its IEEE bit pattern are cleared:
  :func:`quantise`), a relative change below ``2**-11`` (about 0.05 %);
  quantisation is monotone (``a <= b`` implies ``quantise(a) <= quantise(b)``);
* the quantised values fall into ``2**20`` bins, one per quantised value, indexed by
  the top 20 bits of the order-preserving key of
  :func:`float_keys` (:func:`quantised_keys`);
* the quantile ``q`` is numpy's ``"linear"`` quantile of the quantised values, with
  the interpolation between the two order statistics done in float64 by
  :func:`quantile_from_order_stats`.

A histogram of the keys is all the quantiles need, and the histogram of a union of
chunks is the sum of the chunks' histograms; so a tiled computation (one pass, the
per-tile histograms summed) and :func:`quantised_quantiles` on the whole array give
bit-identical numbers. Histograms are kept compact: counts over the range of keys
present (:class:`KeyHistogram`).

The module also holds the primitives these rest on (order-preserving float keys, order
statistics), the exact reference :func:`exact_quantiles` and per-label quantiles
(:func:`label_quantiles`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: low bits of the float32 bit pattern dropped by the quantisation
QUANT_SHIFT = 12
#: number of distinct quantised keys (bins)
N_BINS = 1 << (32 - QUANT_SHIFT)
_MASK = np.uint32((0xFFFFFFFF >> QUANT_SHIFT) << QUANT_SHIFT)
#: elements per chunk when histogramming a large array (bounds the temporaries)
_CHUNK = 1 << 22


def float_keys(values: np.ndarray) -> np.ndarray:
    """Map float32 values to uint32 keys with the same order (radix selection).

    Parameters
    ----------
    values : ndarray of float32
        Values (no NaN).

    Returns
    -------
    ndarray of uint32
        Keys: ``a < b`` if and only if ``key(a) < key(b)`` (``-0.0`` sorts before ``0.0``).
    """
    b = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    # negative: flip every bit; positive: flip the sign bit
    return b ^ ((b.view(np.int32) >> 31).view(np.uint32) | np.uint32(0x80000000))


def keys_to_float(keys: np.ndarray) -> np.ndarray:
    """Invert :func:`float_keys`.

    Parameters
    ----------
    keys : ndarray of uint32
        Keys.

    Returns
    -------
    ndarray of float32
        The values.
    """
    k = np.asarray(keys, np.uint32)
    b = np.where(k & np.uint32(0x80000000), k ^ np.uint32(0x80000000), ~k).astype(np.uint32)
    return b.view(np.float32)


def quantile_ranks(n: int, q: float) -> tuple[int, int, float]:
    """Order statistics and weight of the linear-interpolation quantile ``q`` (0-1).

    Parameters
    ----------
    n : int
        Number of values (> 0).
    q : float
        Quantile in [0, 1].

    Returns
    -------
    lo, hi : int
        0-based ranks of the two order statistics.
    frac : float
        Weight of ``hi``.
    """
    pos = float(q) * (n - 1)
    lo = int(np.floor(pos))
    return lo, min(lo + 1, n - 1), pos - lo


def quantile_from_order_stats(vlo: float, vhi: float, frac: float) -> float:
    """Linear interpolation between two order statistics (in float64).

    Parameters
    ----------
    vlo, vhi : float
        The order statistics.
    frac : float
        Weight of ``vhi``.

    Returns
    -------
    float
        The quantile.
    """
    vlo, vhi = float(vlo), float(vhi)
    if frac == 0 or vlo == vhi:
        return vlo
    return vlo + (vhi - vlo) * float(frac)


def exact_quantiles(values: np.ndarray, qs) -> list[float]:
    """Exact linear-interpolation quantiles of float32 values.

    The definition is that of ``numpy.quantile`` (method ``"linear"``), with the
    interpolation done in float64 by :func:`quantile_from_order_stats`. Applied to
    values quantised by :func:`histo_fms._numerics._quantiles.quantise` it gives the
    histogram-based :func:`~histo_fms._numerics._quantiles.quantised_quantiles` (used by
    the pipelines, mergeable across tiles) bit for bit.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).
    qs : sequence of float
        Quantiles in [0, 1].

    Returns
    -------
    list of float
        One value per quantile (NaN for an empty input).
    """
    v = np.asarray(values, np.float32).ravel()
    if v.size == 0:
        return [float("nan")] * len(qs)
    ranks = sorted({r for q in qs for r in quantile_ranks(v.size, q)[:2]})
    part = np.partition(v, ranks)
    out = []
    for q in qs:
        lo, hi, frac = quantile_ranks(v.size, q)
        out.append(quantile_from_order_stats(part[lo], part[hi], frac))
    return out


def label_quantiles(values: np.ndarray, labels: np.ndarray, q: float, nmax: int | None = None
                    ) -> np.ndarray:
    """Linear-interpolation quantile of ``values`` within each label.

    One sort of 64-bit keys (label, order-preserving float key) for all labels, a few
    times faster than :func:`scipy.ndimage.median` or a lexsort.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).
    labels : ndarray of int
        Labels of the same shape (0 = ignored).
    q : float
        Quantile in [0, 1] (0.5 = median).
    nmax : int, optional
        Largest label (default ``labels.max()``).

    Returns
    -------
    ndarray of float64, shape (nmax + 1,)
        The quantile of each label (NaN for labels without pixels and for 0).
    """
    lab = np.asarray(labels).ravel()
    nmax = int(lab.max()) if nmax is None and lab.size else int(nmax or 0)
    out = np.full(nmax + 1, np.nan)
    sel = np.flatnonzero(lab > 0)
    if sel.size == 0:
        return out
    lv = lab[sel]
    cnt = np.bincount(lv, minlength=nmax + 1)
    # keys built and sorted in place (8 bytes per selected pixel, not ~40)
    keys = lv.astype(np.uint64)
    del lv
    keys <<= np.uint64(32)
    keys |= float_keys(np.asarray(values).ravel()[sel])
    del sel
    keys.sort()
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    has = np.flatnonzero(cnt)
    has = has[has > 0]
    pos = start[has] + float(q) * (cnt[has] - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, start[has] + cnt[has] - 1)

    def value(i: np.ndarray) -> np.ndarray:  # only the order statistics used
        return keys_to_float((keys[i] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
                             ).astype(np.float64)

    vlo = value(lo)
    out[has] = vlo + (value(hi) - vlo) * (pos - lo)
    return out


class KeyHistogram(NamedTuple):
    """Counts of quantised keys ``offset, offset + 1, ...`` (a compact 2**20-bin histogram).

    Attributes
    ----------
    offset : int
        Key of ``counts[0]``.
    counts : ndarray of int64
        Number of values per key (empty for no values).
    """

    offset: int
    counts: np.ndarray


def quantise(values: np.ndarray) -> np.ndarray:
    """Round float32 values toward zero to 11 mantissa bits.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).

    Returns
    -------
    ndarray of float32
        The quantised values (infinities and zeros, with their signs, are kept).
    """
    b = np.asarray(values, dtype=np.float32).view(np.uint32)
    return (b & _MASK).view(np.float32)


def quantised_keys(values: np.ndarray) -> np.ndarray:
    """Bin index (0 .. 2**20 - 1) of each value's quantisation, in the order of the values.

    The top 20 bits of :func:`float_keys`: ``a <= b``
    implies ``key(a) <= key(b)``, and equal keys mean equal :func:`quantise` values.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).

    Returns
    -------
    ndarray of uint32
        The keys, same shape as ``values``.
    """
    return float_keys(values) >> np.uint32(QUANT_SHIFT)


def keys_to_values(keys: np.ndarray) -> np.ndarray:
    """Quantised value of each bin (inverse of :func:`quantised_keys` on quantised values).

    Parameters
    ----------
    keys : ndarray of int
        Bin indices in ``[0, 2**20)``.

    Returns
    -------
    ndarray of float32
        ``quantise(v)`` for any ``v`` with that key.
    """
    k = np.asarray(keys).astype(np.uint32) << np.uint32(QUANT_SHIFT)
    return quantise(keys_to_float(k))


def key_histogram(values: np.ndarray) -> KeyHistogram:
    """Histogram of the quantised keys of some values.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).

    Returns
    -------
    KeyHistogram
        Counts over the keys from the smallest to the largest present.
    """
    v = np.asarray(values, dtype=np.float32).ravel()
    if v.size == 0:
        return KeyHistogram(0, np.zeros(0, np.int64))
    lo, hi = (int(k) for k in quantised_keys(np.array([v.min(), v.max()], np.float32)))
    counts = np.zeros(hi - lo + 1, np.int64)
    for s in range(0, v.size, _CHUNK):
        k = quantised_keys(v[s:s + _CHUNK]) - np.uint32(lo)
        counts += np.bincount(k, minlength=counts.size)
    return KeyHistogram(lo, counts)


def add_histograms(a: KeyHistogram, b: KeyHistogram) -> KeyHistogram:
    """Sum of two key histograms (the histogram of the union of their values).

    Parameters
    ----------
    a, b : KeyHistogram
        Histograms.

    Returns
    -------
    KeyHistogram
        Their sum, over the union of their key ranges.
    """
    if a.counts.size == 0:
        return b
    if b.counts.size == 0:
        return a
    lo = min(a.offset, b.offset)
    hi = max(a.offset + a.counts.size, b.offset + b.counts.size)
    out = np.zeros(hi - lo, np.int64)
    out[a.offset - lo:a.offset - lo + a.counts.size] += a.counts
    out[b.offset - lo:b.offset - lo + b.counts.size] += b.counts
    return KeyHistogram(lo, out)


def histogram_quantiles(hist: KeyHistogram | np.ndarray, qs: Sequence[float]) -> list[float]:
    """Linear-interpolation quantiles of the quantised values counted by a histogram.

    Parameters
    ----------
    hist : KeyHistogram or ndarray
        Histogram of :func:`quantised_keys` (a plain array: counts of keys 0, 1, ...).
    qs : sequence of float
        Quantiles in [0, 1].

    Returns
    -------
    list of float
        One value per quantile (NaN when no values are counted).
    """
    if not isinstance(hist, KeyHistogram):
        hist = KeyHistogram(0, np.asarray(hist))
    cum = np.cumsum(hist.counts, dtype=np.int64)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return [float("nan")] * len(qs)
    out = []
    for q in qs:
        lo, hi, frac = quantile_ranks(n, q)
        bins = np.searchsorted(cum, [lo, hi], side="right") + hist.offset
        vlo, vhi = keys_to_values(bins)
        out.append(quantile_from_order_stats(vlo, vhi, frac))
    return out


def quantised_quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Linear-interpolation quantiles of the quantised values (numpy, whole array).

    Equal to ``numpy.quantile(quantise(values), qs)`` up to the float64 rounding of
    the interpolation, and bit-identical to :func:`histogram_quantiles` of summed
    per-chunk histograms of the same values.

    Parameters
    ----------
    values : ndarray
        Values (cast to float32; no NaN).
    qs : sequence of float
        Quantiles in [0, 1].

    Returns
    -------
    list of float
        One value per quantile (NaN for an empty input).

    Examples
    --------
    >>> import numpy as np
    >>> quantised_quantiles(np.array([1.0, 2.0, 3.0, 4.0]), [0.5])
    [2.5]
    """
    return histogram_quantiles(key_histogram(values), qs)
