"""Sato ridge filter with the compiled Gaussian kernels, equal to scikit-image's.

:func:`skimage.filters.sato` (2-D, ``mode="reflect"``) builds each scale's Hessian from
``scipy.ndimage.gaussian_filter`` derivatives; :func:`sato` does the same arithmetic in
the same order with :func:`histo_fms._numerics._gauss.gaussian_filter` (bit-identical
to scipy's, several times faster) and scikit-image's own eigenvalue and combination
code, so the response is bit for bit scikit-image's. Other modes or dimensions call
scikit-image.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ._gauss import gaussian_filter


def hessian_elements(image: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Hessian elements as ``skimage.feature.hessian_matrix`` gives them (Gaussian derivatives).

    Parameters
    ----------
    image : ndarray of float32 or float64, shape (Y, X)
        Image.
    sigma : float
        Gaussian scale in pixels.

    Returns
    -------
    list of ndarray
        ``[Hrr, Hrc, Hcc]``, bit-identical to scikit-image's.
    """
    # scikit-image's _hessian_matrix_with_gaussian: two first-order derivatives of a
    # Gaussian of sigma / sqrt(2), with a long truncation
    truncate = 8 if sigma > 1 else 100
    s = (1 / math.sqrt(2)) * sigma
    gy = gaussian_filter(image, (s, s), order=(1, 0), truncate=truncate)
    gx = gaussian_filter(image, (s, s), order=(0, 1), truncate=truncate)
    hrr = gaussian_filter(gy, (s, s), order=(1, 0), truncate=truncate)
    hrc = gaussian_filter(gy, (s, s), order=(0, 1), truncate=truncate)
    del gy
    hcc = gaussian_filter(gx, (s, s), order=(0, 1), truncate=truncate)
    return [hrr, hrc, hcc]


def sato(image: np.ndarray, sigmas: Iterable[float], *, black_ridges: bool = True,
         mode: str = "reflect") -> np.ndarray:
    """``skimage.filters.sato(image, sigmas, black_ridges, mode)``, faster for 2-D reflect.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Image (float32 and float64 use the compiled Gaussians; others scikit-image).
    sigmas : iterable of float
        Scales in pixels.
    black_ridges : bool
        Dark ridges (True) or bright ones.
    mode : str
        Border mode; only ``"reflect"`` is computed here.

    Returns
    -------
    ndarray
        The ridge response, bit-identical to scikit-image's.
    """
    from skimage.feature import hessian_matrix_eigvals

    a = np.asarray(image)
    sigmas = list(sigmas)
    if a.ndim != 2 or mode != "reflect" or a.dtype not in (np.float32, np.float64):
        from skimage.filters import sato as sk_sato

        return sk_sato(image, sigmas=sigmas, black_ridges=black_ridges, mode=mode)
    if not black_ridges:
        a = -a
    filtered_max = np.zeros_like(a)
    for sigma in sigmas:
        eigvals = hessian_matrix_eigvals(hessian_elements(a, sigma))
        eigvals = eigvals[:-1]
        vals = sigma**2 * np.prod(np.maximum(eigvals, 0), 0) ** (1 / len(eigvals))
        filtered_max = np.maximum(filtered_max, vals)
    return filtered_max
