"""Benchmark the DRG pipeline on a large mosaic phantom, with the DEFAULT config.

Usage::

    python benchmarks/bench_drg_mosaic.py [--size 16384] [--data benchmarks/data]
        [--workers 1,2] [--with-fast] [--skip-whole] [--skip-naive]

Reports, in one invocation (same machine, same data, same process tree), for
``pipelines/drg_sgc_igg.yaml`` as shipped (``exact_tiles: true``, tile size from the
memory budget; only the calibration threshold is fixed): wall and CPU time (the process
tree), peak RSS (summed over the process tree, sampled), the whole-image-or-tiles
decision and why, and the ratios to

* the floor: one lazy read + one gaussian pass over all channels with the same cluster;
* the whole-image run: :func:`histo_fms.drg.measure_drg` on the image in memory, one
  process, no dask (skipped with ``--skip-whole``; it needs ~96 B/px);
* a naive scikit-image pipeline (``_naive.py``: Otsu, distance watershed, annulus mean),
  one process, per pixel on CPU time;
* with ``--with-fast``, the same run with ``exact_tiles: false`` (exact / fast ratio).

``--bytes-per-pixel`` instead measures the peak memory of one tile of the tiled DRG
measurement per pixel of its outer region (a child process per region size, RSS above the
interpreter's with the region loaded, plus the 8 B/px input:
``histo_fms.parallel._plan.TILE_BYTES_PER_PIXEL``) and the tracemalloc peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _mosaic import write_drg_mosaic  # noqa: E402


class PeakRSS:
    """Sample the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self.peak_one = 0  # largest single process (a worker)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p.pid != me.pid:
                    self.peak_one = max(self.peak_one, rss)
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


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def pipeline_run(path: Path, out: Path, workers: int, tile_um: float | None,
                 exact: bool, memory_limit: str | None = None) -> dict:
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config
    from histo_fms.parallel import _drg_tiled

    par: dict = {"workers": workers, "exact_tiles": exact}
    if tile_um is not None:
        par["tile_size_um"] = tile_um
    if memory_limit is not None:
        par["memory_limit"] = memory_limit
    _drg_tiled.LAST_RUN.clear()
    cfg = load_config(str(ROOT / "pipelines" / "drg_sgc_igg.yaml"), overrides={
        "calibration": {"threshold": 1.1}, "parallel": par})
    c0, t0 = _cpu(), time.perf_counter()
    rep = run_pipeline(cfg, [path], out, resume=False)
    dt, cpu = time.perf_counter() - t0, _cpu() - c0  # workers are reaped by now
    assert not rep.failed, rep.failed[0].error
    rec = json.loads(rep.run_json.read_text())["files"][0]
    out = {"seconds": dt, "cpu_s": cpu, "tiling": rec.get("tiling")}
    work = dict(_drg_tiled.LAST_RUN)
    if work:  # pixels processed per pass / image pixels (retries included)
        out["work"] = work
        for stage in ("segment", "tiles"):
            if stage in work:
                out[f"{stage}_px_over_image"] = work[stage]["outer_px"] / work["image_px"]
    return out


WHOLE = """
import json, resource, sys, time
import numpy as np, tifffile
from histo_fms.drg import measure_drg
t0 = time.perf_counter()
img = tifffile.imread(sys.argv[1])
res = measure_drg(img[0], img[2], sgc=img[1], nuclei=img[3], pixel_size_um=0.5)
dt = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "cpu_s": me.ru_utime + me.ru_stime, "n": len(res.table)}))
"""

NAIVE = """
import json, resource, sys, time
import tifffile
sys.path.insert(0, sys.argv[2])
from _naive import naive_drg
t0 = time.perf_counter()
img = tifffile.imread(sys.argv[1])
r = naive_drg(img[0], img[2], pixel_size_um=0.5)
dt = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "cpu_s": me.ru_utime + me.ru_stime, "n": r["n"]}))
"""


TILE_BPP = """
import json, resource, sys, threading, time, tracemalloc
import numpy as np
from histo_fms.drg import measure_drg
from histo_fms.drg._context import compute_context
from histo_fms.drg._measure import segment_drg
from histo_fms.io import read_image
from histo_fms.parallel._drg_tiled import _margin_shortfall
from histo_fms.parallel._tiles import Tile
n, job = int(sys.argv[2]), sys.argv[3]
reg = np.ascontiguousarray(read_image(sys.argv[1]).data[:, :n, :n].compute(
    scheduler="synchronous"))
ch = dict(neuron=reg[0], igg=reg[2], sgc=reg[1], nuclei=reg[3])
ctx = compute_context(ch, pixel_size_um=0.5)
t = Tile(0, (256, n - 256, 256, n - 256), (0, n, 0, n))
given = None
if job == "measure":  # the measurement pass of the exact run: labels and lipofuscin given
    lab, _, lipo = segment_drg(reg[0], igg=reg[2], sgc=reg[1], nuclei=reg[3],
                               pixel_size_um=0.5, context=ctx)
    given = dict(labels=lab, lipofuscin=lipo)
page = resource.getpagesize()
r0 = int(open("/proc/self/statm").read().split()[1]) * page
def tile_job():
    if job == "segment":  # the segmentation pass of the exact run
        lab, fg, _ = segment_drg(reg[0], igg=reg[2], sgc=reg[1], nuclei=reg[3],
                                 pixel_size_um=0.5, context=ctx)
        _margin_shortfall(fg, lab, t, (n + 1, n + 1), 100, 0)
        return
    res = measure_drg(reg[0], reg[2], sgc=reg[1], nuclei=reg[3], pixel_size_um=0.5,
                      context=ctx, **(given or {}))
    if given is None:
        _margin_shortfall(res.foreground, res.neurons, t, (n + 1, n + 1), 100, 100)
# ru_maxrss starts at the parent's RSS: sample this process's RSS instead
peak, stop = [r0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], int(open("/proc/self/statm").read().split()[1]) * page)
        time.sleep(0.02)
th = threading.Thread(target=sample, daemon=True); th.start()
c0 = time.process_time()
tile_job()
cpu = time.process_time() - c0
stop.set(); th.join()
tracemalloc.start()
tile_job()
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"job": job, "outer_px": n, "cpu_s": cpu,
                  "rss_bytes_per_px": (peak[0] - r0) / n**2 + 8,
                  "traced_bytes_per_px": traced / n**2 + 8}))
"""


def child_run(code: str, *args: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env=env)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--tile-um", type=float, default=None,
                    help="parallel.tile_size_um (default: the config's: from the memory budget)")
    ap.add_argument("--memory-limit", default=None,
                    help="parallel.memory_limit per worker (e.g. 1.5GiB; default: the config's)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-whole", action="store_true",
                    help="skip the whole-image run (it needs ~96 B/px: 25 GB at 16k)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2 or 2")
    ap.add_argument("--with-fast", action="store_true",
                    help="also run parallel.exact_tiles: false (exact / fast ratio)")
    ap.add_argument("--fast-tiles", action="store_true",
                    help="run only exact_tiles: false (the old README setting)")
    ap.add_argument("--bytes-per-pixel", action="store_true",
                    help="measure a tile's peak memory per outer pixel (2048², 3072²) for one "
                         "pass and for each pass of the exact run, and exit")
    a = ap.parse_args()
    data = Path(a.data)
    if a.bytes_per_pixel:
        path = write_drg_mosaic(data / "drg_mosaic_4096.ome.tif", 4096)
        # one pass (fast tiles), and the exact run's segmentation and measurement passes
        for job in ("one-pass", "segment", "measure"):
            for n in (2048, 3072):
                print(json.dumps(child_run(TILE_BPP, str(path), str(n), job)))
        return
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
            res[f"pipeline_{w}w"] = pipeline_run(path, data / f"out_{w}w", w, a.tile_um,
                                                 not a.fast_tiles, a.memory_limit)
        res[f"pipeline_{w}w"]["peak_rss"] = m.peak
        res[f"pipeline_{w}w"]["peak_rss_one_worker"] = m.peak_one
    best = max(counts)
    if a.with_fast and not a.fast_tiles:
        with PeakRSS() as m:
            res["fast"] = pipeline_run(path, data / f"out_fast_{best}w", best, a.tile_um, False,
                                       a.memory_limit)
        res["fast"]["peak_rss"] = m.peak
    # peak RSS of the children sampled (their ru_maxrss starts at this process's own)
    if not a.skip_whole:
        with PeakRSS() as m:
            res["whole"] = child_run(WHOLE, str(path))
        res["whole"]["peak_rss"] = m.peak
    if not a.skip_naive:
        with PeakRSS() as m:
            res["naive"] = child_run(NAIVE, str(path), str(HERE))
        res["naive"]["peak_rss"] = m.peak
    top = res[f"pipeline_{best}w"]
    if {1, 2} <= set(counts):
        res["speedup_1_to_2"] = res["pipeline_1w"]["seconds"] / res["pipeline_2w"]["seconds"]
    res["ratio_to_floor"] = top["seconds"] / res["floor_s"]
    res["mpx_per_s"] = mpx / top["seconds"]
    if "fast" in res:
        res["exact_over_fast"] = top["seconds"] / res["fast"]["seconds"]
    if "seconds" in res.get("whole", {}):
        res["default_over_whole"] = top["seconds"] / res["whole"]["seconds"]
    if "cpu_s" in res.get("naive", {}):
        one = res.get("pipeline_1w", top)
        res["cpu_default_1w_over_naive"] = one["cpu_s"] / res["naive"]["cpu_s"]
        if "cpu_s" in res.get("whole", {}):
            res["cpu_whole_over_naive"] = res["whole"]["cpu_s"] / res["naive"]["cpu_s"]
    gib = 2**30
    print(json.dumps(res, indent=2))
    print()
    conf = "exact_tiles: false" if a.fast_tiles else "default config (exact_tiles: true)"
    print(f"| measure ({conf}) | value | target |")
    print("|---|---|---|")
    print(f"| image | {a.size} x {a.size} x 4 ch uint16 ({mpx:.0f} MPx/channel) | |")
    print(f"| decision | {top['tiling']} | |")
    print(f"| load average at the end | {os.getloadavg()[0]:.1f} | |")
    print(f"| floor: lazy read + gaussian, 2 workers | {res['floor_s']:.1f} s | |")
    for w in counts:
        r = res[f"pipeline_{w}w"]
        print(f"| pipeline, {w} worker(s) | {r['seconds']:.1f} s (CPU {r['cpu_s']:.0f} s), "
              f"peak RSS {r['peak_rss'] / gib:.2f} GiB (one worker "
              f"{r['peak_rss_one_worker'] / gib:.2f}) | < 2 GiB |")
        if "work" in r:
            wk = r["work"]
            passes = ", ".join(f"{k} {r[f'{k}_px_over_image']:.2f}x ({wk[k]['tasks']} tasks, "
                               f"{wk[k]['retried']} retried)" for k in ("segment", "tiles")
                               if k in wk)
            print(f"| pixels processed / image pixels ({w} worker(s)) | {passes}; margins "
                  f"{wk['margins']} px, cores {wk['tile_px']} px | |")
    if "fast" in res:
        r = res["fast"]
        print(f"| same, exact_tiles: false, {best} worker(s) | {r['seconds']:.1f} s, peak RSS "
              f"{r['peak_rss'] / gib:.2f} GiB | |")
        print(f"| exact / fast | {res['exact_over_fast']:.2f}x | <= 1.3 |")
    print(f"| throughput ({best} workers) | {res['mpx_per_s']:.2f} MPx/s | |")
    if "speedup_1_to_2" in res:
        print(f"| speed-up 1 -> 2 workers | {res['speedup_1_to_2']:.2f}x | >= 1.7 |")
    print(f"| pipeline / floor | {res['ratio_to_floor']:.1f}x | <= 6 |")
    for key, label in (("whole", "whole image in memory, no dask, 1 process"),
                       ("naive", "naive scikit-image pipeline, 1 process")):
        if key not in res:
            continue
        n = res[key]
        if "error" in n:
            print(f"| {label} | failed: {n['error']} | |")
        else:
            print(f"| {label} | {n['seconds']:.1f} s (CPU {n['cpu_s']:.0f} s), peak RSS "
                  f"{n['peak_rss'] / gib:.2f} GiB | |")
    if "default_over_whole" in res:
        print(f"| default ({best} workers) / whole image | {res['default_over_whole']:.2f}x "
              f"| <= 1 |")
    if "cpu_default_1w_over_naive" in res:
        print(f"| CPU per pixel, default 1 worker / naive | "
              f"{res['cpu_default_1w_over_naive']:.2f}x | <= 2 |")
    if "cpu_whole_over_naive" in res:
        print(f"| CPU per pixel, whole image / naive | {res['cpu_whole_over_naive']:.2f}x | |")


if __name__ == "__main__":
    main()
