"""Files spread over a real dask LocalCluster give the same tables as a serial run."""

import json

import pandas as pd

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

CONFIG = """
pipeline: drg
channels: {neuron: NeuN, igg: IgG, sgc: GS}
calibration: {threshold: 1.6}
"""


def test_local_cluster_equals_serial(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    for i in range(3):
        ph = make_drg_section((256, 256), 0.5, seed=950 + i)
        write_ome_tiff(ph.image, imgs / f"s{i}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    (imgs / "bad.ome.tif").write_bytes(b"nope")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    rc = main(["run", str(cfg), str(imgs), "--out", str(tmp_path / "par"), "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "dashboard" in err and "bad.ome.tif" in err
    main(["run", str(cfg), str(imgs), "--out", str(tmp_path / "ser"), "-q",
          "--scheduler", "synchronous"])
    for i in range(3):
        a = pd.read_csv(tmp_path / "par" / f"s{i}" / "neurons.csv")
        b = pd.read_csv(tmp_path / "ser" / f"s{i}" / "neurons.csv")
        pd.testing.assert_frame_equal(a, b)
    run = json.loads((tmp_path / "par" / "run.json").read_text())
    assert [f["status"] for f in run["files"]] == ["failed", "ok", "ok", "ok"]


def _worker_env():
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_workers_keep_dynamic_mmap_threshold():
    # dask's default MALLOC_TRIM_THRESHOLD_ makes every large numpy temporary a fresh
    # mmap; our local workers drop it but keep dask's other thread settings
    from histo_fms.parallel import open_client

    with open_client(workers=1) as client:
        (env,) = client.run(_worker_env).values()
    assert env == (None, "1")


def _worker_settings():
    import dask

    return (dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.worker.memory.monitor-interval"))


def test_local_workers_skip_fine_grained_bookkeeping():
    # the worker profiler (every 10 ms) and memory monitor (every 100 ms) cost a quarter
    # of a file-parallel batch's CPU; one long task per file needs neither resolution
    from histo_fms.parallel import open_client

    with open_client(workers=1) as client:
        (settings,) = client.run(_worker_settings).values()
    assert settings == (False, "500ms")


def test_small_batch_runs_in_process_and_says_so(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    for i in range(2):
        ph = make_drg_section((256, 256), 0.5, seed=970 + i)
        write_ome_tiff(ph.image, imgs / f"s{i}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    assert main(["run", str(cfg), str(imgs), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "small batch" in err and "processed in this process" in err
    assert "local dask cluster" not in err
