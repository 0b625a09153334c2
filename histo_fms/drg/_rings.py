"""SGC rings and local-background bands around labelled neurons."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import expand_labels


def make_rings(labels: np.ndarray, width_px: float) -> np.ndarray:
    """Return the ring of each neuron: the band of ``width_px`` outside its outline.

    Each background pixel within ``width_px`` of a neuron goes to the nearest
    neuron (:func:`skimage.segmentation.expand_labels`), so rings never overlap each
    other nor any neuron.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background).
    width_px : float
        Ring width in pixels (``ring_width_um / pixel_size_um``).

    Returns
    -------
    ndarray of int32
        Ring labels: the ring of neuron ``i`` has value ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((9, 9), np.int32); labels[3:6, 3:6] = 1
    >>> int((make_rings(labels, 1) == 1).sum())
    12
    """
    labels = np.asarray(labels)
    if width_px <= 0 or not labels.any():
        return np.zeros(labels.shape, np.int32)
    grown = expand_labels(labels, distance=float(width_px))
    return np.where(labels == 0, grown, 0).astype(np.int32)


def make_background_bands(labels: np.ndarray, ring_width_px: float, band_width_px: float
                          ) -> np.ndarray:
    """Return each neuron's local-background band, just beyond its ring.

    The band of neuron ``i`` holds the pixels whose nearest neuron is ``i`` and that
    lie between ``ring_width_px`` and ``ring_width_px + band_width_px`` from it: they
    are in no neuron and in no ring.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background).
    ring_width_px : float
        Ring width in pixels.
    band_width_px : float
        Band width in pixels.

    Returns
    -------
    ndarray of int32
        Band labels (band of neuron ``i`` has value ``i``).
    """
    labels = np.asarray(labels)
    if not labels.any():
        return np.zeros(labels.shape, np.int32)
    inner = expand_labels(labels, distance=float(ring_width_px)) if ring_width_px > 0 else labels
    outer = expand_labels(labels, distance=float(ring_width_px + band_width_px))
    return np.where(inner == 0, outer, 0).astype(np.int32)
