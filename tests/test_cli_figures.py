"""`histo-fms figures` on a real (small) DRG run: files written, numbers from the tables."""

import pandas as pd
import pytest

from histo_fms.batch import run_pipeline
from histo_fms.cli import main
from histo_fms.config import load_config
from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section


def test_figures_from_a_real_run(tmp_path, capsys):
    rows = []
    imgs = []
    for i, (group, frac) in enumerate([("FMS", 0.6), ("FMS", 0.5), ("FMS", 0.6),
                                       ("HC", 0.05), ("HC", 0.0), ("HC", 0.05)]):
        ph = make_drg_section((192, 192), 0.5, seed=700 + i, positive_fraction=frac)
        p = write_ome_tiff(ph.image, tmp_path / f"m{i}.ome.tif", channel_names=ph.channel_names,
                           pixel_size_um=0.5)
        imgs.append(p)
        rows.append({"image": p.name, "animal": f"m{i}", "group": group})
    sheet = tmp_path / "s.csv"
    pd.DataFrame(rows).to_csv(sheet, index=False)
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS"},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": 1.1}})
    run_pipeline(cfg, imgs, tmp_path / "out", samples=sheet)
    rc = main(["figures", str(tmp_path / "out"), "--samples", str(sheet), "--format", "png,svg",
               "--no-mixed-model"])
    assert rc == 0
    figdir = tmp_path / "out" / "figures"
    assert (figdir / "drg_pct_igg_positive.png").stat().st_size > 1000
    assert (figdir / "drg_pct_igg_positive.svg").exists()
    assert not (figdir / "drg_pct_igg_positive.pdf").exists()
    assert "data:image/svg+xml;base64," in (figdir / "report.html").read_text()
    stats = pd.read_csv(figdir / "stats.csv")
    row = stats[stats["test"] == "Mann-Whitney U"].iloc[0]
    assert {row["n_a"], row["n_b"]} == {3}
    summ = pd.read_csv(tmp_path / "out" / "drg_summary.csv")
    from scipy.stats import PermutationMethod, mannwhitneyu

    fms = summ[summ["image"].isin([r["image"] for r in rows if r["group"] == "FMS"])]
    hc = summ[~summ.index.isin(fms.index)]
    pct = stats[stats["readout"].str.startswith("% IgG")].iloc[0]
    # the same method the statistics report (an exact permutation test when values tie)
    note = str(pct["note"])
    how = (PermutationMethod(n_resamples=20_000) if "permutation" in note
           else "exact" if "exact" in note else "asymptotic")
    want = mannwhitneyu(fms["pct_igg_positive"], hc["pct_igg_positive"], method=how)
    assert pct["p"] == pytest.approx(want.pvalue, rel=1e-6)
