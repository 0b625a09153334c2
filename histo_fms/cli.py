"""The ``histo-fms`` command line: thin over the library, no analysis logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .batch import FileOutcome, run_pipeline
from .config import ConfigError, load_config
from .io import InputError
from .segment._model_io import ModelError


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

    e = sub.add_parser("export", help="export results to QuPath GeoJSON or OME-Zarr")
    e.add_argument("results", help="a `histo-fms run` output folder")
    e.add_argument("--to", required=True, choices=["qupath", "omezarr"], help="target format")
    e.add_argument("--dest", help="destination folder (default RESULTS/export-FORMAT)")
    e.add_argument("--automatic", action="store_true",
                   help="export the automatic results even where reviewed ones exist")

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
    print(f"[{i}/{n}] {o.path.name}: {msg}", file=sys.stderr, flush=True)


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
    rep = run_pipeline(cfg, a.inputs, a.out, samples=a.samples, resume=not a.no_resume,
                       progress=None if a.quiet else _progress, argv=["histo-fms", *argv],
                       say=None if a.quiet else (lambda m: print(m, file=sys.stderr)))
    out = Path(a.out)
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
    if rep.summary_path is not None:
        print(f"Summary table:     {rep.summary_path}")
    print(f"Per-image results: {out}/<image>/{per}, labels.zarr")
    print(f"Provenance:        {rep.run_json}")
    if rep.failed:
        print(f"{len(rep.failed)} file(s) failed:", file=sys.stderr)
        for o in rep.failed:
            print(f"  {o.error}", file=sys.stderr)
        return 1
    return 0


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
                       n_estimators=a.trees)
    m = res.model
    print(f"model: {res.path}")
    print(f"channel roles: {', '.join(m.roles)}; trained at {m.pixel_size_um:g} µm/px")
    print("annotated pixels: " + ", ".join(f"{k} {v}" for k, v in res.pixel_counts.items()))
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
        Exit status: 0 success, 1 some files failed, 2 usage or configuration error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    a = _build_parser().parse_args(argv)
    try:
        if a.command == "run":
            return _cmd_run(a, argv)
        if a.command == "figures":
            from .figures import make_figures

            rep = make_figures(a.results, a.samples, a.out, a.format, a.unit, images=a.images,
                               include_controls=a.include_controls,
                               mixed_model=not a.no_mixed_model)
            for name, files in rep.figures.items():
                print(f"{name}: {', '.join(str(f) for f in files)}")
            print(f"Statistics: {rep.stats_path}")
            print(f"Report:     {rep.report_path}")
            for n in rep.notes:
                print(f"note: {n}", file=sys.stderr)
            return 0
        if a.command == "export":
            from .export import export_results

            for p in export_results(a.results, a.to, a.dest, reviewed=not a.automatic):
                print(p)
            return 0
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
    except (ConfigError, InputError, ModelError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not getattr(exc, "user_facing", False):
            raise
        print(f"histo-fms: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
