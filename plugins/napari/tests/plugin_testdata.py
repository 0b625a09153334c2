"""Results folders for the plugin tests: real DRG runs on phantoms, a hand-made skin result.

A module with a unique name (not ``conftest``), so the tests import it even when pytest
collects the core's ``tests/`` in the same session.
"""

import numpy as np
import pandas as pd

CHANNELS = {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"}
#: image stem -> (seed, subject, group): groups and names must stay hidden while blinded
DRG_IMAGES = {"drgimg_m1_fms": (3, "FMS-P01", "FMS-IgG"),
              "drgimg_m2_hc": (4, "HC-01", "HC-IgG"),
              "drgimg_m3_fms": (5, "FMS-P02", "FMS-IgG")}


def write_drg_inputs(root, stems):
    from histo_fms.io import write_ome_tiff
    from histo_fms.synthetic.drg import make_drg_section

    inp = root / "in"
    inp.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem in stems:
        ph = make_drg_section((256, 256), 0.5, seed=DRG_IMAGES[stem][0])
        paths.append(write_ome_tiff(ph.image, inp / f"{stem}.ome.tif",
                                    channel_names=ph.channel_names, pixel_size_um=0.5))
    return paths


def drg_config():
    from histo_fms.config import load_config

    return load_config(None, pipeline="drg", overrides={
        "channels": CHANNELS, "parallel": {"scheduler": "synchronous"},
        "calibration": {"threshold": 1.5}})


def make_drg_results(root, stems=("drgimg_m1_fms",)):
    from histo_fms.batch import run_pipeline

    paths = write_drg_inputs(root, stems)
    sheet = pd.DataFrame([{"image": f"{s}.ome.tif", "subject": DRG_IMAGES[s][1],
                           "animal": f"a{i}", "group": DRG_IMAGES[s][2], "control": "false"}
                          for i, s in enumerate(stems)])
    sheet_path = root / "samples.csv"
    sheet.to_csv(sheet_path, index=False)
    out = root / "out"
    run_pipeline(drg_config(), paths, out, samples=sheet_path)
    return out


def make_skin_results(root, stem="skin_a"):
    from histo_fms.io import write_json, write_labels_zarr, write_polylines, write_table

    out = root / "out"
    d = out / stem
    epi = np.zeros((100, 400), np.uint8)
    epi[20:60] = 1
    fib = np.zeros((100, 400), np.int32)
    for i, x in enumerate(range(40, 400, 80), start=1):
        fib[30:80, x] = i
    write_labels_zarr({"epidermis": epi, "fibres": fib}, d / "labels.zarr", pixel_size_um=0.5)
    write_polylines({"dej": np.array([[30.0, 0.0], [30.0, 199.5]]),
                     "surface": np.array([[10.0, 0.0], [10.0, 199.5]])}, d / "polylines.json")
    write_table(pd.DataFrame({"y_um": [30.0] * 5, "x_um": [20.0, 60.0, 100.0, 140.0, 180.0],
                              "fibre_id": [1, 2, 3, 4, 5]}), d / "crossings.csv")
    write_table(pd.DataFrame([{"image": f"{stem}.ome.tif", "n_crossings": 5,
                               "epidermis_length_mm": 0.1995, "dej_length_mm": 0.1995,
                               "ienfd_per_mm": 5 / 0.1995, "pixel_size_um": 0.5,
                               "subject": "S1", "animal": "", "group": "HC"}]),
                out / "skin_summary.csv")
    write_json({"config": {"pipeline": "skin", "channels": {"fibre": "PGP9.5"}},
                "threshold": None,
                "files": [{"image": f"{stem}.ome.tif", "path": str(root / f"{stem}.ome.tif"),
                           "sha256": "0", "status": "ok", "pixel_size_um": 0.5}]},
               out / "run.json")
    return out


def interior_ids(table):
    """Ids of the neurons in a ``neurons.csv`` table that do not touch the image border."""
    return [int(i) for i in table.loc[~table["touches_border"].astype(bool), "neuron_id"]]
