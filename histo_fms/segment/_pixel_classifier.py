"""Trainable pixel classifier for neuron somata (features + random forest + watershed).

As ilastik's and QuPath's pixel classifiers: every channel role present (``neuron``,
``sgc``, ``nuclei``) gives multi-scale features
(:func:`skimage.feature.multiscale_basic_features`: Gaussian intensity, gradient
magnitude, Hessian eigenvalues) at Gaussian scales fixed **in µm**; gradient and
Hessian features are scale-normalised (times sigma and sigma squared in pixels), so
they are the same numbers at any pixel size and a model trained at 0.5 µm/px applies
at 0.9 µm/px. A random forest (scikit-learn) learns the classes of sparsely annotated
pixels: 1 background (anything that is not a neuron), 2 neuron, 3 SGC sheath
(optional). Neurons are then separated into instances: the neuron-probability
foreground (the sheath class, where trained, is not foreground, so it parts
neighbours), seeds at the maxima of its distance transform, a watershed on the
distance, and a diameter filter.

Select it in a DRG config::

    drg:
      segmentation_backend: pixel_classifier
      segmentation_options: {model: models/drg.npz}

Channels are normalised by their camera offset and 99.5th percentile (the section's
:class:`histo_fms.drg.DrgContext` in the pipeline, so tiles equal the whole image).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .._numerics._background import smooth_for_stats
from .._numerics._quantiles import quantised_quantiles
from ._classical import canonical_labels
from ._model_io import Forest, ModelError, load_model, read_metadata, save_model
from ._objects import fill_small_holes

#: annotation values
UNLABELLED, BACKGROUND, NEURON, SHEATH = 0, 1, 2, 3
CLASS_NAMES = {BACKGROUND: "background", NEURON: "neuron", SHEATH: "sgc_sheath"}
#: roles the classifier uses, in feature order
FEATURE_ROLES = ("neuron", "sgc", "nuclei")
#: Gaussian truncation of scikit-image's filters (radius = 4 sigma)
_TRUNCATE = 4.0
#: The soma shape test of the instance split (and of dense-mask training annotations):
#: smallest solidity and largest axis ratio of a single soma.
MIN_SOLIDITY = 0.85
MAX_ELONGATION = 2.2


@dataclass(frozen=True)
class FeatureSettings:
    """Multi-scale feature settings (scales in µm).

    Attributes
    ----------
    sigma_min_um, sigma_max_um : float
        Smallest and largest Gaussian scale in µm.
    num_sigma : int
        Number of scales, spaced geometrically.
    intensity, edges, texture : bool
        Which feature families (as :func:`skimage.feature.multiscale_basic_features`).
    local_std : bool
        Also the local standard deviation of the normalised channel in a Gaussian
        window of each scale (punctate axon fields vary, homogeneous cytoplasm does
        not). Off by default: on the benchmarks of ``benchmarks/pixel_classifier_real.py``
        it did not help (2026-12-01). Model files
        written before this feature existed lack the key and load with it off.
    """

    sigma_min_um: float = 1.0
    sigma_max_um: float = 16.0
    num_sigma: int = 5
    intensity: bool = True
    edges: bool = True
    texture: bool = True
    local_std: bool = False

    @classmethod
    def from_metadata(cls, features: Mapping[str, Any]) -> FeatureSettings:
        """Return the settings of a model file's ``features`` metadata.

        Files written before ``local_std`` existed lack it: it is off for them.
        """
        f = dict(features)
        f.pop("per_role", None)
        f.setdefault("local_std", False)
        return cls(**f)

    @property
    def per_sigma(self) -> int:
        """Return the number of features per scale and channel."""
        return (int(self.intensity) + int(self.edges) + 2 * int(self.texture)
                + int(self.local_std))

    @property
    def per_role(self) -> int:
        """Return the number of features per channel role."""
        return self.per_sigma * self.num_sigma

    def sigmas_um(self) -> np.ndarray:
        """Return the Gaussian scales in µm."""
        return np.logspace(np.log2(self.sigma_min_um), np.log2(self.sigma_max_um),
                           num=self.num_sigma, base=2, endpoint=True)

    def radius_um(self) -> float:
        """Return how far (µm) a pixel's features reach."""
        return _TRUNCATE * float(self.sigma_max_um)

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min_um <= self.sigma_max_um:
            raise ValueError("need 0 < sigma_min_um <= sigma_max_um")
        if self.num_sigma < 1 or self.per_sigma == 0 or not (
                self.intensity or self.edges or self.texture):
            raise ValueError("need num_sigma >= 1 and at least one feature family")


@dataclass
class PixelClassifier:
    """A trained pixel classifier: forest, feature settings and what it was trained on.

    Attributes
    ----------
    forest : Forest
        The random forest as arrays.
    roles : list of str
        Channel roles of the features, in order.
    classes : list of int
        Annotation classes the forest's outputs stand for (1 background, 2 neuron,
        3 SGC sheath).
    features : FeatureSettings
        Feature settings.
    pixel_size_um : float
        Pixel size the model was trained at.
    info : dict
        Training summary (pixel counts, out-of-bag accuracy, library versions).
    path : Path or None
        File it was loaded from or saved to.
    """

    forest: Forest
    roles: list[str]
    classes: list[int]
    features: FeatureSettings
    pixel_size_um: float
    info: dict
    path: Path | None = None

    def metadata(self) -> dict[str, Any]:
        """Return the JSON metadata saved with the model."""
        return {"roles": list(self.roles), "classes": [int(c) for c in self.classes],
                "class_names": [CLASS_NAMES[c] for c in self.classes],
                "features": {**asdict(self.features), "per_role": self.features.per_role},
                "pixel_size_um": float(self.pixel_size_um),
                "normalisation": "(x - dark level) / (99.5th percentile - dark level), of "
                                 "the smoothed channel",
                **self.info}

    def save(self, path: str | os.PathLike) -> Path:
        """Save the model (no pickle) and return the file written."""
        self.path = save_model(path, self.forest, self.metadata())
        return self.path

    def check_roles(self, roles: Sequence[str]) -> None:
        """Raise :class:`ModelError` when a role the model needs is not in ``roles``."""
        missing = [r for r in self.roles if r not in set(roles)]
        if missing:
            raise ModelError(self.path or "<model>",
                             f"model was trained on channel roles {self.roles}; this image "
                             f"lacks {missing} (map them with --channel or the config's "
                             "channels:, or retrain)")


def load_pixel_classifier(path: str | os.PathLike, *, roles: Sequence[str] | None = None
                          ) -> PixelClassifier:
    """Load a model file written by :meth:`PixelClassifier.save`.

    Parameters
    ----------
    path : str or path-like
        Model file (``.npz``; never unpickled).
    roles : sequence of str, optional
        Channel roles available; each role of the model must be among them.

    Returns
    -------
    PixelClassifier
        The model.

    Raises
    ------
    ModelError
        Not a model, edited, another format version, or missing channel roles (one
        line naming the file).
    """
    forest, meta = load_model(path, roles=roles)
    p = Path(path)
    try:
        feats = FeatureSettings.from_metadata(meta["features"])
        classes = [int(c) for c in meta["classes"]]
        roles_m = [str(r) for r in meta["roles"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(p, f"bad model metadata ({exc})") from None
    if not set(roles_m) <= set(FEATURE_ROLES) or not roles_m or roles_m[0] != "neuron":
        raise ModelError(p, f"bad channel roles {roles_m}")
    if sorted(classes) != classes or not {BACKGROUND, NEURON} <= set(classes) or not set(
            classes) <= set(CLASS_NAMES):
        raise ModelError(p, f"bad class list {classes}")
    info = {k: v for k, v in meta.items()
            if k not in ("roles", "classes", "class_names", "features", "pixel_size_um",
                         "normalisation")}
    return PixelClassifier(forest=forest, roles=roles_m, classes=classes, features=feats,
                           pixel_size_um=float(meta["pixel_size_um"]), info=info, path=p)


def channel_levels(image: np.ndarray) -> tuple[float, float]:
    """Camera offset and intensity scale of a channel, as :func:`histo_fms.drg.compute_context`.

    Parameters
    ----------
    image : ndarray
        2-D channel.

    Returns
    -------
    dark, scale : float
        0.5th percentile of the smoothed channel, and its 99.5th percentile above that
        (``DrgContext.dark_levels`` and ``DrgContext.highs``).
    """
    g = smooth_for_stats(image)
    if g.size == 0:
        return 0.0, 0.0
    dark, high = quantised_quantiles(g, [0.005, 0.995])
    return float(dark), max(float(high) - float(dark), 0.0)


def _normalised(image: np.ndarray, level: tuple[float, float] | None) -> np.ndarray:
    img = np.asarray(image, np.float32)
    dark, high = channel_levels(img) if level is None else (float(level[0]), float(level[1]))
    scale = high if high > 0 else max(float(np.max(img)) - dark, 1.0) if img.size else 1.0
    return (img - np.float32(dark)) / np.float32(scale)


def pixel_features(
    channels: Mapping[str, np.ndarray],
    *,
    pixel_size_um: float,
    roles: Sequence[str],
    settings: FeatureSettings | None = None,
    levels: Mapping[str, tuple[float, float]] | None = None,
    workers: int | None = 1,
) -> np.ndarray:
    """Multi-scale pixel features of the given channel roles (scales in µm).

    Parameters
    ----------
    channels : mapping of str to ndarray
        Role -> 2-D channel, one shape.
    pixel_size_um : float
        Pixel size in µm.
    roles : sequence of str
        Roles to use, in this order.
    settings : FeatureSettings, optional
        Feature settings (default :class:`FeatureSettings`).
    levels : mapping, optional
        Role -> (dark level, intensity scale) used to normalise the channel (default: from the
        channel itself, :func:`channel_levels`).
    workers : int, optional
        Threads for :func:`skimage.feature.multiscale_basic_features`.

    Returns
    -------
    ndarray of float32, shape (Y, X, n_features)
        Features; :attr:`FeatureSettings.per_role` per role.
    """
    s = settings or FeatureSettings()
    px = float(pixel_size_um)
    if not px > 0:
        raise ValueError("pixel_size_um must be positive")
    sig = s.sigmas_um() / px
    feats = []
    for role in roles:
        if role not in channels:
            raise ValueError(f"channel role {role!r} is missing")
        x = _normalised(channels[role], (levels or {}).get(role))
        f = _msb(x, s, sig, workers)
        feats.append(f)
    return np.concatenate(feats, axis=-1)


def _msb(x: np.ndarray, s: FeatureSettings, sig: np.ndarray, workers: int | None
         ) -> np.ndarray:
    """Features of one normalised channel (``sig``: scales in pixels)."""
    from skimage.feature import multiscale_basic_features

    f = multiscale_basic_features(x, intensity=s.intensity, edges=s.edges,
                                  texture=s.texture, sigma_min=float(sig[0]),
                                  sigma_max=float(sig[-1]), num_sigma=s.num_sigma,
                                  workers=workers)
    f = np.asarray(f, np.float32)
    # scale-normalise: gradients x sigma, Hessian eigenvalues x sigma^2 (pixels),
    # so every feature is independent of the pixel size
    k = 0
    for si in sig:
        if s.intensity:
            k += 1
        if s.edges:
            f[..., k] *= np.float32(si)
            k += 1
        if s.texture:
            f[..., k:k + 2] *= np.float32(si * si)
            k += 2
    if not s.local_std:
        return f
    # local standard deviation (the channel is in units of the section's intensity scale)
    extra = np.empty(x.shape + (sig.size,), np.float32)
    x2 = x * x
    for i, si in enumerate(sig):
        m = ndi.gaussian_filter(x, float(si), truncate=_TRUNCATE)
        v = ndi.gaussian_filter(x2, float(si), truncate=_TRUNCATE) - m * m
        extra[..., i] = np.sqrt(np.maximum(v, 0))
    return np.concatenate([f, extra], axis=-1)


def _versions() -> dict[str, str]:
    import scipy
    import skimage
    import sklearn

    from .. import __version__

    return {"histo_fms": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-image": skimage.__version__, "scikit-learn": sklearn.__version__,
            "python": platform.python_version()}


def check_annotation(annotation: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Validate an annotation image (0 unlabelled, 1 background, 2 neuron, 3 sheath).

    Parameters
    ----------
    annotation : ndarray
        Integer image.
    shape : tuple of int
        The image's (Y, X).

    Returns
    -------
    ndarray of uint8
        The annotation.

    Raises
    ------
    ValueError
        Wrong shape, non-integer values, or values outside 0-3.
    """
    a = np.asarray(annotation)
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
        a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:-1])
    if a.shape != tuple(shape):
        raise ValueError(f"annotation has shape {a.shape}, the image is {tuple(shape)} (Y x X)")
    if not np.issubdtype(a.dtype, np.integer) and not np.issubdtype(a.dtype, np.bool_):
        if not np.all(np.mod(a, 1) == 0):
            raise ValueError(f"annotation must hold integer classes, got {a.dtype}")
    bad = (a < 0) | (a > SHEATH)
    if np.any(bad):
        vals = sorted(np.unique(a[bad]).tolist())[:5]
        raise ValueError(f"annotation values must be 0-3 (0 unlabelled, 1 background, "
                         f"2 neuron, 3 SGC sheath), found {vals}")
    return a.astype(np.uint8)


def train_pixel_classifier(
    images: Sequence[Mapping[str, np.ndarray]],
    annotations: Sequence[np.ndarray],
    *,
    pixel_size_um: float | Sequence[float],
    roles: Sequence[str] | None = None,
    settings: FeatureSettings | None = None,
    levels: Sequence[Mapping[str, tuple[float, float]] | None] | None = None,
    n_estimators: int = 64,
    max_depth: int | None = 16,
    min_samples_leaf: int = 3,
    max_samples_per_class: int = 40000,
    random_state: int = 0,
    n_jobs: int | None = 1,
    dense: bool | None = None,
) -> PixelClassifier:
    """Train a random-forest pixel classifier from sparse annotations.

    Parameters
    ----------
    images : sequence of mapping
        One mapping role -> 2-D channel per image (``neuron`` required; ``sgc`` and
        ``nuclei`` used when present in every image).
    annotations : sequence of ndarray
        One uint8 image per image, same Y x X: 0 unlabelled, 1 background, 2 neuron,
        3 SGC sheath (optional).
    pixel_size_um : float or sequence of float
        Pixel size of each image in µm (one value for all).
    roles : sequence of str, optional
        Roles to use (default: those of :data:`FEATURE_ROLES` present in every image).
    settings : FeatureSettings, optional
        Feature settings.
    levels : sequence, optional
        Per image, role -> (dark level, intensity scale) (default from each channel).
    n_estimators, max_depth, min_samples_leaf : int
        Forest settings (scikit-learn's ``RandomForestClassifier``).
    max_samples_per_class : int
        Annotated pixels per class used, at most (a random subset beyond).
    random_state : int
        Seed (subsampling and forest).
    n_jobs : int, optional
        Threads for training.
    dense : bool, optional
        Whether the annotations are dense neuron masks (every neuron pixel 2, the rest
        1, no sheath class: a reference mask written as classes). Default: each
        annotation that is one (:func:`~._pixel_annotations.is_dense_mask`). A dense
        mask is read as neuron outlines
        (:func:`~._pixel_annotations.classes_from_dense`): merged neurons split at their
        necks, the outline edges unlabelled and, with an ``sgc`` role, the band outside
        each neuron taught as SGC sheath -- the rim that then parts touching somata.

    Returns
    -------
    PixelClassifier
        The model; ``info`` holds per-class pixel counts (after any dense-mask
        conversion), the out-of-bag accuracy, and ``dense_masks`` (how many
        annotations were read as dense masks).

    Raises
    ------
    ValueError
        Bad annotation (shape or values; the message says which image), or no pixel
        of background (1) or neuron (2) in all annotations together.
    """
    from sklearn.ensemble import RandomForestClassifier

    if len(images) != len(annotations) or not images:
        raise ValueError("need one annotation per image, and at least one image")
    pxs = ([float(pixel_size_um)] * len(images) if np.ndim(pixel_size_um) == 0
           else [float(p) for p in pixel_size_um])
    if len(pxs) != len(images) or not all(p > 0 for p in pxs):
        raise ValueError("need one positive pixel size per image")
    s = settings or FeatureSettings()
    if roles is None:
        roles = [r for r in FEATURE_ROLES if all(r in im for im in images)]
    roles = list(roles)
    if "neuron" not in roles:
        raise ValueError("the neuron channel role is required")
    roles = [r for r in FEATURE_ROLES if r in roles]
    from ._pixel_annotations import classes_from_dense, is_dense_mask

    anns = []
    n_dense = 0
    for i, (im, a) in enumerate(zip(images, annotations, strict=True)):
        try:
            a = check_annotation(a, np.shape(im["neuron"]))
        except ValueError as exc:
            raise ValueError(f"image {i + 1}: {exc}") from None
        if (is_dense_mask(a) if dense is None else dense) and np.any(a == NEURON):
            a = classes_from_dense(a, pixel_size_um=pxs[i], sheath="sgc" in roles)
            n_dense += 1
        anns.append(a)
    counts = {c: int(sum(int(np.count_nonzero(a == c)) for a in anns)) for c in CLASS_NAMES}
    for c in (BACKGROUND, NEURON):
        if counts[c] == 0:
            raise ValueError(f"no pixel annotated as class {c} ({CLASS_NAMES[c]}); "
                             "annotate both background (1) and neurons (2)")
    classes = [c for c in CLASS_NAMES if counts[c] > 0]
    rng = np.random.default_rng(random_state)
    xs, ys = [], []
    totals = {c: counts[c] for c in classes}
    for i, (im, a) in enumerate(zip(images, anns, strict=True)):
        lev = levels[i] if levels is not None and levels[i] is not None else {
            r: channel_levels(im[r]) for r in roles}
        picked = {}
        for c in classes:
            idx = np.flatnonzero(a.ravel() == c)
            if idx.size == 0:
                continue
            # each image contributes its share of the class's sample budget
            take = int(np.ceil(max_samples_per_class * idx.size / totals[c]))
            if idx.size > take:
                idx = np.sort(rng.choice(idx, take, replace=False))
            picked[c] = idx
        for y0, y1, f in feature_strips(im, pixel_size_um=pxs[i], roles=roles, settings=s,
                                        levels=lev):
            lo, hi = y0 * a.shape[1], y1 * a.shape[1]
            for c, idx in picked.items():
                sel = idx[(idx >= lo) & (idx < hi)]
                if sel.size:
                    xs.append(f.reshape(-1, f.shape[-1])[sel - lo])
                    ys.append(np.full(sel.size, c, np.int64))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    rf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                min_samples_leaf=min_samples_leaf, oob_score=True,
                                class_weight="balanced_subsample", n_jobs=n_jobs,
                                random_state=random_state, max_features="sqrt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few samples: some lack OOB votes
        rf.fit(x, y)
    if [int(c) for c in rf.classes_] != classes:  # pragma: no cover - sklearn sorts
        raise RuntimeError("unexpected class order")
    forest = Forest.from_sklearn(rf)
    info = {"pixel_counts": {CLASS_NAMES[c]: counts[c] for c in CLASS_NAMES},
            "training_samples": int(y.size), "oob_accuracy": float(rf.oob_score_),
            "n_images": len(images), "dense_masks": n_dense,
            "forest": {"n_estimators": n_estimators, "max_depth": max_depth,
                       "min_samples_leaf": min_samples_leaf},
            "versions": _versions()}
    return PixelClassifier(forest=forest, roles=roles, classes=classes, features=s,
                           pixel_size_um=float(np.median(pxs)), info=info)


def predict_probabilities(
    model: PixelClassifier,
    channels: Mapping[str, np.ndarray],
    *,
    pixel_size_um: float,
    levels: Mapping[str, tuple[float, float]] | None = None,
    strip_px: int = 1 << 20,
) -> np.ndarray:
    """Class probabilities of every pixel.

    Features are computed and classified in horizontal strips padded by the
    features' reach (the result is the same as for the whole image at once), so
    memory stays near ``strip_px`` pixels of features whatever the image size.

    Parameters
    ----------
    model : PixelClassifier
        Trained model.
    channels : mapping of str to ndarray
        Role -> 2-D channel (every role of the model).
    pixel_size_um : float
        Pixel size of these channels in µm.
    levels : mapping, optional
        Role -> (dark level, intensity scale), default from each whole channel.
    strip_px : int
        About how many pixels (padding included) of features are held at a time.

    Returns
    -------
    ndarray of float32, shape (Y, X, n_classes)
        Probabilities in the order of ``model.classes``.
    """
    model.check_roles(list(channels))
    chans = {r: np.asarray(channels[r]) for r in model.roles}
    shape = chans["neuron"].shape
    if levels is None:
        levels = {r: channel_levels(a) for r, a in chans.items()}
    ny, nx = shape
    out = np.empty((ny, nx, len(model.classes)), np.float32)
    for y0, y1, f in feature_strips(chans, pixel_size_um=pixel_size_um, roles=model.roles,
                                    settings=model.features, levels=levels,
                                    strip_px=strip_px):
        out[y0:y1] = model.forest.predict_proba(
            f.reshape(-1, f.shape[-1])).reshape(y1 - y0, nx, -1)
    return out


def feature_strips(
    channels: Mapping[str, np.ndarray],
    *,
    pixel_size_um: float,
    roles: Sequence[str],
    settings: FeatureSettings,
    levels: Mapping[str, tuple[float, float]],
    strip_px: int = 1 << 20,
):
    """Yield ``(y0, y1, features)`` of horizontal strips, each computed with padding.

    The padding is the Gaussian radius of the largest scale plus the gradients' reach,
    so each strip's features equal those of :func:`pixel_features` on the whole image.

    Parameters
    ----------
    channels : mapping of str to ndarray
        Role -> 2-D channel.
    pixel_size_um : float
        Pixel size in µm.
    roles : sequence of str
        Roles, in feature order.
    settings : FeatureSettings
        Feature settings.
    levels : mapping
        Role -> (dark level, intensity scale) of the whole channels.
    strip_px : int
        About how many pixels (padding included) per strip.

    Yields
    ------
    tuple
        First and last-plus-one row, and features of shape (y1 - y0, X, n_features).
    """
    ny, nx = np.shape(channels[roles[0]])
    pad = int(_TRUNCATE * settings.sigma_max_um / float(pixel_size_um) + 0.5) + 3
    rows = max(2 * pad, int(strip_px) // max(nx, 1) - 2 * pad, 1)
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        a0, a1 = max(0, y0 - pad), min(ny, y1 + pad)
        f = pixel_features({r: np.asarray(channels[r])[a0:a1] for r in roles},
                           pixel_size_um=pixel_size_um, roles=roles, settings=settings,
                           levels=levels)
        yield y0, y1, f[y0 - a0:y1 - a0]


def separate_instances(
    neuron_prob: np.ndarray,
    *,
    pixel_size_um: float,
    sheath_prob: np.ndarray | None = None,
    background_prob: np.ndarray | None = None,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
    smooth_um: float = 1.0,
    seed_h_um: float | None = None,
    fill_holes: bool = True,
    split: str = "levels",
    min_solidity: float = MIN_SOLIDITY,
    max_elongation: float = MAX_ELONGATION,
    grow_um: float = 4.0,
) -> np.ndarray:
    """Neuron instances from a neuron-probability map.

    The margin ``q`` of the (smoothed) neuron probability over every other class's
    (over 0.5 with no others) is thresholded at a ladder of levels (0, 0.1, ... 0.8).
    With ``split="levels"`` (default) the components form a tree (a component at a
    higher level lies inside one at a lower level); from the lowest level down, a
    component is kept as a neuron when it is soma-like -- equivalent diameter (holes
    up to a third of its area filled: a pale or dark nucleus) within
    ``[min_diameter_um, max_diameter_um]``, solidity at least ``min_solidity`` and
    axis ratio at most ``max_elongation`` -- unless two or more soma-like components
    at higher levels cover half of it (touching somata, parted by the probability
    valley between them or the sheath class); components that are not soma-like
    (merged somata, axon bundles, fragments) are replaced by their soma-like
    descendants, or dropped; a soma-like component whose distance transform has a
    waist parting it into soma-like halves (two touching somata of saturated
    probability) is parted there. With a sheath class (``sheath_prob``), the SGC sheath
    decides what parts two somata: the soma-like parts of a soma-like component are
    kept apart only when the sheath class beats background along at least half of the
    line where they meet (else they are one soma that its dark nucleus cut at the
    higher levels), and after the growth two neighbouring neurons that meet where no
    sheath lies are joined when their union is soma-like and rounder than either. The
    kept components are grown back to the ``q > 0`` foreground by a watershed on
    ``-q``, at most ``grow_um`` beyond themselves.
    ``split="distance"`` is the earlier method: seeds at the h-maxima
    (``seed_h_um``) of the distance transform of the ``q > 0`` foreground, a
    watershed on the distance. Either way objects whose equivalent diameter is outside
    ``[min_diameter_um, max_diameter_um]`` are removed.

    Parameters
    ----------
    neuron_prob : ndarray, shape (Y, X)
        Probability of the neuron class.
    pixel_size_um : float
        Pixel size in µm.
    sheath_prob, background_prob : ndarray, optional
        Probabilities of the SGC-sheath and background classes.
    min_diameter_um, max_diameter_um : float
        Accepted equivalent diameters.
    smooth_um : float
        Gaussian smoothing of the probabilities (µm).
    seed_h_um : float, optional
        ``split="distance"``: height (µm of distance) a maximum must rise above its
        saddle to seed a neuron (default a sixth of ``min_diameter_um``).
    fill_holes : bool
        Fill holes (a nucleus) of each neuron.
    split : {"levels", "distance"}
        Instance separation method (see above).
    min_solidity, max_elongation : float
        ``split="levels"``: shape a component needs to count as a soma.
    grow_um : float
        ``split="levels"``: how far (µm) a kept component may grow back.

    Returns
    -------
    ndarray of int32
        Labels 1..n in raster order of each neuron's first pixel.
    """
    px = float(pixel_size_um)
    sm = max(smooth_um / px, 0.0)

    def _s(p: np.ndarray | None) -> np.ndarray | None:
        if p is None:
            return None
        p = np.asarray(p, np.float32)
        return ndi.gaussian_filter(p, sm) if sm > 0.3 else p

    pn, ps, pb = _s(neuron_prob), _s(sheath_prob), _s(background_prob)
    others = [q for q in (ps, pb) if q is not None]
    q = pn - (np.maximum.reduce(others) if others else np.float32(0.5))
    if split == "distance":
        labels = _split_distance(q > 0, px, min_diameter_um, max_diameter_um, seed_h_um,
                                 fill_holes)
    elif split == "levels":
        sheath_line = (ps > pb) if (_SHEATH_PARTS and ps is not None and pb is not None) else None
        labels = _split_levels(q, px, min_diameter_um, max_diameter_um, fill_holes,
                               min_solidity, max_elongation, grow_um, sheath_line)
    else:
        raise ValueError(f"split must be 'levels' or 'distance', got {split!r}")
    areas = np.bincount(labels.ravel())
    d = 2.0 * np.sqrt(areas * px * px / np.pi)
    keep = (d >= min_diameter_um) & (d <= max_diameter_um)
    keep[0] = False
    labels = np.where(keep[labels], labels, 0)
    return canonical_labels(labels)


#: thresholds of the probability margin (``split="levels"``)
_LEVELS = tuple(np.round(np.arange(0.0, 0.91, 0.1), 2))
#: holes up to this fraction of a component's filled area are its nucleus
_NUCLEUS_FRACTION = 1.0 / 3.0


def _shape_ok(mask: np.ndarray, px: float, min_d: float, max_d: float, fill: bool,
              min_solidity: float, max_elong: float, at_border: bool = False
              ) -> tuple[bool, np.ndarray]:
    """Whether one component (its bbox crop) is soma-like, and its filled mask.

    A component at the image border (a soma cut by it) may be elongated.
    """
    from skimage.morphology import convex_hull_image

    filled = ndi.binary_fill_holes(mask) if fill else mask
    a_f = int(filled.sum())
    if fill and a_f - int(mask.sum()) > _NUCLEUS_FRACTION * a_f:
        return False, mask  # a ring of merged somata around the interstitium
    d = 2.0 * np.sqrt(a_f / np.pi) * px
    if not min_d <= d <= max_d:
        return False, filled
    yy, xx = np.nonzero(filled)
    c = np.cov(np.stack([yy, xx]).astype(float)) if yy.size > 2 else np.eye(2)
    ev = np.linalg.eigvalsh(c)
    if not at_border and (ev[0] <= 0 or np.sqrt(ev[1] / ev[0]) > max_elong):
        return False, filled
    hull = convex_hull_image(filled)
    if a_f / max(int(hull.sum()), 1) < min_solidity:
        return False, filled
    return True, filled


def _split_levels(q: np.ndarray, px: float, min_d: float, max_d: float, fill: bool,
                  min_solidity: float, max_elong: float, grow_um: float,
                  sheath_line: np.ndarray | None = None) -> np.ndarray:
    """Soma-like components of the level sets of ``q`` (see :func:`separate_instances`).

    ``sheath_line`` (where the sheath class beats background), when given, decides
    whether the soma-like parts of a soma-like component are neighbours or one soma
    parted by its own nucleus (see :func:`_parted_by_sheath`).
    """
    from skimage.segmentation import watershed

    fg = q > _LEVELS[0]
    if not fg.any():
        return np.zeros(q.shape, np.int32)
    a_min = np.pi * (min_d / 2 / px) ** 2
    a_max = np.pi * (max_d / 2 / px) ** 2
    labs, areas, slices, children = [], [], [], []
    for k, t in enumerate(_LEVELS):
        lab, n = ndi.label(q > t)
        labs.append(lab)
        areas.append(np.bincount(lab.ravel(), minlength=n + 1))
        slices.append(ndi.find_objects(lab))
        ch: dict[int, list[int]] = {}
        if k:
            flat = lab.ravel()
            idx = np.flatnonzero(flat)
            ids, first = np.unique(flat[idx], return_index=True)
            parents = labs[k - 1].ravel()[idx[first]]
            for i, pa in zip(ids.tolist(), parents.tolist(), strict=True):
                ch.setdefault(pa, []).append(i)
        children.append(ch)
    children.append({})
    memo: dict[tuple[int, int], tuple[bool, np.ndarray]] = {}

    def good(k: int, j: int) -> tuple[bool, np.ndarray]:
        if (k, j) not in memo:
            sl = slices[k][j - 1]
            memo[(k, j)] = _shape_ok(labs[k][sl] == j, px, min_d, max_d, fill,
                                     min_solidity, max_elong, _at_border(sl, q.shape))
        return memo[(k, j)]

    Piece = tuple[tuple[slice, slice], np.ndarray]

    def best(k: int, j: int) -> list[Piece]:
        # (the filled area may exceed the pixel count by a nucleus)
        if areas[k][j] < (1 - _NUCLEUS_FRACTION) * a_min:
            return []
        sub: list[Piece] = []
        if k + 1 < len(_LEVELS):
            for c in children[k + 1].get(j, []):
                sub += best(k + 1, c)
        if areas[k][j] > 4 * a_max:
            return sub
        sl = slices[k][j - 1]
        ok, filled = good(k, j) if areas[k][j] <= a_max else (False, labs[k][sl] == j)
        if not ok:
            # merged somata that no level parts: split what the parts found so far
            # leave (and their growth margin) at its necks
            rest = filled.copy()
            for psl, m in sub:
                loc = tuple(slice(a.start - b.start, a.stop - b.start)
                            for a, b in zip(psl, sl, strict=True))
                rest[loc] &= ~m
            if sub:
                rest &= ndi.distance_transform_edt(rest | ~filled) * px > grow_um
            if rest.sum() >= (1 - _NUCLEUS_FRACTION) * a_min:
                sub = sub + _rest_parts(rest, sl, px, min_d, max_d, fill, min_solidity,
                                        max_elong, q.shape)
            return sub
        covered = sum(int(m.sum()) for _, m in sub)
        if len(sub) >= 2 and covered >= 0.5 * areas[k][j] and (
                sheath_line is None or _parted_by_sheath(sub, sl, filled, q, sheath_line)):
            return sub
        return _waist_split(filled, sl, px, min_d, max_d, min_solidity, max_elong, q.shape)

    kept: list[Piece] = []
    for j in range(1, int(labs[0].max()) + 1):
        kept += best(0, j)
    markers = np.zeros(q.shape, np.int32)
    for n, (sl, m) in enumerate(kept, start=1):
        markers[sl][m & (markers[sl] == 0)] = n
    if not kept:
        return markers
    reach = ndi.distance_transform_edt(markers == 0) * px <= grow_um
    labels = watershed(-q, markers, mask=(fg & reach) | (markers > 0))
    if fill:
        labels = _fill_label_holes(labels)
    if sheath_line is not None and _MERGE_UNSHEATHED:
        labels = _merge_unsheathed(labels, sheath_line, px, min_d, max_d, fill,
                                   min_solidity, max_elong)
    return labels


def _merge_unsheathed(labels: np.ndarray, sheath_line: np.ndarray, px: float, min_d: float,
                      max_d: float, fill: bool, min_solidity: float, max_elong: float
                      ) -> np.ndarray:
    """Join neighbouring neurons that no sheath parts when together they make one soma.

    Touching somata are parted by the satellite-glial sheath; two neurons that meet
    along a line where the sheath class does not beat background on at least half of
    it, and whose union is soma-like and rounder than either of them, are the pieces
    of one soma (cut at its nucleus by the level sets or by a neck split of a merged
    cluster); two round somata touching without a sheath are each rounder than their
    union. Pairs are joined from
    the least sheathed line up; each join is checked again against the new neighbours.
    """
    out = labels.copy()
    while True:
        a = np.concatenate([out[:, :-1].ravel(), out[:-1, :].ravel()])
        b = np.concatenate([out[:, 1:].ravel(), out[1:, :].ravel()])
        s = np.concatenate([(sheath_line[:, :-1] | sheath_line[:, 1:]).ravel(),
                            (sheath_line[:-1, :] | sheath_line[1:, :]).ravel()])
        m = (a > 0) & (b > 0) & (a != b)
        if not m.any():
            return out
        lo, hi = np.minimum(a[m], b[m]), np.maximum(a[m], b[m])
        key = lo.astype(np.int64) * (int(out.max()) + 1) + hi
        keys, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        frac = np.bincount(inv, weights=s[m].astype(float)) / cnt
        order = np.argsort(frac, kind="stable")
        joined = False
        used: set[int] = set()
        slices = ndi.find_objects(out)
        for o in order:
            if frac[o] >= 0.5:
                break
            i, j = divmod(int(keys[o]), int(out.max()) + 1)
            if i in used or j in used:
                continue
            si, sj = slices[i - 1], slices[j - 1]
            sl = tuple(slice(min(x.start, y.start), max(x.stop, y.stop))
                       for x, y in zip(si, sj, strict=True))
            union = (out[sl] == i) | (out[sl] == j)
            ok, _ = _shape_ok(union, px, min_d, max_d, fill, min_solidity, max_elong,
                              _at_border(sl, out.shape))
            if ok and _ROUNDER:  # pieces of one soma are less round than it
                r = _axis_ratio(union)
                ok = r < _axis_ratio(out[sl] == i) and r < _axis_ratio(out[sl] == j)
            if ok:
                out[sl][union] = i
                used.update((i, j))
                joined = True
        if not joined:
            return out


#: neighbours that no sheath parts are joined when their union is a soma
_MERGE_UNSHEATHED = True


def _parted_by_sheath(sub: list, sl: tuple[slice, slice], filled: np.ndarray, q: np.ndarray,
                      sheath_line: np.ndarray) -> bool:
    """Whether the soma-like parts of a soma-like component meet along an SGC sheath.

    Touching somata are parted by the satellite-glial sheath between them; the two
    halves of one soma that its dark nucleus (or a nuclear groove) cuts at the higher
    levels meet across the nucleus, where no sheath lies. The component is grown
    from its parts (a watershed on ``-q`` within it) and the line where two parts
    meet is read: the parts are kept apart when the sheath class beats background on
    at least half of that line.
    """
    from skimage.segmentation import watershed

    markers = np.zeros(filled.shape, np.int32)
    for n, (psl, m) in enumerate(sub, start=1):
        loc = tuple(slice(a.start - b.start, a.stop - b.start)
                    for a, b in zip(psl, sl, strict=True))
        markers[loc][m & filled[loc] & (markers[loc] == 0)] = n
    if len(np.unique(markers)) < 3:
        return True
    parts = watershed(-q[sl], markers, mask=filled)
    hi = ndi.maximum_filter(parts, size=3)
    lo = ndi.minimum_filter(np.where(parts > 0, parts, parts.max() + 1), size=3)
    line = (parts > 0) & (hi != lo) & (lo <= parts.max())
    if not line.any() or sheath_line[sl][line].mean() >= 0.5:
        return True
    # no sheath on the line: still neighbours when each part is rounder than the
    # whole (two round somata; the halves of one soma are less round than it)
    return _ROUNDER_PARTS and all(_axis_ratio(parts == n) < _axis_ratio(filled)
                            for n in range(1, int(parts.max()) + 1) if (parts == n).any())


def _axis_ratio(mask: np.ndarray) -> float:
    """Major / minor axis of a mask (from its second moments); inf when degenerate."""
    yy, xx = np.nonzero(mask)
    if yy.size < 3:
        return float("inf")
    ev = np.linalg.eigvalsh(np.cov(np.stack([yy, xx]).astype(float)))
    return float(np.sqrt(ev[1] / ev[0])) if ev[0] > 0 else float("inf")


#: without a sheath, parts rounder than their whole are still neighbours
_ROUNDER_PARTS = False
#: unsheathed neighbours are joined only when their union is rounder than each
_ROUNDER = True


#: the parts of a soma-like component are neighbours only when a sheath parts them
_SHEATH_PARTS = True


def _at_border(sl: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    return (sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == shape[0]
            or sl[1].stop == shape[1])


def _waist_split(filled: np.ndarray, sl: tuple[slice, slice], px: float, min_d: float,
                 max_d: float, min_solidity: float, max_elong: float,
                 shape: tuple[int, ...]) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Return a soma-like component, or its halves where its distance transform has a waist.

    Two touching somata of saturated probability (no valley between them) can be round
    and solid enough to pass as one: they are parted when the neck split gives two or
    more soma-like parts covering most of the component.
    """
    if _NECK_CHECK:
        necks = _neck_split(filled, sl, px, min_d, max_d, False, min_solidity, max_elong,
                            shape)
        if len(necks) >= 2 and sum(int(m.sum()) for _, m in necks) >= (
                _NECK_COVER * filled.sum()):
            return necks
    return [(sl, filled)]


def _rest_parts(rest: np.ndarray, sl: tuple[slice, slice], px: float, min_d: float,
                max_d: float, fill: bool, min_solidity: float, max_elong: float,
                shape: tuple[int, ...]) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Soma-like parts of what a component's soma-like parts leave.

    Each connected piece is kept when soma-like itself (a dimmer soma beside a
    brighter one found at a higher level), else cut at its necks.
    """
    lab, n = ndi.label(rest)
    a_min = np.pi * (min_d / 2 / px) ** 2
    out = []
    for i, psl in enumerate(ndi.find_objects(lab), start=1):
        piece = lab[psl] == i
        if piece.sum() < (1 - _NUCLEUS_FRACTION) * a_min:
            continue
        gsl = tuple(slice(a.start + b.start, a.start + b.stop)
                    for a, b in zip(sl, psl, strict=True))
        ok, f = _shape_ok(piece, px, min_d, max_d, fill, min_solidity, max_elong,
                          _at_border(gsl, shape))
        if ok:
            out += _waist_split(f, gsl, px, min_d, max_d, min_solidity, max_elong, shape)
        else:
            out += _neck_split(piece, gsl, px, min_d, max_d, fill, min_solidity, max_elong,
                               shape)
    return out


def _neck_split(mask: np.ndarray, sl: tuple[slice, slice], px: float, min_d: float,
                max_d: float, fill: bool, min_solidity: float, max_elong: float,
                shape: tuple[int, ...]) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Soma-like parts of a component cut at its necks (distance-transform watershed)."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    m = np.pad(ndi.binary_fill_holes(mask) if fill else mask, 1)
    dist = ndi.distance_transform_edt(m).astype(np.float32) * np.float32(px)
    ds = ndi.gaussian_filter(dist, max(1.0 / px, 0.5))
    peaks = h_maxima(ds, max(min_d / 6.0, px)) & m & (ds >= 0.25 * min_d)
    markers, n = ndi.label(peaks, structure=np.ones((3, 3), bool))
    if n < 2:
        return []
    parts = watershed(-ds, markers, mask=m)[1:-1, 1:-1]
    out = []
    for i, psl in enumerate(ndi.find_objects(parts), start=1):
        if psl is None:
            continue
        gsl = tuple(slice(a.start + b.start, a.start + b.stop)
                    for a, b in zip(sl, psl, strict=True))
        ok, f = _shape_ok(parts[psl] == i, px, min_d, max_d, fill, min_solidity, max_elong,
                          _at_border(gsl, shape))
        if ok:
            out.append((gsl, f))
    return out


#: soma-like components are parted where their distance transform has a waist
_NECK_CHECK = True
#: ... when the soma-like parts cover this fraction of the component
_NECK_COVER = 0.6


def _fill_label_holes(labels: np.ndarray) -> np.ndarray:
    """Fill the holes of each label (within its bounding box)."""
    out = labels.copy()
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == i
        f = ndi.binary_fill_holes(m) & (labels[sl] == 0)
        out[sl][f] = i
    return out


def _split_distance(fg: np.ndarray, px: float, min_diameter_um: float,
                    max_diameter_um: float, seed_h_um: float | None,
                    fill_holes: bool) -> np.ndarray:
    """Distance-transform watershed of the foreground (``split="distance"``)."""
    from skimage.morphology import disk, h_maxima
    from skimage.segmentation import watershed

    if fill_holes:
        # holes touching the image border are not filled (as the classical backend;
        # filling them too scored 0.45 instead of 0.50 on the widefield proxy)
        fg = fill_small_holes(fg, np.pi * (max_diameter_um / 8 / px) ** 2)
    r_open = int(round(0.25 * min_diameter_um / 2 / px))
    if r_open >= 1:
        fg = ndi.binary_opening(fg, structure=disk(r_open))
    if not fg.any():
        return np.zeros(fg.shape, np.int32)
    dist = ndi.distance_transform_edt(fg).astype(np.float32) * np.float32(px)
    ds = ndi.gaussian_filter(dist, max(1.0 / px, 0.5))
    ds[~fg] = 0
    h = (min_diameter_um / 6.0) if seed_h_um is None else float(seed_h_um)
    h = max(h, px)
    peaks = h_maxima(ds, h) & fg & (ds >= 0.25 * min_diameter_um)
    markers, n = ndi.label(peaks, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(fg.shape, np.int32)
    return watershed(-ds, markers, mask=fg)


def _model_from(model: PixelClassifier | str | os.PathLike, roles: Sequence[str]
                ) -> PixelClassifier:
    if isinstance(model, PixelClassifier):
        model.check_roles(roles)
        return model
    return _load_cached(str(Path(model).expanduser()), tuple(sorted(roles)))


_CACHE: dict[tuple[str, float, int], PixelClassifier] = {}


def _load_cached(path: str, roles: tuple[str, ...]) -> PixelClassifier:
    try:
        st = os.stat(path)
        key = (path, st.st_mtime, st.st_size)
    except OSError:
        key = None
    m = _CACHE.get(key) if key else None
    if m is None:
        m = load_pixel_classifier(path)
        if key:
            _CACHE.clear()
            _CACHE[key] = m
    m.check_roles(roles)
    return m


def segment_pixel_classifier(
    image: np.ndarray,
    *,
    pixel_size_um: float,
    model: PixelClassifier | str | os.PathLike | None = None,
    channels: Mapping[str, np.ndarray] | None = None,
    levels: Mapping[str, tuple[float, float]] | None = None,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
    smooth_um: float = 1.0,
    seed_h_um: float | None = None,
    split: str = "levels",
    min_solidity: float = MIN_SOLIDITY,
    max_elongation: float = MAX_ELONGATION,
    grow_um: float = 4.0,
) -> np.ndarray:
    """Segment neurons with a trained pixel classifier (the ``pixel_classifier`` backend).

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Neuron-marker channel.
    pixel_size_um : float
        Pixel size in µm.
    model : PixelClassifier or path
        Trained model or its file (``segmentation_options: {model: PATH}``).
    channels : mapping of str to ndarray, optional
        Other channels by role (``sgc``, ``nuclei``); the model's roles must be present.
    levels : mapping, optional
        Role -> (dark level, intensity scale) for normalisation (the pipeline passes the
        section's; default from each channel).
    min_diameter_um, max_diameter_um : float
        Accepted neuron diameters.
    smooth_um, seed_h_um, split, min_solidity, max_elongation, grow_um
        See :func:`separate_instances`.

    Returns
    -------
    ndarray of int32
        Neuron labels.
    """
    if model is None:
        raise ValueError("the pixel_classifier backend needs segmentation_options: "
                         "{model: PATH} (a file written by `histo-fms train-pixels`)")
    chans = {"neuron": np.asarray(image)}
    for k, v in (channels or {}).items():
        if k in FEATURE_ROLES and k != "neuron":
            chans[k] = np.asarray(v)
    m = _model_from(model, list(chans))
    prob = predict_probabilities(m, chans, pixel_size_um=pixel_size_um, levels=levels)
    get = {c: prob[..., i] for i, c in enumerate(m.classes)}
    return separate_instances(get[NEURON], pixel_size_um=pixel_size_um,
                              sheath_prob=get.get(SHEATH), background_prob=get.get(BACKGROUND),
                              min_diameter_um=min_diameter_um, max_diameter_um=max_diameter_um,
                              smooth_um=smooth_um, seed_h_um=seed_h_um, split=split,
                              min_solidity=min_solidity, max_elongation=max_elongation,
                              grow_um=grow_um)


def reach_px(options: Mapping[str, Any], pixel_size_um: float, *,
             max_diameter_um: float = 60.0) -> int:
    """How far (px) the backend's result at a pixel depends on the image around it.

    Feature scale (the model's largest Gaussian, truncated at 4 sigma), probability
    smoothing, hole filling and opening, and the distance-transform smoothing.

    Parameters
    ----------
    options : mapping
        ``segmentation_options`` (``model``: the model file, read for its scales).
    pixel_size_um : float
        Pixel size in µm.
    max_diameter_um : float
        Largest neuron diameter.

    Returns
    -------
    int
        Radius in pixels.
    """
    px = float(pixel_size_um)
    radius_um = FeatureSettings().radius_um()
    model = options.get("model")
    if isinstance(model, PixelClassifier):
        radius_um = model.features.radius_um()
    elif model is not None:
        try:
            radius_um = FeatureSettings.from_metadata(
                read_metadata(model)["features"]).radius_um()
        except (ModelError, KeyError, TypeError, ValueError):
            pass  # reported when the backend loads it
    smooth = float(options.get("smooth_um", 1.0))
    # a component's shape (up to the largest neuron) and its growth decide a pixel
    grow = float(options.get("grow_um", 4.0))
    r = radius_um / px + _TRUNCATE * smooth / px + (max_diameter_um + grow) / px
    r += _TRUNCATE * max(1.0 / px, 0.5) + 4
    return int(np.ceil(r))


def annotations_from_labels(
    labels: np.ndarray,
    *,
    pixel_size_um: float,
    fraction: float = 0.3,
    sheath: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Sparse training annotations (scribbles) from a neuron label image.

    For a random ``fraction`` of the neurons: a stroke across the interior (class 2,
    to within 1 µm of the outline) and, with ``sheath``, an arc of the
    band 0.5-2 µm outside its outline (class 3, where the SGC sheath lies; class 1
    without ``sheath``); plus background strokes (class 1) at least 4 µm from every
    neuron. Useful to turn
    existing label images (reviewed results, reference masks) into annotations.

    Parameters
    ----------
    labels : ndarray of int
        Neuron labels (0 background).
    pixel_size_um : float
        Pixel size in µm.
    fraction : float
        Fraction of neurons annotated.
    sheath : bool
        Annotate the band outside the neurons as SGC sheath (class 3), else as
        background (class 1).
    seed : int
        Random seed.

    Returns
    -------
    ndarray of uint8
        Annotation: 0 unlabelled, 1 background, 2 neuron, 3 SGC sheath.
    """
    lab = np.asarray(labels)
    px = float(pixel_size_um)
    rng = np.random.default_rng(seed)
    out = np.zeros(lab.shape, np.uint8)
    ids = np.unique(lab[lab > 0])
    chosen = set(rng.choice(ids, max(1, int(round(fraction * ids.size))),
                            replace=False).tolist()) if ids.size else set()
    yy, xx = np.indices(lab.shape)
    width = max(1, int(round(1.0 / px)))
    dist_out = ndi.distance_transform_edt(lab == 0) * px
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None or k not in chosen:
            continue
        m = lab[sl] == k
        core = ndi.distance_transform_edt(m) * px > 1.0
        cy, cx = (np.mean(a) + o.start for a, o in zip(np.nonzero(m), sl, strict=True))
        theta = rng.uniform(0, np.pi)
        ly, lx = yy[sl] - cy, xx[sl] - cx
        stroke = np.abs(-np.sin(theta) * lx + np.cos(theta) * ly) <= width
        out[sl][core & stroke] = NEURON
        pad = int(np.ceil(2.5 / px)) + 1
        y0, x0 = max(0, sl[0].start - pad), max(0, sl[1].start - pad)
        y1, x1 = min(lab.shape[0], sl[0].stop + pad), min(lab.shape[1], sl[1].stop + pad)
        sub = (slice(y0, y1), slice(x0, x1))
        d = ndi.distance_transform_edt(lab[sub] != k) * px
        band = (d > 0.5) & (d <= 2.0) & (lab[sub] == 0)
        ang = np.arctan2(yy[sub] - cy, xx[sub] - cx)
        a0 = rng.uniform(-np.pi, np.pi)
        arc = np.abs(np.angle(np.exp(1j * (ang - a0)))) < np.pi / 3
        out[sub][band & arc] = SHEATH if sheath else BACKGROUND
    # background: short random strokes far from neurons
    far = dist_out > 4.0
    n_strokes = max(4, int(round(fraction * max(ids.size, 10))))
    cand = np.flatnonzero(far.ravel())
    if cand.size:
        length = int(round(15.0 / px))
        for c in rng.choice(cand, min(n_strokes, cand.size), replace=False):
            y, x = divmod(int(c), lab.shape[1])
            theta = rng.uniform(0, np.pi)
            t = np.arange(-length // 2, length // 2 + 1)
            py = np.clip(np.round(y + t * np.sin(theta)).astype(int), 0, lab.shape[0] - 1)
            pxs = np.clip(np.round(x + t * np.cos(theta)).astype(int), 0, lab.shape[1] - 1)
            for dy in range(-width, width + 1):
                for dx in range(-width, width + 1):
                    qy = np.clip(py + dy, 0, lab.shape[0] - 1)
                    qx = np.clip(pxs + dx, 0, lab.shape[1] - 1)
                    ok = far[qy, qx]
                    out[qy[ok], qx[ok]] = BACKGROUND
    return out


def preflight_model(options: Mapping[str, Any], *, roles: Sequence[str]) -> PixelClassifier:
    """Check a run's ``segmentation_options`` before any file is processed.

    Parameters
    ----------
    options : mapping
        ``segmentation_options`` of the config (needs ``model``).
    roles : sequence of str
        Channel roles the config maps.

    Returns
    -------
    PixelClassifier
        The model.

    Raises
    ------
    ModelError
        No model given, or a model that cannot be used with these roles.
    """
    model = options.get("model")
    if model is None:
        raise ModelError("segmentation_options", "the pixel_classifier backend needs "
                         "segmentation_options: {model: PATH} (a file written by "
                         "`histo-fms train-pixels`)")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ModelError("segmentation_options", f"unknown option(s) {unknown} of the "
                         f"pixel_classifier backend; known: {list(OPTIONS)}")
    return _model_from(model, [r for r in roles if r in FEATURE_ROLES])


#: ``segmentation_options`` of the backend
OPTIONS = ("model", "smooth_um", "seed_h_um", "min_diameter_um", "max_diameter_um", "split",
           "min_solidity", "max_elongation", "grow_um")
