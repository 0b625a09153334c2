"""Classical neuron segmentation: local contrast, SGC-sheath cuts, watershed, shape checks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import local_maxima
from skimage.segmentation import watershed

from .._numerics._background import local_background, smooth_for_stats
from .._numerics._cityblock import binary_opening
from .._numerics._gauss import gaussian_filter
from .._numerics._local import distance_float32, gaussian_radius, nearest_feature, sparse_crops
from .._numerics._quantiles import label_quantiles, quantised_quantiles
from ._fast import disc_closing, disc_opening, shape_measures  # the _objects ones, faster
from ._levels import split_merged
from ._nuclei import nucleus_pockets, split_at_nuclei
from ._objects import (
    close_objects,
    fill_small_holes,
    split_pieces,
    split_pieces_keep_largest,
)
from ._rays import sheath_stars
from ._ridges import ridge_strength, sheath_lines, split_at_faint_sheath


def _inpaint(img: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Replace masked pixels by a normalised-convolution average of their surroundings.

    Computed in crops around the masked pixels (same values as on the whole image).
    """
    out = img.copy()
    for sl, own in sparse_crops(mask, gaussian_radius(sigma)):
        sub, m = img[sl], mask[sl]
        w = (~m).astype(np.float32)
        num = gaussian_filter(sub * w, sigma)
        den = gaussian_filter(w, sigma)
        fill = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
        out[sl][own] = fill[own]
    return out


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 1..n in raster order of each object's first (top, then left) pixel.

    Parameters
    ----------
    labels : ndarray of int
        Label image (0 background).

    Returns
    -------
    ndarray of int32
        Relabelled image; a tiled run numbers its objects the same way.
    """
    labels = np.asarray(labels)
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    if idx.size == 0:
        return np.zeros(labels.shape, np.int32)
    lab = flat[idx].astype(np.intp)
    first = np.full(int(lab.max()) + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, lab, idx)
    ids = np.flatnonzero(first < np.iinfo(np.int64).max)
    remap = np.zeros(first.size, np.int32)
    remap[ids[np.argsort(first[ids], kind="stable")]] = np.arange(1, ids.size + 1,
                                                                  dtype=np.int32)
    return remap[labels]


def _merge_shallow(labels: np.ndarray, dist: np.ndarray, ratio: float, h: float = 0.0
                   ) -> np.ndarray:
    """Merge adjacent regions that are not separated by a real neck in ``dist``.

    Region pairs are visited from the highest saddle down (union-find, the peak of a
    merged region is the higher one): a pair is merged when the lower peak rises
    less than ``h`` above the saddle (its dynamic: a regional maximum that is not an
    h-maximum) or when the saddle is at least ``ratio`` times the lower peak (no neck).
    Starting from a watershed of all regional maxima, the first rule gives the
    watershed of the h-maxima without a morphological reconstruction.
    """
    n = int(labels.max())
    if n < 2 or (ratio <= 0 and h <= 0):
        return labels
    peak = np.zeros(n + 1)
    np.maximum.at(peak, labels.ravel(), dist.ravel())
    keys, vals = [], []
    for a, b, da, db in (
        (labels[:, :-1], labels[:, 1:], dist[:, :-1], dist[:, 1:]),
        (labels[:-1, :], labels[1:, :], dist[:-1, :], dist[1:, :]),
    ):
        sel = (a != b) & (a > 0) & (b > 0)
        if not sel.any():
            continue
        la, lb = np.minimum(a[sel], b[sel]), np.maximum(a[sel], b[sel])
        keys.append(la.astype(np.int64) * (n + 1) + lb)
        vals.append(np.minimum(da[sel], db[sel]))
    if not keys:
        return labels
    uk, inv = np.unique(np.concatenate(keys), return_inverse=True)
    vmax = np.full(uk.size, -np.inf)
    np.maximum.at(vmax, inv, np.concatenate(vals))
    order = np.lexsort((uk, -vmax))  # highest saddle first; ties by pair (translation-safe)
    parent = np.arange(n + 1)
    top = peak.copy()

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k, sv in zip(uk[order].tolist(), vmax[order].tolist(), strict=True):
        ra, rb = find(k // (n + 1)), find(k % (n + 1))
        if ra == rb:
            continue
        low = min(top[ra], top[rb])
        if low - sv < h or (ratio > 0 and sv >= ratio * low):
            r, o = min(ra, rb), max(ra, rb)
            parent[o] = r
            top[r] = max(top[ra], top[rb])
    roots = np.array([find(i) for i in range(n + 1)])
    return roots[labels].astype(np.int32)


def _watershed_clusters(height: np.ndarray, markers: np.ndarray, components: np.ndarray,
                        n_components: int) -> np.ndarray:
    """``watershed(-height, markers, mask=components > 0)``, one cluster at a time.

    A 4-connected component holding one marker is that marker's region; only
    components with several markers are flooded, each in its bounding box (same
    result as the whole-image watershed, far less time and memory).
    """
    labels = np.zeros(components.shape, np.int32)
    msel = np.flatnonzero(markers.ravel())
    if msel.size == 0:
        return labels
    comp = components.ravel()[msel].astype(np.int64)
    mark = markers.ravel()[msel].astype(np.int64)
    pairs = np.unique(comp * (int(markers.max()) + 1) + mark)
    pc, pm = np.divmod(pairs, int(markers.max()) + 1)
    count = np.bincount(pc, minlength=n_components + 1)
    lut = np.zeros(n_components + 1, np.int32)
    one = count[pc] == 1
    lut[pc[one]] = pm[one]
    labels = lut[components]
    slices = ndi.find_objects(components)
    for k in np.flatnonzero(count >= 2).tolist():
        sl = slices[k - 1]
        inside = components[sl] == k
        sub = watershed(-height[sl], np.where(inside, markers[sl], 0), mask=inside)
        labels[sl][inside] = sub[inside]
    return labels


def sheath_enclosed(sheath: np.ndarray, contrast: np.ndarray, *, min_area_px: float,
                    max_area_px: float, close_px: float, max_texture: float,
                    lines: np.ndarray | None = None) -> np.ndarray:
    """Regions enclosed by SGC sheath that look like (dim) somata.

    The sheath mask (with the faint sheath ``lines``, if given) is disc-closed
    (bridging gaps narrower than ``2 * close_px``); its holes between ``min_area_px``
    and ``max_area_px`` are soma candidates whatever their neuron-marker brightness,
    kept when their neuron-channel texture (10th to 90th percentile range of
    ``contrast``) is below ``max_texture``: a soma's cytoplasm is homogeneous, a
    pocket of interstitium between sheaths is full of axon puncta.

    Parameters
    ----------
    sheath : ndarray of bool
        SGC-positive pixels.
    contrast : ndarray of float
        Neuron-channel local contrast.
    min_area_px, max_area_px : float
        Area range of a candidate.
    close_px : float
        Closing radius of the sheath mask (px).
    max_texture : float
        Largest contrast range within a candidate.
    lines : ndarray of bool, optional
        Faint sheath lines (:func:`histo_fms.segment._ridges.sheath_lines`) added to
        ``sheath``: where a soma is dim in the SGC channel too, or its sheath is
        thinner than a pixel, the thresholded sheath covers only the bright side of
        the ring and the rest of it shows as a ridge of the SGC contrast; without the
        ridge the hole opens into the interstitium and the soma is lost.

    Returns
    -------
    ndarray of int32
        Candidate regions (labelled 1..m; local: each depends only on the sheath
        within the largest neuron's reach).
    """
    if lines is not None:
        sheath = sheath | lines
    closed = disc_closing(sheath, close_px)
    holes = fill_small_holes(closed, max_area_px) & ~closed
    lab, n = ndi.label(holes)
    if n == 0:
        return lab.astype(np.int32)
    size = np.bincount(lab.ravel(), minlength=n + 1)
    lo = label_quantiles(contrast, lab, 0.1, n)
    hi = label_quantiles(contrast, lab, 0.9, n)
    ok = (size >= min_area_px) & (hi - lo < max_texture)
    ok[0] = False
    keep = np.zeros(n + 1, np.int32)
    keep[ok] = np.arange(1, int(ok.sum()) + 1, dtype=np.int32)
    return keep[lab]


def _add_enclosed(labels: np.ndarray, enclosed: np.ndarray, max_overlap: float = 0.2,
                  fragment: float = 0.6) -> np.ndarray:
    """Add sheath-enclosed candidates that no object covers (ids after the last).

    A sheath encloses one soma, so a candidate overlapped by a single object that lies
    mostly (more than half of it) inside the candidate and covers less than
    ``fragment`` of it is a fragment of that soma (a brighter patch of a dim soma, a
    piece the outline refinement left): the candidate replaces it, keeping its id.
    """
    m = int(enclosed.max())
    if m == 0:
        return labels
    out = labels.copy()
    n = int(labels.max())
    size = np.bincount(enclosed.ravel(), minlength=m + 1)
    if n and fragment > 0:
        both = (enclosed > 0) & (labels > 0)
        pair = np.unique(enclosed[both].astype(np.int64) * (n + 1) + labels[both],
                         return_counts=True)
        e_of, o_of = np.divmod(pair[0], n + 1)
        cnt = pair[1]
        osize = np.bincount(labels.ravel(), minlength=n + 1)
        n_objs = np.bincount(e_of, minlength=m + 1)
        frag = ((n_objs[e_of] == 1) & (cnt > 0.5 * osize[o_of])
                & (cnt < fragment * size[e_of]))
        if frag.any():
            owner = np.zeros(m + 1, np.int32)
            owner[e_of[frag]] = o_of[frag]
            gone = np.zeros(n + 1, bool)
            gone[o_of[frag]] = True
            out[gone[out]] = 0
            into = owner[enclosed] > 0
            out[into] = owner[enclosed][into]
    covered = np.bincount(enclosed[out > 0], minlength=m + 1)
    new = (covered <= max_overlap * size)
    new[0] = False
    ids = np.zeros(m + 1, np.int32)
    ids[new] = n + np.arange(1, int(new.sum()) + 1, dtype=np.int32)
    add = (ids[enclosed] > 0) & (out == 0)
    out[add] = ids[enclosed][add]
    return out


def _contrast(img: np.ndarray, window: float, spread: float | None, raw: np.ndarray
              ) -> np.ndarray:
    """Local contrast ``(I - B) / max(N - B, 0.2 * spread)`` of a smoothed channel."""
    low, high = local_background(img, window_px=window, percentile=(20.0, 90.0))
    if spread is None:
        g = smooth_for_stats(raw)
        lo, hi = quantised_quantiles(g, [0.5, 0.995])
        spread = hi - lo
    scale = np.maximum(high - low, np.float32(max(0.2 * spread, 1e-6)))
    return (img - low) / scale


def opening_radius_px(min_diameter_um: float, pixel_size_um: float,
                      open_um: float | None = None) -> float:
    """Radius (px) of the disc opening that removes fibres and puncta.

    Parameters
    ----------
    min_diameter_um : float
        Smallest neuron diameter.
    pixel_size_um : float
        Pixel size in µm.
    open_um : float, optional
        Explicit radius in µm (default: 0.15 times ``min_diameter_um``, at least 1 µm).

    Returns
    -------
    float
        Radius in pixels.
    """
    r_um = max(1.0, 0.15 * float(min_diameter_um)) if open_um is None else float(open_um)
    return r_um / float(pixel_size_um)


#: arguments of :func:`segment_classical` set by the pipeline, not by ``segmentation_options``
_PIPELINE_ARGS = frozenset({"image", "pixel_size_um", "exclude", "spread", "sgc", "sgc_spread",
                            "channels"})
#: options that may be negative (a curvature, not a size or a fraction)
_SIGNED = frozenset({"ridge_valley"})


def check_options(options: dict) -> dict:
    """Check the classical backend's ``segmentation_options`` against its parameters.

    Parameters
    ----------
    options : dict
        Option name to value, as in a config's ``segmentation_options``.

    Returns
    -------
    dict
        The options, unchanged (a copy).

    Raises
    ------
    ValueError
        An unknown option (with the known ones listed), or a value of the wrong kind:
        a switch that is not true/false, a number that is not a finite number (or is
        negative, except ``ridge_valley``), None where None means nothing.
    """
    import inspect
    import numbers

    params = {k: v.default for k, v in inspect.signature(_segment).parameters.items()
              if v.kind is inspect.Parameter.KEYWORD_ONLY and k not in _PIPELINE_ARGS}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"segmentation_options: unknown option(s) {unknown} of the "
                         f"classical backend; known: {sorted(params)}")
    for key, value in options.items():
        default = params[key]
        where = f"segmentation_options.{key}"
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{where}: expected true or false, got {value!r}")
            continue
        if value is None and default is None or value is None and key in _SIGNED:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        v = float(value)
        if not np.isfinite(v) or (v < 0 and key not in _SIGNED):
            raise ValueError(f"{where}: expected a finite number >= 0, got {value!r}")
    return dict(options)


def segment_classical(
    image: np.ndarray,
    *,
    pixel_size_um: float,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
    smooth_um: float = 0.7,
    threshold: float = 0.08,
    edge_fraction: float = 0.4,
    edge_quantile: float = 0.9,
    split_h_um: float = 1.0,
    merge_ratio: float = 0.9,
    open_um: float | None = None,
    sheath_threshold: float = 0.5,
    max_size_factor: float = 1.2,
    min_solidity: float = 0.7,
    min_axis_ratio: float = 0.3,
    min_roundness: float = 0.8,
    bare_solidity: float = 0.85,
    bare_roundness: float = 0.9,
    max_texture: float = 0.5,
    sheath_gap_um: float = 2.0,
    nucleus_gap_um: float = 3.0,
    nucleus_gap_fraction: float = 0.5,
    exclude: np.ndarray | None = None,
    spread: float | None = None,
    sgc_spread: float | None = None,
    channels: dict[str, np.ndarray] | None = None,
    sheath_ridge: float = 0.05,
    ridge_um: float = 1.0,
    ridge_length_um: float = 8.0,
    ridge_valley: float | None = 0.0,
    split_solidity: float = 0.9,
    split_grow_um: float = 3.0,
    dim_level: float = 0.5,
    dim_solidity: float = 0.85,
    isolated: float = 0.15,
    faint_sheath: float = 0.25,
    pair_axis_ratio: float = 2 / 3,
    nucleus_split: bool = True,
    bare_min_factor: float = 1.5,
    nucleus_fill: bool = True,
    nucleus_rim_um: float = 2.0,
    nucleus_open: float = 0.25,
    sheath_rays: float = 0.25,
    sheath_regrow: bool = True,
) -> np.ndarray:
    """Segment neuron somata: local contrast, SGC-sheath cuts, watershed, shape checks.

    The neuron channel is turned into local contrast ``(I - B) / (N - B)`` with ``B``
    a running low percentile (tissue background) and ``N`` a running high percentile
    (typical neuron level), both over a window of twice ``max_diameter_um``: the
    camera offset and vignetting cancel, and dim neurons are found with the same
    threshold as bright ones. What is not a soma is then taken away step by step:

    * with an SGC channel (``channels["sgc"]``), its own local contrast marks the
      satellite-glial sheaths; sheath pixels brighter (in contrast) than the neuron
      channel are cut out of the foreground, so touching somata and the axon-rich
      interstitium around them fall apart along the sheath; so are thin sheath
      lines too faint for that threshold (widefield blur, a 1-3 px sheath between
      touching somata): Hessian ridges of the SGC contrast (``sheath_ridge``) that run
      along a neuron-channel valley and at least ``ridge_length_um``;
    * a disc opening of radius ``open_um`` (0.15 times ``min_diameter_um``)
      removes axon puncta and fibre bundles thinner than half the smallest soma;
    * touching neurons are split by a watershed on the distance transform from
      h-maxima markers; neighbours without a neck are merged back;
    * each object's outline is refined at ``edge_fraction`` of its own bright
      level (``edge_quantile`` of its contrast), which also strips dimmer tissue a
      soma was fused with; only its largest piece is kept; with an SGC channel, a nucleus
      wholly enclosed by the foreground and lying in one object (round, no SGC inside, at
      most half the object; without that channel nothing tells it from a gap of
      interstitium enclosed by somata) stays in it with a ``nucleus_rim_um`` border, even
      where the cytoplasm rim beyond it is too thin or dim to be kept (a large or
      eccentric nucleus would otherwise leave a crescent; see
      :func:`histo_fms.segment._nuclei.nucleus_pockets`);
    * objects that cannot be somata are rejected: equivalent diameter above
      ``max_size_factor * max_diameter_um`` (a tissue-sized component), axis ratio
      below ``min_axis_ratio`` (fibres), solidity below ``min_solidity`` (ragged
      interstitium), or diameter below ``min_diameter_um``;
    * before that, an object that fails these checks, or passes them with a
      solidity below ``split_solidity``, is searched for somata over threshold levels
      of its own contrast (:mod:`histo_fms.segment._levels`): somata pressed together
      without a visible sheath, or fused with bright interstitium or a nerve root, are
      cut apart where each is soma-shaped on its own at some level and the whole has
      a neck between them (a single elongated soma is convex and stays whole);
    * a dim object (median contrast below ``dim_level``) must be convex
      (``dim_solidity``) even when sheath surrounds it (pockets of interstitium between
      sheathed somata); with an SGC channel, an object without any sheath on or near
      it whose surroundings are darker than ``isolated`` times its own contrast is
      debris on the empty slide, and one less than a quarter wrapped in sheath must be at
      least ``bare_min_factor`` times ``min_diameter_um`` across (small somata are
      wrapped in satellite glia like large ones; shape alone does not tell a small
      soma from a fragment of a neighbour, an axon bundle's cross-section or debris);
    * with an SGC channel, an object more elongated than one soma (axis ratio below
      ``pair_axis_ratio``) is divided along a faint SGC line crossing it (ridge
      strength above ``faint_sheath`` times that of its own sheath): somata pressed
      into one convex shape, with a thin sheath between them;
    * an object holding two or more dark nuclei (regions below ``edge_fraction`` of its
      level, wholly inside it, at least a quarter of ``min_diameter_um`` in radius and
      at least half of ``min_diameter_um`` apart edge to edge) is divided between
      them (:func:`histo_fms.segment._nuclei.split_at_nuclei`): a neuron has one
      nucleus, so these are somata pressed together without a visible sheath;
    * the outline refinement keeps every piece of an object of at least the smallest
      soma's area (two somata fused through dim tissue fall apart into both).

    All sizes are in µm, so the result does not depend on the pixel size.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Neuron-marker channel.
    pixel_size_um : float
        Pixel size in µm.
    min_diameter_um : float
        Objects with a smaller equivalent diameter are discarded.
    max_diameter_um : float
        Largest expected neuron; sets the background window.
    smooth_um : float
        Gaussian smoothing sigma in µm.
    threshold : float
        Foreground threshold on the local contrast (fraction of the way from tissue
        background to the typical neuron level).
    edge_fraction : float
        Outline refinement: a pixel stays in its object when its contrast is above
        ``edge_fraction`` times the object's ``edge_quantile`` contrast.
    edge_quantile : float
        Quantile (0-1) of an object's contrast taken as its own level.
    split_h_um : float
        Minimum depth (µm of distance transform) of a saddle separating two neurons.
    merge_ratio : float
        Watershed neighbours are merged again when the distance transform at their
        saddle is at least this fraction of the smaller peak (no real neck).
    open_um : float, optional
        Radius (µm) of the disc opening; default 0.15 times ``min_diameter_um``
        (at least 1 µm). 0 disables.
    sheath_threshold : float
        SGC local contrast above which a pixel can be sheath.
    max_size_factor : float
        Objects with an equivalent diameter above this multiple of
        ``max_diameter_um`` are rejected.
    min_solidity : float
        Objects with a smaller area / convex-hull area are rejected.
    min_axis_ratio : float
        Objects with a smaller minor / major axis ratio are rejected.
    min_roundness : float
        Objects of which a disc opening of radius a fifth of their own equivalent
        diameter leaves a smaller fraction are rejected (branching fibres, ragged
        tissue pieces).
    bare_solidity, bare_roundness : float
        With an SGC channel, objects less than half wrapped in sheath (the 2 µm band
        around them) must pass these stricter checks instead (a soma is wrapped in
        satellite glia; a piece of fibre bundle is not and has a ragged outline).
    max_texture : float
        With an SGC channel, regions enclosed by sheath are somata even when dim in
        the neuron channel, if their contrast range (10th-90th percentile) is below
        this (homogeneous cytoplasm, not punctate interstitium); 0 disables.
    sheath_gap_um : float
        Gaps narrower than this in a sheath are bridged before looking for the
        regions it encloses.
    nucleus_gap_um : float
        Each object's holes (nuclei) are filled, also where they open to the
        outside through a gap narrower than this (a disc closing of each object on
        its own, so neighbours are not joined).
    nucleus_gap_fraction : float
        ... or narrower than this fraction of the object's equivalent diameter (an
        eccentric nucleus scales with its soma).
    exclude : ndarray of bool, optional
        Pixels to ignore (e.g. lipofuscin); they are inpainted from their surroundings.
    spread : float, optional
        Image-wide 99.5th minus 50th percentile of the (smoothed) neuron channel:
        0.2 of it is the lowest contrast scale. Computed from ``image`` when None;
        pass the whole section's value (:class:`histo_fms.drg.DrgContext`) for tiles.
    sgc_spread : float, optional
        The same for the SGC channel (:attr:`histo_fms.drg.DrgContext.sgc_spread`).
    channels : dict, optional
        Other channels by role; ``"sgc"`` (same shape as ``image``) enables the
        sheath cuts. Other roles are ignored.
    sheath_ridge : float
        With an SGC channel, pixels on a bright line of the SGC contrast (ridge
        strength, :func:`histo_fms.segment._ridges.ridge_strength`, above this) are cut
        too; 0 disables.
    ridge_um : float
        Scale (µm) of those lines: about half their width.
    ridge_length_um : float
        Line pieces shorter than this are ignored (noise, granules).
    ridge_valley : float, optional
        A line pixel is cut only where the neuron channel curves up across it more
        than this (a dark line between somata, not bright cytoplasm); None: anywhere.
    split_solidity : float
        Objects with a lower solidity (and those failing the checks) are searched for
        several somata; 0 disables.
    split_grow_um : float
        Somata found at a high level are grown back by at most this (µm).
    dim_level : float
        Objects whose median contrast is below this are "dim" (0 disables the rule).
    dim_solidity : float
        Smallest solidity of a dim object.
    isolated : float
        With an SGC channel, an object without sheath on or near it (coverage below
        0.05, at most 2 % of the pixels 3-12 µm out SGC-positive or inside another
        candidate: nothing around it, sheathed or not) is rejected when the median
        contrast 3-12 µm around it is below this fraction of its own (debris on the
        slide); 0 disables. Without an SGC channel nothing tells debris from an
        isolated soma, and the rule is off. The 3-12 µm band counts every pixel at
        that distance, the neighbours' sheaths included.
    faint_sheath : float
        With an SGC channel, an object more elongated than ``pair_axis_ratio`` is cut
        along SGC ridges stronger than this fraction of its own sheath's ridge
        strength (somata pressed together with only a faint sheath between them; see
        :func:`histo_fms.segment._ridges.split_at_faint_sheath`); 0 disables.
    pair_axis_ratio : float
        Axis ratio (minor / major) below which an object is looked into for a faint
        sheath line: 2/3, the ratio of two touching discs whose diameters differ by a
        factor 2 (a pair whose smaller soma is at least half the larger's diameter is
        more elongated than this; a single soma's section rarely is).
    nucleus_split : bool
        Divide objects holding several nuclei between them (see above).
    bare_min_factor : float
        With an SGC channel, an object less than a quarter wrapped in sheath (the 2 µm
        band around it; a small soma's outline, a little inside its sheath, leaves
        part of that band on cytoplasm) must have an
        equivalent diameter of at least this multiple of ``min_diameter_um``: shape
        alone does not tell a small soma from a piece of a neighbour's cytoplasm, a
        fibre bundle's cross-section or debris, and small somata are wrapped in
        satellite glia like large ones; 0 disables.
    nucleus_fill : bool
        With an SGC channel, keep each object's enclosed nucleus through the outline
        refinement (see above).
    nucleus_rim_um : float
        ... with the pixels within this distance of it in the object (the dim nuclear
        border between the nucleus and the bright cytoplasm).
    nucleus_open : float
        For the nucleus split, a round dark patch counts as a nucleus even where it
        meets the object's outline, on up to this fraction of its border (a thin rim
        lost to blur or to the outline refinement); 0: only patches wholly inside.
    sheath_rays : float
        With an SGC channel (and ``max_texture`` > 0), somata enclosed by a sheath
        with gaps are candidates too: rays cast from each centre of a sheath-free
        region of soma size must hit the sheath but for at most this fraction of them
        (no gap wider than an eighth of the circle), and the polygon of the hits must
        be soma-shaped and homogeneous (see
        :func:`histo_fms.segment._rays.sheath_stars`). They join the enclosed regions
        above (added where no object covers them, or replacing a fragment); 0
        disables.
    sheath_regrow : bool
        With an SGC channel, give each soma back the cut sheath pixels within
        ``max(1 px, smooth_um)`` of it where its neuron contrast is above half its
        bright level (see :func:`regrow_into_sheath`): outlines against a sheath
        otherwise come out about one blur width small.

    Returns
    -------
    ndarray of int32
        Labels, 0 background, ids 1..n in raster order of each object's first pixel.

    Notes
    -----
    Given ``spread`` (and ``sgc_spread``), every step is local: background maps are
    block grids anchored at pixel (0, 0), holes are filled up to the largest
    neuron's area, and watershed, merging, outline refinement and shape checks act
    within clusters of touching objects. A tile whose origin is a multiple of the
    block size therefore segments the same objects as the whole image wherever their
    cluster lies far enough from the tile edges (see
    :func:`histo_fms.drg.required_margin_px`).
    """
    sgc = None if not channels else channels.get("sgc")
    return _segment(image, pixel_size_um=pixel_size_um, min_diameter_um=min_diameter_um,
                    max_diameter_um=max_diameter_um, smooth_um=smooth_um, threshold=threshold,
                    edge_fraction=edge_fraction, edge_quantile=edge_quantile,
                    split_h_um=split_h_um, merge_ratio=merge_ratio, open_um=open_um,
                    sheath_threshold=sheath_threshold, max_size_factor=max_size_factor,
                    min_solidity=min_solidity, min_axis_ratio=min_axis_ratio,
                    min_roundness=min_roundness, max_texture=max_texture,
                    bare_solidity=bare_solidity, bare_roundness=bare_roundness,
                    sheath_gap_um=sheath_gap_um,
                    nucleus_gap_um=nucleus_gap_um, nucleus_gap_fraction=nucleus_gap_fraction,
                    exclude=exclude, spread=spread, sgc=sgc, sgc_spread=sgc_spread,
                    sheath_ridge=sheath_ridge, ridge_um=ridge_um,
                    ridge_length_um=ridge_length_um, ridge_valley=ridge_valley,
                    split_solidity=split_solidity, split_grow_um=split_grow_um,
                    dim_level=dim_level, dim_solidity=dim_solidity, isolated=isolated,
                    faint_sheath=faint_sheath, pair_axis_ratio=pair_axis_ratio,
                    nucleus_split=nucleus_split, bare_min_factor=bare_min_factor,
                    nucleus_fill=nucleus_fill, nucleus_rim_um=nucleus_rim_um,
                    nucleus_open=nucleus_open, sheath_rays=sheath_rays,
                    sheath_regrow=sheath_regrow)[0]


def _segment(
    image: np.ndarray,
    *,
    pixel_size_um: float,
    min_diameter_um: float = 10.0,
    max_diameter_um: float = 60.0,
    smooth_um: float = 0.7,
    threshold: float = 0.08,
    edge_fraction: float = 0.4,
    edge_quantile: float = 0.9,
    split_h_um: float = 1.0,
    merge_ratio: float = 0.9,
    open_um: float | None = None,
    sheath_threshold: float = 0.5,
    max_size_factor: float = 1.2,
    min_solidity: float = 0.7,
    min_axis_ratio: float = 0.3,
    min_roundness: float = 0.8,
    bare_solidity: float = 0.85,
    bare_roundness: float = 0.9,
    max_texture: float = 0.5,
    sheath_gap_um: float = 2.0,
    nucleus_gap_um: float = 3.0,
    nucleus_gap_fraction: float = 0.5,
    exclude: np.ndarray | None = None,
    spread: float | None = None,
    sgc: np.ndarray | None = None,
    sgc_spread: float | None = None,
    channels: dict[str, np.ndarray] | None = None,
    sheath_ridge: float = 0.05,
    ridge_um: float = 1.0,
    ridge_length_um: float = 8.0,
    ridge_valley: float | None = 0.0,
    split_solidity: float = 0.9,
    split_grow_um: float = 3.0,
    dim_level: float = 0.5,
    dim_solidity: float = 0.85,
    isolated: float = 0.15,
    faint_sheath: float = 0.25,
    pair_axis_ratio: float = 2 / 3,
    nucleus_split: bool = True,
    bare_min_factor: float = 1.5,
    nucleus_fill: bool = True,
    nucleus_rim_um: float = 2.0,
    nucleus_open: float = 0.25,
    sheath_rays: float = 0.25,
    sheath_regrow: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`segment_classical`, also returning the foreground mask (for tiling checks)."""
    if sgc is None and channels:
        sgc = channels.get("sgc")
    img = np.asarray(image, dtype=np.float32)
    px = float(pixel_size_um)
    labels = np.zeros(img.shape, np.int32)
    empty = np.zeros(img.shape, bool)
    if img.size == 0 or min(img.shape) < 3 or float(img.max()) <= float(img.min()):
        return labels, empty
    if sgc is not None and np.shape(sgc) != img.shape:
        raise ValueError(f"sgc channel has shape {np.shape(sgc)}, not the image's {img.shape}")
    inpaint = exclude is not None and exclude.any() and not exclude.all()
    window = 2 * max_diameter_um / px

    def prepare(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        if inpaint:
            a = _inpaint(a, exclude, max(1.0, 2.0 / px))
        if smooth_um > 0:
            a = gaussian_filter(a, smooth_um / px)
        return a

    contrast = _contrast(prepare(img), window, spread, image)
    mask = contrast > threshold
    max_area_px = np.pi * (max_diameter_um / 2) ** 2 / px**2
    min_area_px = np.pi * (min_diameter_um / 2) ** 2 / px**2
    enclosed = sgc_pos = ridge = wall = cut = None
    checks = {"min_area_px": min_area_px, "max_area_px": max_size_factor**2 * max_area_px,
              "min_axis_ratio": min_axis_ratio, "min_solidity": min_solidity,
              "min_roundness": min_roundness, "bare_solidity": bare_solidity,
              "bare_roundness": bare_roundness, "sheathed": 0.5,
              "bare_min_area_px": bare_min_factor**2 * min_area_px,
              "dim_level": dim_level, "dim_solidity": dim_solidity, "isolated": isolated}
    if sgc is not None:
        s = prepare(sgc)
        if float(s.max()) > float(s.min()):
            cs = _contrast(s, window, sgc_spread, sgc)
            sgc_pos = cs > sheath_threshold
            cut = sgc_pos & (cs > contrast)
            mask &= ~cut
            if not sheath_regrow:
                cut = None
            if faint_sheath > 0 or (sheath_ridge > 0 and max_texture > 0):
                ridge = ridge_strength(cs, ridge_um / px)
            if sheath_ridge > 0:
                mask &= ~sheath_lines(cs, ridge_um / px, sheath_ridge, ridge_length_um / px,
                                      neuron=contrast, neuron_valley=ridge_valley,
                                      strength=ridge)
            if max_texture > 0:
                # the faint side of a sheath ring is a ridge of the SGC contrast (no
                # neuron-channel valley needed: a dim soma has none against the
                # interstitium)
                lines = (sheath_lines(cs, ridge_um / px, sheath_ridge, ridge_length_um / px,
                                      strength=ridge) if sheath_ridge > 0 else None)
                enclosed = sheath_enclosed(sgc_pos, contrast, min_area_px=min_area_px,
                                           max_area_px=max_area_px, close_px=sheath_gap_um / 2 / px,
                                           max_texture=max_texture, lines=lines)
                if sheath_rays > 0:
                    wall = sgc_pos if lines is None else sgc_pos | lines
                del lines
            if faint_sheath <= 0:
                ridge = None
            del cs
        del s
    star = dict(min_radius_px=0.5 * min_diameter_um / px,
                max_radius_px=0.5 * max_diameter_um / px, max_texture=max_texture,
                max_open=sheath_rays, behind_px=2.0 / px)
    it = max(1, int(round(0.5 / px)))
    mask = binary_opening(mask, it)
    opened = mask
    mask = fill_small_holes(mask, max_area_px)
    # with an SGC channel, a dark hole without sheath inside it can be a nucleus
    holes = mask & ~opened if nucleus_fill and sgc is not None else None
    del opened
    mask = disc_opening(mask, opening_radius_px(min_diameter_um, px, open_um))
    cc, ncc = ndi.label(mask)
    sizes = np.bincount(cc.ravel())
    big = sizes >= 0.5 * min_area_px
    big[0] = False
    cc = np.where(big[cc], cc, 0)
    mask = cc > 0
    if not mask.any():
        if wall is not None:
            enclosed = _add_enclosed(enclosed, sheath_stars(wall, contrast, objects=labels, **star),
                                     fragment=0)
        if enclosed is not None and enclosed.any():
            return _finish(_add_enclosed(labels, enclosed), checks, sgc_pos,
                           px, contrast), mask | (enclosed > 0)
        return labels, mask

    # split touching neurons
    dist = distance_float32(mask)
    dist = gaussian_filter(dist, max(0.5, 0.5 / px)) * np.float32(px)
    # watershed from every regional maximum, then merge by dynamics (h-maxima) and
    # by neck depth; 0.05 µm steps make plateaus exact
    q = np.round(dist * 20).astype(np.int32)
    del dist
    peaks = local_maxima(q, connectivity=2, allow_borders=True) & mask
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), bool))
    del peaks
    labels = _watershed_clusters(q, markers, cc, ncc)
    labels = _merge_shallow(labels, q / 20.0, merge_ratio, h=split_h_um - 1e-9)
    del q, markers, cc

    # per-object outline refinement at a fraction of its own bright level
    n = int(labels.max())
    if n and edge_fraction > 0:
        level = label_quantiles(contrast, labels, edge_quantile, n)
        thr = np.maximum(edge_fraction * level, threshold)
        thr[0] = np.inf
        keep = contrast > thr[labels]
        if holes is not None and sgc_pos is not None:
            # a nucleus enclosed by its soma's cytoplasm stays in it, even where the
            # rim round it is too thin or dim to be kept on the other side
            pocket = nucleus_pockets(labels, holes, sgc_pos=sgc_pos,
                                     nucleus_area_px=np.pi * (0.25 * min_diameter_um / px) ** 2)
            if pocket.any():
                # with the dim nuclear border between it and the bright cytoplasm
                iy, ix = nearest_feature(pocket == 0)
                yy = np.arange(pocket.shape[0])[:, None]
                xx = np.arange(pocket.shape[1])[None, :]
                near = (iy - yy) ** 2 + (ix - xx) ** 2 <= (nucleus_rim_um / px) ** 2
                keep |= near & (labels == pocket[iy, ix]) & (labels > 0)
            del pocket
        keep = binary_opening(keep, it)
        labels = split_pieces(np.where(keep, labels, 0), 2 * min_area_px)
        labels = close_objects(labels, nucleus_gap_um / 2 / px, max_area_px,
                               relative=nucleus_gap_fraction / 2)

    if split_solidity > 0 and int(labels.max()):
        labels = _split_merged(labels, contrast, checks, sgc_pos, px,
                               open_px=opening_radius_px(min_diameter_um, px, open_um),
                               split_solidity=split_solidity, edge_fraction=edge_fraction,
                               grow_px=max(1.0, split_grow_um / px))
    if ridge is not None and int(labels.max()):
        labels = split_at_faint_sheath(labels, ridge, min_area_px=min_area_px,
                                       neck_px=0.1 * min_diameter_um / px, band_px=2.0 / px,
                                       relative=faint_sheath, floor=0.5 * (sheath_ridge or 0.05),
                                       max_axis_ratio=pair_axis_ratio)
    del ridge
    if nucleus_split and edge_fraction > 0 and int(labels.max()):
        labels = split_at_nuclei(labels, contrast, min_area_px=min_area_px,
                                 max_area_px=max_size_factor**2 * max_area_px,
                                 nucleus_area_px=np.pi * (0.25 * min_diameter_um / px) ** 2,
                                 min_separation_px=0.5 * min_diameter_um / px,
                                 fraction=edge_fraction, quantile=edge_quantile,
                                 max_open=nucleus_open)
    if wall is not None:
        enclosed = _add_enclosed(enclosed, sheath_stars(wall, contrast, objects=labels, **star),
                                     fragment=0)
        del wall
    if enclosed is not None:
        labels = _add_enclosed(labels, enclosed)
        mask = mask | (enclosed > 0)
    labels = _finish(labels, checks, sgc_pos, px, contrast)
    if cut is not None and int(labels.max()):
        # growth can move an object's first pixel: number them again as _finish does
        labels = canonical_labels(regrow_into_sheath(labels, contrast, cut,
                                                     regrow_px(smooth_um, px),
                                                     quantile=edge_quantile, floor=threshold))
        mask = mask | (labels > 0)
    return labels, mask


def regrow_px(smooth_um: float, pixel_size_um: float) -> float:
    """Distance (px) by which :func:`regrow_into_sheath` may grow an outline.

    The sheath cut is decided on images smoothed by ``smooth_um``, which moves the
    crossing of the two channels' blurred edges into the soma by about that much;
    at least one pixel (the sampling itself blurs by about one).
    """
    return max(1.0, float(smooth_um) / float(pixel_size_um))


def regrow_into_sheath(labels: np.ndarray, contrast: np.ndarray, cut: np.ndarray,
                       radius_px: float, *, quantile: float = 0.9, floor: float = 0.0
                       ) -> np.ndarray:
    """Give somata back the edge pixels the SGC-sheath cut took from them.

    A pixel is cut from the neuron foreground where the SGC contrast exceeds the
    neuron contrast. At a blurred soma-sheath boundary the two blurred edges cross
    inside the soma, so outlines against a sheath come out about one blur width too
    small (measured: diameters 0.4-0.6 µm too small on phantoms of other generators
    and on widefield phantoms), and the ring measured outside them starts on the
    soma's own edge. Each cut pixel within ``radius_px`` of a neuron is given to the
    nearest one where the neuron contrast there is still above half the neuron's own
    bright level (its ``quantile`` contrast): the half-maximum edge of a blurred
    step, where the membrane lies.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background).
    contrast : ndarray of float, same shape
        Neuron-channel local contrast.
    cut : ndarray of bool, same shape
        Pixels taken out of the neuron foreground by the sheath.
    radius_px : float
        Farthest a neuron grows (px).
    quantile : float
        Quantile of a neuron's contrast taken as its bright level.
    floor : float
        Contrast a grown pixel must exceed in any case (the foreground threshold).

    Returns
    -------
    ndarray
        Labels, same dtype; objects only grow (no pixel changes owner, no new label).
    """
    n = int(labels.max())
    cand = cut & (labels == 0)
    if n == 0 or not cand.any():
        return labels
    level = label_quantiles(contrast, labels, quantile, n)
    thr = np.maximum(0.5 * level, floor)
    thr[0] = np.inf
    iy, ix = nearest_feature(labels == 0)
    # only the candidate pixels are looked at (a fraction of the image)
    at = np.flatnonzero(cand)
    y, x = np.divmod(at, labels.shape[1])
    fy, fx = iy.ravel()[at], ix.ravel()[at]
    del iy, ix
    near = (fy - y) ** 2 + (fx - x) ** 2 <= radius_px**2
    owner = labels[fy, fx]
    ok = near & (contrast.ravel()[at] > thr[owner])
    out = labels.copy()
    out.ravel()[at[ok]] = owner[ok]
    return out


def _gates(c: dict) -> dict:
    """Limits below which an object is rejected whatever else (skips its other measures)."""
    return {"min_area": c["min_area_px"], "max_area": c["max_area_px"],
            "min_axis_ratio": c["min_axis_ratio"], "min_solidity": c["min_solidity"]}


def _bad_objects(labels: np.ndarray, checks: dict, sgc_pos: np.ndarray | None, px: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Which objects fail the soma checks of :func:`_finish`, and their solidity."""
    c = checks
    area, ratio, solid, rnd = shape_measures(labels, **_gates(c))
    n = area.size - 1
    cov = sheath_coverage(labels, sgc_pos, 2.0 / px) if sgc_pos is not None and n else None
    min_solid, min_rnd = _shape_limits(cov, c, n)
    bad = ((area < c["min_area_px"]) | (area > c["max_area_px"])
           | (ratio < c["min_axis_ratio"]) | (solid < min_solid) | (rnd < min_rnd))
    bad[0] = True
    return bad, solid


def _shape_limits(cov: np.ndarray | None, c: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest solidity and roundness of each object, from its sheath coverage.

    An object wrapped in sheath (coverage ``sheathed`` or more) needs ``min_solidity``
    / ``min_roundness``, a bare one the stricter bare limits. Without an SGC channel
    (``cov`` None) nothing tells them apart: every object gets the wrapped limits.
    (Limits falling linearly with partial coverage were tried on the real-DRG proxies:
    as many false objects admitted as somata recovered.)
    """
    wrapped = np.ones(n + 1, bool) if cov is None else cov >= c["sheathed"]
    return (np.where(wrapped, c["min_solidity"], max(c["min_solidity"], c["bare_solidity"])),
            np.where(wrapped, c["min_roundness"], max(c["min_roundness"], c["bare_roundness"])))


def _split_merged(labels: np.ndarray, contrast: np.ndarray, checks: dict,
                  sgc_pos: np.ndarray | None, px: float, *, open_px: float,
                  split_solidity: float, edge_fraction: float, grow_px: float) -> np.ndarray:
    """Look for somata inside objects that fail the checks or are not convex.

    See :mod:`histo_fms.segment._levels`: an object that fails the soma checks is
    replaced by the soma-like regions found over threshold levels of its contrast (or
    dropped later if none); one that passes but has a solidity below ``split_solidity``
    is split when two or more somata are found in it.
    """
    c = checks
    bad, solid = _bad_objects(labels, c, sgc_pos, px)
    bad[0] = False
    big_enough = np.bincount(labels.ravel(), minlength=bad.size) >= 2 * c["min_area_px"]
    cand = (bad | (solid < split_solidity)) & big_enough
    cand[0] = False
    if not cand.any():
        return labels
    out = split_merged(labels, contrast, cand, min_area_px=c["min_area_px"],
                       max_area_px=c["max_area_px"], open_px=open_px,
                       min_solidity=max(c["min_solidity"], c["bare_solidity"]),
                       min_roundness=max(c["min_roundness"], c["bare_roundness"]),
                       min_axis_ratio=max(c["min_axis_ratio"], 0.4),
                       split_solidity=split_solidity, grow_px=grow_px,
                       edge_fraction=edge_fraction, replace=bad)
    return split_pieces_keep_largest(out)


def sheath_coverage(labels: np.ndarray, sgc_pos: np.ndarray, width_px: float) -> np.ndarray:
    """Fraction of the band just outside each object (``width_px`` wide) that is SGC-positive.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    sgc_pos : ndarray of bool
        SGC-positive pixels.
    width_px : float
        Band width in pixels.

    Returns
    -------
    ndarray, shape (n + 1,)
        Coverage per label id (0 where an object has no band).
    """
    n = int(labels.max())
    if n == 0:
        return np.zeros(1)
    iy, ix = nearest_feature(labels == 0)
    d2 = (iy - np.arange(labels.shape[0])[:, None]) ** 2 + (ix - np.arange(labels.shape[1])) ** 2
    band = (labels == 0) & (d2 <= width_px**2)
    owner = labels[iy[band], ix[band]]
    tot = np.bincount(owner, minlength=n + 1).astype(float)
    pos = np.bincount(owner, weights=sgc_pos[band], minlength=n + 1)
    return np.where(tot > 0, pos / np.maximum(tot, 1), 0.0)


def band_owner(labels: np.ndarray, inner_px: float, outer_px: float) -> np.ndarray:
    """Label the band ``inner_px``-``outer_px`` outside each object by its nearest object.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    inner_px, outer_px : float
        Band limits (distance from the object, px).

    Returns
    -------
    ndarray of int32
        Owner id of each background pixel of the band, 0 elsewhere.
    """
    owner = np.zeros(labels.shape, np.int32)
    if not labels.any():
        return owner
    iy, ix = nearest_feature(labels == 0)
    d2 = (iy - np.arange(labels.shape[0])[:, None]) ** 2 + (ix - np.arange(labels.shape[1])) ** 2
    band = (labels == 0) & (d2 > inner_px**2) & (d2 <= outer_px**2)
    owner[band] = labels[iy[band], ix[band]]
    return owner


def band_fraction(labels: np.ndarray, mask: np.ndarray, inner_px: float, outer_px: float,
                  ids: np.ndarray | None = None) -> np.ndarray:
    """Fraction of ``mask`` pixels in the band ``inner_px``-``outer_px`` around each object.

    Unlike :func:`band_owner` the band is not shared out among neighbours: it holds
    whatever lies at that distance from the object, the neighbours' sheaths included.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    mask : ndarray of bool
        Pixels counted.
    inner_px, outer_px : float
        Band limits (distance from the object, px).
    ids : ndarray of int, optional
        Only these label ids are measured (the others get 0); default all.

    Returns
    -------
    ndarray, shape (n + 1,)
        Fraction per label id (0 where an object has no band).
    """
    n = int(labels.max())
    frac = np.zeros(n + 1)
    h, w = labels.shape
    pad = int(np.ceil(outer_px)) + 1
    want = None
    if ids is not None:
        want = np.zeros(n + 1, bool)
        want[np.asarray(ids, np.int64)] = True
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or (want is not None and not want[k]):
            continue
        y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
        d = distance_float32(labels[y0:y1, x0:x1] != k)
        band = (d > inner_px) & (d <= outer_px)
        if band.any():
            frac[k] = float(mask[y0:y1, x0:x1][band].mean())
    return frac


def _finish(labels, checks, sgc_pos, px, contrast=None):
    """Reject what cannot be a soma, renumber 1..n in raster order of first pixels.

    Objects wrapped in SGC sheath (at least ``sheathed`` of their surrounding band)
    pass with the looser ``min_solidity`` / ``min_roundness``; bare objects must be
    as smooth as a soma outline (``bare_solidity`` / ``bare_roundness``); those less
    than half as wrapped must be at least ``bare_min_area_px`` large (a small bare
    blob is a piece of a neighbour's cytoplasm, a fibre bundle's cross-section or
    debris as often as a soma).

    Given the neuron-channel ``contrast``: a dim object (median contrast below
    ``dim_level``) must be convex (``dim_solidity``) even when wrapped (a pocket of
    interstitium between sheathed somata is wrapped in their sheaths, but its sides
    curve inwards); an object with no sheath on or near it (coverage below 0.05, and
    at most 2 % of the band 3-12 µm out SGC-positive or another candidate's) whose
    surroundings there are below
    ``isolated`` of its own contrast is debris on the empty slide (a soma lies in
    tissue, among other sheathed somata).
    """
    c = checks
    area, ratio, solid, rnd = shape_measures(labels, **_gates(c))
    n = area.size - 1
    cov = sheath_coverage(labels, sgc_pos, 2.0 / px) if sgc_pos is not None and n else None
    min_solid, min_rnd = _shape_limits(cov, c, n)
    bad = ((area < c["min_area_px"]) | (area > c["max_area_px"])
           | (ratio < c["min_axis_ratio"]) | (solid < min_solid) | (rnd < min_rnd))
    if cov is not None and c.get("bare_min_area_px", 0) > 0:
        bad |= (cov < 0.5 * c["sheathed"]) & (area < c["bare_min_area_px"])
    if contrast is not None and n:
        med = label_quantiles(contrast, labels, 0.5, n)
        if c.get("dim_level", 0) > 0:
            bad |= (med < c["dim_level"]) & (solid < c["dim_solidity"])
        if c.get("isolated", 0) > 0 and sgc_pos is not None:
            # no sheath on it nor on any neighbour nearby, dark all around
            owner = band_owner(labels, 3.0 / px, 12.0 / px)
            cnt = np.bincount(owner.ravel(), minlength=n + 1)
            surr = np.where(cnt > 0, label_quantiles(contrast, owner, 0.5, n), np.inf)
            # a soma lies among other somata: its 3-12 µm band holds their sheaths or
            # the cytoplasm of a candidate with some sheath; debris lies alone, or
            # among other bare debris
            sheathed = cov >= 0.05
            sheathed[0] = False
            near = sgc_pos | sheathed[labels]
            unwrapped = np.nonzero(cov < 0.05)[0]
            unwrapped = unwrapped[unwrapped > 0]  # only they can be bare: measure only them
            bare = (cov < 0.05) & (band_fraction(labels, near, 3.0 / px, 12.0 / px,
                                                 ids=unwrapped) <= 0.02)
            bad |= bare & (surr < c["isolated"] * med)
    bad[0] = True
    return canonical_labels(np.where(bad[labels], 0, labels))
