"""A reviewer's exclusions change the paper's numbers: statistics, figures, export."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_review_session import make_drg_results, make_skin_results

from histo_fms import stats as hs
from histo_fms.export import export_results
from histo_fms.figures import make_figures
from histo_fms.review import ReviewSession


@pytest.fixture(scope="module")
def reviewed_drg(tmp_path_factory):
    """A DRG run, one image reviewed: one IgG-positive neuron excluded, one deleted."""
    out = make_drg_results(tmp_path_factory.mktemp("excl"), seeds=(3,), threshold=1.5)
    s = ReviewSession.open(out, "drg_s3", "AB")
    t = s.table
    interior = t.loc[~t["touches_border"]]
    pos = interior.loc[interior["igg_positive"].astype(bool), "neuron_id"].astype(int).tolist()
    assert len(pos) >= 2
    s.set_excluded(pos[0])
    s.delete_neuron(pos[1])
    s.recompute()
    return out, pos[0], pos[1]


def _truth(out):
    """Counts from the reviewed table, by hand: not excluded, not border."""
    t = pd.read_csv(out / "drg_s3" / "reviewed" / "neurons.csv")
    keep = t[~t["excluded"].astype(bool) & ~t["touches_border"].astype(bool)]
    return len(keep), int(keep["igg_positive"].astype(bool).sum()), t


def test_aggregate_and_pool_leave_out_excluded_rows(reviewed_drg):
    out, excl, deleted = reviewed_drg
    n, npos, t = _truth(out)
    assert excl in set(t["neuron_id"]) and deleted not in set(t["neuron_id"])
    # read as any user would (plain CSV): the consumers parse the flags themselves
    summary = pd.read_csv(out / "drg_summary_reviewed.csv")
    neurons = {"drg_s3.ome.tif": pd.read_csv(out / "drg_s3" / "reviewed" / "neurons.csv")}
    per = hs.aggregate_drg(summary, neurons, "image")
    assert per.loc[0, "n_neurons"] == n
    assert per.loc[0, "n_igg_positive"] == npos
    # agrees with the review's own summary of the same image
    assert per.loc[0, "n_neurons"] == summary.loc[0, "n_neurons"]
    pooled = hs.pool_neurons(summary, neurons, "image")
    assert len(pooled) == n and excl not in set(pooled["neuron_id"])


def test_figures_use_reviewed_counts_without_excluded(reviewed_drg, tmp_path):
    out, excl, _ = reviewed_drg
    n, npos, t = _truth(out)
    rep = make_figures(out, out=tmp_path / "fig", formats="png", unit="image",
                       mixed_model=False)
    per = pd.read_csv(rep.tables["drg"])
    assert per.loc[0, "n_neurons"] == n and per.loc[0, "n_igg_positive"] == npos
    ba = rep.plotted["drg_bland_altman"].iloc[0]
    auto_pos = int(pd.read_csv(out / "drg_s3" / "neurons.csv")["igg_positive"].sum())
    # reviewed: the excluded and the deleted neuron no longer count
    rev_pos = int((~t["excluded"] & t["igg_positive"].astype(bool)).sum())
    assert rev_pos == auto_pos - 2
    assert ba["difference"] == auto_pos - rev_pos
    assert ba["mean"] == pytest.approx((auto_pos + rev_pos) / 2)


def test_skin_counts_leave_out_excluded_crossings(tmp_path):
    out = make_skin_results(tmp_path, stems=("skin_a", "skin_b"))
    s = ReviewSession.open(out, "skin_a", "AB")
    s.exclude_region(np.array([[0.0, 50.0], [0.0, 70.0], [100.0, 70.0], [100.0, 50.0]]))
    # the reviewed crossings exist (autosaved), but no reviewed summary was written yet
    rev = pd.read_csv(out / "skin_a" / "reviewed" / "crossings.csv")
    assert len(rev) == 5 and int(rev["excluded"].sum()) == 1
    assert not (out / "skin_summary_reviewed.csv").exists()
    rep = make_figures(out, out=tmp_path / "fig", formats="png", unit="image")
    per = pd.read_csv(rep.tables["skin"]).set_index("unit_id")
    assert per.loc["skin_a.ome.tif", "n_crossings"] == 4
    assert per.loc["skin_b.ome.tif", "n_crossings"] == 5
    ba = rep.plotted["skin_bland_altman"].iloc[0]
    assert ba["image"] == "skin_a.ome.tif" and ba["difference"] == 5 - 4


def test_export_marks_excluded(reviewed_drg, tmp_path):
    out, excl, _ = reviewed_drg
    shutil.rmtree(tmp_path / "q", ignore_errors=True)
    (path,) = export_results(out, "qupath", tmp_path / "q")
    fc = json.loads(path.read_text())
    cls = {f["properties"]["measurements"]["neuron_id"]: f["properties"]["classification"]["name"]
           for f in fc["features"] if f["properties"].get("objectType") == "detection"}
    assert cls[excl] == "Excluded"
