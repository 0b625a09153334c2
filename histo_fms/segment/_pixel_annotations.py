"""Training annotations for the pixel classifier from neuron outlines.

A user (or a reference set) often has outlines rather than strokes: a label image with
one value per neuron, exported from napari or QuPath, or filled polygons. Such an
image, when it outlines every neuron of its section, says for every pixel what it is;
:func:`annotations_from_outlines` turns it into the classes the pixel classifier
learns (0 unlabelled, 1 background, 2 neuron, 3 SGC sheath). A reference mask written
as classes (every neuron pixel 2, the rest 1: :func:`is_dense_mask`) says the same, with
touching neurons merged: :func:`classes_from_dense` splits them
(:func:`dense_mask_instances`) and reads it as outlines.
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


def is_dense_mask(annotation: np.ndarray, *, min_outside: float = 0.9) -> bool:
    """Whether a class annotation is a dense neuron mask (a reference mask as classes).

    A dense mask has no SGC-sheath class (3) and its neuron regions (2) are surrounded
    by background (1): at least ``min_outside`` of the pixels just outside them (their
    8-neighbours of another class) are 1, not unlabelled. Scribbles -- neuron strokes
    across somata with unlabelled pixels around them -- are not.

    Parameters
    ----------
    annotation : ndarray of uint8
        Class annotation (0 unlabelled, 1 background, 2 neuron, 3 sheath).
    min_outside : float
        Fraction of the pixels around the neuron regions that must be background.

    Returns
    -------
    bool
        Whether the annotation is a dense mask.
    """
    a = np.asarray(annotation)
    neuron = a == NEURON
    if not neuron.any() or np.any(a == SHEATH) or not np.any(a == BACKGROUND):
        return False
    ring = ndi.binary_dilation(neuron, structure=np.ones((3, 3), bool)) & ~neuron
    if not ring.any():
        return False  # neurons everywhere: nothing to learn the boundary from
    return float(np.mean(a[ring] == BACKGROUND)) >= min_outside


def dense_mask_instances(
    neuron: np.ndarray,
    *,
    pixel_size_um: float,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
) -> np.ndarray:
    """Neuron instances of a binary neuron mask whose touching neurons are merged.

    Each connected region is one neuron when it is soma-like (the shape test of the
    pixel classifier's instance split, with its nucleus holes filled); a region that
    is not (touching neurons merged in the mask) is cut at the necks of its distance
    transform, and so is a soma-like region with a waist that parts it into
    soma-like halves. Regions without soma-like parts stay whole.

    Parameters
    ----------
    neuron : ndarray of bool
        Neuron mask.
    pixel_size_um : float
        Pixel size in µm.
    min_diameter_um, max_diameter_um : float
        Soma diameters of the shape test.

    Returns
    -------
    ndarray of int32
        Labels (0 background).
    """
    from ._pixel_classifier import (
        MAX_ELONGATION,
        MIN_SOLIDITY,
        _at_border,
        _neck_split,
        _shape_ok,
        _waist_split,
    )

    px = float(pixel_size_um)
    m = np.asarray(neuron, bool)
    lab, n = ndi.label(m)
    out = np.zeros(m.shape, np.int32)
    k = 0
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        comp = lab[sl] == i
        shape = (min_diameter_um, max_diameter_um)
        ok, filled = _shape_ok(comp, px, *shape, True, MIN_SOLIDITY, MAX_ELONGATION,
                               _at_border(sl, m.shape))
        if ok:
            parts = _waist_split(filled, sl, px, *shape, MIN_SOLIDITY, MAX_ELONGATION, m.shape)
        else:
            parts = _neck_split(comp, sl, px, *shape, True, MIN_SOLIDITY, MAX_ELONGATION,
                                m.shape)
        if len(parts) < 2:
            k += 1
            out[sl][comp] = k
            continue
        # the parts, grown back over the region (a watershed on its distance)
        from skimage.segmentation import watershed

        markers = np.zeros(comp.shape, np.int32)
        for psl, pm in parts:
            k += 1
            loc = tuple(slice(a.start - b.start, a.stop - b.start)
                        for a, b in zip(psl, sl, strict=True))
            markers[loc][pm & comp[loc] & (markers[loc] == 0)] = k
        dist = ndi.distance_transform_edt(comp)
        grown = watershed(-dist, markers, mask=comp)
        out[sl][comp] = grown[comp]
    return out


def classes_from_dense(
    annotation: np.ndarray,
    *,
    pixel_size_um: float,
    sheath: bool = True,
    edge_um: float = 0.5,
    sheath_um: float = 2.0,
) -> np.ndarray:
    """Training classes of a dense neuron mask, as ``--outlines`` makes them.

    A dense class annotation (:func:`is_dense_mask`: every neuron pixel 2, the rest 1,
    touching neurons merged, no sheath class) is read as the outlines of its neurons:
    its neuron regions are split into neurons (:func:`dense_mask_instances`) and turned
    into classes by :func:`annotations_from_outlines` -- the ``edge_um`` either side of
    each outline unlabelled, and with ``sheath`` (an SGC channel is present) the
    ``sheath_um`` band outside each neuron and the line between the neurons of a
    merged region taught as SGC sheath, so the classifier learns the SGC rim that parts
    touching somata. Pixels unlabelled in the annotation stay so (outside the bands).

    Parameters
    ----------
    annotation : ndarray of uint8
        Dense class annotation.
    pixel_size_um : float
        Pixel size in µm.
    sheath : bool
        Teach the band outside the neurons as SGC sheath (3), else background (1).
    edge_um, sheath_um : float
        As :func:`annotations_from_outlines`.

    Returns
    -------
    ndarray of uint8
        0 unlabelled, 1 background, 2 neuron, 3 SGC sheath.
    """
    a = np.asarray(annotation)
    lab = dense_mask_instances(a == NEURON, pixel_size_um=pixel_size_um)
    out = annotations_from_outlines(lab, pixel_size_um=pixel_size_um, sheath=sheath,
                                    edge_um=edge_um, sheath_um=sheath_um)
    out[(a == UNLABELLED) & (out == BACKGROUND)] = UNLABELLED
    return out
