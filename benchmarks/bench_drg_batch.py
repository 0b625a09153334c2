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
import json, os, resource, sys, time
t0 = time.perf_counter()
w0 = time.time()
import _batch_probe
from histo_fms.cli import main
t_import = time.perf_counter() - t0
_batch_probe.install()
mon = _batch_probe.ThreadMonitor()
files = sys.argv[3:]
argv = ["run", sys.argv[1], *files, "--out", sys.argv[2], "-q", "--no-resume"]
argv += __EXTRA__
rc = main(argv)
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "threads": mon.result(),
                  "cpu_s": me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime,
                  "cpu_main_s": me.ru_utime + me.ru_stime,
                  "cpu_children_s": ch.ru_utime + ch.ru_stime, "import_s": t_import,
                  "t0_epoch": w0}))
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


def _child(code: str, *args: str, probe: Path | None = None,
           py_spy: Path | None = None) -> dict:
    env = dict(os.environ)
    # HERE: the workers import _batch_probe (the timed process_file) from it
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    if probe is not None:
        probe.unlink(missing_ok=True)
        env["HISTO_FMS_PROBE"] = str(probe)
    cmd = [sys.executable, "-c", code, *args]
    if py_spy is not None:  # every process of the tree, workers included
        cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses",
               "--nonblocking", "-r", "50", "-f", "raw", "-o", str(py_spy), "--", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    if p.returncode != 0:
        raise SystemExit(f"child failed: {p.stderr.strip()[-2000:]}")
    out = json.loads(next(ln for ln in p.stdout.strip().splitlines()[::-1]
                          if ln.startswith("{")))
    if probe is not None and probe.exists():
        out["probe"] = _probe_summary(probe, out)
    return out


def _probe_summary(probe: Path, run: dict) -> dict:
    """Per-process start-up and per-task times from the probe's JSON lines."""
    recs = [json.loads(ln) for ln in probe.read_text().splitlines() if ln.strip()]
    procs = {}
    for r in sorted(recs, key=lambda r: r["start"]):
        p = procs.setdefault(r["pid"], {"tasks": 0, "task_wall_s": 0.0, "task_cpu_s": 0.0,
                                         "task_cpu_process_s": 0.0})
        if r["first"]:
            # start-up: from the process's start (or the run's, for the main process)
            # to its first task, and the CPU it had used by then
            p["startup_wall_s"] = r["start"] - max(r["proc_start"], run["t0_epoch"] - 1)
            p["startup_cpu_s"] = r["cpu_before"]
        p["tasks"] += 1
        p["threads_cpu_s"] = r.get("threads", {})
        p["task_wall_s"] += r["wall"]
        p["task_cpu_s"] += r["cpu_thread"]
        p["task_cpu_process_s"] += r["cpu_process"]
    n = max(1, len(recs))
    tasks_cpu = sum(r["cpu_thread"] for r in recs)
    return {"processes": procs,
            "tasks": len(recs),
            "task_wall_mean_s": sum(r["wall"] for r in recs) / n,
            "task_cpu_mean_s": tasks_cpu / n,
            "tasks_cpu_s": tasks_cpu,
            "startup_cpu_s": sum(p.get("startup_cpu_s", 0.0) for p in procs.values()),
            # everything else: the client, scheduler, worker event loops, shutdown
            "other_cpu_s": run["cpu_s"] - tasks_cpu
            - sum(p.get("startup_cpu_s", 0.0) for p in procs.values())}


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
    ap.add_argument("--py-spy", metavar="DIR",
                    help="also record py-spy profiles (raw format) of both runs into DIR")
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
    spy = Path(a.py_spy) if a.py_spy else None
    if spy is not None:
        spy.mkdir(parents=True, exist_ok=True)
    res["synchronous"] = _child(sync, str(cfg), str(data / "out_sync"), *files,
                                probe=data / "probe_sync.jsonl",
                                py_spy=spy / "sync.txt" if spy else None)
    res["cluster"] = _child(clus, str(cfg), str(data / "out_cluster"), *files,
                            probe=data / "probe_cluster.jsonl",
                            py_spy=spy / "cluster.txt" if spy else None)
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
    print()
    print("| where the CPU goes | synchronous | cluster |")
    print("|---|---|---|")
    ps, pc = s.get("probe", {}), c.get("probe", {})

    def row(label: str, key: str, fmt: str = "{:.1f} s") -> None:
        print(f"| {label} | {fmt.format(ps[key]) if key in ps else '-'} | "
              f"{fmt.format(pc[key]) if key in pc else '-'} |")

    row("tasks (one per file), CPU of their threads", "tasks_cpu_s")
    row("per task: wall", "task_wall_mean_s", "{:.2f} s")
    row("per task: CPU", "task_cpu_mean_s", "{:.2f} s")
    row("start-up of the processes that ran tasks, CPU", "startup_cpu_s")
    row("the rest (client, scheduler, event loops, shutdown), CPU", "other_cpu_s")
    print(f"| main process: import of histo_fms.cli, wall | {s['import_s']:.2f} s | "
          f"{c['import_s']:.2f} s |")
    print(f"| main process CPU / children's CPU | {s['cpu_main_s']:.1f} / "
          f"{s['cpu_children_s']:.1f} s | {c['cpu_main_s']:.1f} / {c['cpu_children_s']:.1f} s |")
    print(f"| main process CPU by thread (cluster) | | {_threads_text(c.get('threads', {}))} |")
    for pid, p in pc.get("processes", {}).items():
        print(f"| cluster process {pid}: {p['tasks']} tasks, start-up "
              f"{p.get('startup_wall_s', float('nan')):.1f} s wall / "
              f"{p.get('startup_cpu_s', float('nan')):.1f} s CPU, tasks "
              f"{p['task_wall_s']:.1f} s wall / {p['task_cpu_s']:.1f} s CPU "
              f"({p['task_cpu_process_s']:.1f} s CPU of the whole process meanwhile) | | "
              f"{_threads_text(p.get('threads_cpu_s', {}))} |")


def _threads_text(threads: dict[str, float]) -> str:
    top = sorted(threads.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1f} s" for k, v in top if v >= 0.05)


if __name__ == "__main__":
    main()
