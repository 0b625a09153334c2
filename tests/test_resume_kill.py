"""A batch killed with SIGKILL mid-run resumes: finished files are not recomputed, nothing
is left half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

CONFIG = """
pipeline: drg
channels: {neuron: NeuN, igg: IgG, sgc: GS}
calibration: {threshold: 1.6}
parallel: {scheduler: synchronous}
"""


def _outputs_complete(d):
    return (d / "status.json").is_file()


def test_sigkill_then_resume(tmp_path):
    imgs = tmp_path / "imgs"
    n = 6
    for i in range(n):
        ph = make_drg_section((320, 320), 0.5, seed=900 + i)
        write_ome_tiff(ph.image, imgs / f"s{i}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "histo_fms.cli", "run", str(cfg), str(imgs), "--out", str(out),
           "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [d for d in out.glob("s*") if _outputs_complete(d)]
        if len(done) >= 2:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "batch finished before it could be killed; use more files"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(d.name for d in out.glob("s*") if _outputs_complete(d))
    assert 2 <= len(finished) < n
    def measured(s):  # the measurement record (the calling step adds its own fields)
        st = json.loads((out / s / "status.json").read_text())
        return {k: st[k] for k in ("sha256", "config_hash", "finished")}, \
            st["outputs"]["labels.zarr"]

    stamps = {s: measured(s) for s in finished}
    label_mtimes = {s: (out / s / "labels.zarr").stat().st_mtime_ns for s in finished}
    # every table that exists under its final name is complete (atomic writes)
    for csv in out.glob("s*/neurons.csv"):
        pd.read_csv(csv)

    rc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr
    run = json.loads((out / "run.json").read_text())
    status = {f["image"].split(".")[0]: f["status"] for f in run["files"]}
    for s in finished:
        assert status[s] == "resumed"
        assert measured(s) == stamps[s]
        assert (out / s / "labels.zarr").stat().st_mtime_ns == label_mtimes[s]
    assert all(status[f"s{i}"] in ("ok", "resumed") for i in range(n))
    assert sum(v == "ok" for v in status.values()) == n - len(finished)
    # nothing half-written or temporary left anywhere
    leftovers = [p for p in out.rglob(".*") if p.name.endswith(".tmp") or ".old-" in p.name]
    assert leftovers == []
    summary = pd.read_csv(out / "drg_summary.csv")
    assert len(summary) == n
