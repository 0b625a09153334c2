"""List the false-positive / false-negative crossings of the skin pipeline on phantoms.

For each section of a validation folder (``*.ome.tif`` + ``*.truth.json``, as in
``../shared/validation/skin``) run :func:`histo_fms.skin.analyze_skin` with the default
parameters, match the crossings to the truth (one-to-one, 10 µm) and print one row per
miss: where it is, how far our DEJ lies from the true crossing point (a true crossing
lies on the true DEJ, so its signed depth in our DEJ frame is our DEJ's offset there:
> 0 our DEJ lies deeper, < 0 shallower), the nearest traced fibre's penetration past our
DEJ and the nearest detection / truth. With ``--png DIR`` an overlay crop (fibre channel
grey, nuclei blue, membrane magenta, our DEJ yellow, traced centre lines cyan, truth green
circles, detections red crosses) is saved per miss.

    python benchmarks/diagnose_skin.py [--data DIR] [--png /tmp/skin_diag] [--only 3501]

The data are read from a local folder and never committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage import morphology

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from validation_skin import DEFAULT_DATA, match  # noqa: E402

from histo_fms.io import read_image  # noqa: E402
from histo_fms.skin import SkinParams, analyze_skin, dej_depth  # noqa: E402

#: (true, detected, matched) per diagnosed section
TOTALS: list[tuple[int, int, int]] = []


def load(path: Path) -> tuple[dict, float]:
    img = read_image(path)
    names = [n.lower() for n in img.channel_names]
    ch = {}
    for role, name in (("fibre", "pgp9.5"), ("nuclei", "dapi"), ("membrane", "coliv")):
        if name in names:
            ch[role] = np.asarray(img.data[names.index(name)].compute())
    return ch, float(img.pixel_size_um)


def _norm(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    lo, hi = np.percentile(a, [1, 99.7])
    return np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)


def overlay(ch: dict, res, truth_px: np.ndarray, det_px: np.ndarray, center: tuple,
            half: int, path: Path, scale: int = 2) -> None:
    import imageio.v3 as iio

    h, w = ch["fibre"].shape
    cy, cx = int(center[0]), int(center[1])
    y0, y1 = max(cy - half, 0), min(cy + half, h)
    x0, x1 = max(cx - half, 0), min(cx + half, w)
    sl = (slice(y0, y1), slice(x0, x1))
    g = _norm(ch["fibre"])[sl]
    rgb = np.stack([g, g, g], -1)
    if "nuclei" in ch:
        rgb[..., 2] = np.maximum(rgb[..., 2], 0.6 * _norm(ch["nuclei"])[sl])
    if "membrane" in ch:
        m = 0.5 * _norm(ch["membrane"])[sl]
        rgb[..., 0] = np.maximum(rgb[..., 0], m)
        rgb[..., 2] = np.maximum(rgb[..., 2], m)
    skel = morphology.skeletonize(res.fibres[sl] > 0)
    rgb[skel] = (0.0, 0.9, 0.9)
    px = res.pixel_size_um
    dej = res.dej_um / px
    rgb = np.repeat(np.repeat(rgb, scale, 0), scale, 1)

    def put(yy, xx, col, r=0):
        yy = (np.asarray(yy) - y0) * scale
        xx = (np.asarray(xx) - x0) * scale
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                iy, ix = np.round(yy + dy).astype(int), np.round(xx + dx).astype(int)
                ok = (iy >= 0) & (iy < rgb.shape[0]) & (ix >= 0) & (ix < rgb.shape[1])
                rgb[iy[ok], ix[ok]] = col

    d = np.concatenate([np.linspace(dej[i], dej[i + 1], 8) for i in range(len(dej) - 1)])
    put(d[:, 0], d[:, 1], (1.0, 1.0, 0.0))
    t = np.linspace(0, 2 * np.pi, 64)
    for y, x in truth_px:
        put(y + 4 / px * np.sin(t), x + 4 / px * np.cos(t), (0.0, 1.0, 0.0))
    for y, x in det_px:
        k = np.arange(-6, 7)
        put(y + k, x + k, (1.0, 0.0, 0.0))
        put(y + k, x - k, (1.0, 0.0, 0.0))
    iio.imwrite(path, (255 * rgb).astype(np.uint8))


def diagnose(path: Path, truth: dict, params: SkinParams, png: Path | None,
             tol: float = 10.0) -> list[dict]:
    ch, px = load(path)
    return diagnose_channels(ch, px, truth, path.name.split(".")[0], params, png, tol)


def diagnose_channels(ch: dict, px: float, truth: dict, stem: str, params: SkinParams,
                      png: Path | None, tol: float = 10.0) -> list[dict]:
    """As :func:`diagnose` on channels in memory (``fibre``, ``nuclei``, ``membrane``)."""
    res = analyze_skin(ch["fibre"], pixel_size_um=px, membrane=ch.get("membrane"),
                       nuclei=ch.get("nuclei"), params=params)
    t = np.array([[c["y_um"], c["x_um"]] for c in truth["crossings"]], float).reshape(-1, 2)
    d = res.crossings[["y_um", "x_um"]].to_numpy(float).reshape(-1, 2)
    pairs = match(t, d, tol)
    TOTALS.append((len(t), len(d), len(pairs)))
    mt = {i for i, _ in pairs}
    md = {j for _, j in pairs}
    from histo_fms.skin import Epidermis

    epi = Epidermis(mask=res.epidermis, dej_um=res.dej_um, surface_um=res.surface_um,
                    pixel_size_um=px)
    depth = dej_depth(epi)
    skel = morphology.skeletonize(res.fibres > 0)
    lab, _ = ndi.label(skel, np.ones((3, 3), bool))
    pts = np.argwhere(skel)
    rows = []

    def near_fibre(yx_px):
        if not len(pts):
            return np.nan, np.nan
        dd = np.hypot(*(pts - yx_px).T)
        k = int(np.argmin(dd))
        lid = lab[tuple(pts[k])]
        return float(dd[k] * px), float(depth[lab == lid].max())

    def dist_to(arr, q):
        if not len(arr):
            return np.nan
        return float(np.min(np.hypot(*(arr - q).T)))

    for i in range(len(t)):
        if i in mt:
            continue
        q = t[i] / px
        iy, ix = np.clip(np.round(q).astype(int), 0, np.array(depth.shape) - 1)
        fd, pen = near_fibre(q)
        rows.append({"image": stem, "kind": "FN", "y_um": t[i, 0], "x_um": t[i, 1],
                     "dej_offset_um": float(depth[iy, ix]), "fibre_dist_um": fd,
                     "fibre_pen_um": pen, "nearest_other_um": dist_to(d, t[i])})
    for j in range(len(d)):
        if j in md:
            continue
        q = d[j] / px
        rows.append({"image": stem, "kind": "FP", "y_um": d[j, 0], "x_um": d[j, 1],
                     "dej_offset_um": np.nan, "fibre_dist_um": 0.0,
                     "fibre_pen_um": float(res.crossings["penetration_um"].iloc[j]),
                     "nearest_other_um": dist_to(t, d[j])})
    if png is not None:
        png.mkdir(parents=True, exist_ok=True)
        for k, r in enumerate(rows):
            overlay(ch, res, t / px, d / px, (r["y_um"] / px, r["x_um"] / px),
                    int(60 / px), png / f"{stem}_{k:02d}_{r['kind']}.png")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--png", type=Path)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--own", action="store_true",
                    help="our own phantoms (benchmarks/accuracy_skin.py's set) instead")
    ap.add_argument("--hard", action="store_true", help="with --own: the --hard set")
    ap.add_argument("--n", type=int, default=16, help="with --own: number of sections")
    a = ap.parse_args(argv)
    rows = []
    if a.own:
        from accuracy_skin import HARD, phantom_set

        from histo_fms.synthetic.skin import make_skin_section

        for spec in phantom_set(a.n, (600, 2400), 200, **(HARD if a.hard else {})):
            stem = f"own_{spec['seed']}"
            if a.only and not any(o in stem for o in a.only):
                continue
            ph = make_skin_section(spec["shape"], 0.5,
                                   **{k: v for k, v in spec.items() if k != "shape"})
            ch = {"fibre": ph.channel("PGP9.5"), "nuclei": ph.channel("DAPI")}
            if spec["with_membrane"]:
                ch["membrane"] = ph.channel("ColIV")
            truth = {"crossings": ph.truth_crossings[["y_um", "x_um"]].to_dict("records")}
            rows += diagnose_channels(ch, ph.pixel_size_um, truth, stem, SkinParams(), a.png)
        a.data = Path("/nonexistent")
    for tp in sorted(a.data.glob("*.truth.json")):
        stem = tp.name[: -len(".truth.json")]
        if a.only and not any(o in stem for o in a.only):
            continue
        truth = json.loads(tp.read_text())
        rows += diagnose(a.data / f"{stem}.ome.tif", truth, SkinParams(), a.png)
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(df.round(1).to_string())
    if TOTALS:
        nt, nd, tp = np.sum(TOTALS, axis=0)
        err = np.mean([abs(b - a) for a, b, _ in TOTALS])
        print(f"sections {len(TOTALS)}: precision {tp / max(nd, 1):.3f} recall "
              f"{tp / max(nt, 1):.3f} mean abs count error {err:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
