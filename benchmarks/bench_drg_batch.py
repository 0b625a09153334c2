"""Benchmark a batch of DRG sections: 2-worker local cluster vs synchronous vs naive.

Usage::

    python benchmarks/bench_drg_batch.py [--n 24] [--size 1536] [--data benchmarks/data]

Reports, in one invocation (same machine, same files), with the default config
(``pipelines/drg_sgc_igg.yaml``; only the calibration threshold is fixed so that no
control sections are needed):

* ``histo-fms run`` with ``--scheduler synchronous`` (one process);
* the same with the default local cluster of ``--workers`` workers;
* a naive scikit-image pipeline (:mod:`_naive`: Otsu, distance watershed, annulus mean),
  one process, over the same files;

each in its own child process, as wall time and CPU time (the child and every process it
started: workers included). The ratios printed are the issue's targets: cluster speed-up
over synchronous (>= 1.8x on 2 cores), cluster CPU / synchronous CPU (<= 1.1), and the
DRG pipeline's CPU per pixel over the naive one's (<= 2).

``--bytes-per-pixel`` instead measures the peak memory of the whole-image DRG
measurement per pixel (``histo_fms.parallel._plan.DRG_BYTES_PER_PIXEL``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD_RUN = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from histo_fms.cli import main
files = sys.argv[3:]
argv = ["run", sys.argv[1], *files, "--out", sys.argv[2], "-q", "--no-resume"]
argv += __EXTRA__
rc = main(argv)
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime
print(json.dumps({"rc": rc, "wall_s": wall, "cpu_s": cpu}))
"""

CHILD_NAIVE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import tifffile
sys.path.insert(0, sys.argv[1])
from _naive import naive_drg
n = 0
for f in sys.argv[2:]:
    img = tifffile.imread(f)
    n += naive_drg(img[0], img[2], pixel_size_um=0.5)["n"]
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "cpu_s": me.ru_utime + me.ru_stime, "neurons": n}))
"""

CHILD_BPP = r"""
import json, resource, sys
import tifffile
from histo_fms.drg import measure_drg
img = tifffile.imread(sys.argv[1])
# the current RSS, not ru_maxrss: a child's maximum starts at its parent's RSS
r0 = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
measure_drg(img[0], img[2], sgc=img[1], nuclei=img[3], pixel_size_um=0.5)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"px": int(img[0].size), "bytes_per_px": (peak - r0) / img[0].size + 8}))
"""


def _child(code: str, *args: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env=env, cwd=str(ROOT))
    if p.returncode != 0:
        raise SystemExit(f"child failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def write_sections(data: Path, n: int, size: int) -> list[Path]:
    """Write ``n`` distinct (4, size, size) phantom sections (cached in ``data``)."""
    from histo_fms.io import write_ome_tiff
    from histo_fms.synthetic.drg import make_drg_section

    data.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = data / f"batch_{size}_{i:02d}.ome.tif"
        if not p.exists():
            ph = make_drg_section((size, size), 0.5, seed=500 + i)
            write_ome_tiff(ph.image, p, channel_names=list(ph.channel_names),
                           pixel_size_um=0.5)
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24, help="sections in the batch")
    ap.add_argument("--size", type=int, default=1536, help="section edge (px)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--config", default=str(ROOT / "pipelines" / "drg_sgc_igg.yaml"))
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--bytes-per-pixel", action="store_true",
                    help="measure the whole-image DRG peak memory per pixel and exit")
    a = ap.parse_args()
    data = Path(a.data)
    if a.bytes_per_pixel:
        sys.path.insert(0, str(HERE))
        from _mosaic import write_drg_mosaic

        for s in (2048, 4096):
            path = write_drg_mosaic(data / f"drg_mosaic_{s}.ome.tif", s)
            print(s, _child(CHILD_BPP, str(path)))
        return
    files = [str(f) for f in write_sections(data, a.n, a.size)]
    cfg = data / "batch_config.yaml"
    text = Path(a.config).read_text()
    text = text.replace("  threshold: null", "  threshold: 1.1")
    cfg.write_text(text)
    res: dict = {"n": a.n, "size": a.size, "workers": a.workers, "cpu_count": os.cpu_count()}
    sync = CHILD_RUN.replace("__EXTRA__", "['--scheduler', 'synchronous']")
    clus = CHILD_RUN.replace("__EXTRA__", f"['--workers', '{a.workers}']")
    res["synchronous"] = _child(sync, str(cfg), str(data / "out_sync"), *files)
    res["cluster"] = _child(clus, str(cfg), str(data / "out_cluster"), *files)
    if not a.skip_naive:
        res["naive"] = _child(CHILD_NAIVE, str(HERE), *files)
    s, c = res["synchronous"], res["cluster"]
    res["speedup_cluster_vs_sync"] = s["wall_s"] / c["wall_s"]
    res["cpu_cluster_over_sync"] = c["cpu_s"] / s["cpu_s"]
    if "naive" in res:
        res["cpu_sync_over_naive"] = s["cpu_s"] / res["naive"]["cpu_s"]
    print(json.dumps(res, indent=2))
    print()
    print("| run | wall | CPU (process tree) |")
    print("|---|---|---|")
    print(f"| {a.n} x {a.size}² x 4 ch, `--scheduler synchronous` | {s['wall_s']:.1f} s | "
          f"{s['cpu_s']:.1f} s |")
    print(f"| same, local cluster, {a.workers} workers | {c['wall_s']:.1f} s | "
          f"{c['cpu_s']:.1f} s |")
    if "naive" in res:
        nv = res["naive"]
        print(f"| naive scikit-image pipeline, 1 process | {nv['wall_s']:.1f} s | "
              f"{nv['cpu_s']:.1f} s |")
    print(f"| speed-up cluster / synchronous (target >= 1.8) | "
          f"{res['speedup_cluster_vs_sync']:.2f}x | |")
    print(f"| CPU cluster / synchronous (target <= 1.1) | {res['cpu_cluster_over_sync']:.2f} | |")
    if "naive" in res:
        print(f"| CPU synchronous / naive, per pixel (target <= 2) | "
              f"{res['cpu_sync_over_naive']:.2f} | |")


if __name__ == "__main__":
    main()
