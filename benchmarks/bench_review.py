"""Benchmark: open a large phantom DRG review in napari and apply 50 scripted edits.

Builds a results folder by hand (disk-shaped neurons on a grid, a neurons table,
``run.json``), opens it in the review widget of a headless napari viewer and applies
50 edits through the widget (flip, exclude, delete, merge, split, paint, undo, redo), timing
each edit including Qt event processing. Run under a display, e.g.::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_review.py --size 4096
    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_review.py --size 16384

Prints open time and the per-edit median / max (ms) per edit kind and overall; for flip,
exclude and delete the jump to the neuron (``go_to``: the view moves, the image is read
and drawn there) is timed apart (``jump_*``), as a reviewer first looks, then edits. The
phantom has an image (an OME-Zarr, NeuN and IgG): ``--image flat`` (default) one level,
as a plain TIFF would be (the widget computes its overview off the GUI thread and adds
the channels when it is ready: ``image_s``), ``--image pyramid`` with its own levels, as
slide scanners write, or ``--image none``. With ``--recompute`` the benchmark first times
**Recompute** after one edit (which also computes the section's context) and after one
more (only the neurons near the edit are re-measured). ``load_avg`` is the machine's
1-minute load average at the start and the end (other work slows every figure);
``edit_cpu_*`` is the process's CPU time (background threads included), ``edit_gui_cpu_*``
the GUI thread's alone. ``--pace S`` leaves S seconds (and the background saves' time)
before each edit (after the jump to its neuron), untimed, as a reviewer does; by default
the edits follow back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build(root: Path, size: int, px: float = 0.5, spacing_px: int = 64 + 8, seed: int = 0,
          image: bool = False, levels: int = 1) -> int:
    """Write a phantom DRG result of ``size``² pixels; return the number of neurons."""
    from histo_fms.drg._measure import TABLE_COLUMNS
    from histo_fms.io import write_json, write_labels_zarr, write_table

    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.int32)
    rows = []
    nid = 0
    half = spacing_px // 2
    r = np.arange(-half, half)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    for cy in range(half, size - half + 1, spacing_px):
        for cx in range(half, size - half + 1, spacing_px):
            rad = rng.uniform(20, 30)
            disk = yy ** 2 + xx ** 2 <= rad ** 2
            nid += 1
            sub = lab[cy - half:cy + half, cx - half:cx + half]
            sub[disk] = nid
            area = float(disk.sum()) * px ** 2
            ring = float(np.exp(rng.normal(0.4, 0.5)))
            rows.append({"neuron_id": nid, "y_um": cy * px, "x_um": cx * px, "area_um2": area,
                         "diameter_um": float(np.sqrt(4 * area / np.pi)),
                         "size_class": "small" if area < 400 else "medium",
                         "touches_border": cy == half or cx == half, "ring_igg": ring,
                         "igg_positive": ring > 1.5})
    d = root / "out" / "bench"
    labels = {"neurons": lab}
    if image:
        labels["rings"] = np.zeros_like(lab)  # (compresses to nothing)
    write_labels_zarr(labels, d / "labels.zarr", pixel_size_um=px, chunk=2048)
    del lab, labels
    tab = pd.DataFrame(rows)
    for c in TABLE_COLUMNS:
        if c not in tab:
            tab[c] = "local" if c == "background_source" else np.nan
    write_table(tab, d / "neurons.csv")
    img_name = "bench.ome.tif"
    if image:
        img_name = "bench.ome.zarr"
        _write_image(d / "labels.zarr", root / img_name, px, levels)
    write_json({"config": {"pipeline": "drg", "channels": {"neuron": "NeuN", "igg": "IgG"}},
                "threshold": {"ring_igg": 1.5, "source": "benchmark"},
                "files": [{"image": img_name, "path": str(root / img_name),
                           "sha256": "0", "status": "ok", "pixel_size_um": px}]},
               root / "out" / "run.json")
    return nid


def _write_image(labels_zarr: Path, dest: Path, px: float, levels: int = 1) -> None:
    """NeuN (bright neurons) and IgG (a brighter band around them) with noise, chunk-wise."""
    import dask.array as da
    from scipy import ndimage as ndi

    from histo_fms.io._omezarr import write_omezarr

    lab = da.from_zarr(str(labels_zarr / "labels" / "neurons" / "0"))

    def channel(block, block_info=None, *, which):
        loc = block_info[0]["chunk-location"]
        rng = np.random.default_rng([which, *loc])
        fg = block > 0
        if which == 0:
            v = np.where(fg, 900.0, 150.0)
        else:
            ring = ndi.binary_dilation(fg, iterations=8) & ~fg
            v = np.where(ring, 320.0, np.where(fg, 260.0, 200.0))
        return (v + rng.normal(0, 20, block.shape)).clip(0, 65535).astype(np.uint16)

    neun = lab.map_blocks(channel, which=0, dtype=np.uint16)
    igg = lab.map_blocks(channel, which=1, dtype=np.uint16)
    write_omezarr(da.stack([neun, igg]), dest, channel_names=["NeuN", "IgG"],
                  pixel_size_um=px, chunk=2048, levels=levels)


class _Profile:
    """cProfile of named phases, dumped as ``DIR/NAME.prof`` (nothing without a folder)."""

    def __init__(self, folder: Path | None):
        self.folder, self.name, self.pr = folder, None, None

    def start(self, name: str) -> None:
        if self.folder is not None:
            import cProfile

            self.folder.mkdir(parents=True, exist_ok=True)
            self.name, self.pr = name, cProfile.Profile()
            self.pr.enable()

    def pause(self) -> None:
        if self.pr is not None:
            self.pr.disable()

    def resume(self) -> None:
        if self.pr is not None:
            self.pr.enable()

    def stop(self) -> None:
        if self.pr is not None:
            self.pr.disable()
            self.pr.dump_stats(str(self.folder / f"{self.name}.prof"))
            self.pr = None

    def begin(self, kind: str) -> None:
        """Profile into ``DIR/edit_KIND.prof`` (every edit of a kind together) until end."""
        if self.folder is not None:
            import cProfile

            self.folder.mkdir(parents=True, exist_ok=True)
            self.pr = self.__dict__.setdefault("kinds", {}).setdefault(kind, cProfile.Profile())
            self.name = f"edit_{kind}"
            self.pr.enable()

    def end(self) -> None:
        if self.pr is not None:
            self.pr.disable()
            self.pr.dump_stats(str(self.folder / f"{self.name}.prof"))
            self.pr = None

    def __call__(self, name: str):
        import contextlib

        @contextlib.contextmanager
        def cm():
            self.start(name)
            try:
                yield
            finally:
                self.stop()
        return cm()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--edits", type=int, default=50)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--image", choices=["flat", "pyramid", "none"], default="flat",
                    help="the phantom's image: one level, with its own pyramid, or none")
    ap.add_argument("--recompute", action="store_true",
                    help="also time Recompute (needs an image)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the phantom here and reuse it (its review is reset each run)")
    ap.add_argument("--pace", type=float, default=0.0,
                    help="seconds between edits (untimed; background saves finish first): "
                         "a reviewer's pace; 0 (default) edits back to back")
    ap.add_argument("--profile", type=Path, default=None,
                    help="write cProfile stats of the open (open.prof), the jumps (edit_jump.prof) "
                         "and the edits of each kind (edit_KIND.prof) into this folder")
    a = ap.parse_args(argv)
    if a.recompute and a.image == "none":
        ap.error("--recompute needs an image")
    load0 = os.getloadavg()[0]
    import napari
    from napari_histo_fms import ReviewWidget
    from qtpy.QtWidgets import QApplication

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if a.cache is None else a.cache / f"bench_{a.size}_{a.image}"
        t0 = time.perf_counter()
        if (root / "out" / "run.json").is_file():
            shutil.rmtree(root / "out" / "bench" / "reviewed", ignore_errors=True)
            n = int(pd.read_csv(root / "out" / "bench" / "neurons.csv")["neuron_id"].max())
        else:
            n = build(root, a.size, image=a.image != "none",
                      levels=1 if a.image != "pyramid" else
                      max(1, int(np.ceil(np.log2(a.size / 1024))) + 1))
        t_build = time.perf_counter() - t0
        viewer = napari.Viewer(show=True)  # drawn: textures exist, as for a user
        w = ReviewWidget(viewer)
        viewer.window.add_dock_widget(w)
        app = QApplication.instance()
        app.processEvents()
        prof = _Profile(a.profile)
        t0 = time.perf_counter()
        c0 = time.process_time()
        with prof("open"):
            w.open_session(root / "out", "bench", "bench")
            app.processEvents()
        t_open = time.perf_counter() - t0
        cpu_open = time.process_time() - c0
        while getattr(w, "image_pending", False):  # no pyramid: its overview, in a thread
            app.processEvents()
            time.sleep(0.01)
        app.processEvents()
        t_image = time.perf_counter() - t0
        s = w.session
        rng = np.random.default_rng(1)
        interior = [int(i) for i in s.table.loc[~s.table["touches_border"], "neuron_id"]]
        rng.shuffle(interior)
        pool = iter(interior)
        yx = s.table[["y_um", "x_um"]].to_numpy(float)
        tid = s.table["neuron_id"].to_numpy()

        def neighbour(nid):
            d = np.hypot(*(yx - yx[tid == nid][0]).T)
            d[tid == nid] = np.inf
            d[~np.isin(tid, list(left))] = np.inf
            return int(tid[np.argmin(d)])

        left = set(interior)

        def _take():
            i = next(i for i in pool if i in left)
            left.discard(i)
            return i

        def _pair():
            i = _take()
            j = neighbour(i)
            left.discard(j)
            return [i, j]

        rc = {}
        if a.recompute:
            # Recompute after one edit (the first also computes the section's context),
            # then after one more (the context cached): the neurons near the edit only
            for key, edit in (("first", lambda: (w.go_to(_take()), w.delete_neuron())),
                              ("next", lambda: w.merge(_pair()))):
                edit()
                app.processEvents()
                t0 = time.perf_counter()
                w.recompute(block=True)
                app.processEvents()
                rc[f"recompute_{key}_s"] = round(time.perf_counter() - t0, 2)
                rc[f"recompute_{key}"] = s.history()[-1]["params"]
        times: dict[str, list[float]] = {}
        cpu: list[float] = []
        gui: list[float] = []  # the GUI thread's CPU (without the background threads)
        work: list[float] = []
        draw: list[float] = []
        plan = ["flip", "exclude", "delete", "merge", "split", "paint", "undo", "redo"]
        lab = viewer.layers["neurons"]
        jumps: list[float] = []
        jump_cpu: list[float] = []
        for k in range(a.edits):
            kind = plan[k % len(plan)]
            nid = _take()
            if kind in ("flip", "exclude", "delete"):
                # the reviewer goes to the neuron (the view moves: the image is read and
                # drawn there), looks, then edits it: timed apart
                t0, c0 = time.perf_counter(), time.process_time()
                prof.begin("jump")
                w.go_to(nid)
                app.processEvents()
                prof.end()
                jumps.append((time.perf_counter() - t0) * 1000)
                jump_cpu.append((time.process_time() - c0) * 1000)
            if a.pace > 0:  # a reviewer's pace: what runs in the background is done
                t_idle = time.perf_counter() + a.pace
                while time.perf_counter() < t_idle or getattr(s, "saving", False):
                    app.processEvents()
                    time.sleep(0.01)
            prof.begin(kind)
            t0, c0, g0 = time.perf_counter(), time.process_time(), time.thread_time()
            if kind == "flip":
                w.flip_call()
            elif kind == "exclude":
                w.toggle_excluded()
            elif kind == "delete":
                w.delete_neuron()
            elif kind == "merge":
                other = neighbour(nid)  # a reviewer merges neighbouring fragments
                left.discard(other)
                w.merge([nid, other])
            elif kind == "split":
                row = s.table.set_index("neuron_id").loc[nid]
                y, x = row["y_um"], row["x_um"]
                w.split(nid, [(y - 4.0, x), (y + 4.0, x)])
            elif kind == "paint":
                # a brush dab in the neurons layer, with napari's own painting (the
                # widget saves it from the paint event once the event loop runs)
                row = s.table.set_index("neuron_id").loc[nid]
                lab.brush_size = 10
                stroke = hasattr(lab, "_begin_stroke")  # one undo item, one paint event
                if stroke:
                    lab._begin_stroke()
                yc, xc = row["y_um"] / s.pixel_size_um, row["x_um"] / s.pixel_size_um
                for dy in range(0, 36, 6):
                    lab.paint((yc + dy, xc), nid)
                if stroke:
                    lab._commit_stroke()
                app.processEvents()  # the widget saves the stroke from the event loop
            elif kind == "undo":
                w.undo()
            else:
                w.redo()
            t1 = time.perf_counter()
            app.processEvents()  # draw (software OpenGL under Xvfb)
            t2 = time.perf_counter()
            prof.end()
            cpu.append((time.process_time() - c0) * 1000)
            gui.append((time.thread_time() - g0) * 1000)
            times.setdefault(kind, []).append((t2 - t0) * 1000)
            work.append((t1 - t0) * 1000)
            draw.append((t2 - t1) * 1000)
        allt = [v for vs in times.values() for v in vs]
        res = {"size": a.size, "neurons": n, "cpus": os.cpu_count(),
               "image": a.image, "pace_s": a.pace,
               "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)],
               "build_s": round(t_build, 2), "open_s": round(t_open, 2),
               "open_cpu_s": round(cpu_open, 2), "image_s": round(t_image, 2),
               "edit_median_ms": round(float(np.median(allt)), 1),
               "edit_max_ms": round(float(np.max(allt)), 1),
               "widget_and_model_median_ms": round(float(np.median(work)), 1),
               "widget_and_model_max_ms": round(float(np.max(work)), 1),
               "draw_median_ms": round(float(np.median(draw)), 1),
               "edit_cpu_median_ms": round(float(np.median(cpu)), 1),
               "edit_cpu_max_ms": round(float(np.max(cpu)), 1),
               "edit_gui_cpu_median_ms": round(float(np.median(gui)), 1),
               "edit_gui_cpu_max_ms": round(float(np.max(gui)), 1),
               "by_kind_median_ms": {k: round(float(np.median(v)), 1) for k, v in times.items()},
               "by_kind_max_ms": {k: round(float(np.max(v)), 1) for k, v in times.items()},
               "jump_median_ms": round(float(np.median(jumps)), 1) if jumps else None,
               "jump_max_ms": round(float(np.max(jumps)), 1) if jumps else None,
               "jump_cpu_median_ms": round(float(np.median(jump_cpu)), 1) if jumps else None,
               "saves_pending_after_edits": bool(getattr(s, "saving", False)),
               **rc}
        t0 = time.perf_counter()
        if hasattr(s, "flush"):
            s.flush()  # every label chunk written (background saves)
        res["flush_s"] = round(time.perf_counter() - t0, 2)
        viewer.close()
    print(json.dumps(res, indent=2))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
