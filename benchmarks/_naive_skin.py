"""A naive scikit-image skin (IENFD) pipeline: the per-pixel cost reference of the benchmarks.

Otsu threshold of the smoothed nuclear stain (the epidermis is its dense band; the
largest component, holes filled), the dermal-epidermal junction (DEJ) as the
epidermis's lower boundary column by column (upper, for an epidermis at the bottom),
fibres as the fibre stain above a robust threshold after a large-scale background is
subtracted, skeletonised, and one crossing per skeleton piece that touches the DEJ.
No membrane stain, no ridge filter, no hysteresis, gap bridging or counting rules: the
least a pipeline has to do; histo-fms's own skin analysis is compared with it per pixel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize


def naive_skin(fibre: np.ndarray, nuclei: np.ndarray, *, pixel_size_um: float,
               min_fibre_length_um: float = 4.0, k_sd: float = 5.0) -> dict:
    """Find the epidermis, DEJ and fibres the simplest way; returns the crossing count."""
    px = float(pixel_size_um)
    g = ndi.gaussian_filter(nuclei.astype(np.float32), 8.0 / px)  # nuclear density
    epi = g > threshold_otsu(g)
    lab, n = ndi.label(epi)
    if n == 0:
        return {"n": 0, "ienfd_per_mm": float("nan")}
    epi = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    epi = ndi.binary_fill_holes(epi)
    cols = np.flatnonzero(epi.any(axis=0))
    rows = np.arange(epi.shape[0])[:, None]
    top = np.where(epi, rows, epi.shape[0]).min(axis=0)
    bottom = np.where(epi, rows, -1).max(axis=0)
    at_top = top[cols].mean() < epi.shape[0] - 1 - bottom[cols].mean()
    dej = np.zeros(epi.shape, bool)
    dej[(bottom if at_top else top)[cols], cols] = True
    dej = ndi.binary_dilation(dej, iterations=1)
    f = ndi.gaussian_filter(fibre.astype(np.float32), 0.5 / px)
    f = f - ndi.gaussian_filter(f, 10.0 / px)
    med = np.median(f)
    mad = np.median(np.abs(f - med))
    fib = f > med + k_sd * 1.4826 * mad
    fl, _ = ndi.label(fib, structure=np.ones((3, 3)))
    fib = (np.bincount(fl.ravel()) >= min_fibre_length_um / px)[fl] & fib
    skel = skeletonize(fib)
    sl, _ = ndi.label(skel, structure=np.ones((3, 3)))
    n_cross = int(np.unique(sl[dej & skel]).size)
    length_mm = cols.size * px / 1000.0
    return {"n": n_cross, "ienfd_per_mm": n_cross / length_mm if length_mm else float("nan")}
