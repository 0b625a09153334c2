"""Per-pixel CPU time of the default DRG measurement on one core, against the naive pipeline.

Usage::

    python benchmarks/bench_drg_cpu.py [--size 2048] [--images PATH ...] [--repeat 3]
        [--code /path/to/other/checkout ...]

Each case (a ``REAL_TISSUE`` phantom of ``--size`` at 0.5 µm/px, and any OME-TIFF given
with ``--images``, e.g. ``/work/shared/validation/drg/val_drg_3000.ome.tif`` with its
``.truth.json`` naming the channels and pixel size) runs in a child process with one
BLAS / OpenMP thread: :func:`histo_fms.drg.measure_drg` with the default parameters (the
default config's DRG stage) and the naive scikit-image pipeline of ``_naive.py``, both
timed with ``time.process_time`` in the same process, alternating, ``--repeat`` times.
The ratio of medians is the per-pixel cost relative to the naive pipeline (the machine's
load cancels to first order). ``--code`` adds other checkouts (e.g. the main branch) run
the same way, interleaved with this one, for a before / after comparison; the outputs of
all checkouts are compared (labels and table, bit for bit). The first DRG run of each
child is reported apart: it includes the one-off load of the compiled (numba) kernels
from their cache, which every new process (a dask worker, a CLI run) pays once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parent

from _onecore import median, run_child  # noqa: E402

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
sys.path.insert(0, {here!r})
from _naive import naive_drg
from histo_fms.drg import measure_drg
case, repeat = {case!r}, {repeat}
if case.startswith("phantom:"):
    from histo_fms.synthetic.drg import REAL_TISSUE, make_drg_section
    n = int(case.split(":")[1])
    ph = make_drg_section((n, n), 0.5, seed=7, **REAL_TISSUE)
    ch = {{k: ph.channel(k) for k in ph.channel_names}}
    neu, igg, sgc, nuc, px = ch["NeuN"], ch["IgG"], ch["GS"], ch["DAPI"], 0.5
else:
    import tifffile
    img = tifffile.imread(case)
    t = json.loads(open(case.replace(".ome.tif", ".truth.json")).read())
    ch = {{k: img[i] for i, k in enumerate(t["channels"])}}
    neu, igg, sgc, nuc, px = ch["NeuN"], ch["hIgG"], ch["GS"], ch["DAPI"], t["px_um"]
drg, naive = [], []
for _ in range(repeat):
    t0 = time.process_time()
    naive_drg(neu, igg, pixel_size_um=px)
    naive.append(time.process_time() - t0)
    t0 = time.process_time()
    res = measure_drg(neu, igg, sgc=sgc, nuclei=nuc, pixel_size_um=px)
    drg.append(time.process_time() - t0)
h = hashlib.sha256(np.ascontiguousarray(res.neurons).tobytes())
h.update(np.ascontiguousarray(res.rings).tobytes())
h.update(res.table.to_csv(float_format="%.17g").encode())
print(json.dumps({{"drg": drg, "naive": naive, "pixels": int(neu.size),
                  "n": len(res.table), "digest": h.hexdigest()}}))
"""


def run_case(code: Path, case: str, repeat: int) -> dict:
    return run_child(code, CHILD.format(here=str(HERE), case=case, repeat=repeat), case)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="phantom edge (0: none)")
    ap.add_argument("--images", nargs="*", default=[], help="OME-TIFFs with .truth.json")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--code", nargs="*", default=[], help="other checkouts to compare")
    a = ap.parse_args(argv)
    cases = ([f"phantom:{a.size}"] if a.size else []) + list(a.images)
    codes = [ROOT, *[Path(c).resolve() for c in a.code]]
    print(f"load average at start: {os.getloadavg()}")
    print("| case | code | DRG CPU s (median) | naive CPU s | DRG / naive | first DRG run s | "
          "neurons | same output as this checkout |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases:
        res = {c: run_case(c, case, a.repeat) for c in codes}
        mine = res[ROOT]["digest"]
        for c in codes:
            r = res[c]
            d, nv = median(r["drg"]), median(r["naive"])
            print(f"| {Path(case).name} ({r['pixels'] / 1e6:.1f} Mpx) | {c} | {d:.2f} | {nv:.2f} "
                  f"| {d / nv:.2f}x | {r['drg'][0]:.2f} | {r['n']} "
                  f"| {'yes' if r['digest'] == mine else 'NO'} |",
                  flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
