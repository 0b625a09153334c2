"""Export results for other tools: QuPath GeoJSON, and OME-Zarr image + labels.

``histo-fms export OUT --to qupath`` writes one ``STEM.geojson`` per image that QuPath
imports (File > Import objects, or drag and drop): neuron outlines as *detections* with
every measurement as a property and the IgG call as classification; skin crossings as
point annotations; DEJ and surface as line annotations. Coordinates are full-resolution
pixels, as QuPath expects. ``--to omezarr`` writes ``STEM.ome.zarr`` with the image as a
multiscale group and the label images in its ``labels`` group (napari-ome-zarr, QuPath,
Fiji's MoBIE open it).
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.measure import find_contours

from . import schema
from .io import (
    read_image,
    read_labels_scale,
    read_labels_zarr,
    read_polylines,
    write_json,
    write_omezarr,
)

CLASS_COLOURS = {
    "IgG+": [213, 94, 0],
    "IgG-": [0, 114, 178],
    "Uncalled": [204, 121, 167],
    "Border": [153, 153, 153],
    "IENF crossing": [0, 158, 115],
    "DEJ": [230, 159, 0],
    "Surface": [86, 180, 233],
}


def _flag(flags: dict[str, dict], column: str, nid: int) -> bool:
    """Whether ``column`` is true for neuron ``nid`` (blank or absent: False)."""
    v = flags.get(column, {}).get(nid, pd.NA)
    return False if pd.isna(v) else bool(v)


def label_polygons(labels: np.ndarray) -> dict[int, list[list[float]]]:
    """Outline every label as a closed polygon in pixel coordinates (x, y).

    Coordinates follow QuPath: the top-left corner of the image is (0, 0) and the centre
    of pixel (row r, column c) is (c + 0.5, r + 0.5). The outline is the largest contour
    of each object's mask at level 0.5.

    Parameters
    ----------
    labels : ndarray of int
        2-D label image.

    Returns
    -------
    dict of int to list of [x, y]
        Label id -> closed ring (first vertex repeated last), counter-clockwise.
    """
    out: dict[int, list[list[float]]] = {}
    labels = np.asarray(labels)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        crop = np.pad(labels[sl] == i, 1)
        contours = find_contours(crop.astype(np.float32), 0.5)
        if not contours:
            continue
        c = max(contours, key=len)
        ys = c[:, 0] - 1 + sl[0].start + 0.5
        xs = c[:, 1] - 1 + sl[1].start + 0.5
        ring = np.column_stack([xs, ys])
        if _signed_area(ring) < 0:
            ring = ring[::-1]
        if not np.allclose(ring[0], ring[-1]):
            ring = np.vstack([ring, ring[:1]])
        out[i] = np.round(ring, 3).tolist()
    return out


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _clean(v: Any) -> Any:
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return str(v)


def _feature(geometry: dict, object_type: str, cls: str, name: str | None = None,
             measurements: dict | None = None) -> dict:
    props: dict[str, Any] = {
        "objectType": object_type,
        "classification": {"name": cls, "color": CLASS_COLOURS.get(cls, [255, 255, 255])},
        "isLocked": False,
    }
    if name:
        props["name"] = name
    if measurements:
        props["measurements"] = {k: v for k, v in measurements.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and v is not None}
    return {"type": "Feature", "id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                    json.dumps([geometry, cls, name]))),
            "geometry": geometry, "properties": props}


def qupath_features(
    *,
    pixel_size_um: float,
    neurons: np.ndarray | None = None,
    table: pd.DataFrame | None = None,
    crossings: pd.DataFrame | None = None,
    lines: dict[str, np.ndarray] | None = None,
) -> dict:
    """Build a QuPath-readable GeoJSON FeatureCollection from results.

    Parameters
    ----------
    pixel_size_um : float
        Pixel size, to turn µm coordinates into pixels.
    neurons : ndarray of int, optional
        Neuron label image.
    table : pandas.DataFrame, optional
        Per-neuron table (``neuron_id`` + measurements, ``igg_positive``,
        ``touches_border``; a reviewer's ``excluded`` neurons get the class ``Excluded``,
        and a neuron with a blank ``igg_positive`` (no threshold, or a ring whose IgG
        could not be measured) the class ``Uncalled``).
    crossings : pandas.DataFrame, optional
        Skin crossings (``y_um, x_um``, ``fibre_id``; a reviewer's ``excluded`` crossings
        get the class ``IENF crossing (excluded)``).
    lines : dict of str to (N, 2) ndarray, optional
        Polylines in µm (y, x), e.g. ``dej`` and ``surface``.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``.
    """
    feats: list[dict] = []
    px = float(pixel_size_um)
    if neurons is not None:
        flags: dict[str, dict[int, bool]] = {}
        if table is not None:
            ids = table["neuron_id"].astype(int).to_numpy()
            for c in ("touches_border", "igg_positive", "excluded"):
                if c in table:
                    flags[c] = dict(zip(ids, schema.parse_bool(table[c], nullable=True)
                                        .to_numpy(object), strict=True))
        rows = {} if table is None else {int(r["neuron_id"]): r for _, r in table.iterrows()}
        for nid, ring in label_polygons(neurons).items():
            r = rows.get(nid)
            meas: dict[str, Any] = {}
            cls = "Uncalled"
            if r is not None:
                for k, v in r.items():
                    if k in ("neuron_id", "igg_positive", "touches_border", "size_class",
                             "excluded", "igg_positive_auto", "call_source"):
                        continue
                    cv = _clean(v)
                    if isinstance(cv, (int, float)) and not isinstance(cv, bool):
                        meas[k] = cv
                if _flag(flags, "excluded", nid):
                    cls = "Excluded"
                elif _flag(flags, "touches_border", nid):
                    cls = "Border"
                elif "igg_positive" in flags:
                    call = flags["igg_positive"].get(nid, pd.NA)
                    cls = "Uncalled" if pd.isna(call) else ("IgG+" if call else "IgG-")
            meas["neuron_id"] = nid
            name = f"neuron {nid}" + (f" ({r['size_class']})" if r is not None and
                                      "size_class" in r else "")
            feats.append(_feature({"type": "Polygon", "coordinates": [ring]}, "detection", cls,
                                  name, meas))
    if crossings is not None and len(crossings):
        excl = (schema.parse_bool(crossings["excluded"]).to_numpy() if "excluded" in crossings
                else np.zeros(len(crossings), bool))
        for k, (r, ex) in enumerate(zip(crossings.itertuples(index=False), excl, strict=True),
                                    start=1):
            pt = [round(float(r.x_um) / px + 0.5, 3), round(float(r.y_um) / px + 0.5, 3)]
            fid = getattr(r, "fibre_id", None)
            feats.append(_feature({"type": "Point", "coordinates": pt}, "annotation",
                                  "IENF crossing (excluded)" if ex else "IENF crossing",
                                  f"crossing {k}",
                                  {"fibre_id": _clean(fid)} if fid is not None else None))
    for name, arr in (lines or {}).items():
        arr = np.asarray(arr, float).reshape(-1, 2)
        if len(arr) < 2:
            continue
        coords = np.round(np.column_stack([arr[:, 1] / px + 0.5, arr[:, 0] / px + 0.5]),
                          3).tolist()
        cls = {"dej": "DEJ", "surface": "Surface"}.get(name, name)
        feats.append(_feature({"type": "LineString", "coordinates": coords}, "annotation",
                              cls, cls))
    return {"type": "FeatureCollection", "features": feats}


def _first_existing(bases: tuple[Path, ...], name: str) -> Path | None:
    for base in bases:
        if (base / name).exists():
            return base / name
    return None


def _image_paths(results: Path) -> dict[str, Path]:
    from .io import image_stem

    run = json.loads((results / "run.json").read_text(encoding="utf-8"))
    return {image_stem(f["path"]): Path(f["path"]) for f in run.get("files", [])
            if f.get("status") != "failed"}


def export_results(results: str | Path, to: str, dest: str | Path | None = None,
                   *, reviewed: bool = True, allow_stale: bool = False,
                   skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Export every image of a results folder to QuPath GeoJSON or OME-Zarr.

    Parameters
    ----------
    results : str or Path
        A ``histo-fms run`` output folder.
    to : {"qupath", "omezarr"}
        Target format.
    dest : str or Path, optional
        Destination folder (default ``results/export-qupath`` or ``results/export-omezarr``).
    reviewed : bool
        Use reviewed results (``STEM/reviewed/``) where they exist.
    allow_stale : bool
        Export reviews edited after their last recompute (their tables are older than
        their labels); by default such a folder is refused.
    skipped : list, optional
        When given, an image whose results cannot be read (a damaged ``labels.zarr`` or
        table) is left out and ``(stem, reason)`` appended here, and the others are
        exported; by default the :class:`~histo_fms.io.InputError` is raised.

    Returns
    -------
    list of Path
        Files or folders written.
    """
    from .io import InputError

    results = Path(results)
    if not (results / "run.json").is_file():
        raise InputError(results, "not a histo-fms results folder (no run.json)")
    if to not in ("qupath", "omezarr"):
        raise ValueError(f"unknown export target {to!r}: use 'qupath' or 'omezarr'")
    if reviewed and not allow_stale:
        from .review import stale_reviews

        stale = stale_reviews(results)
        if stale:
            raise InputError(results, f"reviews edited after their last recompute (stale): "
                                      f"{', '.join(stale)}; recompute them, export the "
                                      "automatic results (--automatic) or pass --allow-stale")
    dest = Path(dest) if dest is not None else results / f"export-{to}"
    written = []
    for stem, img_path in _image_paths(results).items():
        d = results / stem
        rd = d / "reviewed"
        lab_path = rd / "labels.zarr" if reviewed and (rd / "labels.zarr").exists() else (
            d / "labels.zarr")
        if not lab_path.exists():
            continue
        try:
            written.append(_export_one(stem, img_path, d, rd, lab_path, to, dest, reviewed))
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append((stem, str(exc)))
    return written


def _export_one(stem: str, img_path: Path, d: Path, rd: Path, lab_path: Path, to: str,
                dest: Path, reviewed: bool) -> Path:
    """Export one image's results (see :func:`export_results`)."""
    from .io import InputError

    labels = read_labels_zarr(lab_path)
    px = read_labels_scale(lab_path)
    try:
        if to == "qupath":
            bases = (rd, d) if reviewed else (d,)
            tab, cr, pl = (_first_existing(bases, n)
                           for n in ("neurons.csv", "crossings.csv", "polylines.json"))
            fc = qupath_features(
                pixel_size_um=px, neurons=labels.get("neurons"),
                table=schema.read_table(tab, "neurons") if tab is not None else None,
                crossings=schema.read_table(cr, "crossings") if cr is not None else None,
                lines=read_polylines(pl) if pl is not None else None)
            return write_json(fc, dest / f"{stem}.geojson")
        img = read_image(img_path, pixel_size_um=px)
        levels = max(1, int(np.floor(np.log2(max(img.shape_yx) / 512))) + 1)
        return write_omezarr(img.data, dest / f"{stem}.ome.zarr",
                             channel_names=img.channel_names, pixel_size_um=px,
                             levels=levels, labels=labels)
    except InputError:
        raise
    except (ValueError, KeyError) as exc:  # a damaged table or polyline file
        raise InputError(d, f"cannot export: {exc}", shown=stem) from exc
