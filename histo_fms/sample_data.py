"""Generate the small phantom data set shipped in ``sample_data/`` (with ground truth).

Run ``histo-fms sample-data --out sample_data`` to regenerate it; the files are
deterministic for a given histo-fms version.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import tifffile

from .io import write_json, write_ome_tiff, write_table

#: (stem, seed, control, positive_fraction, subject, animal, group)
DRG_SAMPLES = [
    ("drg_m1_fms", 11, False, 0.55, "FMS-P01", "m1", "FMS-IgG"),
    ("drg_m2_fms", 12, False, 0.40, "FMS-P02", "m2", "FMS-IgG"),
    ("drg_m3_hc", 13, False, 0.05, "HC-01", "m3", "HC-IgG"),
    ("drg_m4_ctrl", 14, True, 0.0, "", "m4", "control-IgG"),
    ("drg_m5_ctrl", 15, True, 0.0, "", "m5", "control-IgG"),
]
DRG_SHAPE = (512, 512)
DRG_PIXEL_UM = 0.5

#: (stem, seed, density_per_mm, subject, group)
SKIN_SAMPLES = [
    ("skin_hc01", 21, 12.0, "HC-01", "HC"),
    ("skin_fms01", 22, 5.0, "FMS-P01", "FMS"),
]
SKIN_SHAPE = (400, 1600)
SKIN_PIXEL_UM = 0.5


def make_sample_data(out: str | Path = "sample_data") -> list[Path]:
    """Write the DRG and skin sample images, their truth and sample sheets.

    Parameters
    ----------
    out : str or Path
        Destination folder (``drg/`` and ``skin/`` are made inside).

    Returns
    -------
    list of Path
        Every file written.
    """
    from .synthetic.drg import make_drg_section
    from .synthetic.skin import make_skin_section

    out = Path(out)
    written: list[Path] = []
    drg, skin = out / "drg", out / "skin"
    rows = []
    for stem, seed, control, frac, subject, animal, group in DRG_SAMPLES:
        ph = make_drg_section(DRG_SHAPE, DRG_PIXEL_UM, seed=seed, control=control,
                              positive_fraction=frac)
        written.append(write_ome_tiff(ph.image, drg / f"{stem}.ome.tif",
                                      channel_names=ph.channel_names,
                                      pixel_size_um=ph.pixel_size_um))
        (drg / "truth").mkdir(parents=True, exist_ok=True)
        written.append(write_table(ph.truth, drg / "truth" / f"{stem}_neurons.csv"))
        lab = drg / "truth" / f"{stem}_labels.tif"
        tifffile.imwrite(lab, ph.labels, compression="zlib")
        written.append(lab)
        rows.append({"image": f"{stem}.ome.tif", "subject": subject, "animal": animal,
                     "group": group, "control": str(control).lower()})
    written.append(write_table(pd.DataFrame(rows), drg / "samples.csv"))

    rows = []
    for stem, seed, density, subject, group in SKIN_SAMPLES:
        ph = make_skin_section(SKIN_SHAPE, SKIN_PIXEL_UM, density_per_mm=density, seed=seed)
        written.append(write_ome_tiff(ph.image, skin / f"{stem}.ome.tif",
                                      channel_names=ph.channel_names,
                                      pixel_size_um=ph.pixel_size_um))
        (skin / "truth").mkdir(parents=True, exist_ok=True)
        written.append(write_table(ph.truth_crossings, skin / "truth" / f"{stem}_crossings.csv"))
        written.append(write_json({"n_crossings": int(ph.n_crossings),
                                   "surface_length_um": float(ph.surface_length_um),
                                   "dej_length_um": float(ph.dej_length_um),
                                   "density_per_mm": density,
                                   "ienfd_per_mm": float(ph.ienfd_per_mm)},
                                  skin / "truth" / f"{stem}_truth.json"))
        rows.append({"image": f"{stem}.ome.tif", "subject": subject, "animal": "",
                     "group": group})
    written.append(write_table(pd.DataFrame(rows), skin / "samples.csv"))
    return written
