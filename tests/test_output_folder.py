"""Output-folder integrity: one live run (a lock), one measurement config, a summary that
covers every completed section, resume that verifies outputs, folder swaps that always keep
one complete copy, and clear errors for folders that cannot be written."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histo_fms.batch import run_pipeline
from histo_fms.config import load_config
from histo_fms.io import (
    read_labels_zarr,
    recover_folder,
    restore_backups,
    transaction,
    write_json,
    write_labels_zarr,
    write_ome_tiff,
    write_table,
)
from histo_fms.synthetic.drg import make_drg_section

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
pipeline: drg
channels: {neuron: NeuN, igg: IgG, sgc: GS}
parallel: {scheduler: synchronous}
"""


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ofimgs")
    for i in range(4):
        ph = make_drg_section((192, 192), 0.5, seed=500 + i)
        write_ome_tiff(ph.image, d / f"s{i}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    (d / "sheet.csv").write_text("image,animal,group,control\n"
                                 "s0.ome.tif,A0,ctl,true\ns1.ome.tif,A1,FMS,false\n"
                                 "s2.ome.tif,A2,FMS,false\ns3.ome.tif,A3,HC,false\n")
    return d


def _cfg(**over):
    over.setdefault("channels", {"neuron": "NeuN", "igg": "IgG", "sgc": "GS"})
    par = over.pop("parallel", {})
    return load_config(None, pipeline="drg",
                       overrides={"parallel": {"scheduler": "synchronous", **par}, **over})


def _cli(*args, env_extra=None, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return [sys.executable, "-m", "histo_fms.cli", *map(str, args)], env


def _called_ok(out, threshold):
    """Every section's calls are ring_igg > threshold, and the summary agrees."""
    summ = pd.read_csv(out / "drg_summary.csv")
    for _, row in summ.iterrows():
        t = pd.read_csv(out / row["image"].split(".")[0] / "neurons.csv")
        expect = t["ring_igg"] > threshold
        assert (t["igg_positive"].astype(bool) == expect).all(), row["image"]
        assert row["threshold"] == pytest.approx(threshold, rel=1e-5)
    return summ


# ---------------------------------------------------------------- item 2: the lock
def test_second_live_run_refuses_and_a_stale_lock_is_taken_over(imgs, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG + "calibration: {threshold: 1.3}\n")
    out = tmp_path / "out"
    cmd, env = _cli("run", cfg, imgs / "s0.ome.tif", imgs / "s1.ome.tif", "--out", out, "-q")
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    lock = out / "run.lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGSTOP)  # alive, holding the lock, not progressing
    try:
        holder = json.loads(lock.read_text())
        assert holder["pid"] == first.pid and holder["host"] and holder["started"]
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        err = second.stderr.strip()
        assert second.returncode == 3, err
        assert "\n" not in err and "in use by another histo-fms run" in err
        assert f"pid {first.pid}" in err
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # dies holding the lock: a stale lock
        first.wait()
    assert json.loads(lock.read_text())["pid"] == first.pid
    third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert third.returncode == 0, third.stderr
    assert "took over the lock" in third.stderr and str(first.pid) in third.stderr
    assert not lock.exists()
    assert len(pd.read_csv(out / "drg_summary.csv")) == 2


# ------------------------------------------------- item 2/5: one measurement config
def test_result_changing_parallel_options_are_part_of_the_measurement(imgs, tmp_path):
    base = _cfg()
    assert _cfg(parallel={"workers": 3}).measurement_hash() == base.measurement_hash()
    for par in ({"exact_tiles": False}, {"overlap_um": 200.0}, {"tile_size_um": 500.0}):
        assert _cfg(parallel=par).measurement_hash() != base.measurement_hash(), par
    out = tmp_path / "out"
    run_pipeline(_cfg(calibration={"threshold": 1.3}), [imgs / "s0.ome.tif"], out)
    with pytest.raises(ValueError, match=r"parallel\.tile_size_um: None -> 500\.0"):
        run_pipeline(_cfg(parallel={"tile_size_um": 500.0}), [imgs / "s0.ome.tif"], out)
    # a calibration change is not a measurement change: allowed, re-calls
    rep = run_pipeline(_cfg(calibration={"threshold": 1.1}), [imgs / "s0.ome.tif"], out)
    assert [o.status for o in rep.outcomes] == ["resumed"]
    rep = run_pipeline(_cfg(parallel={"tile_size_um": 500.0}), [imgs / "s0.ome.tif"], out,
                       overwrite=True)
    assert [o.status for o in rep.outcomes] == ["ok"]


# ------------------------------------- item 3: the summary covers the whole folder
def test_summary_covers_every_completed_section_recalled_with_the_current_threshold(
        imgs, tmp_path):
    out = tmp_path / "out"
    sheet = imgs / "sheet.csv"
    rep1 = run_pipeline(_cfg(), [imgs / "s0.ome.tif", imgs / "s1.ome.tif"], out,
                        samples=sheet)
    thr = rep1.threshold
    assert thr is not None and "s0" in rep1.threshold_source
    _called_ok(out, thr)
    # a second batch into the folder: s0's control rings still calibrate, all are summarised
    rep2 = run_pipeline(_cfg(), [imgs / "s2.ome.tif"], out, samples=sheet)
    assert rep2.threshold == pytest.approx(thr)
    summ = _called_ok(out, thr)
    assert sorted(summ["image"]) == ["s0.ome.tif", "s1.ome.tif", "s2.ome.tif"]
    assert summ.set_index("image").loc["s0.ome.tif", "control"]
    run = json.loads((out / "run.json").read_text())
    assert {f["image"]: f["status"] for f in run["files"]} == {
        "s0.ome.tif": "earlier", "s1.ome.tif": "earlier", "s2.ome.tif": "ok"}
    # a new threshold re-calls every section of the folder, not only this run's
    run_pipeline(_cfg(calibration={"threshold": 1.05}), [imgs / "s3.ome.tif"], out)
    summ = _called_ok(out, 1.05)
    assert len(summ) == 4
    # the sample sheet of the earlier run is remembered for its sections
    assert summ.set_index("image").loc["s1.ome.tif", "animal"] == "A1"


# ------------------------------------------------ item 5: resume verifies outputs
def test_resume_recomputes_a_damaged_output(imgs, tmp_path):
    out = tmp_path / "out"
    files = [imgs / "s0.ome.tif", imgs / "s1.ome.tif"]
    cfg = _cfg(calibration={"threshold": 1.3})
    run_pipeline(cfg, files, out)
    full = pd.read_csv(out / "s1" / "neurons.csv")
    raw = (out / "s1" / "neurons.csv").read_bytes()
    (out / "s1" / "neurons.csv").write_bytes(raw[: len(raw) // 2].rsplit(b"\n", 1)[0] + b"\n")
    assert len(pd.read_csv(out / "s1" / "neurons.csv")) < len(full)
    rep = run_pipeline(cfg, files, out)
    assert [o.status for o in rep.outcomes] == ["resumed", "ok"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "s1" / "neurons.csv"), full)
    summ = pd.read_csv(out / "drg_summary.csv").set_index("image")
    assert summ.loc["s1.ome.tif", "n_neurons"] == int((~full["touches_border"]).sum())
    # a damaged label chunk too
    chunk = next(p for p in (out / "s0" / "labels.zarr").rglob("*")
                 if p.is_file() and p.name[0].isdigit())
    chunk.write_bytes(chunk.read_bytes()[:-3])
    rep = run_pipeline(cfg, files, out)
    assert [o.status for o in rep.outcomes] == ["ok", "resumed"]


# ---------------------------------------------------------- item 6: folder swaps
SWAP_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import histo_fms.io._write as w
    from histo_fms.io import write_labels_zarr
    path = sys.argv[1]
    orig, n = w._swap_rename, [0]
    def rename(src, dst):
        n[0] += 1
        if n[0] == 2:  # old copy moved aside, new copy not yet in place
            os.kill(os.getpid(), signal.SIGKILL)
        orig(src, dst)
    w._swap_rename = rename
    write_labels_zarr({"neurons": np.full((8, 8), 2, np.int32)}, path, pixel_size_um=0.5)
""")


def test_a_folder_swap_killed_between_renames_keeps_a_complete_copy(tmp_path):
    d = tmp_path / "sec"
    old = np.arange(64, dtype=np.int32).reshape(8, 8)
    write_labels_zarr({"neurons": old}, d / "labels.zarr", pixel_size_um=0.5)
    proc = subprocess.run([sys.executable, "-c", SWAP_CHILD, str(d / "labels.zarr")],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not (d / "labels.zarr").exists()
    recover_folder(d)  # what the next run does first
    np.testing.assert_array_equal(read_labels_zarr(d / "labels.zarr")["neurons"], old)
    assert sorted(p.name for p in d.iterdir()) == ["labels.zarr"]


def test_a_leftover_old_copy_is_restored_not_deleted(imgs, tmp_path):
    out = tmp_path / "out"
    cfg = _cfg(calibration={"threshold": 1.3})
    run_pipeline(cfg, [imgs / "s0.ome.tif"], out)
    lab = read_labels_zarr(out / "s0" / "labels.zarr")
    # what a crash between the two renames of earlier versions left: the only copy
    os.replace(out / "s0" / "labels.zarr", out / "s0" / ".labels.zarr.old-4242")
    rep = run_pipeline(cfg, [imgs / "s0.ome.tif"], out)
    assert [o.status for o in rep.outcomes] == ["resumed"]
    np.testing.assert_array_equal(read_labels_zarr(out / "s0" / "labels.zarr")["neurons"],
                                  lab["neurons"])
    # a backup next to a complete copy is the replaced one: removed
    write_labels_zarr(lab, out / "s0" / ".labels.zarr.backup", pixel_size_um=0.5)
    assert restore_backups(out / "s0") == []
    assert not (out / "s0" / ".labels.zarr.backup").exists()


# --------------------------------------------------------- transactions (item 4)
def test_transaction_commits_all_or_nothing(tmp_path):
    a, b = tmp_path / "x" / "a.csv", tmp_path / "b.json"
    write_table(pd.DataFrame({"v": [1]}), a)
    write_json({"v": 1}, b)
    with pytest.raises(RuntimeError), transaction(tmp_path):
        write_table(pd.DataFrame({"v": [2]}), a)
        write_json({"v": 2}, b)
        assert pd.read_csv(a)["v"].tolist() == [1]  # staged, not visible yet
        raise RuntimeError("boom")
    assert pd.read_csv(a)["v"].tolist() == [1] and json.loads(b.read_text()) == {"v": 1}
    assert not list(tmp_path.rglob("*staged*"))
    with transaction(tmp_path) as tx:
        write_table(pd.DataFrame({"v": [3]}), a)
        assert tx.current(a) != a
        write_json({"v": 3}, b)
    assert pd.read_csv(a)["v"].tolist() == [3] and json.loads(b.read_text()) == {"v": 3}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.csv", "b.json", "x"]


# --------------------------------------------- item 14: folders that cannot be used
def test_output_path_that_is_a_file_or_cannot_be_created(imgs, tmp_path, capsys):
    from histo_fms.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    f = tmp_path / "results"
    f.write_text("not a folder")
    t0 = time.perf_counter()
    assert main(["run", str(cfg), str(imgs), "--out", str(f), "-q"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.endswith("output path is a file, not a folder") and "\n" not in err
    assert main(["run", str(cfg), str(imgs), "--out", str(f / "sub"), "-q"]) == 3
    err = capsys.readouterr().err.strip()
    assert "cannot create the output folder" in err and "\n" not in err
    assert time.perf_counter() - t0 < 10  # refused before computing anything
    assert f.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permissions do not apply to root")
def test_unwritable_output_folder(imgs, tmp_path, capsys):
    from histo_fms.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert main(["run", str(cfg), str(imgs), "--out", str(out), "-q"]) == 3
    finally:
        out.chmod(0o700)
    assert "not writable" in capsys.readouterr().err


ENOSPC_CHILD = textwrap.dedent("""
    import errno, sys
    import pandas as pd
    from histo_fms.cli import main
    orig, n = pd.DataFrame.to_csv, [0]
    def to_csv(self, path=None, *a, **kw):
        if path is not None and str(path).endswith("neurons.csv"):
            n[0] += 1
            if n[0] == 3:  # the third section's table: the disk is full
                orig(self, path, *a, **kw)
                raise OSError(errno.ENOSPC, "No space left on device")
        return orig(self, path, *a, **kw)
    pd.DataFrame.to_csv = to_csv
    sys.exit(main(sys.argv[1:]))
""")


def test_disk_full_mid_batch_stops_with_one_line_and_keeps_what_was_complete(imgs, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG + "calibration: {threshold: 1.3}\n")
    out = tmp_path / "out"
    args = ["run", str(cfg), str(imgs), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", ENOSPC_CHILD, *args], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 3, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert "No space left on device" in last and "re-run the same command" in last
    assert "2 of 4 image(s) completed" in last
    assert "Traceback" not in p.stderr
    done = sorted(d.name for d in out.iterdir() if (d / "status.json").is_file())
    assert done == ["s0", "s1"]
    assert not list(out.rglob(".*.tmp")) and not (out / "run.lock").exists()
    p = subprocess.run([sys.executable, "-m", "histo_fms.cli", *args, "-q"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    run = json.loads((out / "run.json").read_text())
    assert [f["status"] for f in run["files"]] == ["resumed", "resumed", "ok", "ok"]
