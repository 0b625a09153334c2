"""Render the README pictures from the sample-data results.

Run the README's first command, then ``python docs/make_readme_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from histo_fms.io import read_image, read_labels_zarr, read_polylines  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent


def _stretch(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, (1, 99.7))
    return np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1)


def skin_figure(results: Path, stem: str, out: Path) -> None:
    img = read_image(ROOT / "sample_data" / "skin" / f"{stem}.ome.tif")
    px = img.pixel_size_um
    fib = _stretch(img.data[img.channel_names.index("PGP9.5")].compute().astype(float))
    lines = read_polylines(results / stem / "polylines.json")
    cr = pd.read_csv(results / stem / "crossings.csv")
    truth = pd.read_csv(ROOT / "sample_data" / "skin" / "truth" / f"{stem}_crossings.csv")
    h, w = fib.shape
    fig = Figure(figsize=(12, 12 * h / w + 0.6), dpi=110)
    ax = fig.add_axes([0, 0, 1, 0.92])
    ext = (-px / 2, (w - 0.5) * px, (h - 0.5) * px, -px / 2)
    ax.imshow(fib, cmap="gray", extent=ext)
    ax.plot(lines["dej"][:, 1], lines["dej"][:, 0], color="#E69F00", lw=1.2, label="DEJ")
    ax.plot(lines["surface"][:, 1], lines["surface"][:, 0], color="#56B4E9", lw=1.2,
            label="surface")
    ax.scatter(truth["x_um"], truth["y_um"], s=160, facecolors="none", edgecolors="white",
               lw=1, label="truth")
    ax.scatter(cr["x_um"], cr["y_um"], s=60, marker="x", color="#D55E00", lw=2,
               label=f"counted ({len(cr)})")
    ax.plot([w * px - 120, w * px - 20], [h * px - 15] * 2, color="white", lw=3)
    ax.text(w * px - 70, h * px - 20, "100 µm", color="white", ha="center", va="bottom")
    ax.set_axis_off()
    ax.legend(loc="upper left", fontsize=8, framealpha=0.6)
    fig.suptitle(f"{stem}: PGP9.5, counted DEJ crossings (x) vs truth (o)", fontsize=10)
    fig.savefig(out)


def drg_figure(results: Path, stem: str, out: Path) -> None:
    img = read_image(ROOT / "sample_data" / "drg" / f"{stem}.ome.tif")
    px = img.pixel_size_um
    ch = {n: _stretch(img.data[i].compute().astype(float))
          for i, n in enumerate(img.channel_names)}
    rgb = np.stack([ch["IgG"], ch["NeuN"] * 0.8, ch["GS"] * 0.6], axis=-1).clip(0, 1)
    lab = read_labels_zarr(results / stem / "labels.zarr")
    t = pd.read_csv(results / stem / "neurons.csv").set_index("neuron_id")
    rings = lab["rings"]
    colour = {True: (0.84, 0.37, 0.0), False: (0.0, 0.45, 0.70)}
    over = rgb.copy()
    for nid, row in t.iterrows():
        edge = find_boundaries(rings == nid, mode="inner")
        c = (0.6, 0.6, 0.6) if row["touches_border"] else colour[bool(row["igg_positive"])]
        over[edge] = c
    h, w = rings.shape
    fig = Figure(figsize=(7, 7.4), dpi=110)
    ax = fig.add_axes([0, 0, 1, 0.93])
    ax.imshow(over, extent=(-px / 2, (w - 0.5) * px, (h - 0.5) * px, -px / 2))
    ax.plot([w * px - 60, w * px - 10], [h * px - 8] * 2, color="white", lw=3)
    ax.text(w * px - 35, h * px - 11, "50 µm", color="white", ha="center", va="bottom")
    ax.set_axis_off()
    n_pos = int((t["igg_positive"] & ~t["touches_border"]).sum())
    fig.suptitle(f"{stem}: IgG (red), NeuN (green), GS (blue); rings IgG+ orange "
                 f"({n_pos}), IgG- blue, border grey", fontsize=9)
    fig.savefig(out)


def demo_review(results: Path) -> None:
    """Make a small, recorded review so the automatic-vs-reviewed figures have data."""
    from histo_fms.review import ReviewSession

    drg = results / "drg"
    for stem in ("drg_m1_fms", "drg_m2_fms", "drg_m3_hc"):
        s = ReviewSession.open(drg, stem, reviewer="README demo")
        t = pd.read_csv(drg / stem / "neurons.csv")
        t = t[~t["touches_border"]]
        # the reviewer disagrees with the calls nearest the threshold
        for nid in t.iloc[(t["ring_igg"] - t["ring_igg"].median()).abs().argsort()[:2]][
                "neuron_id"]:
            s.flip_call(int(nid))
        s.recompute()
    skin = results / "skin"
    for stem in ("skin_hc01", "skin_fms01"):
        s = ReviewSession.open(skin, stem, reviewer="README demo")
        dej = read_polylines(skin / stem / "polylines.json")["dej"]
        y, x = dej[len(dej) // 3]
        s.add_crossing(float(y), float(x))
        s.recompute()


def paper_figures(results: Path) -> None:
    """Run `make_figures` on the sample results and copy one PNG of each kind here."""
    import shutil

    from histo_fms.figures import make_figures

    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    for kind in ("drg", "skin"):
        rep = make_figures(results / kind, ROOT / "sample_data" / kind / "samples.csv",
                           results / "figures" / kind, formats=("png", "svg"))
        for name, files in rep.figures.items():
            for f in files:
                if str(f).endswith(".png"):
                    shutil.copy(f, out / f"{name}.png")


if __name__ == "__main__":
    skin_figure(ROOT / "results" / "skin", "skin_hc01", HERE / "skin_crossings.png")
    drg_figure(ROOT / "results" / "drg", "drg_m1_fms", HERE / "drg_rings.png")
    demo_review(ROOT / "results")
    paper_figures(ROOT / "results")
    print("wrote", HERE / "skin_crossings.png", HERE / "drg_rings.png", HERE / "figures")
