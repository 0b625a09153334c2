"""The independent validation sets under other imaging conditions, then scored.

The judging sets of ``../shared/validation`` are other seeds *and other imaging
conditions* (pixel sizes, photon counts) than the 0.5 µm/px files we have. This script
re-images each section of the set as another microscope would have, writes the copies
(with the same sample sheet and ``truth.json``, whose positions are in µm and so stay
valid) to a local folder, and scores them with ``validation_drg.py`` (or, with ``--skin``,
the skin set with ``validation_skin.py``):

* ``--pixel-size UM``: coarser pixels, each the mean of the finer ones it covers (area
  resampling with anti-aliasing, as a camera with larger pixels or a lower
  magnification records), the OME pixel size set to match;
* ``--photons F``: a fraction ``F`` of the photons: the counts above the camera offset
  (the image's 0.1th percentile, about 95-100 here) are binomially thinned to ``F`` of
  themselves, so shot noise grows as it would with a shorter exposure, and the offset
  is added back;
* ``--blur-um S``: optical blur, a Gaussian point spread of ``S`` µm (sigma) applied
  before resampling (a lower-NA objective, or a section slightly out of focus);
* ``--gain G`` and ``--offset O``: the counts above the camera offset scaled by ``G``
  and the offset raised by ``O`` (another camera gain in counts per photon, or
  baseline: the noise scales with the signal); applied before the photon thinning. The
  offset here is the level of the darkest smoothed pixels (the 0.5th percentile after a
  9 px mean: the glass), so that the glass stays at the offset;
* ``--shading F``: uneven illumination, each channel multiplied by a smooth radial
  fall-off to ``1 - F`` at the corners, centred off the middle (a vignetting lamp).

    python benchmarks/validation_conditions.py --pixel-size 0.7 --out /tmp/vc_07
    python benchmarks/validation_conditions.py --pixel-size 1.0 --photons 0.5 --out /tmp/vc
    python benchmarks/validation_conditions.py --skin --pixel-size 0.7 --out /tmp/vc_skin
    python benchmarks/validation_conditions.py --blur-um 1 --gain 0.25 --offset 400 --out /tmp/vc

Nothing here is tuned to: it shows whether the figures hold off the 0.5 µm/px the set
was made at. The copies are written under ``--out`` and never committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT.parent / "shared" / "validation"


def reimage(img: np.ndarray, px: float, out_px: float, photons: float,
            rng: np.random.Generator, *, blur_um: float = 0.0, gain: float = 1.0,
            offset_add: float = 0.0, shading: float = 0.0) -> np.ndarray:
    """One (C, Y, X) uint16 section re-imaged at ``out_px`` with ``photons`` of its light.

    See the module docstring for the conditions; each is off at its default.
    """
    from scipy import ndimage as ndi
    from skimage.transform import resize

    out = []
    yy, xx = np.mgrid[0 : img.shape[1], 0 : img.shape[2]].astype(np.float64)
    # radial fall-off centred a fifth of the way from the middle to a corner
    cy, cx = 0.6 * img.shape[1], 0.4 * img.shape[2]
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.6**2 * (img.shape[1] ** 2 + img.shape[2] ** 2))
    fall = 1.0 - shading * np.clip(r2, 0, 1)
    for ch in img:
        a = ch.astype(np.float64)
        offset = float(np.percentile(a, 0.1))
        if blur_um > 0:
            a = ndi.gaussian_filter(a, blur_um / px, mode="reflect")
        if gain != 1 or shading > 0 or offset_add:
            # the camera offset, which neither gain nor shading touches: the level of
            # the darkest smoothed pixels (the glass; the 0.1th percentile of the raw
            # pixels lies several noise sigmas below it)
            base = float(np.percentile(ndi.uniform_filter(a, 9), 0.5))
            a = (a - base) * gain * fall + base + offset_add
            offset = base + offset_add  # photons are thinned above the new offset
        if photons < 1:
            above = np.clip(np.round(a - offset), 0, None).astype(np.int64)
            a = rng.binomial(above, photons).astype(np.float64) / photons + offset
        if out_px != px:
            shape = tuple(int(round(n * px / out_px)) for n in a.shape)
            a = resize(a, shape, order=1, anti_aliasing=True, preserve_range=True)
        out.append(np.clip(np.round(a), 0, 65535).astype(np.uint16))
    return np.stack(out)


def write_set(data: Path, out: Path, out_px: float, photons: float, seed: int,
              **conditions: float) -> None:
    """Write the re-imaged copy of the validation folder ``data`` to ``out``."""
    import tifffile
    from skimage.transform import resize

    from histo_fms.io import write_ome_tiff

    out.mkdir(parents=True, exist_ok=True)
    if (data / "samples.csv").is_file():
        shutil.copy(data / "samples.csv", out / "samples.csv")
    for k, f in enumerate(sorted(data.glob("*.ome.tif"))):
        stem = f.name[: -len(".ome.tif")]
        with tifffile.TiffFile(f) as tf:
            img = tf.series[0].asarray()
        truth = json.loads((data / f"{stem}.truth.json").read_text())
        px = float(truth["px_um"])
        names = [str(c) for c in truth["channels"]]
        new = reimage(img, px, out_px, photons, np.random.default_rng([seed, k]),
                      **conditions)
        write_ome_tiff(new, out / f.name, channel_names=names, pixel_size_um=out_px)
        lab_f = data / f"{stem}.labels.tif"
        if lab_f.is_file():  # the true labels, for ``validation_drg.py --truth-labels``
            lab = tifffile.imread(lab_f)
            lab = resize(lab, new.shape[1:], order=0, preserve_range=True,
                         anti_aliasing=False).astype(lab.dtype)
            tifffile.imwrite(out / lab_f.name, lab)
        truth["px_um"] = out_px
        (out / f"{stem}.truth.json").write_text(json.dumps(truth))
        print(f"{f.name}: {img.shape[1:]} at {px} -> {new.shape[1:]} at {out_px} µm/px, "
              f"{photons:g} of the photons, {conditions}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skin", action="store_true", help="the skin set (default: DRG)")
    ap.add_argument("--data", type=Path, help="the set's folder (default: "
                    "../shared/validation/drg or skin)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the re-imaged copy")
    ap.add_argument("--pixel-size", type=float, default=0.5, help="µm per pixel of the copy")
    ap.add_argument("--photons", type=float, default=1.0,
                    help="fraction of the photons kept (0 < F <= 1)")
    ap.add_argument("--blur-um", type=float, default=0.0, help="Gaussian PSF sigma, µm")
    ap.add_argument("--gain", type=float, default=1.0, help="scale of the counts above offset")
    ap.add_argument("--offset", type=float, default=0.0, help="counts added to the offset")
    ap.add_argument("--shading", type=float, default=0.0,
                    help="illumination fall-off at the corners (0 <= F < 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-only", action="store_true", help="write the copy, do not score")
    args = ap.parse_args(argv)
    kind = "skin" if args.skin else "drg"
    if args.data is None:
        args.data = VALIDATION / kind
    if not args.data.is_dir():
        print(f"no validation data at {args.data}", file=sys.stderr)
        return 2
    if (not 0 < args.photons <= 1 or args.pixel_size <= 0 or args.blur_um < 0
            or args.gain <= 0 or not 0 <= args.shading < 1):
        print("--photons must be in (0, 1], --pixel-size and --gain > 0, --blur-um >= 0, "
              "--shading in [0, 1)", file=sys.stderr)
        return 2
    write_set(args.data, args.out, args.pixel_size, args.photons, args.seed,
              blur_um=args.blur_um, gain=args.gain, offset_add=args.offset,
              shading=args.shading)
    if args.write_only:
        return 0
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"validation_{kind}.py"),
                           "--data", str(args.out)], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
