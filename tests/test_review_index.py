"""The review's bounding-box index: no whole-image scans, yet exact; interrupted saves."""

import shutil

import numpy as np
import pandas as pd
import pytest
import zarr
from test_review_session import make_drg_results

from histo_fms.review import ReviewSession
from histo_fms.review._index import BoxIndex, find_boxes
from histo_fms.review._triage import object_table

STEM = "drg_s3"


@pytest.fixture(scope="module")
def drg_master(tmp_path_factory):
    return make_drg_results(tmp_path_factory.mktemp("drgindex"))


@pytest.fixture
def drg_out(drg_master, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(drg_master, out)
    return out


def _interior(s):
    t = s.table
    return [int(i) for i in t.loc[~t["touches_border"], "neuron_id"]]


def _assert_exact(s):
    """Every box the index gives equals a whole-image find_objects; same ids."""
    truth = find_boxes(s.neurons)
    idx = s._boxes()
    assert sorted(int(i) for i in s.neuron_ids()) == sorted(truth)
    for nid, box in truth.items():
        assert idx.get(nid) == box, nid
    assert idx.full_searches == 0


def _edit(s):
    a, b, c, d = _interior(s)[:4]
    s.delete_neuron(a)
    s.merge_neurons([b, c])
    ys, xs = np.nonzero(s.neurons == d)
    px = s.pixel_size_um
    yc = ys.mean() * px
    s.split_neuron(d, line_um=[(yc, (xs.min() - 3) * px), (yc, (xs.max() + 3) * px)])
    m = np.zeros(s.neurons.shape, bool)
    m[2:9, 2:12] = True
    s.paint(m)


def test_index_is_exact_without_a_whole_image_pass(drg_out, monkeypatch):
    calls = []
    real = find_boxes

    def spy(lab):
        calls.append(lab.shape)
        return real(lab)

    monkeypatch.setattr("histo_fms.review._history.find_boxes", spy)
    s = ReviewSession.open(drg_out, STEM, "AB")
    _edit(s)
    assert calls == []  # opened and edited from table hints and edit boxes only
    monkeypatch.undo()
    _assert_exact(s)
    # reopened: the edited neurons' boxes come from the stored diffs
    s2 = ReviewSession.open(drg_out, STEM, "AB")
    assert np.array_equal(s2.neurons, s.neurons)
    assert s2.touched_ids()  # known from the diffs, not from a scan
    _assert_exact(s2)
    s2.undo()
    s2.undo()
    _assert_exact(s2)


def test_object_table_from_the_edits_equals_a_full_count(drg_out):
    s = ReviewSession.open(drg_out, STEM, "AB")
    _edit(s)
    s2 = ReviewSession.open(drg_out, STEM, "AB")
    local = object_table(s2)
    s3 = ReviewSession.open(drg_out, STEM, "AB")
    s3.touched_ids = lambda: None  # as for a review without stored diffs: count pixels
    full = object_table(s3)
    cols = [c for c in full.columns if c not in ("y_um", "x_um")]
    assert local[cols].equals(full[cols])
    np.testing.assert_allclose(local[["y_um", "x_um"]].to_numpy(float),
                               full[["y_um", "x_um"]].to_numpy(float), equal_nan=True)
    a, b, c = _interior(s)[:3]
    assert set(local.loc[local["status"] == "deleted", "neuron_id"]) == {a, max(b, c)}


def test_hint_that_does_not_match_falls_back_to_a_search():
    lab = np.zeros((512, 512), np.int32)
    lab[10:20, 10:14] = 3
    lab[400:402, 400:402] = 3  # a far fragment the centroid box cannot reach
    idx = BoxIndex(lambda: lab, lab.shape, hints={3: (15.0, 12.0, 44)})
    assert idx.get(3) == [10, 10, 402, 402]
    assert idx.full_searches == 1
    ok = BoxIndex(lambda: lab[:100], (100, 512), hints={3: (15.0, 12.0, 40)})
    assert ok.get(3) == [10, 10, 20, 14] and ok.full_searches == 0


def test_an_interrupted_label_save_is_completed_on_reopening(drg_out):
    s = ReviewSession.open(drg_out, STEM, "AB")
    a = _interior(s)[0]
    s.delete_neuron(a)
    want = s.neurons.copy()
    # a crash after the diff was stored, before the chunks were written: old pixels
    ds = zarr.open_array(str(drg_out / STEM / "reviewed" / "labels.zarr" / "labels"
                             / "neurons" / "0"), mode="r+")
    ds[...] = s.auto_labels["neurons"]
    s2 = ReviewSession.open(drg_out, STEM, "AB")
    assert np.array_equal(s2.neurons, want)
    assert np.array_equal(np.asarray(ds[...]), want)  # and saved
    s2.undo()
    assert np.array_equal(s2.neurons, s.auto_labels["neurons"])


def test_object_rows_equal_the_object_tables_rows(drg_out):
    """The rows refreshed after an edit are the object table's, value and dtype."""
    from histo_fms.review._triage import object_rows

    s = ReviewSession.open(drg_out, STEM, "AB")
    _edit(s)
    s.flip_call(_interior(s)[5])
    s.set_excluded(_interior(s)[6], True)
    full = object_table(s)
    pick = full["neuron_id"].to_numpy()[::3]
    rows = object_rows(s, pick).reset_index(drop=True)
    want = full.set_index("neuron_id").loc[pick].reset_index()[list(rows.columns)]
    assert list(rows.dtypes) == list(want.dtypes)
    assert set(rows["status"]) >= {"deleted", ""}
    pd.testing.assert_frame_equal(rows, want, check_exact=False, rtol=1e-12)
