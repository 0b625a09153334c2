"""make_figures on a small fake results folder: plotted numbers, stats rows, files."""

import json
import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from skimage.draw import disk
from skimage.segmentation import expand_labels

from histo_fms import io
from histo_fms.figures import make_figures, pick_representative

PX = 0.5
# animal -> (group, sections: list of (n_neurons, n_positive))
DRG = {
    "m1": ("FMS", [(4, 3), (4, 1)]),
    "m2": ("FMS", [(4, 4)]),
    "m3": ("FMS", [(4, 2)]),
    "h1": ("HC", [(4, 0)]),
    "h2": ("HC", [(4, 1), (4, 0)]),
    "h3": ("HC", [(4, 1)]),
}
# subject -> (group, [(crossings, epidermis length mm)])
SKIN = {"P1": ("FM", [(5, 1.0)]), "P2": ("FM", [(6, 1.0), (2, 0.5)]), "P3": ("FM", [(4, 1.0)]),
        "C1": ("HC", [(10, 1.0)]), "C2": ("HC", [(12, 1.0)]), "C3": ("HC", [(9, 0.9)])}


def _drg_section(out, stem, n, npos, seed, files):
    rng = np.random.default_rng(seed)
    lab = np.zeros((64, 64), np.int32)
    centres = [(16, 16), (16, 46), (46, 16), (46, 46)][:n]
    for i, (y, x) in enumerate(centres, start=1):
        lab[disk((y, x), 7, shape=lab.shape)] = i
    rings = expand_labels(lab, 3) * (lab == 0)
    img = rng.normal(100, 5, (3, 64, 64)).astype(np.float32)
    img[0][lab > 0] += 400
    ring_igg = np.where(np.arange(n) < npos, 3.0 + 0.1 * np.arange(n), 1.0)
    for i in range(n):
        img[1][rings == i + 1] += 100 * ring_igg[i]
    path = out.parent / "images" / f"{stem}.ome.tif"
    path.parent.mkdir(exist_ok=True)
    io.write_ome_tiff(img.astype(np.uint16), path, channel_names=["NeuN", "IgG", "GS"],
                      pixel_size_um=PX)
    d = out / stem
    d.mkdir(parents=True)
    io.write_labels_zarr({"neurons": lab, "rings": rings}, d / "labels.zarr", pixel_size_um=PX)
    pd.DataFrame({"neuron_id": np.arange(1, n + 1), "y_um": [c[0] * PX for c in centres],
                  "x_um": [c[1] * PX for c in centres], "area_um2": 38.0, "diameter_um": 7.0,
                  "size_class": ["small", "medium", "large", "small"][:n],
                  "touches_border": False, "ring_igg": ring_igg,
                  "igg_positive": np.arange(n) < npos}).to_csv(d / "neurons.csv", index=False)
    files.append({"image": path.name, "path": str(path), "sha256": "0" * 64, "status": "ok"})
    return path.name


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("res")
    out = root / "OUT"
    out.mkdir()
    files, rows = [], []
    k = 0
    for animal, (_group, secs) in DRG.items():
        for j, (n, npos) in enumerate(secs):
            name = _drg_section(out, f"{animal}_s{j}", n, npos, k, files)
            k += 1
            rows.append({"image": name, "n_neurons": n, "n_igg_positive": npos,
                         "pct_igg_positive": 100 * npos / n, "median_ring_igg": 1.0,
                         "threshold": 2.0, "pixel_size_um": PX, "subject": "", "animal": animal,
                         "group": "placeholder", "control": False})
    name = _drg_section(out, "ctl_s0", 4, 0, 99, files)
    rows.append({"image": name, "n_neurons": 4, "n_igg_positive": 0, "pct_igg_positive": 0.0,
                 "median_ring_igg": 1.0, "threshold": 2.0, "pixel_size_um": PX, "subject": "",
                 "animal": "c0", "group": "", "control": True})
    pd.DataFrame(rows).to_csv(out / "drg_summary.csv", index=False)
    srows = []
    for subj, (group, secs) in SKIN.items():
        for j, (nc, length) in enumerate(secs):
            stem = f"{subj}_skin{j}"
            d = out / stem
            d.mkdir()
            xs = np.linspace(5, 25, nc)
            pd.DataFrame({"y_um": 10.0, "x_um": xs, "fibre_id": np.arange(nc)}).to_csv(
                d / "crossings.csv", index=False)
            io.write_polylines({"dej": np.array([[10.0, 0], [10.0, 31.5]]),
                                "surface": np.array([[4.0, 0], [4.0, 31.5]])},
                               d / "polylines.json")
            epi = np.zeros((64, 64), np.uint8)
            epi[8:20] = 1
            io.write_labels_zarr({"epidermis": epi, "fibres": epi * 0}, d / "labels.zarr",
                                 pixel_size_um=PX)
            srows.append({"image": f"{stem}.ome.tif", "n_crossings": nc,
                          "epidermis_length_mm": length, "dej_length_mm": length,
                          "ienfd_per_mm": nc / length, "pixel_size_um": PX, "subject": subj,
                          "animal": "", "group": group})
    pd.DataFrame(srows).to_csv(out / "skin_summary.csv", index=False)
    # a review of one skin section: 2 crossings removed
    rv = out / "C2_skin0" / "reviewed"
    rv.mkdir()
    pd.read_csv(out / "C2_skin0" / "crossings.csv").iloc[:10].to_csv(rv / "crossings.csv",
                                                                      index=False)
    io.write_json({"versions": {"histo_fms": "test"}, "threshold": {"ring_igg": 2.0,
                   "source": "control 99th percentile"}, "config": {"pipeline": "drg"},
                   "files": files}, out / "run.json")
    sheet = pd.DataFrame({"image": [r["image"] for r in rows],
                          "animal": [r["animal"] for r in rows],
                          "group": [DRG[r["animal"]][0] if r["animal"] in DRG else ""
                                    for r in rows],
                          "control": [r["control"] for r in rows]})
    sheet.to_csv(root / "samples.csv", index=False)
    rep = make_figures(out, samples=root / "samples.csv", out=root / "fig")
    return out, rep


def _pct_per_animal():
    return {a: 100 * sum(p for _, p in s) / sum(n for n, _ in s) for a, (_, s) in DRG.items()}


def test_drg_plotted_means_are_per_animal(results):
    _, rep = results
    pct = _pct_per_animal()
    pl = rep.plotted["drg_pct_igg_positive"].set_index("group")
    for g in ("FMS", "HC"):
        v = np.array([pct[a] for a, (gg, _) in DRG.items() if gg == g])
        assert pl.loc[g, "n"] == 3  # animals, not sections (control excluded)
        assert pl.loc[g, "mean"] == pytest.approx(v.mean())
        assert pl.loc[g, "sem"] == pytest.approx(v.std(ddof=1) / np.sqrt(3))
    assert set(pl.index) == {"FMS", "HC"}  # sample sheet replaced the placeholder groups


def test_stats_rows_match_scipy(results):
    _, rep = results
    st = pd.read_csv(rep.stats_path)
    pct = _pct_per_animal()
    fms = [pct[a] for a in ("m1", "m2", "m3")]
    hc = [pct[a] for a in ("h1", "h2", "h3")]
    r = st[st["readout"].str.startswith("% IgG-positive")].iloc[0]
    assert (r["unit"], r["test"], r["group_a"], r["group_b"]) == ("animal", "Mann-Whitney U",
                                                                  "FMS", "HC")
    assert (r["n_a"], r["n_b"]) == (3, 3)
    ref = sps.mannwhitneyu(fms, hc, alternative="two-sided", method="exact")
    assert r["statistic"] == pytest.approx(ref.statistic)
    assert r["p"] == pytest.approx(ref.pvalue)
    assert r["effect_size"] == pytest.approx(1.0)
    # skin: IENFD per subject = total crossings / total length
    ienfd = {s: sum(c for c, _ in v) / sum(m for _, m in v) for s, (_, v) in SKIN.items()}
    ienfd["C2"] = 10 / 1.0  # reviewed value replaces the automatic one
    sk = st[st["readout"].str.startswith("IENFD")].iloc[0]
    assert "reviewed" in sk["readout"] and sk["unit"] == "subject"
    ref = sps.mannwhitneyu([ienfd[s] for s in ("P1", "P2", "P3")],
                           [ienfd[s] for s in ("C1", "C2", "C3")], method="exact")
    assert sk["p"] == pytest.approx(ref.pvalue)
    pl = rep.plotted["skin_ienfd"].set_index("group")
    assert pl.loc["HC", "mean"] == pytest.approx(np.mean([ienfd[s] for s in ("C1", "C2", "C3")]))
    assert pl.loc["FM", "mean"] == pytest.approx(np.mean([ienfd[s] for s in ("P1", "P2", "P3")]))
    assert (st["test"].str.startswith("MixedLM")).any()


def test_ring_igg_by_size_and_bland_altman(results):
    _, rep = results
    pl = rep.plotted["drg_ring_igg_by_size"]
    n_fms = sum(n for g, s in DRG.values() if g == "FMS" for n, _ in s)
    assert pl[pl["group"] == "FMS"]["n_neurons"].sum() == n_fms
    ba = rep.plotted["skin_bland_altman"]
    assert list(ba["image"]) == ["C2_skin0.ome.tif"]
    assert ba["difference"].iloc[0] == 2
    assert "drg_bland_altman" not in rep.plotted  # no DRG review


def test_montage_picks_median_and_shares_contrast(results):
    out, rep = results
    m = rep.plotted["drg_montage"]
    assert list(m["title"]) == ["FMS", "HC"]
    vmins = m.filter(like="vmin_IgG")
    assert vmins.nunique().iloc[0] == 1  # one display range for every panel
    summ = pd.read_csv(out / "drg_summary.csv")
    summ["group"] = [DRG.get(a, ("",))[0] for a in summ["animal"]]
    pick = pick_representative(summ[~summ["control"]], "pct_igg_positive")
    assert list(m["image"]) == [pick["FMS"], pick["HC"]]
    row = m.set_index("image").loc[pick["FMS"]]
    n, npos = next(s for a, (g, ss) in DRG.items() for j, s in enumerate(ss)
                   if f"{a}_s{j}.ome.tif" == pick["FMS"])
    assert (row["n_positive"], row["n_negative"]) == (npos, n - npos)
    assert rep.plotted["skin_montage"]["n_crossings"].sum() > 0


def test_every_format_written_and_opens(results):
    _, rep = results
    expected = {"drg_pct_igg_positive", "drg_ring_igg_by_size", "drg_montage", "skin_ienfd",
                "skin_bland_altman", "skin_montage"}
    assert expected <= set(rep.figures)
    for files in rep.figures.values():
        assert sorted(f.suffix for f in files) == [".pdf", ".png", ".svg"]
        for f in files:
            if f.suffix == ".png":
                assert mpimg.imread(f).ndim == 3
            elif f.suffix == ".pdf":
                data = f.read_bytes()
                assert data.startswith(b"%PDF") and b"/Type /Page" in data
            else:
                assert ET.parse(f).getroot().tag.endswith("svg")


def test_report_is_self_contained(results):
    _, rep = results
    html = rep.report_path.read_text()
    assert html.count("data:image/svg+xml;base64,") == len(rep.figures)
    assert "control 99th percentile" in html and "Mann-Whitney U" in html
    assert 'src="http' not in html
    assert json.loads(json.dumps(rep.notes)) == []


def test_reviewed_drg_and_single_format(results, tmp_path):
    import shutil

    out, _ = results
    res = tmp_path / "OUT"
    shutil.copytree(out, res)
    stem = "h1_s0"  # HC animal h1: 0 of 4 positive automatically; the reviewer calls 2
    t = pd.read_csv(res / stem / "neurons.csv")
    t.loc[:1, "igg_positive"] = True
    (res / stem / "reviewed").mkdir()
    t.to_csv(res / stem / "reviewed" / "neurons.csv", index=False)
    rep = make_figures(res, out=tmp_path / "fig", formats="png", unit="animal",
                       images=["m2_s0", "h3_s0.ome.tif"])
    assert all([f.suffix for f in v] == [".png"] for v in rep.figures.values())
    ba = rep.plotted["drg_bland_altman"]
    assert list(ba["image"]) == ["h1_s0.ome.tif"] and ba["difference"].iloc[0] == -2
    # without the sample sheet the summary's groups are used; reviewed calls enter the stats
    agg = pd.read_csv(rep.tables["drg"]).set_index("unit_id")
    assert agg.loc["h1", "pct_igg_positive"] == pytest.approx(50.0)
    assert rep.stats["readout"].str.contains("reviewed").any()
    assert list(rep.plotted["drg_montage"]["image"]) == ["m2_s0.ome.tif", "h3_s0.ome.tif"]


def test_panel_uses_the_runs_pixel_size_not_the_files(tmp_path):
    # a run given --pixel-size 0.5 on a file whose metadata says 2 µm: the tables' µm
    # coordinates and the scale bar are those of the run
    import tifffile

    from histo_fms.figures import load_panel
    from histo_fms.io import write_labels_zarr, write_ome_tiff

    img = np.zeros((2, 64, 64), np.uint16)
    write_ome_tiff(img, tmp_path / "a.ome.tif", channel_names=["NeuN", "IgG"],
                   pixel_size_um=2.0)
    lab = np.zeros((64, 64), np.int32)
    lab[10:20, 10:20] = 1
    write_labels_zarr({"neurons": lab, "rings": lab}, tmp_path / "a" / "labels.zarr",
                      pixel_size_um=0.5)
    p = load_panel(str(tmp_path / "a.ome.tif"), str(tmp_path / "a"), title="a", kind="drg")
    assert p.pixel_size_um == 0.5
    # no labels and no pixel size anywhere: refused, not drawn at 1 µm/px
    tifffile.imwrite(tmp_path / "b.tif", img)
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="no pixel size"):
        load_panel(str(tmp_path / "b.tif"), str(tmp_path / "b"), title="b", kind="drg")
