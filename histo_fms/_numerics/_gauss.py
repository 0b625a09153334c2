"""Separable Gaussian filters of 2-D float images (compiled kernels), equal to scipy's.

``scipy.ndimage.gaussian_filter`` (``mode="reflect"``) correlates the image with a 1-D
kernel along axis 0, rounds to the image's dtype, then along axis 1. Each output pixel
is, in float64, ``x[i] * w[0]`` plus the pairs ``(x[i - k] ± x[i + k]) * w[-k]`` for
``k = r, ..., 1`` (outermost first; ``+`` for a symmetric kernel, ``-`` for an
antisymmetric one), converted to the output dtype. The kernels here do the same
operations in the same order (no fused multiply-add, no reassociation), so the result is
bit-identical to scipy's x86-64 builds (whose C loop has no fused multiply-adds; its
macOS arm64 build fuses some, so there the last bit can differ from scipy's, never between
runs or between tiled and untiled runs of histo-fms); they only loop in cache order
(axis 0 row by row, every column at once) instead of copying each line to a buffer, and
run several times faster.

The 1-D weights are scipy's own (``scipy.ndimage._filters._gaussian_kernel1d``); where
that private helper is missing, or the call is one these kernels do not cover (other
dtypes or modes, non-2-D images), scipy is called instead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._jit import njit

try:  # scipy's own kernel weights (private; present in scipy 1.13 - 1.17)
    from scipy.ndimage._filters import _gaussian_kernel1d
except ImportError:  # pragma: no cover - fall back to scipy for every call
    _gaussian_kernel1d = None

_EPS = float(np.finfo(np.float64).eps)


@njit(cache=True, nogil=True)
def _reflect(p: int, n: int) -> int:
    """Index of position ``p`` of a line of ``n`` under scipy's ``reflect`` extension."""
    m = p % (2 * n)
    return m if m < n else 2 * n - 1 - m


@njit(cache=True, nogil=True)
def _axis0(src: np.ndarray, left: np.ndarray, sign: float, out: np.ndarray) -> None:
    """Correlate along axis 0 (``out`` must not be ``src``).

    ``left[k]`` is the weight of offset ``-k`` (``left[0]`` the centre); ``sign`` is +1
    for a symmetric, -1 for an antisymmetric kernel.
    """
    h, w = src.shape
    r = left.shape[0] - 1
    acc = np.empty(w, np.float64)
    w0 = left[0]
    for i in range(h):
        for c in range(w):
            acc[c] = np.float64(src[i, c]) * w0
        for k in range(r, 0, -1):
            a = src[_reflect(i - k, h)]
            b = src[_reflect(i + k, h)]
            wk = left[k]
            if sign > 0:
                for c in range(w):
                    acc[c] += (np.float64(a[c]) + np.float64(b[c])) * wk
            else:
                for c in range(w):
                    acc[c] += (np.float64(a[c]) - np.float64(b[c])) * wk
        for c in range(w):
            out[i, c] = acc[c]


@njit(cache=True, nogil=True)
def _axis1(src: np.ndarray, left: np.ndarray, sign: float, out: np.ndarray) -> None:
    """Correlate along axis 1 (see :func:`_axis0`); ``out`` may be ``src``."""
    h, w = src.shape
    r = left.shape[0] - 1
    line = np.empty(w + 2 * r, np.float64)
    acc = np.empty(w, np.float64)
    w0 = left[0]
    for i in range(h):
        for p in range(w):
            line[p + r] = src[i, p]
        for p in range(r):
            line[p] = src[i, _reflect(p - r, w)]
            line[w + r + p] = src[i, _reflect(w + p, w)]
        mid = line[r:r + w]
        for c in range(w):
            acc[c] = mid[c] * w0
        for k in range(r, 0, -1):
            wk = left[k]
            lo = line[r - k:r - k + w]
            hi = line[r + k:r + k + w]
            if sign > 0:
                for c in range(w):
                    acc[c] += (lo[c] + hi[c]) * wk
            else:
                for c in range(w):
                    acc[c] += (lo[c] - hi[c]) * wk
        for c in range(w):
            out[i, c] = acc[c]


def _symmetry(weights: np.ndarray) -> int:
    """Symmetry test of scipy's correlate1d: 1 symmetric, -1 antisymmetric, 0 neither."""
    n = weights.size
    if n % 2 == 0:
        return 0
    c = n // 2
    k = np.arange(1, c + 1)
    if np.all(np.abs(weights[c + k] - weights[c - k]) <= _EPS):
        return 1
    if np.all(np.abs(weights[c + k] + weights[c - k]) <= _EPS):
        return -1
    return 0


def correlate1d_gaussian(src: np.ndarray, weights: np.ndarray, axis: int,
                         out: np.ndarray) -> bool:
    """Correlate a 2-D float array with odd-length, (anti)symmetric ``weights``.

    Parameters
    ----------
    src, out : ndarray, shape (Y, X)
        Input and output (float32 or float64, C-contiguous; ``out`` may be ``src`` for
        ``axis=1``).
    weights : ndarray of float64
        Correlation weights, as ``scipy.ndimage.correlate1d`` takes them.
    axis : int
        0 or 1.

    Returns
    -------
    bool
        False (and nothing written) when the weights are neither symmetric nor
        antisymmetric: the caller uses scipy then.
    """
    sym = _symmetry(weights)
    if sym == 0:
        return False
    c = weights.size // 2
    left = np.ascontiguousarray(weights[c::-1], dtype=np.float64)  # left[k]: offset -k
    (_axis0 if axis == 0 else _axis1)(src, left, float(sym), out)
    return True


def gaussian_filter(image: np.ndarray, sigma: float | tuple[float, float],
                    order: int | tuple[int, int] = 0, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma, order, truncate=truncate)``, faster.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Image; float32 and float64 use the compiled kernels (other inputs: scipy).
    sigma : float or (float, float)
        Gaussian sigma per axis, pixels.
    order : int or (int, int)
        Derivative order per axis.
    truncate : float
        Kernel radius in sigmas.

    Returns
    -------
    ndarray
        The filtered image, the input's dtype, bit-identical to scipy's
        (``mode="reflect"``).
    """
    a = np.asarray(image)
    sig = tuple(float(s) for s in np.broadcast_to(np.asarray(sigma, float), (2,))) \
        if a.ndim == 2 else None
    orders = tuple(int(o) for o in np.broadcast_to(np.asarray(order), (2,))) \
        if a.ndim == 2 else None
    if (_gaussian_kernel1d is None or a.ndim != 2 or a.dtype not in (np.float32, np.float64)
            or min(a.shape) == 0):
        return ndi.gaussian_filter(image, sigma, order=order, truncate=truncate)
    plan = []
    for axis in (0, 1):
        s = sig[axis]
        if s > 1e-15:
            radius = int(truncate * s + 0.5)
            weights = np.ascontiguousarray(_gaussian_kernel1d(s, orders[axis], radius)[::-1],
                                           dtype=np.float64)
            if _symmetry(weights) == 0:
                return ndi.gaussian_filter(image, sigma, order=order, truncate=truncate)
            plan.append((axis, weights))
    out = np.empty(a.shape, a.dtype)
    if not plan:
        out[...] = a
        return out
    src = np.ascontiguousarray(a)
    for axis, weights in plan:
        if axis == 0:
            correlate1d_gaussian(src, weights, 0, out)
        else:
            if src is not out:  # axis 1 alone: read the input, write the output
                correlate1d_gaussian(src, weights, 1, out)
            else:
                correlate1d_gaussian(out, weights, 1, out)
        src = out
    return out
