"""Train the pixel-classifier backend from image files and annotation files.

The file-level layer of ``histo-fms train-pixels`` (and the napari widget's save):
images are read with the project's reader, channel roles resolved as in a run, each
channel normalised by the section's :class:`histo_fms.drg.DrgContext` levels (as
``histo-fms run`` does), and :func:`histo_fms.segment._pixel_classifier.train_pixel_classifier`
trains on the annotated pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import PipelineConfig, load_config
from .io import (
    InputError,
    read_annotation,
    read_image,
    read_plane,
    require_pixel_size,
    resolve_channels,
)
from .segment._model_io import ModelError, read_metadata
from .segment._pixel_annotations import annotations_from_outlines
from .segment._pixel_classifier import (
    FEATURE_ROLES,
    PixelClassifier,
    train_pixel_classifier,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "pipelines" / "drg_sgc_igg.yaml"
#: channel names of ``pipelines/drg_sgc_igg.yaml`` (used when it is not installed)
DEFAULT_CHANNELS = {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"}


@dataclass
class TrainedModel:
    """What ``train-pixels`` reports.

    Attributes
    ----------
    model : PixelClassifier
        The model.
    path : Path
        Where it was saved.
    pixel_counts : dict
        Annotated pixels per class name, over all annotations.
    oob_accuracy : float
        Out-of-bag accuracy of the forest on the annotated pixels.
    """

    model: PixelClassifier
    path: Path
    pixel_counts: dict[str, int]
    oob_accuracy: float


def section_levels(channels: Mapping[str, np.ndarray], pixel_size_um: float,
                   cfg: PipelineConfig | None = None) -> dict[str, tuple[float, float]]:
    """Per role (dark level, 99.5th percentile above it), as a run's context has them.

    Parameters
    ----------
    channels : mapping of str to ndarray
        Role -> 2-D channel.
    pixel_size_um : float
        Pixel size in µm.
    cfg : PipelineConfig, optional
        DRG config (its ``dark_level``).

    Returns
    -------
    dict
        Role -> (dark level, intensity scale).
    """
    from .drg import compute_context

    params = cfg.params() if cfg is not None and cfg.pipeline == "drg" else None
    ctx = compute_context(channels, pixel_size_um=pixel_size_um, params=params,
                          lipofuscin=False)
    return {r: (float(ctx.dark_levels[r]), float(ctx.highs[r])) for r in channels}


def _resolve(img, mapping: Mapping[str, str | int], strict: set[str]) -> dict[str, int]:
    """Role -> channel index; optional roles of the default config may be absent."""
    mapping = {r: v for r, v in mapping.items() if r in FEATURE_ROLES}
    idx = resolve_channels(img.channel_names, {"neuron": mapping.get("neuron", "")},
                           required=["neuron"], path=img.path)
    for role in FEATURE_ROLES[1:]:
        if role not in mapping:
            continue
        try:
            idx.update(resolve_channels(img.channel_names, {role: mapping[role]},
                                        required=[], optional=[role], path=img.path))
        except InputError:
            if role in strict:
                raise
    return idx


def _check_out(out: Path) -> Path:
    p = out if out.name.endswith(".npz") else out.with_name(out.name + ".npz")
    if p.exists():
        if p.is_dir():
            raise InputError(p, "is a folder; give a model file name (e.g. model.npz)")
        try:
            read_metadata(p)
        except ModelError:
            raise InputError(p, "exists and is not a histo-fms pixel-classifier model; "
                             "not overwritten (choose another --out)") from None
    return p


def train_pixels(
    images: Sequence[str | Path],
    annotations: Sequence[str | Path],
    out: str | Path,
    *,
    config: str | Path | None = None,
    channels: Mapping[str, str | int] | None = None,
    pixel_size_um: float | None = None,
    n_estimators: int = 64,
    random_state: int = 0,
    outlines: bool = False,
    dense: bool | None = None,
    n_jobs: int | None = -1,
) -> TrainedModel:
    """Train a pixel classifier from image files and their annotation TIFFs and save it.

    Parameters
    ----------
    images : sequence of path
        Image files (any format ``histo-fms run`` reads).
    annotations : sequence of path
        One uint8 TIFF (or PNG) per image, its Y x X: 0 unlabelled, 1 background,
        2 neuron, 3 SGC sheath (optional).
    out : path
        Model file (``.npz`` appended when missing).
    config : path, optional
        DRG config for channel names, image options and pixel size (default
        ``pipelines/drg_sgc_igg.yaml``).
    channels : mapping, optional
        Role -> channel name or index, over the config's.
    pixel_size_um : float, optional
        Pixel size in µm, over the files' metadata.
    n_estimators : int
        Trees in the forest.
    random_state : int
        Seed.
    outlines : bool
        The annotation files are neuron outlines instead of classes: label images (one
        value per neuron) or binary masks (one neuron per connected component) of
        **every** neuron in the image, as ``histo-fms validate`` reads references.
        They are turned into classes by
        :func:`histo_fms.segment._pixel_annotations.annotations_from_outlines`
        (neuron inside, SGC sheath -- background without an ``sgc`` channel -- in the
        2 µm outside each outline and between touching neurons, background elsewhere).
    dense : bool, optional
        Class annotations only: whether they are dense neuron masks (every neuron pixel
        2, every other pixel 1, no sheath class), read as outlines -- merged neurons
        split at their necks, the outline edges unlabelled, the band outside each
        neuron taught as SGC sheath when there is an ``sgc`` channel. Default: each
        annotation that is one (``train_pixel_classifier(dense=None)``); ``False``
        trains on the annotations as drawn.
    n_jobs : int, optional
        Threads for fitting the forest (default all cores; the model does not depend on
        it).

    Returns
    -------
    TrainedModel
        The model, its path, per-class pixel counts and out-of-bag accuracy.

    Raises
    ------
    InputError
        Unreadable image or annotation, annotation of the wrong shape or without
        background or neuron pixels, unmappable channels, or an existing ``out``
        that is not a model (one line naming the file).
    """
    images, annotations = list(images), list(annotations)
    if len(images) != len(annotations) or not images:
        raise InputError(annotations[0] if annotations else "<annotations>",
                         f"need one annotation per image: {len(images)} image(s), "
                         f"{len(annotations)} annotation(s)")
    out_p = _check_out(Path(out))
    overrides: dict = {}
    if channels:
        overrides["channels"] = dict(channels)
    if pixel_size_um is not None:
        overrides["pixel_size_um"] = float(pixel_size_um)
    if config is None and not DEFAULT_CONFIG.is_file():  # installed without pipelines/
        overrides["channels"] = {**DEFAULT_CHANNELS, **overrides.get("channels", {})}
        cfg = load_config(None, pipeline="drg", overrides=overrides)
    else:
        cfg = load_config(config if config is not None else DEFAULT_CONFIG,
                          overrides=overrides)
    if cfg.pipeline != "drg":
        raise InputError(config, "train-pixels needs a DRG config (pipeline: drg)")
    chans_all, anns, pxs, levels = [], [], [], []
    for ip, ap in zip(images, annotations, strict=True):
        img = read_image(ip, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        px = require_pixel_size(img)
        idx = _resolve(img, cfg.channels, strict=set(channels or {}) | (
            set(cfg.channels) if config is not None else set()))
        ch = {r: np.asarray(img.data[i].compute()) for r, i in idx.items()}
        if outlines:
            anns.append(read_outlines(ap, img.shape_yx, pixel_size_um=px,
                                      sheath="sgc" in idx, image=ip))
        else:
            anns.append(read_annotation(ap, img.shape_yx, image=ip))
        chans_all.append(ch)
        pxs.append(px)
        levels.append(section_levels(ch, px, cfg))
    roles = [r for r in FEATURE_ROLES if all(r in c for c in chans_all)]
    model = train_pixel_classifier(chans_all, anns, pixel_size_um=pxs, roles=roles,
                                   levels=levels, n_estimators=n_estimators,
                                   random_state=random_state,
                                   dense=False if outlines else dense, n_jobs=n_jobs)
    model.info["images"] = [Path(p).name for p in images]
    model.info["annotations"] = "outlines" if outlines else "classes"
    path = model.save(out_p)
    return TrainedModel(model=model, path=path,
                        pixel_counts=dict(model.info["pixel_counts"]),
                        oob_accuracy=float(model.info["oob_accuracy"]))


def read_outlines(path: str | Path, shape: tuple[int, int], *, pixel_size_um: float,
                  sheath: bool = True, image: str | Path | None = None) -> np.ndarray:
    """Read a neuron-outline file and return the pixel classifier's training classes.

    Parameters
    ----------
    path : str or Path
        Label image (one value per neuron) or binary mask (one neuron per 4-connected
        component), TIFF or PNG, of every neuron of the image.
    shape : tuple of int
        The image's (Y, X).
    pixel_size_um : float
        The image's pixel size in µm.
    sheath : bool
        Label the band outside the outlines as SGC sheath (3), else background (1).
    image : str or Path, optional
        The image it outlines (named in the shape error).

    Returns
    -------
    ndarray of uint8
        0 unlabelled, 1 background, 2 neuron, 3 SGC sheath
        (:func:`histo_fms.segment._pixel_annotations.annotations_from_outlines`).

    Raises
    ------
    InputError
        Unreadable, of the wrong shape, not labels, or without any neuron (one line
        naming the file).
    """
    p = Path(path)
    a = read_plane(p)
    if a.shape != tuple(shape):
        of = f" of {Path(image).name}" if image is not None else ""
        raise InputError(p, f"outlines are {a.shape[0]} x {a.shape[1]} px but the image{of} "
                         f"is {shape[0]} x {shape[1]} (Y x X)")
    try:
        return outline_classes(a, pixel_size_um=pixel_size_um, sheath=sheath)
    except ClassAnnotationError:
        raise InputError(p, "looks like a class annotation (values 1-3 drawn as several "
                            "separate strokes each), not neuron outlines: give it without "
                            "--outlines") from None
    except ValueError as exc:
        raise InputError(p, f"not a neuron outline image: {exc}") from None


class ClassAnnotationError(ValueError):
    """An image given as neuron outlines is a class annotation (0-3 strokes)."""


def outline_classes(outlines: np.ndarray, *, pixel_size_um: float,
                    sheath: bool = True) -> np.ndarray:
    """Training classes from a neuron-outline image (array), refusing class strokes.

    The array-level step of ``train-pixels --outlines`` and of the napari widget's
    outline mode: a label image (one value per neuron) or a binary mask (one neuron
    per 4-connected component) becomes classes by
    :func:`histo_fms.segment._pixel_annotations.annotations_from_outlines`.

    Parameters
    ----------
    outlines : ndarray, shape (Y, X)
        Label image or binary mask of **every** neuron of the image.
    pixel_size_um : float
        Pixel size in µm.
    sheath : bool
        Label the band outside the outlines as SGC sheath (3), else background (1).

    Returns
    -------
    ndarray of uint8
        0 unlabelled, 1 background, 2 neuron, 3 SGC sheath.

    Raises
    ------
    ClassAnnotationError
        It looks like a class annotation (values 1-3 drawn as several strokes each):
        read as outlines its background strokes would be taught as neurons.
    ValueError
        Not a 2-D label image, or no neuron in it.
    """
    from .validation import reference_instances

    a = np.asarray(outlines)
    if _looks_like_classes(a):
        raise ClassAnnotationError("looks like a class annotation (values 1-3 drawn as "
                                   "several separate strokes each), not neuron outlines")
    lab = reference_instances(a)
    return annotations_from_outlines(lab, pixel_size_um=pixel_size_um, sheath=sheath)


def _looks_like_classes(a: np.ndarray) -> bool:
    """Whether an "outline" image is a class annotation (0-3 strokes) given by mistake.

    A label image has one connected region per neuron and a binary mask one value; a
    class annotation has at least two of the values 1, 2, 3 and some value drawn as
    several separate strokes. Read as outlines it would turn background strokes into
    "neurons" and train a wrong model without any error.
    """
    from scipy import ndimage as ndi

    if not np.issubdtype(a.dtype, np.integer) and a.dtype != bool:
        return False
    vals = np.unique(a)
    vals = vals[vals != 0]
    if len(vals) < 2 or not set(vals.tolist()) <= {1, 2, 3}:
        return False
    return any(ndi.label(a == v)[1] > 1 for v in vals)
