"""Per-pixel CPU time of the default skin (IENFD) analysis on one core, against a naive one.

Usage::

    python benchmarks/bench_skin_cpu.py [--size 1200x4096] [--images PATH ...] [--repeat 3]
        [--code /path/to/other/checkout ...]

Each case (a skin phantom of ``--size`` pixels at 0.5 µm/px with a collagen IV channel,
and any OME-TIFF given with ``--images``, e.g. the validation sections
``/work/shared/validation/skin/val_skin_35*.ome.tif`` with their ``.truth.json`` naming
the channels and pixel size) runs in a child process with one BLAS / OpenMP thread:
:func:`histo_fms.skin.analyze_skin` with the parameters of the default config
(``pipelines/skin_ienfd.yaml``; fibre, nuclei and, where the file has it, membrane) and
the naive scikit-image pipeline of ``_naive_skin.py`` (Otsu epidermis, its lower edge as
the DEJ, a skeleton of the thresholded fibres, one crossing per skeleton piece on the
DEJ), both timed with ``time.process_time`` in the same process, alternating,
``--repeat`` times; the ratio of medians is the per-pixel cost relative to the naive
pipeline. ``--code`` adds other checkouts run the same way; their outputs (fibre labels,
epidermis, crossings table) are compared bit for bit with this checkout's. The first run
of each child is reported apart (it loads the compiled kernels).
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
from _naive_skin import naive_skin
from histo_fms.config import load_config
from histo_fms.skin import analyze_skin
params = load_config({config!r}).params()
case, repeat = {case!r}, {repeat}
if case.startswith("phantom:"):
    from histo_fms.synthetic.skin import make_skin_section
    h, w = map(int, case.split(":")[1].split("x"))
    ph = make_skin_section((h, w), 0.5, seed=11, with_membrane=True)
    ch = {{k: ph.channel(k) for k in ph.channel_names}}
    px = 0.5
else:
    import tifffile
    img = tifffile.imread(case)
    t = json.loads(open(case.replace(".ome.tif", ".truth.json")).read())
    ch = {{k: img[i] for i, k in enumerate(t["channels"])}}
    px = t["px_um"]
fib, nuc, mem = ch["PGP9.5"], ch["DAPI"], ch.get("ColIV")
skin, naive = [], []
for _ in range(repeat):
    t0 = time.process_time()
    nv = naive_skin(fib, nuc, pixel_size_um=px)
    naive.append(time.process_time() - t0)
    t0 = time.process_time()
    res = analyze_skin(fib, pixel_size_um=px, membrane=mem, nuclei=nuc, params=params)
    skin.append(time.process_time() - t0)
h = hashlib.sha256(np.ascontiguousarray(res.fibres).tobytes())
h.update(np.ascontiguousarray(res.epidermis).tobytes())
h.update(res.crossings.to_csv(float_format="%.17g").encode())
print(json.dumps({{"skin": skin, "naive": naive, "pixels": int(fib.size),
                  "n": len(res.crossings), "n_naive": nv["n"], "digest": h.hexdigest()}}))
"""


def run_case(code: Path, case: str, repeat: int) -> dict:
    config = str(code / "pipelines" / "skin_ienfd.yaml")
    return run_child(code, CHILD.format(here=str(HERE), case=case, repeat=repeat,
                                        config=config), case)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1200x4096", help="phantom HxW (0: none)")
    ap.add_argument("--images", nargs="*", default=[], help="OME-TIFFs with .truth.json")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--code", nargs="*", default=[], help="other checkouts to compare")
    a = ap.parse_args(argv)
    cases = ([f"phantom:{a.size}"] if a.size != "0" else []) + list(a.images)
    codes = [ROOT, *[Path(c).resolve() for c in a.code]]
    print(f"load average at start: {os.getloadavg()}")
    print("| case | code | skin CPU s (median) | naive CPU s | skin / naive | first skin run s "
          "| crossings (naive) | same output as this checkout |")
    print("|---|---|---|---|---|---|---|---|")
    tot = {c: [0.0, 0.0] for c in codes}
    for case in cases:
        res = {c: run_case(c, case, a.repeat) for c in codes}
        mine = res[ROOT]["digest"]
        for c in codes:
            r = res[c]
            d, nv = median(r["skin"]), median(r["naive"])
            tot[c][0] += d
            tot[c][1] += nv
            print(f"| {Path(case).name} ({r['pixels'] / 1e6:.1f} Mpx) | {c} | {d:.2f} | {nv:.2f} "
                  f"| {d / nv:.2f}x | {r['skin'][0]:.2f} | {r['n']} ({r['n_naive']}) "
                  f"| {'yes' if r['digest'] == mine else 'NO'} |", flush=True)
    if len(cases) > 1:
        for c in codes:
            print(f"| all cases (sum of medians) | {c} | {tot[c][0]:.2f} | {tot[c][1]:.2f} "
                  f"| {tot[c][0] / tot[c][1]:.2f}x | | | |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
