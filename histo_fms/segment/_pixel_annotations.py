"""Training annotations for the pixel classifier from neuron outlines.

A user (or a reference set) often has outlines rather than strokes: a label image with
one value per neuron, exported from napari or QuPath, or filled polygons. Such an
image, when it outlines every neuron of its section, says for every pixel what it is;
:func:`annotations_from_outlines` turns it into the classes the pixel classifier
learns (0 unlabelled, 1 background, 2 neuron, 3 SGC sheath).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._pixel_classifier import BACKGROUND, NEURON, SHEATH, UNLABELLED


def annotations_from_outlines(
    labels: np.ndarray,
    *,
    pixel_size_um: float,
    sheath: bool = True,
    complete: bool = True,
    edge_um: float = 0.5,
    sheath_um: float = 2.0,
) -> np.ndarray:
    """Dense training annotations from neuron outlines (a label image).

    Every pixel of a neuron more than ``edge_um`` inside its outline is class 2; the
    band up to ``sheath_um`` outside it -- where the SGC sheath lies, and the
    boundary between touching neurons -- is class 3 with ``sheath`` (class 1
    without); with ``complete`` (the outlines cover every neuron of the image) every
    other pixel is background (1). The ``edge_um`` either side of each outline stays
    unlabelled (0): drawn outlines are accurate to about a pixel, and a classifier
    trained on their exact edge would learn the drawing. Touching neurons (two
    labels sharing an edge) are parted by the band between them.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background, one value per neuron). A binary mask is one
        label per connected component: split it first (touching neurons of one
        component are then one neuron).
    pixel_size_um : float
        Pixel size in µm.
    sheath : bool
        Label the band outside the outlines as SGC sheath (3), else background (1).
        Use ``False`` when the images have no SGC channel.
    complete : bool
        The outlines cover every neuron: the rest is background. Otherwise only the
        neurons and their bands are labelled (paint background strokes too).
    edge_um : float
        Unlabelled margin either side of each outline (µm).
    sheath_um : float
        Width of the band outside the outlines (µm), from the outline.

    Returns
    -------
    ndarray of uint8
        Annotation: 0 unlabelled, 1 background, 2 neuron, 3 SGC sheath.

    Raises
    ------
    ValueError
        Not a 2-D image of non-negative integers, a non-positive pixel size, or no
        neuron in it.
    """
    lab = np.asarray(labels)
    px = float(pixel_size_um)
    if not px > 0:
        raise ValueError("pixel_size_um must be positive")
    if lab.ndim != 2:
        raise ValueError(f"expected a 2-D label image, got shape {lab.shape}")
    if lab.dtype == bool:
        lab = ndi.label(lab)[0]
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"outlines must be an integer label image, got {lab.dtype}")
    if np.any(lab < 0):
        raise ValueError("outline labels must be non-negative")
    if not np.any(lab):
        raise ValueError("no neuron in the outlines (every value is 0)")
    lab = lab.astype(np.int64, copy=False)
    # a pixel is on a boundary when a 3 x 3 neighbour has another value
    hi = ndi.maximum_filter(lab, size=3, mode="nearest")
    lo = ndi.minimum_filter(lab, size=3, mode="nearest")
    boundary = hi != lo
    # distance (µm) of every pixel from the nearest outline
    d = ndi.distance_transform_edt(~boundary) * px
    inside = lab > 0
    out = np.full(lab.shape, BACKGROUND if complete else UNLABELLED, np.uint8)
    band = (d <= sheath_um) & ~inside
    # touching neurons: the pixels within edge_um (at least one pixel) of an edge
    # that two labels share
    shared = boundary & (lo > 0)
    between = np.zeros(lab.shape, bool)
    if shared.any():
        between = inside & (ndi.distance_transform_edt(~shared) * px <= max(edge_um, px))
    out[band] = SHEATH if sheath else BACKGROUND
    out[inside & (d > edge_um)] = NEURON
    out[(d <= edge_um) & ~between] = UNLABELLED
    out[between] = SHEATH if sheath else BACKGROUND
    return out
