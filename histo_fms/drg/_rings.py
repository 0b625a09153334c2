"""SGC rings and local-background bands around labelled neurons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numerics._local import nearest_feature, squared_distance


@dataclass(frozen=True)
class RingGeometry:
    """Nearest-neuron map of a label image and the rings and bands derived from it.

    Attributes
    ----------
    nearest : tuple of ndarray
        Row and column indices of that nearest neuron pixel.
    nearest_label : ndarray of int32
        Id of the nearest neuron.
    rings : ndarray of int32
        :func:`make_rings`.
    bands : ndarray of int32
        :func:`make_background_bands`.
    """

    nearest: tuple[np.ndarray, np.ndarray]
    nearest_label: np.ndarray
    rings: np.ndarray
    bands: np.ndarray


def ring_geometry(labels: np.ndarray, ring_width_px: float, band_width_px: float
                  ) -> RingGeometry:
    """Rings, background bands and the nearest-neuron map from one distance transform.

    Equals :func:`make_rings` and :func:`make_background_bands` (which are
    :func:`skimage.segmentation.expand_labels` differences) at the cost of one
    Euclidean feature transform instead of three.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background; at least one neuron).
    ring_width_px, band_width_px : float
        Ring and band widths in pixels.

    Returns
    -------
    RingGeometry
        The maps.
    """
    labels = np.asarray(labels)
    bg = labels == 0
    ft = nearest_feature(bg)
    near = labels[ft[0], ft[1]].astype(np.int32)
    d2 = squared_distance(ft)  # compared with squared widths: no float distance map
    w2 = float(ring_width_px) ** 2
    rings = np.where(bg & (d2 <= w2) if ring_width_px > 0 else False, near, 0)
    outer2 = float(ring_width_px + band_width_px) ** 2
    bands = np.where((d2 > (w2 if ring_width_px > 0 else 0)) & (d2 <= outer2), near, 0)
    del d2
    return RingGeometry((ft[0], ft[1]), near, rings.astype(np.int32), bands.astype(np.int32))


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
    return ring_geometry(labels, float(width_px), 0.0).rings


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
    return ring_geometry(labels, float(ring_width_px), float(band_width_px)).bands
