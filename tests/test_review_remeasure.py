"""Recompute after edits re-measures only near the edits, and equals a full re-measure."""

import shutil

import numpy as np
import pandas as pd
import pytest

from histo_fms.io import read_labels_zarr
from histo_fms.review import ReviewSession, _remeasure

STEM = "drg_s5"


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config
    from histo_fms.io import write_ome_tiff
    from histo_fms.synthetic.drg import make_drg_section

    root = tmp_path_factory.mktemp("remeasure")
    ph = make_drg_section((512, 512), 1.0, seed=5)
    path = write_ome_tiff(ph.image, root / "in" / f"{STEM}.ome.tif",
                          channel_names=ph.channel_names, pixel_size_um=1.0)
    # a smaller tissue-reference window: the measurement radius (163 px) leaves most of
    # this small section out of an edit's reach, as on a whole section
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"},
        "drg": {"background_reference_um": 20.0},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": 1.5}})
    out = root / "out"
    run_pipeline(cfg, [path], out)
    return out


def _pair(master, tmp_path):
    a, b = tmp_path / "local", tmp_path / "full"
    shutil.copytree(master, a)
    shutil.copytree(master, b)
    return a, b


def _ids_far_apart(s):
    t = s.table
    t = t.loc[~t["touches_border"]]
    top = t.sort_values("y_um")
    bottom = top.iloc[::-1]
    return [int(i) for i in top["neuron_id"]], [int(i) for i in bottom["neuron_id"]]


def _edit_round_1(s, top):
    s.delete_neuron(top[0])
    s.flip_call(top[1])
    s.set_excluded(top[2])
    # merge two neighbours near the top
    t = s.table.set_index("neuron_id")
    a = top[3]
    ya, xa = t.loc[a, ["y_um", "x_um"]]
    others = t.drop(index=[a, *top[:3]])
    d = np.hypot(others["y_um"] - ya, others["x_um"] - xa)
    s.merge_neurons([a, int(d.idxmin())])
    # paint a new neuron in background near the top edge, then undo and redo a delete
    m = np.zeros(s.neurons.shape, bool)
    ys, xs = np.nonzero(s.neurons[:120] == 0)
    cy, cx = ys[len(ys) // 2], xs[len(xs) // 2]
    m[max(cy - 4, 0):cy + 4, max(cx - 4, 0):cx + 4] = True
    m &= s.neurons == 0
    s.paint(m)
    s.delete_neuron(top[4])
    s.undo()
    s.delete_neuron(top[5])
    s.undo()
    s.redo()


def _edit_round_2(s, bottom):
    s.undo()  # the last edit before the recompute (its pixels are re-measured again)
    t = s.table.set_index("neuron_id")
    y, x = t.loc[bottom[0], ["y_um", "x_um"]]
    r = float(t.loc[bottom[0], "diameter_um"])
    s.split_neuron(bottom[0], line_um=[[y - r, x], [y + r, x]])
    s.delete_neuron(bottom[1])
    s.flip_call(bottom[2])


def _compare(a, b):
    ra = a / STEM / "reviewed"
    rb = b / STEM / "reviewed"
    ta = pd.read_csv(ra / "neurons.csv")
    tb = pd.read_csv(rb / "neurons.csv")
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    assert (ra / "neurons.csv").read_bytes() == (rb / "neurons.csv").read_bytes()
    la, lb = read_labels_zarr(ra / "labels.zarr"), read_labels_zarr(rb / "labels.zarr")
    np.testing.assert_array_equal(la["neurons"], lb["neurons"])
    np.testing.assert_array_equal(la["rings"], lb["rings"])
    sa = pd.read_csv(a / "drg_summary_reviewed.csv").drop(columns=["reviewed_at"])
    sb = pd.read_csv(b / "drg_summary_reviewed.csv").drop(columns=["reviewed_at"])
    pd.testing.assert_frame_equal(sa, sb, check_exact=True)


def test_local_remeasure_equals_full(master, tmp_path, monkeypatch):
    # on this small section an edit's crop is more than half of it (a whole section
    # would be re-measured); allow it (crops at both ends: more than its area), to test
    # the crops
    monkeypatch.setattr(_remeasure, "MAX_LOCAL_FRACTION", 3.0)
    a, b = _pair(master, tmp_path)
    sa = ReviewSession.open(a, STEM, "AB")
    sb = ReviewSession.open(b, STEM, "AB")
    n = len(sa.table)
    top, bottom = _ids_far_apart(sa)
    for s in (sa, sb):
        _edit_round_1(s, top)

    plans = []
    real_plan = _remeasure.plan_local

    def spy(session, params):
        p = real_plan(session, params)
        plans.append(p)
        return p

    monkeypatch.setattr(_remeasure, "plan_local", spy)
    sa.recompute()
    monkeypatch.setattr(_remeasure, "plan_local", lambda *a: None)  # force the full path
    sb.recompute()
    assert plans and plans[0] is not None, "the edits should have been re-measured locally"
    k = sum(len(g) for g in plans[0]["groups"])
    assert 0 < k < 0.7 * n, (k, n)  # only the edited neurons and their neighbours
    _compare(a, b)
    rec = sa.history()[-1]
    assert rec["kind"] == "recompute" and rec["params"]["local"]

    # reopen (the edits since the last recompute come from the stored diffs) and edit
    # the other end of the section: the base is now the reviewed measurement
    monkeypatch.setattr(_remeasure, "plan_local", spy)
    plans.clear()
    sa = ReviewSession.open(a, STEM, "AB")
    sb = ReviewSession.open(b, STEM, "AB")
    for s in (sa, sb):
        _edit_round_2(s, bottom)
    sa.recompute()
    assert plans[0] is not None and plans[0]["base_recompute"]
    monkeypatch.setattr(_remeasure, "plan_local", lambda *a: None)
    sb.recompute()
    _compare(a, b)
    # the context is cached beside the review
    assert (a / STEM / "reviewed" / "context.json").is_file()


def test_local_remeasure_unaffected_rows_unchanged(master, tmp_path, monkeypatch):
    """Rows far from an edit are the automatic ones (not even re-measured)."""
    monkeypatch.setattr(_remeasure, "MAX_LOCAL_FRACTION", 1.0)
    a = tmp_path / "out"
    shutil.copytree(master, a)
    s = ReviewSession.open(a, STEM, "AB")
    top, bottom = _ids_far_apart(s)
    s.delete_neuron(top[0])
    plan = _remeasure.plan_local(s, s._drg_config().params())
    assert plan is not None
    redo = set().union(*plan["groups"]) | plan["gone"]
    assert top[0] in plan["gone"] and bottom[0] not in redo
    s.recompute()
    auto = pd.read_csv(a / STEM / "neurons.csv").set_index("neuron_id")
    rev = pd.read_csv(a / STEM / "reviewed" / "neurons.csv").set_index("neuron_id")
    assert top[0] not in rev.index
    far = [i for i in auto.index if i not in redo]
    cols = ["area_um2", "ring_igg", "background", "ring_mean"]
    pd.testing.assert_frame_equal(rev.loc[far, cols], auto.loc[far, cols], check_exact=True)


def test_nonlocal_parameters_remeasure_whole_section(master, tmp_path):
    from histo_fms.drg import DrgParams

    a = tmp_path / "out"
    shutil.copytree(master, a)
    s = ReviewSession.open(a, STEM, "AB")
    top, _ = _ids_far_apart(s)
    s.delete_neuron(top[0])
    assert _remeasure.plan_local(s, DrgParams(glow_sigma_um=(0.3, 0.6))) is None
