"""The ``histo-fms`` command line: thin over the library, no analysis logic here."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from . import __version__
from ._outfolder import FolderConflict, check_output_folder
from .batch import FileOutcome, run_pipeline
from .config import ConfigError, load_config
from .io import InputError, OutputError
from .segment._model_io import ModelError

#: Exit status: some files failed (the others are complete).
EXIT_FAILED = 1
#: Exit status: usage, configuration or input error (nothing computed).
EXIT_USAGE = 2
#: Exit status: the output folder cannot be used or written (nothing lost).
EXIT_OUTPUT = 3
#: Exit status: interrupted (Ctrl-C); re-running resumes.
EXIT_INTERRUPTED = 130
LOG_FILE = "run.log"


def _parse_channel(spec: str) -> tuple[str, str | int]:
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"--channel expects ROLE=NAME_OR_INDEX, got {spec!r}")
    role, _, name = spec.partition("=")
    return role.strip(), name.strip()


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="histo-fms",
        description="DRG satellite-glia IgG and skin IENFD pipelines (histo-fms).",
    )
    p.add_argument("--version", action="version", version=f"histo-fms {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a pipeline on images or folders of images")
    r.add_argument("config", help="pipeline config YAML (see pipelines/)")
    r.add_argument("inputs", nargs="+", help="image files and/or folders")
    r.add_argument("--out", "-o", required=True, help="output folder")
    r.add_argument("--samples", help="sample sheet CSV: image, subject, animal, group, control")
    r.add_argument("--channel", "-c", action="append", type=_parse_channel, default=[],
                   metavar="ROLE=NAME", help="map a channel role to a name or 0-based index "
                   "(repeatable); overrides the config's channels:")
    r.add_argument("--pixel-size", type=float, metavar="UM",
                   help="pixel size in µm, overriding the files' metadata")
    r.add_argument("--threshold", type=float, metavar="RATIO",
                   help="DRG: explicit ring_igg threshold instead of control calibration")
    r.add_argument("--no-resume", action="store_true",
                   help="recompute files whose outputs are already complete")
    r.add_argument("--overwrite", action="store_true",
                   help="run even if the output folder holds results of a different "
                   "measurement config (its sections among the inputs are re-measured)")
    r.add_argument("--workers", type=int, metavar="N",
                   help="local dask cluster: worker processes (default: one per core)")
    r.add_argument("--threads-per-worker", type=int, metavar="N", help="threads per worker")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="connect to a running dask scheduler (e.g. from dask-jobqueue) "
                   "instead of starting a local cluster; 'synchronous' runs in this process")
    r.add_argument("--quiet", "-q", action="store_true", help="no per-file progress")

    g = sub.add_parser("figures", help="paper figures, stats.csv and report.html of a run")
    g.add_argument("results", help="a `histo-fms run` output folder")
    g.add_argument("--samples", help="sample sheet CSV (subject, animal, group, control)")
    g.add_argument("--out", help="figure folder (default RESULTS/figures)")
    g.add_argument("--format", default="svg,pdf,png", help="comma-separated formats")
    g.add_argument("--unit", help="unit of analysis: animal (default), subject or image")
    g.add_argument("--images", nargs="+", metavar="IMAGE",
                   help="sections for the representative montage (default: closest to "
                   "each group's median)")
    g.add_argument("--include-controls", action="store_true",
                   help="plot control-IgG sections as their own group")
    g.add_argument("--no-mixed-model", action="store_true",
                   help="skip the neuron-level mixed model")
    g.add_argument("--allow-stale", action="store_true",
                   help="use reviews edited after their last recompute (default: refuse)")

    e = sub.add_parser("export", help="export results to QuPath GeoJSON or OME-Zarr")
    e.add_argument("results", help="a `histo-fms run` output folder")
    e.add_argument("--to", required=True, choices=["qupath", "omezarr"], help="target format")
    e.add_argument("--dest", help="destination folder (default RESULTS/export-FORMAT)")
    e.add_argument("--automatic", action="store_true",
                   help="export the automatic results even where reviewed ones exist")
    e.add_argument("--allow-stale", action="store_true",
                   help="export reviews edited after their last recompute (default: refuse)")

    t = sub.add_parser("train", help="fine-tune cellpose on reviewed neuron labels")
    t.add_argument("results", help="a reviewed DRG results folder")
    t.add_argument("--out", required=True, help="folder for the training pairs and the model")
    t.add_argument("--base", default="cpsam", help="starting model: cpsam or a weights path")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--export-only", action="store_true",
                   help="only write the training pairs (STEM_img.tif, STEM_masks.tif)")
    t.add_argument("--include-unreviewed", action="store_true",
                   help="also use automatic labels of unreviewed images")

    f = sub.add_parser("cellpose-fetch",
                       help="download cellpose weights once (then copy to offline nodes)")
    f.add_argument("--model", default="cpsam")

    tp = sub.add_parser("train-pixels",
                        help="train the pixel-classifier segmentation backend from "
                        "sparse annotations")
    tp.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    tp.add_argument("--annotations", "-a", nargs="+", required=True, metavar="ANNOT",
                    help="one uint8 TIFF per IMAGE (same Y x X): 0 unlabelled, "
                    "1 background, 2 neuron, 3 SGC sheath (optional)")
    tp.add_argument("--out", "-o", required=True, metavar="MODEL",
                    help="model file to write (.npz)")
    tp.add_argument("--config", help="DRG config for channel names and image options "
                    "(default pipelines/drg_sgc_igg.yaml)")
    tp.add_argument("--channel", "-c", action="append", type=_parse_channel, default=[],
                    metavar="ROLE=NAME", help="map a channel role (neuron, sgc, nuclei) to "
                    "a name or 0-based index (repeatable)")
    tp.add_argument("--pixel-size", type=float, metavar="UM",
                    help="pixel size in µm, overriding the files' metadata")
    tp.add_argument("--trees", type=int, default=64, help="trees in the random forest")
    tp.add_argument("--outlines", action="store_true",
                    help="the ANNOT files outline every neuron of their image: label images "
                    "(one value per neuron) or binary masks, instead of classes 0-3")

    v = sub.add_parser("validate",
                       help="score a DRG run's neuron labels against reference annotations")
    v.add_argument("results", help="a `histo-fms run` output folder")
    v.add_argument("--reference", "-r", required=True, metavar="REFDIR",
                   help="folder of reference label images or binary masks (TIFF/PNG) "
                   "named by image stem: STEM.tif, STEM.labels.tif, STEM_mask.png, ...")
    v.add_argument("--out", help="CSV file or folder (default RESULTS/validation.csv)")
    v.add_argument("--reviewed", action="store_true",
                   help="score reviewed labels (STEM/reviewed/) where they exist")
    v.add_argument("--iou", type=float, default=0.5, help="IoU of a match (default 0.5)")

    s = sub.add_parser("sample-data", help="(re)generate the phantom images in sample_data/")
    s.add_argument("--out", default="sample_data", help="destination folder")
    return p


def _progress(i: int, n: int, o: FileOutcome) -> None:
    if o.status == "failed":
        msg = f"FAILED  {o.error}"
    elif o.status == "resumed":
        msg = "done earlier (resumed, not recomputed)"
    else:
        msg = f"ok  {o.seconds:.1f} s"
        if o.summary.get("tiling"):  # DRG: whole image or tiles, and why
            msg += f"  ({o.summary['tiling']})"
    print(f"[{i}/{n}] {o.path.name}: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _interrupt_guard() -> Iterator[threading.Event]:
    """Make Ctrl-C stop a batch even when Python drops the KeyboardInterrupt.

    A KeyboardInterrupt raised while a finaliser (``__del__``, a weakref callback) runs
    is printed and ignored by CPython, and a batch would then run to its end and exit 0.
    The handler records the interrupt before raising it, so the batch loop can stop at
    the next file (see ``_checked``) and the command still ends with the interrupt's
    exit code. Outside the main thread (the CLI called from a thread) nothing changes.
    """
    seen = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def on_sigint(signum, frame):  # noqa: ARG001 - signal handler signature
        seen.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, old)
    if seen.is_set():
        raise KeyboardInterrupt


def _checked(progress, seen: threading.Event):
    """Wrap a per-file progress callback so that a recorded interrupt stops the batch."""

    def call(i: int, n: int, o: FileOutcome) -> None:
        if seen.is_set():
            raise KeyboardInterrupt
        if progress is not None:
            progress(i, n, o)

    return call


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[TextIO]:
    """Send library messages (tifffile, dask, warnings, worker output) to ``path``.

    Yields the stream for one-line console messages. When this process's stderr is the
    terminal's (not captured, e.g. by pytest), file descriptor 2 itself is pointed at
    the log so that worker processes and C libraries write there too.
    """
    log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    log.write(f"--- histo-fms {' '.join(sys.argv[1:])} (pid {os.getpid()}, "
              f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')})\n")
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    saved_fd = None
    old_stderr = sys.stderr
    try:
        real = sys.stderr is sys.__stderr__ and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    console: TextIO = sys.stderr
    if real:
        sys.stderr.flush()
        saved_fd = os.dup(2)
        console = os.fdopen(os.dup(2), "w", encoding=getattr(old_stderr, "encoding", None),
                            buffering=1)
        os.dup2(log.fileno(), 2)
        sys.stderr = console
    try:
        yield console
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        if saved_fd is not None:
            console.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sys.stderr = old_stderr
            console.close()
        log.close()


def _cmd_run(a: argparse.Namespace, argv: Sequence[str]) -> int:
    overrides: dict = {}
    if a.channel:
        overrides["channels"] = dict(a.channel)
    if a.pixel_size is not None:
        overrides["pixel_size_um"] = a.pixel_size
    if a.threshold is not None:
        overrides["calibration"] = {"threshold": a.threshold}
    par = {k: v for k, v in (("workers", a.workers), ("scheduler", a.scheduler),
                             ("threads_per_worker", a.threads_per_worker)) if v is not None}
    if par:
        overrides["parallel"] = par
    cfg = load_config(a.config, overrides=overrides)
    out = check_output_folder(a.out)
    with _log_to(out / LOG_FILE), _interrupt_guard() as seen:
        rep = run_pipeline(cfg, a.inputs, out, samples=a.samples, resume=not a.no_resume,
                           progress=_checked(None if a.quiet else _progress, seen),
                           argv=["histo-fms", *argv],
                           say=_say if not a.quiet else _note_only, overwrite=a.overwrite)
        for o in rep.failed:
            if o.traceback:
                logging.getLogger("histo_fms").error("%s\n%s", o.error, o.traceback)
    n_ok = len(rep.outcomes) - len(rep.failed)
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if cfg.pipeline == "drg":
        if rep.threshold is not None:
            print(f"IgG-positive threshold: ring_igg > {rep.threshold:.3f} "
                  f"({rep.threshold_source})")
        per = "neurons.csv"
    else:
        per = "crossings.csv"
    print(f"{n_ok} of {len(rep.outcomes)} image(s) analysed.")
    if rep.earlier:
        print(f"{len(rep.earlier)} section(s) from earlier runs into {out} re-called and "
              f"summarised with them.")
    if rep.summary_path is not None:
        print(f"Summary table:     {rep.summary_path}")
    print(f"Per-image results: {out}/<image>/{per}, labels.zarr")
    print(f"Provenance:        {rep.run_json}")
    if rep.failed:
        print(f"{len(rep.failed)} file(s) failed:", file=sys.stderr)
        for o in rep.failed:
            print(f"  {o.error}", file=sys.stderr)
        print(f"  (details: {out / LOG_FILE})", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _children() -> set[int]:
    try:
        import psutil

        return {p.pid for p in psutil.Process().children(recursive=True)}
    except Exception:  # noqa: BLE001 - psutil missing or a process vanished
        return set()


def _reap_children(before: set[int], timeout: float = 5.0) -> None:
    """End and reap the processes started since ``before`` was taken.

    Dask workers, nannies and multiprocessing's resource tracker: ``histo-fms run``
    leaves nothing behind in its process group.
    """
    try:
        from multiprocessing import resource_tracker

        stop = getattr(resource_tracker._resource_tracker, "_stop", None)
        if stop is not None:
            stop()
    except Exception:  # noqa: BLE001 - best effort
        pass
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with dask.distributed
        return
    kids = [k for k in psutil.Process().children(recursive=True) if k.pid not in before]
    for k in kids:
        with contextlib.suppress(psutil.Error):
            k.terminate()
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for k in alive:
        with contextlib.suppress(psutil.Error):
            k.kill()
    psutil.wait_procs(alive, timeout=timeout)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _note_only(msg: str) -> None:
    if msg.startswith("note:"):
        _say(msg)


def _is_results_folder(path: Path) -> bool:
    return path.is_dir() and any((path / n).is_file() for n in
                                 ("run.json", "drg_summary.csv", "skin_summary.csv"))


def _finish_interrupted_commit(results: Path) -> None:
    """Roll forward the calling commit of a run that was killed mid-way (if no run is live)."""
    from ._outfolder import FolderBusy, FolderLock
    from .io._write import JOURNAL, recover_commit

    if not (results / JOURNAL).is_file():
        return
    try:
        with FolderLock(results):
            recover_commit(results)
    except FolderBusy:  # a live run is finishing it
        pass


def _cmd_figures(a: argparse.Namespace) -> int:
    from .figures import make_figures

    res = Path(a.results)
    if not _is_results_folder(res):
        raise InputError(res, "not a histo-fms results folder (no run.json, drg_summary.csv "
                              "or skin_summary.csv)")
    _finish_interrupted_commit(res)
    rep = make_figures(a.results, a.samples, a.out, a.format, a.unit, images=a.images,
                       include_controls=a.include_controls, mixed_model=not a.no_mixed_model,
                       allow_stale=a.allow_stale)
    if not rep.figures and rep.stats_path is None:
        raise InputError(res, "no analysed image to plot (the summary tables are empty)")
    for name, files in rep.figures.items():
        print(f"{name}: {', '.join(str(f) for f in files)}")
    print(f"Statistics: {rep.stats_path}")
    print(f"Report:     {rep.report_path}")
    for n in rep.notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from .export import export_results

    if Path(a.results).is_dir():
        _finish_interrupted_commit(Path(a.results))
    skipped: list[tuple[str, str]] = []
    written = export_results(a.results, a.to, a.dest, reviewed=not a.automatic,
                             allow_stale=a.allow_stale, skipped=skipped)
    for p in written:
        print(p)
    if skipped:
        print(f"{len(skipped)} image(s) not exported:", file=sys.stderr)
        for stem, why in skipped:
            print(f"  {stem}: {why}", file=sys.stderr)
    if not written:
        raise InputError(Path(a.results), "no analysed image to export (every image failed "
                                          "or has no labels)")
    return 1 if skipped else 0


def _cmd_train(a: argparse.Namespace) -> int:
    from .training import export_training_pairs, train_cellpose

    pairs = export_training_pairs(a.results, Path(a.out) / "training_pairs",
                                  include_unreviewed=a.include_unreviewed)
    print(f"{len(pairs)} training pair(s) in {Path(a.out) / 'training_pairs'}")
    if a.export_only:
        return 0
    model = train_cellpose(pairs, a.out, base=a.base, n_epochs=a.epochs)
    print(f"model: {model}")
    print(f"use it with: segmentation_backend: cellpose, segmentation_options: {{model: {model}}}")
    return 0


def _cmd_train_pixels(a: argparse.Namespace) -> int:
    from .pixel_training import train_pixels

    res = train_pixels(a.images, a.annotations, a.out, config=a.config,
                       channels=dict(a.channel) or None, pixel_size_um=a.pixel_size,
                       n_estimators=a.trees, outlines=a.outlines)
    m = res.model
    print(f"model: {res.path}")
    print(f"channel roles: {', '.join(m.roles)}; trained at {m.pixel_size_um:g} µm/px")
    if m.info.get("dense_masks"):
        print(f"{m.info['dense_masks']} annotation(s) read as dense neuron masks: touching "
              "neurons split, outline edges unlabelled"
              + (", the band outside each neuron taught as SGC sheath" if "sgc" in m.roles
                 else "") + " (counts below are after this)")
    print("annotated pixels: " + ", ".join(f"{k} {v}" for k, v in res.pixel_counts.items()))
    if "training_samples" in m.info:
        print(f"training pixels: {m.info['training_samples']} (a class-balanced random "
              "subset of the annotated pixels)")
    print(f"out-of-bag accuracy: {res.oob_accuracy:.3f}")
    print("use it with: segmentation_backend: pixel_classifier, "
          f"segmentation_options: {{model: {res.path}}}")
    return 0


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return "nan" if x != x else f"{x:.3f}"
    return str(x)


def _cmd_validate(a: argparse.Namespace) -> int:
    from .validation import validate_run

    rep = validate_run(a.results, a.reference, out=a.out, reviewed=a.reviewed,
                       iou_threshold=a.iou)
    cols = ["image", "n_reference", "n_predicted", "n_matched", "precision", "recall", "f1",
            "median_iou", "diameter_spearman", "diameter_bias_um"]
    if len(rep.table):
        rows = [cols] + [[_fmt(r[c]) for c in cols] for _, r in rep.table.iterrows()]
        w = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        for r in rows:
            print("  ".join(x.rjust(w[i]) if i else x.ljust(w[i]) for i, x in enumerate(r)))
    n = len(rep.table) - 1 if len(rep.table) else 0
    print(f"{n} image(s) scored (instances matched at IoU >= {a.iou:g}); table: {rep.path}")
    if rep.unscored:
        print(f"{len(rep.unscored)} image(s) not scored:", file=sys.stderr)
        for stem, why in rep.unscored:
            print(f"  {stem}: {why}", file=sys.stderr)
    return 0 if n > 0 else 1


def _cmd_sample_data(a: argparse.Namespace) -> int:
    from .sample_data import make_sample_data

    written = make_sample_data(a.out)
    for p in written:
        print(p)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``histo-fms`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 some files failed, 2 usage, configuration or input
        error (also: the output folder holds another measurement config), 3 the output
        folder cannot be used (a file, not writable, disk full, another live run holds
        it), 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    a = _build_parser().parse_args(argv)
    try:
        if a.command == "run":
            before = _children()
            try:
                return _cmd_run(a, argv)
            finally:
                _reap_children(before)
        if a.command == "figures":
            return _cmd_figures(a)
        if a.command == "export":
            return _cmd_export(a)
        if a.command == "train":
            return _cmd_train(a)
        if a.command == "cellpose-fetch":
            from .segment._cellpose import fetch_cellpose_weights

            print(fetch_cellpose_weights(a.model))
            return 0
        if a.command == "train-pixels":
            return _cmd_train_pixels(a)
        if a.command == "validate":
            return _cmd_validate(a)
        if a.command == "sample-data":
            return _cmd_sample_data(a)
    except KeyboardInterrupt:
        # what the interrupt left half-done (a file opened, a coroutine not awaited) is
        # collected now or at exit; its Resource/RuntimeWarning is noise to the user,
        # and the message below must stay the last line
        import gc
        import warnings

        warnings.simplefilter("ignore")
        gc.collect()
        print("histo-fms: interrupted; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputError as exc:
        print(f"histo-fms: error: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    except (ConfigError, InputError, ModelError, FolderConflict, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not getattr(exc, "user_facing", False):
            raise
        print(f"histo-fms: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
