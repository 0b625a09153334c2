"""Where ring-IgG rank information is lost on the independent DRG phantoms.

On the true neuron labels of ``../shared/validation/drg`` (so segmentation plays no
part), compares the pipeline's ``ring_igg`` with simpler and oracle-like measurements
of the same rings against ``ring_igg_true``: Spearman per section on all rings, on the
negative and on the positive rings. A measurement that ranks no better than the
pipeline with more information (true labels, no exclusions) points at a noise floor;
one that ranks better points at the step of the pipeline that loses it.

    python benchmarks/diagnose_rings_drg.py [--data DIR] [--sections 3000 3002]

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
from scipy.stats import spearmanr

from histo_fms.drg import measure_drg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "validation" / "drg"


def sp(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else np.nan


def annulus_stats(img, labels, r0_px, r1_px):
    """Mean of ``img`` over the band between r0 and r1 px outside each neuron."""
    bg = labels == 0
    d, (iy, ix) = ndi.distance_transform_edt(bg, return_indices=True)
    near = labels[iy, ix]
    m = bg & (d > r0_px) & (d <= r1_px)
    n = np.bincount(near[m], minlength=labels.max() + 1)
    s = np.bincount(near[m], weights=img[m], minlength=labels.max() + 1)
    with np.errstate(invalid="ignore"):
        return s / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sections", nargs="*", type=int)
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no validation data at {args.data}", file=sys.stderr)
        return 2
    import tifffile

    rows = []
    for img_path in sorted(args.data.glob("*.ome.tif")):
        stem = img_path.name[: -len(".ome.tif")]
        if args.sections and int(stem.split("_")[-1]) not in args.sections:
            continue
        truth = json.loads((args.data / f"{stem}.truth.json").read_text())
        img = tifffile.imread(img_path)
        ch = {n: img[i].astype(np.float32) for i, n in enumerate(truth["channels"])}
        labels = tifffile.imread(args.data / f"{stem}.labels.tif").astype(np.int32)
        px = truth["px_um"]
        res = measure_drg(ch["NeuN"], ch["hIgG"], pixel_size_um=px, sgc=ch["GS"],
                          nuclei=ch["DAPI"], labels=labels)
        tab = res.table.set_index("neuron_id")
        t = pd.DataFrame(truth["neurons"]).set_index("id")
        t = t[~t["touches_border"].astype(bool)]
        ids = t.index.to_numpy()
        rt = t["ring_igg_true"].to_numpy(float)
        pos = t["igg_positive"].to_numpy(bool)
        igg = ch["hIgG"] - res.dark_levels["igg"]
        meas = {"ring_igg": tab.loc[ids, "ring_igg"].to_numpy(float),
                "ring_mean": tab.loc[ids, "ring_mean"].to_numpy(float),
                "ring_mean/bg": (tab.loc[ids, "ring_mean"] / tab.loc[ids, "background"]
                                 ).to_numpy(float),
                "ring_mean-bg": (tab.loc[ids, "ring_mean"] - tab.loc[ids, "background"]
                                 ).to_numpy(float)}
        for r0, r1 in ((0, 1), (0, 2), (0, 3), (0, 4), (1, 3), (2, 4)):
            meas[f"annulus {r0}-{r1} um"] = annulus_stats(igg, labels, r0 / px, r1 / px)[ids]
        meas["annulus 0-3 / band 6-12"] = (meas["annulus 0-3 um"]
                                           / annulus_stats(igg, labels, 6 / px, 12 / px)[ids])
        meas["annulus 0-3 - band 6-12"] = (meas["annulus 0-3 um"]
                                           - annulus_stats(igg, labels, 6 / px, 12 / px)[ids])
        soma = ndi.mean(igg, labels, ids)
        meas["soma mean"] = np.asarray(soma)
        for k, v in meas.items():
            rows.append({"section": stem, "measure": k, "all": sp(v, rt),
                         "neg": sp(v[~pos], rt[~pos]),
                         "pos": sp(v[pos], rt[pos]) if pos.sum() > 2 else np.nan})
        # linear fit of ring_mean on the truth: counts per unit and residual noise
        a = np.polyfit(rt, meas["annulus 0-3 um"], 1)
        resid = meas["annulus 0-3 um"] - np.polyval(a, rt)
        print(f"{stem}: annulus 0-3 um = {a[1]:.2f} + {a[0]:.1f} * true; residual sd "
              f"{resid.std():.2f} counts; negative true range -> "
              f"{a[0] * np.ptp(rt[~pos]):.2f} counts; median bg "
              f"{np.nanmedian(tab['background']):.2f}")
    df = pd.DataFrame(rows)
    piv = df.pivot_table(index="measure", columns="section", values="all", sort=False)
    print("\nSpearman vs ring_igg_true, all non-border rings")
    print(piv.round(3).to_string())
    for part in ("neg", "pos"):
        print(f"\nSpearman, {part} rings only")
        print(df.pivot_table(index="measure", columns="section", values=part,
                             sort=False).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
