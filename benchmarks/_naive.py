"""A naive scikit-image DRG pipeline: the per-pixel cost reference of the benchmarks.

Otsu threshold of the smoothed neuron channel, hole filling, a distance-transform
watershed to split touching neurons, and the mean IgG of a ring (annulus) around each
neuron. No context, no background correction, no lipofuscin, no QC: the least a
pipeline has to do; histo-fms's own measurement is compared with it per pixel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_objects
from skimage.segmentation import expand_labels, watershed


def naive_drg(neuron: np.ndarray, igg: np.ndarray, *, pixel_size_um: float,
              ring_width_um: float = 4.0, min_diameter_um: float = 10.0) -> dict:
    """Segment neurons and measure ring IgG the simplest way; returns counts and means."""
    px = float(pixel_size_um)
    g = ndi.gaussian_filter(neuron.astype(np.float32), 1.0 / px)
    fg = g > threshold_otsu(g)
    fg = ndi.binary_fill_holes(fg)
    min_area = int(np.pi * (min_diameter_um / 2 / px) ** 2 / 4)
    fg = remove_small_objects(fg, min_area)
    dist = ndi.distance_transform_edt(fg)
    peaks = peak_local_max(dist, min_distance=max(1, int(min_diameter_um / 2 / px)),
                           labels=ndi.label(fg)[0], exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=fg)
    rings = expand_labels(labels, ring_width_um / px)
    rings[labels > 0] = 0
    idx = np.arange(1, int(labels.max()) + 1)
    ring_igg = ndi.mean(igg.astype(np.float32), rings, idx) if idx.size else np.zeros(0)
    return {"n": int(idx.size), "ring_igg_mean": float(np.nanmean(ring_igg)) if idx.size
            else float("nan")}
