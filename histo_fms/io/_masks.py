"""Read single-plane label images, binary masks and annotation images (TIFF / PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._errors import InputError

MASK_SUFFIXES = (".tif", ".tiff", ".png")
#: name patterns tried, in order, for the reference of image STEM
REFERENCE_PATTERNS = ("{stem}.labels", "{stem}_labels", "{stem}.mask", "{stem}_mask",
                      "{stem}_masks", "{stem}.masks", "{stem}", "{stem}.ome")


def read_plane(path: str | Path) -> np.ndarray:
    """Read a 2-D image (label image, mask or annotation) from a TIFF or PNG file.

    Singleton axes are dropped; an RGB(A) mask is reduced to "any channel nonzero".

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``/``.png`` file.

    Returns
    -------
    ndarray, shape (Y, X)
        The plane, in its stored dtype (bool for reduced RGB masks).

    Raises
    ------
    InputError
        Missing or unreadable file, or not a single 2-D plane.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        if p.suffix.lower() == ".png":
            import imageio.v3 as iio

            a = np.asarray(iio.imread(p))
        else:
            import tifffile

            a = np.asarray(tifffile.imread(p))
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line
        raise InputError(p, f"cannot read the image ({type(exc).__name__}: {exc})") from None
    a = np.squeeze(a)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = np.any(a[..., :3] != 0, axis=-1)
    if a.ndim != 2:
        raise InputError(p, f"expected a single 2-D plane, got shape {a.shape}")
    return a


def find_reference(folder: str | Path, stem: str) -> Path | None:
    """Find the reference file of image ``stem`` in a folder.

    Tried in order: ``STEM.labels``, ``STEM_labels``, ``STEM.mask``, ``STEM_mask``,
    ``STEM_masks``, ``STEM.masks``, ``STEM``, ``STEM.ome``, each with ``.tif``,
    ``.tiff`` or ``.png`` (case-insensitive).

    Parameters
    ----------
    folder : str or Path
        Reference folder.
    stem : str
        Image stem (output folder name of a run).

    Returns
    -------
    Path or None
        The file, or None when there is none.
    """
    folder = Path(folder)
    files = {f.name.lower(): f for f in folder.iterdir() if f.is_file()}
    for pat in REFERENCE_PATTERNS:
        base = pat.format(stem=stem).lower()
        for suf in MASK_SUFFIXES:
            if base + suf in files:
                return files[base + suf]
    return None


def read_annotation(path: str | Path, shape: tuple[int, int] | None = None, *,
                    image: str | Path | None = None,
                    required: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Read a pixel-classifier annotation (0 unlabelled, 1 background, 2 neuron, 3 sheath).

    Parameters
    ----------
    path : str or Path
        TIFF (or PNG) of the image's Y x X, integer classes 0-3.
    shape : tuple of int, optional
        The image's (Y, X), checked.
    image : str or Path, optional
        The image it annotates (named in the shape error).
    required : tuple of int
        Classes that must each have at least one pixel.

    Returns
    -------
    ndarray of uint8
        The annotation.

    Raises
    ------
    InputError
        Wrong shape, values outside 0-3, or a required class absent (one line naming
        the file).
    """
    p = Path(path)
    a = read_plane(p)
    if shape is not None and a.shape != tuple(shape):
        of = f" of {Path(image).name}" if image is not None else ""
        raise InputError(p, f"annotation is {a.shape[0]} x {a.shape[1]} px but the image{of} "
                         f"is {shape[0]} x {shape[1]} (Y x X)")
    if a.dtype == bool:
        raise InputError(p, "annotation is a binary mask (or an RGB image, read as one); "
                         "expected one plane of classes 0 unlabelled, "
                         "1 background, 2 neuron, 3 SGC sheath")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(np.mod(a, 1) == 0):
            raise InputError(p, f"annotation must hold integer classes, got {a.dtype}")
    bad = (a < 0) | (a > 3)
    if np.any(bad):
        vals = sorted(np.unique(a[bad]).tolist())[:5]
        raise InputError(p, f"annotation values must be 0 unlabelled, 1 background, "
                         f"2 neuron, 3 SGC sheath; found {vals} (a label image of "
                         "neuron outlines: train-pixels --outlines)")
    a = a.astype(np.uint8)
    names = {1: "background", 2: "neuron", 3: "SGC sheath"}
    for c in required:
        if not np.any(a == c):
            raise InputError(p, f"no pixel of class {c} ({names[c]}); every annotation needs "
                             "some background (1) and some neuron (2) pixels")
    return a
