"""A dask worker killed in the middle of a batch does not fail the batch."""

import json
import os
import signal
import threading
import time

import psutil
import pytest

from histo_fms.batch import run_pipeline
from histo_fms.config import load_config
from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

distributed = pytest.importorskip("distributed")


def test_killed_worker_is_retried(tmp_path):
    files = []
    for i in range(4):  # 4 small files keep both workers busy; 2.5x less work than 6 x 320²
        ph = make_drg_section((256, 256), 0.5, seed=880 + i)
        files.append(write_ome_tiff(ph.image, tmp_path / f"s{i}.ome.tif",
                                    channel_names=ph.channel_names, pixel_size_um=0.5))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        cfg = load_config(None, pipeline="drg", overrides={
            "channels": {"neuron": "NeuN", "igg": "IgG"},
            "calibration": {"threshold": 1.2},
            "parallel": {"scheduler": cluster.scheduler_address}})
        done: list = []
        result: dict = {}

        def run():
            result["rep"] = run_pipeline(cfg, files, tmp_path / "out",
                                         progress=lambda i, n, o: done.append(o))

        t = threading.Thread(target=run)
        t.start()
        # wait until work is under way, then SIGKILL one worker process (its nanny restarts
        # it; the scheduler reschedules the lost task)
        deadline = time.time() + 120
        busy = None
        with distributed.Client(cluster) as c:
            while time.time() < deadline and busy is None:
                busy = next((w for w, tasks in c.processing().items()
                             if any("histo-fms" in str(k) for k in tasks)), None)
                time.sleep(0.02)
            assert busy is not None
            pid = c.run(os.getpid, workers=[busy])[busy]
            psutil.Process(pid).send_signal(signal.SIGKILL)
            t.join(timeout=300)
            assert not t.is_alive()
            assert busy not in c.scheduler_info()["workers"]  # that worker really died
    rep = result["rep"]
    assert [o.status for o in rep.outcomes] == ["ok"] * 4
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["failed"] == []
