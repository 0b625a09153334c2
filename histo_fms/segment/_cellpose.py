"""cellpose backend for neuron segmentation (``histo-fms[cellpose]``), imported lazily.

Select it in a pipeline config::

    drg:
      segmentation_backend: cellpose
      segmentation_options: {model: cpsam, diameter_um: 30}

``model`` is ``"cpsam"`` (cellpose-SAM, cellpose >= 4; its weights are downloaded once
from the model hub into the cellpose model folder, see :func:`fetch_cellpose_weights`)
or the path of a local weights file (e.g. one written by ``histo-fms train``). Names
are validated here: an unknown name or a missing file is an error, never a silent
fallback to another model (cellpose itself falls back to cpsam with only a warning).
The cpsam weights are trained on data under a non-commercial licence (CC-BY-NC).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._classical import canonical_labels

#: Built-in model names of cellpose 4 (cellpose's own ``models.MODEL_NAMES`` when installed).
BUILTIN_MODELS = ("cpsam", "cpsam_v2", "cpdino", "cpdino-vitb")


class CellposeUnavailableError(RuntimeError):
    """cellpose, torch or the requested weights are not available (with how to fix it)."""

    user_facing = True


def models_dir() -> Path:
    """Return the folder cellpose keeps downloaded weights in.

    ``CELLPOSE_LOCAL_MODELS_PATH`` when set, else ``~/.cellpose/models``.

    Returns
    -------
    Path
        The model folder.
    """
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def resolve_model(model: str | os.PathLike) -> tuple[str, Path | None]:
    """Validate a model name or path.

    Parameters
    ----------
    model : str or path-like
        ``"cpsam"`` or the path of a weights file.

    Returns
    -------
    kind : {"builtin", "path"}
        What ``model`` names.
    path : Path or None
        The weights file (for a built-in model, where it is cached, or None when it is
        not downloaded yet).

    Raises
    ------
    CellposeUnavailableError
        Unknown name, or a path that does not exist.
    """
    m = str(model)
    if m in builtin_models():
        cached = models_dir() / m
        return "builtin", cached if cached.exists() else None
    p = Path(m).expanduser()
    if p.is_file():
        return "path", p
    if p.suffix or os.sep in m or "/" in m:
        raise CellposeUnavailableError(f"cellpose model file not found: {p}")
    raise CellposeUnavailableError(
        f"unknown cellpose model {m!r}: use one of {list(builtin_models())} or the path of a "
        "weights file (e.g. written by `histo-fms train`)")


def builtin_models() -> tuple[str, ...]:
    """Return the built-in cellpose model names (from cellpose when it is installed).

    Returns
    -------
    tuple of str
        Model names that cellpose downloads from its model hub.
    """
    try:
        from cellpose.models import MODEL_NAMES
    except ImportError:
        return BUILTIN_MODELS
    return tuple(MODEL_NAMES)


def diameter_px(diameter_um: float, pixel_size_um: float) -> float:
    """Return the expected neuron diameter in pixels (cellpose's ``diameter``).

    Parameters
    ----------
    diameter_um : float
        Typical neuron diameter in µm.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    float
        Diameter in pixels; cellpose rescales the image so objects are ~30 px.
    """
    if not diameter_um > 0 or not pixel_size_um > 0:
        raise ValueError("diameter_um and pixel_size_um must be positive")
    return float(diameter_um) / float(pixel_size_um)


def normalize_image(image: np.ndarray, *, dark_level: float | None = None,
                    percentiles: tuple[float, float] = (1.0, 99.8)) -> np.ndarray:
    """Scale an image to roughly [0, 1] by robust percentiles, as cellpose expects.

    Parameters
    ----------
    image : ndarray
        2-D image.
    dark_level : float, optional
        Camera offset subtracted first.
    percentiles : tuple of float
        Low and high percentiles mapped to 0 and 1.

    Returns
    -------
    ndarray of float32
        The normalised image (constant images give zeros).
    """
    img = np.asarray(image, np.float32)
    if dark_level is not None:
        img = img - float(dark_level)
    lo, hi = np.percentile(img, percentiles) if img.size else (0.0, 1.0)
    if not hi > lo:
        return np.zeros_like(img)
    return (img - lo) / (hi - lo)


def clean_masks(masks: np.ndarray, *, pixel_size_um: float, min_diameter_um: float = 0.0,
                max_diameter_um: float | None = None) -> np.ndarray:
    """Fill holes, drop objects outside the size range and renumber 1..n (raster order).

    Parameters
    ----------
    masks : ndarray of int
        Label image from cellpose.
    pixel_size_um : float
        Pixel size in µm.
    min_diameter_um, max_diameter_um : float
        Equivalent-diameter range kept.

    Returns
    -------
    ndarray of int32
        Cleaned labels.
    """
    masks = np.asarray(masks)
    out = np.zeros(masks.shape, np.int32)
    if masks.size == 0 or masks.max() == 0:
        return out
    px2 = float(pixel_size_um) ** 2
    amin = np.pi * (min_diameter_um / 2) ** 2 / px2
    amax = np.inf if max_diameter_um is None else np.pi * (max_diameter_um / 2) ** 2 / px2
    n = 0
    for i, sl in enumerate(ndi.find_objects(masks), start=1):
        if sl is None:
            continue
        m = ndi.binary_fill_holes(masks[sl] == i)
        a = int(m.sum())
        if a < amin or a > amax:
            continue
        n += 1
        out[sl][m & (out[sl] == 0)] = n
    return canonical_labels(out)


def masks_from_flows(flows: np.ndarray, cellprob: np.ndarray, *, niter: int = 200,
                     cellprob_threshold: float = 0.0, flow_threshold: float = 0.4,
                     min_size: int = 15) -> np.ndarray:
    """Reconstruct masks from cellpose flows and cell probability (cellpose's dynamics).

    Parameters
    ----------
    flows : ndarray, shape (2, Y, X)
        Y and X flows.
    cellprob : ndarray, shape (Y, X)
        Cell probability logits.
    niter : int
        Dynamics iterations.
    cellprob_threshold, flow_threshold : float
        cellpose's thresholds.
    min_size : int
        Smallest mask in pixels.

    Returns
    -------
    ndarray of int32
        Labels.
    """
    dynamics = _import_cellpose().dynamics
    res = dynamics.compute_masks(np.asarray(flows, np.float32), np.asarray(cellprob, np.float32),
                                 niter=niter, cellprob_threshold=cellprob_threshold,
                                 flow_threshold=flow_threshold, min_size=min_size)
    masks = res[0] if isinstance(res, tuple) else res
    return np.asarray(masks).astype(np.int32)


def _import_cellpose() -> Any:
    try:
        import cellpose
        import cellpose.dynamics  # noqa: F401
        import cellpose.models  # noqa: F401
    except ImportError as exc:
        raise CellposeUnavailableError(
            "the cellpose backend needs cellpose >= 4 and torch: pip install "
            f"'histo-fms[cellpose]' ({exc})") from exc
    return cellpose


_MODEL_CACHE: dict[tuple[str, bool], Any] = {}


def load_model(model: str = "cpsam", *, gpu: bool | str = "auto") -> Any:
    """Load (once per process) a cellpose model after validating its name or path.

    Parameters
    ----------
    model : str
        ``"cpsam"`` or a weights path.
    gpu : bool or "auto"
        Use the GPU when present (``"auto"``), always, or never.

    Returns
    -------
    cellpose.models.CellposeModel
        The loaded model.

    Raises
    ------
    CellposeUnavailableError
        cellpose missing, unknown model, or weights not downloadable (offline).
    """
    kind, path = resolve_model(model)
    cp = _import_cellpose()
    use_gpu = cp.core.use_gpu() if gpu == "auto" else bool(gpu)
    key = (str(path or model), use_gpu)
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    try:
        net = cp.models.CellposeModel(gpu=use_gpu,
                                      pretrained_model=str(path) if path else str(model))
    except Exception as exc:  # noqa: BLE001 - network / hub errors vary
        if kind == "builtin" and path is None:
            raise CellposeUnavailableError(
                f"cellpose weights {model!r} are not in {models_dir()} and could not be "
                "downloaded (offline?). On a machine with internet run `histo-fms "
                "cellpose-fetch` and copy the folder, or set CELLPOSE_LOCAL_MODELS_PATH "
                f"to a folder that has them ({type(exc).__name__}: {exc})") from exc
        raise CellposeUnavailableError(f"cannot load cellpose model {model!r}: {exc}") from exc
    _MODEL_CACHE[key] = net
    return net


def preflight(options: dict) -> None:
    """Check, before a batch starts, that cellpose imports and the model name is valid.

    Parameters
    ----------
    options : dict
        The ``segmentation_options`` of the config.

    Raises
    ------
    CellposeUnavailableError
        What is missing and how to get it.
    """
    model = options.get("model", "cpsam")
    kind, path = resolve_model(model)
    _import_cellpose()
    if kind == "builtin" and path is None:
        load_model(model, gpu=False)  # downloads once, or fails with how to get the weights


def fetch_cellpose_weights(model: str = "cpsam") -> Path:
    """Download a built-in model's weights into the cellpose model folder, once.

    Run it on a machine with internet, then copy the folder to offline HPC nodes (or
    point ``CELLPOSE_LOCAL_MODELS_PATH`` at a shared copy).

    Parameters
    ----------
    model : str
        Built-in model name.

    Returns
    -------
    Path
        The weights file.
    """
    if model not in builtin_models():
        raise CellposeUnavailableError(f"{model!r} is not a built-in cellpose model")
    load_model(model, gpu=False)
    p = models_dir() / model
    if not p.exists():
        raise CellposeUnavailableError(f"cellpose did not write {p}")
    return p


def segment_cellpose(
    image: np.ndarray,
    *,
    pixel_size_um: float,
    model: str = "cpsam",
    diameter_um: float | None = None,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
    dark_level: float | None = None,
    gpu: bool | str = "auto",
    flow_threshold: float = 0.4,
    cellprob_threshold: float = 0.0,
    batch_size: int = 8,
    **_ignored: Any,
) -> np.ndarray:
    """Segment neuron somata with cellpose.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Neuron-marker channel.
    pixel_size_um : float
        Pixel size in µm.
    model : str
        ``"cpsam"`` or a local weights path.
    diameter_um : float, optional
        Typical neuron diameter in µm (default: the mean of the min and max diameters).
    min_diameter_um, max_diameter_um : float
        Masks outside this equivalent-diameter range are dropped.
    dark_level : float, optional
        Camera offset subtracted before normalisation.
    gpu : bool or "auto"
        GPU use.
    flow_threshold, cellprob_threshold : float
        cellpose's mask thresholds.
    batch_size : int
        Network batch size.

    Returns
    -------
    ndarray of int32
        Labels, 0 background, 1..n in raster order.
    """
    net = load_model(model, gpu=gpu)
    d_um = diameter_um if diameter_um is not None else 0.5 * (min_diameter_um + max_diameter_um)
    img = normalize_image(image, dark_level=dark_level)
    res = net.eval(img, diameter=diameter_px(d_um, pixel_size_um), normalize=False,
                   flow_threshold=flow_threshold, cellprob_threshold=cellprob_threshold,
                   batch_size=batch_size)
    masks = res[0]
    return clean_masks(masks, pixel_size_um=pixel_size_um, min_diameter_um=min_diameter_um,
                       max_diameter_um=max_diameter_um)
