"""Benchmark the DRG pipeline on a large mosaic phantom, against a read+gaussian floor.

Usage::

    python benchmarks/bench_drg_mosaic.py [--size 16384] [--data benchmarks/data]

Reports, in one invocation (same machine, same data, same process tree):
wall time, megapixels/s, peak RSS (sum over the process tree, sampled), the 1 -> 2 worker
speed-up, the ratio to a floor (one lazy read + one gaussian pass over all channels with
the same cluster), and a naive baseline (whole image in memory, no dask; run in a child
process so its memory is measured on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _mosaic import write_drg_mosaic  # noqa: E402


class PeakRSS:
    """Sample the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def floor_run(path: Path, workers: int) -> float:
    import dask.array as da
    from scipy import ndimage as ndi

    from histo_fms.io import read_image
    from histo_fms.parallel import open_client

    img = read_image(path)
    data = img.data.rechunk((1, 2048, 2048))
    with open_client(workers=workers) as client:
        t0 = time.perf_counter()
        g = data.map_overlap(lambda b: ndi.gaussian_filter(b.astype("float32"), (0, 2, 2)),
                             depth={0: 0, 1: 8, 2: 8}, boundary="reflect", dtype="float32")
        total = da.sum(g).compute() if client is None else client.compute(da.sum(g)).result()
        assert total > 0
        return time.perf_counter() - t0


def pipeline_run(path: Path, out: Path, workers: int, tile_um: float, exact: bool) -> float:
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config

    cfg = load_config("pipelines/drg_sgc_igg.yaml", overrides={
        "calibration": {"threshold": 1.1},
        "parallel": {"workers": workers, "tile_size_um": tile_um, "exact_tiles": exact}})
    t0 = time.perf_counter()
    rep = run_pipeline(cfg, [path], out, resume=False)
    dt = time.perf_counter() - t0
    assert not rep.failed, rep.failed[0].error
    return dt


NAIVE = """
import json, resource, sys, time
import numpy as np, tifffile
from histo_fms.drg import measure_drg
t0 = time.perf_counter()
img = tifffile.imread(sys.argv[1])
res = measure_drg(img[0], img[2], sgc=img[1], nuclei=img[3], pixel_size_um=0.5)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "n": len(res.table),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def naive_run(path: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", NAIVE, str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--data", default="benchmarks/data")
    ap.add_argument("--tile-um", type=float, default=1024.0)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2 or 2")
    ap.add_argument("--fast-tiles", action="store_true",
                    help="parallel.exact_tiles: false (smaller margins, no equality guarantee)")
    a = ap.parse_args()
    data = Path(a.data)
    path = write_drg_mosaic(data / f"drg_mosaic_{a.size}.ome.tif", a.size)
    mpx = a.size * a.size / 1e6
    res: dict = {"size": a.size, "channels": 4, "megapixels": mpx,
                 "cpu_count": os.cpu_count(), "tile_um": a.tile_um,
                 "exact_tiles": not a.fast_tiles}
    with PeakRSS() as m:
        res["floor_s"] = floor_run(path, 2)
    res["floor_peak_rss"] = m.peak
    counts = [int(w) for w in a.workers.split(",")]
    for w in counts:
        with PeakRSS() as m:
            res[f"pipeline_{w}w_s"] = pipeline_run(path, data / f"out_{w}w", w, a.tile_um,
                                                     not a.fast_tiles)
        res[f"pipeline_{w}w_peak_rss"] = m.peak
    if not a.skip_naive:
        res["naive"] = naive_run(path)
    best = max(counts)
    if {1, 2} <= set(counts):
        res["speedup_1_to_2"] = res["pipeline_1w_s"] / res["pipeline_2w_s"]
    res["ratio_to_floor"] = res[f"pipeline_{best}w_s"] / res["floor_s"]
    res["mpx_per_s"] = mpx / res[f"pipeline_{best}w_s"]
    gib = 2**30
    print(json.dumps(res, indent=2))
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| image | {a.size} x {a.size} x 4 ch uint16 ({mpx:.0f} MPx/channel) |")
    print(f"| floor: lazy read + gaussian, 2 workers | {res['floor_s']:.1f} s |")
    for w in counts:
        print(f"| pipeline, {w} worker(s) | {res[f'pipeline_{w}w_s']:.1f} s, peak RSS "
              f"{res[f'pipeline_{w}w_peak_rss'] / gib:.2f} GiB |")
    print(f"| throughput ({best} workers) | {res['mpx_per_s']:.2f} MPx/s |")
    if "speedup_1_to_2" in res:
        print(f"| speed-up 1 -> 2 workers | {res['speedup_1_to_2']:.2f}x |")
    print(f"| pipeline / floor | {res['ratio_to_floor']:.1f}x |")
    if "naive" in res:
        n = res["naive"]
        if "error" in n:
            print(f"| naive (whole image, no dask) | failed: {n['error']} |")
        else:
            print(f"| naive (whole image, no dask) | {n['seconds']:.1f} s, peak RSS "
                  f"{n['peak_rss'] / gib:.2f} GiB |")


if __name__ == "__main__":
    main()
