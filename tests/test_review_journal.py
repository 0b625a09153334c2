"""Background label saves: every edit journalled at once, exact after a kill -9."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import zarr

from histo_fms.io import write_json, write_labels_zarr, write_table
from histo_fms.review import ReviewSession
from histo_fms.review._journal import LabelJournal, chunk_boxes

PX = 0.5


def make_grid_results(root, size=256, spacing=32, chunk=64):
    """A DRG results folder written by hand: round neurons on a grid, small zarr chunks."""
    from histo_fms.drg._measure import TABLE_COLUMNS

    lab = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    rows, nid = [], 0
    for cy in range(spacing // 2, size, spacing):
        for cx in range(spacing // 2, size, spacing):
            nid += 1
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= 11 ** 2
            lab[m] = nid
            area = float(m.sum()) * PX ** 2
            rows.append({"neuron_id": nid, "y_um": cy * PX, "x_um": cx * PX,
                         "area_um2": area, "diameter_um": float(np.sqrt(4 * area / np.pi)),
                         "size_class": "small", "touches_border": False,
                         "ring_igg": 1.0 + nid % 3, "igg_positive": nid % 3 > 0})
    d = root / "out" / "g"
    write_labels_zarr({"neurons": lab}, d / "labels.zarr", pixel_size_um=PX, chunk=chunk)
    tab = pd.DataFrame(rows)
    for c in TABLE_COLUMNS:
        if c not in tab:
            tab[c] = "local" if c == "background_source" else np.nan
    write_table(tab, d / "neurons.csv")
    write_json({"config": {"pipeline": "drg", "channels": {"neuron": "NeuN", "igg": "IgG"}},
                "threshold": {"ring_igg": 1.5, "source": "test"},
                "files": [{"image": "g.ome.tif", "path": str(root / "g.ome.tif"),
                           "sha256": "0", "status": "ok", "pixel_size_um": PX}]},
               root / "out" / "run.json")
    return root / "out", lab


# the child: edits with background saves held back, its labels saved, then SIGKILL
CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from histo_fms.review import ReviewSession
    from histo_fms.review import _journal

    out, expected, torn = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    s = ReviewSession.open(out, "g", "AB")
    assert s.save_in_background()
    s._saver.pause()                          # no chunk reaches labels.zarr
    s.delete_neuron(10)
    s.merge_neurons([20, 21])
    m = np.zeros(s.neurons.shape, bool)
    m[60:70, 60:100] = True                   # across a chunk border (chunks of 64)
    s.paint(m, 30)
    s.undo()
    s.redo()
    s.set_excluded(40)
    if torn:                                  # killed while journalling the next edit
        real = _journal.LabelJournal.append
        def append(self, idx, new, **kw):
            np.save(expected, s.neurons)
            with open(self.path, "ab") as fh:
                fh.write(b"HFJ1" + b"\\x07" * 9)   # a torn record
                fh.flush(); os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        _journal.LabelJournal.append = append
        s.delete_neuron(50)
    np.save(expected, s.neurons)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _kill_run(out, tmp_path, torn):
    exp = tmp_path / "expected.npy"
    p = subprocess.run([sys.executable, "-c", CHILD, str(out), str(exp), "1" if torn else "0"],
                       capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert p.returncode == -signal.SIGKILL, p.stderr
    return np.load(exp)


@pytest.mark.parametrize("torn", [False, True])
def test_edits_killed_before_their_chunks_are_written_come_back_exactly(tmp_path, torn):
    out, auto = make_grid_results(tmp_path)
    expected = _kill_run(out, tmp_path, torn)
    assert not np.array_equal(expected, auto)
    rev = out / "g" / "reviewed"
    # nothing was flushed: the chunk files (if any) do not hold the edits
    on_disk = (np.asarray(zarr.open_group(str(rev / "labels.zarr"), mode="r")
                          ["labels/neurons/0"][...]) if (rev / "labels.zarr").exists() else auto)
    assert not np.array_equal(on_disk, expected)
    assert len(LabelJournal(rev / "labels_journal.bin").read()) == 5  # 5 label edits
    s = ReviewSession.open(out, "g", "AB")
    assert np.array_equal(s.neurons, expected)
    # saved at once on reopening; the journal is empty
    disk = zarr.open_group(str(rev / "labels.zarr"), mode="r")["labels/neurons/0"][...]
    assert np.array_equal(np.asarray(disk), expected)
    assert LabelJournal(rev / "labels_journal.bin").read() == []
    # the history is intact: undoing every edit gives the automatic labels back
    while s.can_undo:
        s.undo()
    assert np.array_equal(s.neurons, auto)


def test_background_saves_reach_disk_and_close_flushes(tmp_path):
    out, auto = make_grid_results(tmp_path)
    s = ReviewSession.open(out, "g", "AB")
    assert s.save_in_background()
    s.delete_neuron(3)
    s.merge_neurons([5, 6])
    s.undo()
    s.paint(np.pad(np.ones((5, 70), bool), ((100, 151), (30, 156))), 12)
    expected = s.neurons.copy()
    s.close()
    assert not s.saving
    rev = out / "g" / "reviewed"
    disk = np.asarray(zarr.open_group(str(rev / "labels.zarr"), mode="r")
                      ["labels/neurons/0"][...])
    assert np.array_equal(disk, expected)
    assert LabelJournal(rev / "labels_journal.bin").read() == []
    assert np.array_equal(ReviewSession.open(out, "g", "AB").neurons, expected)


def test_journal_records_round_trip_and_a_torn_tail_is_ignored(tmp_path):
    j = LabelJournal(tmp_path / "j.bin")
    a = (np.array([3, 9, 2**40], np.int64), np.array([1, 0, 7], np.int32))
    b = (np.array([5], np.int64), np.array([2**31 - 1], np.int32))
    assert j.append(*a) == 1 and j.append(*b) == 2
    with open(j.path, "ab") as fh:
        fh.write(b"HFJ1\x05\x00")  # torn
    recs = LabelJournal(j.path).read()
    assert len(recs) == 2
    for (i, v), (ei, ev) in zip(recs, (a, b), strict=True):
        assert np.array_equal(i, ei) and np.array_equal(v, ev)
    raw = bytearray(j.path.read_bytes())
    raw[30] ^= 0xFF  # a damaged first record: nothing after it is trusted
    j.path.write_bytes(bytes(raw))
    assert LabelJournal(j.path).read() == []
    j.reset()
    assert j.read() == [] and j.count == 0


def test_chunk_boxes_are_the_chunks_holding_the_pixels():
    shape, chunks = (100, 130), (32, 64)
    idx = np.array([0, 31 * 130 + 63, 32 * 130 + 64, 99 * 130 + 129])
    got = chunk_boxes(idx, shape, chunks)
    assert got == [(slice(0, 32), slice(0, 64)), (slice(32, 64), slice(64, 128)),
                   (slice(96, 100), slice(128, 130))]
    assert chunk_boxes(np.array([], np.int64), shape, chunks) == []


def test_a_failed_background_write_loses_no_edit(tmp_path):
    out, auto = make_grid_results(tmp_path)
    s = ReviewSession.open(out, "g", "AB")
    assert s.save_in_background()

    def fail():
        raise OSError("no space left on device (test)")

    s._saver._prepare = fail  # the saver's thread cannot write
    s.delete_neuron(3)
    with pytest.raises(RuntimeError, match="journal|labels_journal"):
        s.flush(timeout=60)
    s.merge_neurons([5, 6])  # saved at once (and journalled) while the saver is broken
    expected = s.neurons.copy()
    with pytest.raises(RuntimeError):
        s.close()
    assert len(LabelJournal(out / "g" / "reviewed" / "labels_journal.bin").read()) == 2
    assert np.array_equal(ReviewSession.open(out, "g", "AB").neurons, expected)


def test_a_power_loss_of_the_unsynced_files_loses_no_acknowledged_edit(tmp_path):
    """Background saves fsync one journal record per edit; the files it holds come back.

    After the kill, the files the edits wrote without fsync (their diffs, the undo
    stacks, ``overrides.json``, the audit lines) are removed or torn, as a power loss
    may leave them: reopening restores every edit from the journal alone.
    """
    import json

    out, auto = make_grid_results(tmp_path)
    expected = _kill_run(out, tmp_path, False)
    rev = out / "g" / "reviewed"
    audit = (rev / "audit.jsonl").read_bytes().splitlines(keepends=True)
    assert len(audit) == 6
    (rev / "audit.jsonl").write_bytes(b"".join(audit[:2]) + audit[2][:17])  # torn line
    (rev / "overrides.json").unlink()
    (rev / "history" / "stack.json").write_bytes(b"")
    for f in (rev / "history").glob("edit_*.npz"):
        f.unlink()
    s = ReviewSession.open(out, "g", "AB")
    assert np.array_equal(s.neurons, expected)
    assert s.excluded == {40} and s.n_edits == 6
    kinds = [r["kind"] for r in s.history()]
    assert kinds == ["delete", "merge", "paint", "undo", "redo", "exclude"]
    assert json.loads((rev / "overrides.json").read_text())["n_edits"] == 6
    assert LabelJournal(rev / "labels_journal.bin").read() == []  # durable again: emptied
    while s.can_undo:  # the diffs came back too: every edit undoes exactly
        s.undo()
    assert np.array_equal(s.neurons, auto) and s.excluded == set()


def test_an_edit_costs_one_fsync_and_never_waits_for_the_saver(tmp_path, monkeypatch):
    """The edit's thread fsyncs once (its journal record); the saver's disk work (chunk
    writes, fsyncs) holds nothing an edit waits for."""
    import threading

    from histo_fms.review import _journal

    out, auto = make_grid_results(tmp_path)
    s = ReviewSession.open(out, "g", "AB")
    assert s.save_in_background()
    s.delete_neuron(3)  # (the first edit copies the automatic labels: not counted)
    assert s.flush(timeout=60)
    main = threading.get_ident()  # (the edits run on threads of their own)
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(threading.get_ident()),
                                                 real_fsync(fd))[1])
    release = threading.Event()
    real_paths = _journal.fsync_paths

    def slow_paths(paths, **kw):  # the saver's thread stuck on a slow disk
        if threading.get_ident() != main:
            release.wait(60)
        return real_paths(paths, **kw)

    monkeypatch.setattr(_journal, "fsync_paths", slow_paths)
    for edit in (lambda: s.delete_neuron(5), lambda: s.set_excluded(7),
                 lambda: s.merge_neurons([8, 9]), lambda: s.undo(), lambda: s.flip_call(12)):
        k = len(calls)
        done = threading.Event()
        t = threading.Thread(target=lambda e=edit, d=done: (e(), d.set()))
        t.start()
        assert done.wait(30), "an edit waited for the background saver"
        t.join()
        assert calls[k:] == [t.ident]  # one fsync, on the edit's thread: its journal record
    assert s.saving  # the saver is still held on its disk work
    release.set()
    expected = s.neurons.copy()
    s.close()
    assert np.array_equal(ReviewSession.open(out, "g", "AB").neurons, expected)
