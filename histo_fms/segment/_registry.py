"""Backend registry and dispatch for neuron segmentation."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

SegmentFunc = Callable[..., np.ndarray]

# name -> callable, or "module:function" imported lazily on first use (so optional
# heavy dependencies such as cellpose are only imported when asked for).
_BACKENDS: dict[str, SegmentFunc | str] = {
    "classical": "histo_fms.segment._classical:segment_classical",
    "cellpose": "histo_fms.segment._cellpose:segment_cellpose",
    "pixel_classifier": "histo_fms.segment._pixel_classifier:segment_pixel_classifier",
}


def register_backend(name: str, func: SegmentFunc | str) -> None:
    """Register a segmentation backend.

    Parameters
    ----------
    name : str
        Backend name used in ``segment_neurons(..., backend=name)``.
    func : callable or str
        ``func(image, *, pixel_size_um, **options) -> labels``, or a lazy reference
        ``"package.module:function"`` imported on first use. A backend that also
        accepts a ``channels`` keyword receives the section's other channels by role
        (see :func:`segment_neurons`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError("backend name must be a non-empty string")
    _BACKENDS[name] = func


def available_backends() -> list[str]:
    """Return the names of the registered backends.

    Returns
    -------
    list of str
        Registered backend names (a lazily registered one may still fail to import).
    """
    return sorted(_BACKENDS)


def _resolve(name: str) -> SegmentFunc:
    try:
        entry = _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown segmentation backend {name!r}; available: {available_backends()}"
        ) from None
    if callable(entry):
        return entry
    module, _, attr = entry.partition(":")
    try:
        func = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"segmentation backend {name!r} is not available ({entry}): {exc}"
        ) from exc
    _BACKENDS[name] = func
    return func


def _accepts_channels(func: SegmentFunc) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return "channels" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def segment_neurons(
    image: np.ndarray,
    *,
    pixel_size_um: float,
    backend: str = "classical",
    channels: Mapping[str, np.ndarray] | None = None,
    **options: Any,
) -> np.ndarray:
    """Segment neuron somata in a 2-D neuron-marker image.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Neuron-marker channel (NeuN, beta-III-tubulin, PGP9.5), any numeric dtype.
    pixel_size_um : float
        Pixel size in µm.
    backend : str
        Registered backend name (see :func:`available_backends`).
    channels : mapping of str to ndarray, optional
        Other channels of the section by role (``"sgc"``, ``"nuclei"``), each of the
        image's shape. Passed to backends whose function takes a ``channels`` keyword
        (the SGC sheath separates touching neurons); ignored by the others.
    **options
        Backend-specific options (for ``"classical"`` see
        :func:`histo_fms.segment.segment_classical`).

    Returns
    -------
    ndarray of int32, shape (Y, X)
        Labels, 0 background, neurons numbered 1..n.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if not pixel_size_um > 0:
        raise ValueError("pixel_size_um must be positive")
    func = _resolve(backend)
    if channels:
        for role, ch in channels.items():
            if np.shape(ch) != image.shape:
                raise ValueError(f"channel {role!r} has shape {np.shape(ch)}, "
                                 f"not the image's {image.shape}")
        if _accepts_channels(func):
            options["channels"] = dict(channels)
    labels = func(image, pixel_size_um=float(pixel_size_um), **options)
    labels = np.asarray(labels)
    if labels.shape != image.shape:
        raise ValueError(f"backend {backend!r} returned shape {labels.shape}, not {image.shape}")
    return labels.astype(np.int32, copy=False)
