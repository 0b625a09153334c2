"""Undo / redo of every review edit: exact round trips, reopening, replay from the audit."""

import shutil

import numpy as np
import pandas as pd
import pytest
from test_review_session import make_drg_results, make_skin_results

from histo_fms.review import ReviewError, ReviewSession
from histo_fms.review._history import replay_review


@pytest.fixture(scope="module")
def drg_master(tmp_path_factory):
    return make_drg_results(tmp_path_factory.mktemp("drgundo"))


@pytest.fixture
def drg_out(drg_master, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(drg_master, out)
    return out


def _state(s):
    return {"labels": s.neurons.copy(), "calls": dict(s.calls), "excluded": set(s.excluded),
            "ids": s.neuron_ids().tolist()}


def _same(s, st):
    assert np.array_equal(s.neurons, st["labels"])
    assert s.calls == st["calls"]
    assert s.excluded == st["excluded"]
    assert s.neuron_ids().tolist() == st["ids"]


def _interior(s):
    t = s.table
    return [int(i) for i in t.loc[~t["touches_border"], "neuron_id"]]


def _disk(shape, cy, cx, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2


def _edits(s):
    """One callable per edit kind, each working on the session's current state."""
    ids = _interior(s)
    a, b, c, d = ids[:4]

    def split_seeds():
        ys, xs = np.nonzero(s.neurons == c)
        seeds = [(ys.min() + 3, xs.mean()), (ys.max() - 3, xs.mean())]
        seeds = [(y, x) for y, x in seeds]
        ok = [p for p in seeds if s.neurons[int(round(p[0])), int(round(p[1]))] == c]
        assert len(ok) == 2
        return s.split_neuron(c, np.asarray(ok) * s.pixel_size_um, min_area_um2=1.0)

    def split_line():
        ys, xs = np.nonzero(s.neurons == d)
        yc = ys.mean() * s.pixel_size_um
        return s.split_neuron(d, line_um=[(yc, (xs.min() - 3) * 0.5), (yc, (xs.max() + 3) * 0.5)])

    def paint():
        m = np.zeros(s.neurons.shape, bool)
        ys, xs = np.nonzero(s.neurons == a)
        m[ys.min():ys.min() + 6, xs.min() - 4:xs.min() + 20] = True  # over a and background
        return s.paint(m)

    def erase():
        m = np.zeros(s.neurons.shape, bool)
        ys, xs = np.nonzero(s.neurons == b)
        m[ys.min():ys.min() + 5, :] = True
        return s.erase(m)

    def set_labels():
        lab = s.neurons.copy()
        lab[lab == b] = a
        lab[:4, :4] = 0
        return s.set_labels(lab)

    return {
        "flip": lambda: s.flip_call(a),
        "set_call": lambda: s.set_call(b, True),
        "exclude": lambda: s.set_excluded(c),
        "delete": lambda: s.delete_neuron(a),
        "merge": lambda: s.merge_neurons([a, b]),
        "split_seeds": split_seeds,
        "split_line": split_line,
        "paint": paint,
        "erase": erase,
        "set_labels": set_labels,
        "restore": lambda: (s.delete_neuron(a), s.restore_automatic(a))[1],
    }


@pytest.mark.parametrize("kind", ["flip", "set_call", "exclude", "delete", "merge",
                                  "split_seeds", "split_line", "paint", "erase", "set_labels",
                                  "restore"])
def test_each_drg_edit_undoes_and_redoes_exactly(drg_out, kind):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    s.set_excluded(_interior(s)[3])  # some state before: undo must not lose it
    before = _state(s)
    rec = _edits(s)[kind]()
    after = _state(s)
    if kind != "restore":
        assert (not np.array_equal(after["labels"], before["labels"])
                or after["calls"] != before["calls"] or after["excluded"] != before["excluded"])
    assert rec["diff"]["direction"] == "do"
    s.undo()
    if kind == "restore":
        assert _interior(s)[0] not in s.neuron_ids()  # back to deleted
        s.undo()  # the delete before it
    _same(s, before)
    s2 = ReviewSession.open(drg_out, "drg_s3", "AB")  # saved at once, on disk too
    _same(s2, _state(s))
    if kind == "restore":
        s2.redo()
    s2.redo()
    _same(s2, after)
    s3 = ReviewSession.open(drg_out, "drg_s3", "AB")
    _same(s3, after)
    kinds = [e["kind"] for e in s3.history()]
    assert "undo" in kinds and "redo" in kinds


def test_undo_stack_survives_reopen_back_to_automatic_and_replays(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    auto = _state(s)
    edits = _edits(s)
    for k in ("flip", "merge", "split_line", "paint", "exclude"):
        edits[k]()
    s.undo()
    s.undo()
    s.redo()
    final = _state(s)
    rep = replay_review(drg_out, "drg_s3")  # automatic result + the audit log's diffs
    assert np.array_equal(rep.labels["neurons"], s.neurons)
    assert rep.calls == s.calls and rep.excluded == s.excluded

    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    _same(s, final)
    while s.can_undo:
        s.undo()
    _same(s, auto)
    assert np.array_equal(s.neurons, s.auto_labels["neurons"])
    with pytest.raises(ReviewError, match="nothing to undo"):
        s.undo()
    # a new edit after undoing clears the redo stack
    assert s.can_redo
    s.set_excluded(_interior(s)[0])
    assert not s.can_redo
    with pytest.raises(ReviewError, match="nothing to redo"):
        s.redo()


def test_restore_automatic_brings_back_one_neuron(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    a, b = _interior(s)[:2]
    auto = s.auto_labels["neurons"]
    s.merge_neurons([a, b])
    s.flip_call(min(a, b))
    keep, gone = min(a, b), max(a, b)
    s.restore_automatic(gone)
    s.restore_automatic(keep)
    assert np.array_equal(s.neurons == a, auto == a)
    assert np.array_equal(s.neurons == b, auto == b)
    assert keep not in s.calls


def test_split_round_neuron_leaves_no_sliver(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    px = s.pixel_size_um
    # a round neuron (diameter 24 µm) in an empty area: one distance maximum
    h, w = s.neurons.shape
    lab = s.neurons
    for cy in range(30, h - 30, 8):
        for cx in range(30, w - 30, 8):
            disk = _disk(lab.shape, cy, cx, 24)
            if not lab[disk].any():
                break
        else:
            continue
        break
    else:
        pytest.skip("no empty area for the test neuron")
    s.paint(disk)
    nid = int(s.neurons[cy, cx])
    # seeds off-centre, as a reviewer clicks them: the distance watershed gives a sliver
    rec = s.split_neuron(nid, [((cy - 20) * px, cx * px), ((cy + 6) * px, cx * px)])
    areas = rec["after"]["areas_um2"]
    assert len(areas) == 2
    assert min(areas) >= s._min_part_area_um2()
    assert sum(areas) == pytest.approx(disk.sum() * px ** 2)
    for i in rec["after"]["ids"]:  # each part is one connected piece
        from scipy import ndimage as ndi
        assert ndi.label(s.neurons == i)[1] == 1


def test_skin_edits_undo_redo_and_reopen(tmp_path):
    out = make_skin_results(tmp_path)
    s = ReviewSession.open(out, "skin_a", "CD")

    def st(x):
        return (x.crossings.reset_index(drop=True).copy(),
                {k: v.copy() for k, v in x.polylines.items()},
                [r.copy() for r in x.excluded_regions], list(x.polylines_edited))

    def same(x, ref):
        pd.testing.assert_frame_equal(x.crossings.reset_index(drop=True), ref[0],
                                      check_dtype=False)
        assert x.polylines.keys() == ref[1].keys()
        for k in ref[1]:
            assert np.array_equal(x.polylines[k], ref[1][k])
        assert len(x.excluded_regions) == len(ref[2])
        for r, q in zip(x.excluded_regions, ref[2], strict=True):
            assert np.array_equal(r, q)
        assert x.polylines_edited == ref[3]

    steps = [lambda: s.add_crossing(32.0, 70.0),
             lambda: s.delete_crossing(near_um=(30.0, 100.0)),
             lambda: s.set_polyline("dej", np.array([[28.0, 0.0], [33.0, 100.0], [28, 199.5]])),
             lambda: s.exclude_region(np.array([[0, 50.0], [50, 50], [50, 90], [0, 90]])),
             lambda: s.remove_excluded_region(0)]
    states = [st(s)]
    for f in steps:
        f()
        states.append(st(s))
    assert len(states[1][0]) == 6 and len(states[2][0]) == 5
    for k in range(len(steps), 0, -1):
        s.undo()
        same(s, states[k - 1])
        same(ReviewSession.open(out, "skin_a", "CD"), states[k - 1])
    s = ReviewSession.open(out, "skin_a", "CD")
    for k in range(1, len(steps) + 1):
        s.redo()
        same(s, states[k])
    rep = replay_review(out, "skin_a")
    same(rep, states[-1])
