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
  :func:`histo_fms.segment._background.float_keys` (:func:`quantised_keys`);
* the quantile ``q`` is numpy's ``"linear"`` quantile of the quantised values, with
  the interpolation between the two order statistics done in float64 by
  :func:`histo_fms.segment._background.quantile_from_order_stats`.

A histogram of the keys is all the quantiles need, and the histogram of a union of
chunks is the sum of the chunks' histograms; so a tiled computation (one pass, the
per-tile histograms summed) and :func:`quantised_quantiles` on the whole array give
bit-identical numbers. Histograms are kept compact: counts over the range of keys
present (:class:`KeyHistogram`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._background import quantile_from_order_stats, quantile_ranks

#: low bits of the float32 bit pattern dropped by the quantisation
QUANT_SHIFT = 12
#: number of distinct quantised keys (bins)
N_BINS = 1 << (32 - QUANT_SHIFT)
_MASK = np.uint32((0xFFFFFFFF >> QUANT_SHIFT) << QUANT_SHIFT)
_SIGN = np.uint32(0x80000000)
#: elements per chunk when histogramming a large array (bounds the temporaries)
_CHUNK = 1 << 22


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

    The top 20 bits of :func:`histo_fms.segment._background.float_keys`: ``a <= b``
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
    b = np.asarray(values, dtype=np.float32).view(np.uint32)
    # negative: flip every bit; positive: flip the sign bit (as float_keys)
    flip = (b.view(np.int32) >> 31).view(np.uint32) | _SIGN
    return (b ^ flip) >> np.uint32(QUANT_SHIFT)


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
    b = np.where(k & _SIGN, k ^ _SIGN, ~k).astype(np.uint32) & _MASK
    return b.view(np.float32)


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
