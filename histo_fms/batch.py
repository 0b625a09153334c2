"""Run a pipeline over many files: resumable, atomic, never stopped by one bad file.

Data flow per file: reader -> pure stage functions (:mod:`histo_fms.drg` /
:mod:`histo_fms.skin`) -> atomic writers. After all files, the DRG pipeline calibrates the
IgG threshold on the control sections of the sample sheet and calls every neuron.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .config import PipelineConfig
from .io import (
    InputError,
    image_stem,
    is_image_file,
    match_sample,
    read_image,
    read_sample_sheet,
    require_pixel_size,
    resolve_channels_report,
    write_json,
    write_labels_zarr,
    write_polylines,
    write_table,
)

STATUS_FILE = "status.json"
NEURON_COLUMNS = [
    "neuron_id", "y_um", "x_um", "area_um2", "diameter_um", "size_class", "touches_border",
    "ring_igg", "igg_positive",
]


@dataclass
class FileOutcome:
    """What happened to one input file."""

    path: Path
    stem: str
    status: str  # "ok", "resumed" or "failed"
    sha256: str | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    pixel_size_um: float | None = None
    summary: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


@dataclass
class RunReport:
    """The outcome of a batch run."""

    out: Path
    outcomes: list[FileOutcome]
    summary_path: Path | None
    run_json: Path
    threshold: float | None = None
    threshold_source: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        """Files that failed, with their one-line errors."""
        return [o for o in self.outcomes if o.status == "failed"]


def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Parameters
    ----------
    inputs : iterable of str or Path
        Files and/or folders (folders are searched non-recursively for supported images).

    Returns
    -------
    list of Path
        Image files, in order, without duplicates.

    Raises
    ------
    InputError
        An input does not exist, or a folder holds no supported image.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and not is_image_file(p):
            found = sorted(f for f in p.iterdir()
                           if is_image_file(f) and (f.is_file() or f.suffix == ".zarr"))
            if not found:
                raise InputError(p, "folder contains no supported image files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(p, "no such file or folder")
    seen: set[Path] = set()
    uniq = []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(p)
    stems: dict[str, Path] = {}
    for p in uniq:
        s = image_stem(p)
        if s in stems:
            raise InputError(p, f"same output name {s!r} as {stems[s]}; rename one of them")
        stems[s] = p
    return uniq


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Return the SHA-256 hex digest of a file (or of a directory's files, sorted).

    Parameters
    ----------
    path : str or Path
        File or directory.
    chunk : int
        Read size in bytes.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Return the versions of Python, histo-fms and the packages results depend on."""
    out = {"python": platform.python_version(), "histo-fms": __version__,
           "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "scikit-image", "pandas", "tifffile", "zarr", "dask",
                "distributed", "pydantic", "cellpose", "torch", "bioio"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _resolve_roles(img: Any, cfg: PipelineConfig) -> tuple[dict[str, int], dict]:
    """Role -> channel index of one file, and the roles-used record for its summary.

    An optional role whose named channel the file lacks is skipped for this file
    (``roles_skipped``: ``role=name``, also noted in ``run.json``).
    """
    req, opt = cfg.roles()
    idx, skipped = resolve_channels_report(img.channel_names, cfg.channels, required=req,
                                           optional=opt, path=img.path)
    used = {"roles_used": "+".join(r for r in (*req, *opt) if r in idx),
            "roles_skipped": "+".join(f"{r}={n}" for r, n in skipped.items())}
    return idx, used


def _load_channels(img: Any, cfg: PipelineConfig) -> dict[str, np.ndarray]:
    idx, _ = _resolve_roles(img, cfg)
    ny, nx = img.shape_yx
    if ny < 2 or nx < 2:
        raise InputError(img.path, f"image is too small ({ny} x {nx} px)")
    return {role: np.asarray(img.data[i].compute()) for role, i in idx.items()}


def _stamp_ok(outdir: Path, sha: str, cfg_hash: str, outputs: Sequence[str]) -> dict | None:
    import json

    stamp = outdir / STATUS_FILE
    if not stamp.is_file():
        return None
    try:
        st = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if st.get("sha256") != sha or st.get("config_hash") != cfg_hash:
        return None
    if not all((outdir / o).exists() for o in outputs):
        return None
    return st


def _remove_stale_temporaries(outdir: Path) -> None:
    """Remove temporaries a killed run left (``.NAME.*.tmp``, ``.NAME.old-PID``)."""
    import shutil

    if not outdir.is_dir():
        return
    for p in outdir.iterdir():
        if p.name.startswith(".") and (p.name.endswith(".tmp") or ".old-" in p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def process_file(path: Path, cfg: PipelineConfig, out: Path, *, resume: bool = True,
                 client: Any = None,
                 tile_progress: Callable[[str, int, int], None] | None = None) -> FileOutcome:
    """Run the configured pipeline on one file and write its outputs atomically.

    Never raises for a bad file: the error is returned in the outcome.

    Parameters
    ----------
    path : Path
        Input image.
    cfg : PipelineConfig
        The validated configuration.
    out : Path
        The run's output folder; results go to ``out/STEM/``.
    resume : bool
        Skip the work when ``out/STEM/status.json`` records the same input hash and
        measurement config and every output exists.
    client : distributed.Client, optional
        Spread the tiles of a large image over this cluster (DRG).
    tile_progress : callable, optional
        ``tile_progress(stage, done, total)`` while a large image is processed in tiles.

    Returns
    -------
    FileOutcome
        Status, error, timing and the per-file summary.
    """
    t0 = time.perf_counter()
    stem = image_stem(path)
    outdir = out / stem
    outcome = FileOutcome(path=path, stem=stem, status="failed")
    try:
        outcome.sha256 = file_sha256(path)
        cfg_hash = cfg.measurement_hash()
        outputs = OUTPUTS[cfg.pipeline]
        st = _stamp_ok(outdir, outcome.sha256, cfg_hash, outputs) if resume else None
        if st is not None:
            outcome.status = "resumed"
            outcome.summary = st.get("summary", {})
            outcome.pixel_size_um = st.get("pixel_size_um")
            return outcome
        _remove_stale_temporaries(outdir)
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        px = require_pixel_size(img)
        outcome.pixel_size_um = px
        tile_px = tile_size_px(cfg, px)
        _, roles_used = _resolve_roles(img, cfg)
        if cfg.pipeline == "drg" and tile_px is not None and max(img.shape_yx) > tile_px:
            summary = _run_drg_tiled(img, px, cfg, outdir, tile_px, client, tile_progress)
        else:
            channels = _load_channels(img, cfg)
            summary = RUNNERS[cfg.pipeline](channels, px, cfg, outdir, path)
        summary.update(roles_used)
        if cfg.pipeline == "drg":
            summary["tiled"] = bool(tile_px is not None and max(img.shape_yx) > tile_px)
        outcome.summary = summary
        write_json({"image": path.name, "sha256": outcome.sha256, "config_hash": cfg_hash,
                    "pipeline": cfg.pipeline, "pixel_size_um": px, "outputs": list(outputs),
                    "summary": summary, "finished": _now(), "reader": img.metadata},
                   outdir / STATUS_FILE)
        outcome.status = "ok"
    except InputError as exc:
        outcome.error = str(exc)
    except MemoryError:
        hint = ("use smaller tiles (parallel.tile_size_um) or fewer workers"
                if cfg.pipeline == "drg"
                else "skin sections are processed whole: use a pyramid level (image.level) "
                     "or crop the section")
        outcome.error = f"{path.name}: out of memory; {hint}"
    except Exception as exc:  # noqa: BLE001 - a batch never stops for one file
        if getattr(exc, "user_facing", False):
            outcome.error = f"{path.name}: {' '.join(str(exc).split())}"
        else:
            outcome.error = f"{path.name}: internal error: {type(exc).__name__}: {exc}"
            outcome.traceback = traceback.format_exc()
    finally:
        outcome.seconds = round(time.perf_counter() - t0, 3)
    return outcome


def _run_drg(ch: dict[str, np.ndarray], px: float, cfg: PipelineConfig, outdir: Path,
             path: Path) -> dict:
    from .drg import measure_drg

    params = cfg.params()
    res = measure_drg(ch["neuron"], ch["igg"], pixel_size_um=px, sgc=ch.get("sgc"),
                      nuclei=ch.get("nuclei"), params=params)
    write_labels_zarr({"neurons": res.neurons, "rings": res.rings},
                      outdir / "labels.zarr", pixel_size_um=px)
    table = res.table.copy()
    table["igg_positive"] = pd.Series([pd.NA] * len(table), dtype="boolean")
    write_table(_order(table), outdir / "neurons.csv")
    return {"n_neurons_detected": int(len(table))}


def tile_size_px(cfg: PipelineConfig, pixel_size_um: float) -> int | None:
    """Return the tile core size in pixels for an image, or None when tiling is off.

    ``parallel.tile_size_um`` sets it; by default DRG images are tiled with cores of
    16 x the largest expected neuron (``drg.max_diameter_um``), i.e. 960 µm, and an
    image no larger than one core is processed whole. Cores are rounded to 64 px.

    Parameters
    ----------
    cfg : PipelineConfig
        The configuration.
    pixel_size_um : float
        The image's pixel size.

    Returns
    -------
    int or None
        Core edge in pixels.
    """
    if cfg.pipeline != "drg":
        return None
    um = cfg.parallel.tile_size_um
    if um is None:
        um = 16 * cfg.params().max_diameter_um
    return max(64, int(round(um / pixel_size_um / 64)) * 64)


def _run_drg_tiled(img: Any, px: float, cfg: PipelineConfig, outdir: Path, tile_px: int,
                   client: Any, progress: Callable[[str, int, int], None] | None = None
                   ) -> dict:
    from .parallel import measure_drg_tiled

    idx, _ = _resolve_roles(img, cfg)
    channels = {role: img.data[i] for role, i in idx.items()}
    params = cfg.params()
    margin = None
    if cfg.parallel.overlap_um is not None:
        margin = int(round(cfg.parallel.overlap_um / px))
    elif not cfg.parallel.exact_tiles:
        margin = int(round(2 * params.max_diameter_um / px))
    table = measure_drg_tiled(channels, pixel_size_um=px, params=params, tile_px=tile_px,
                              margin_px=margin, labels_path=outdir / "labels.zarr",
                              client=client, check_margin=cfg.parallel.exact_tiles,
                              progress=progress)
    table = table.copy()
    table["igg_positive"] = pd.Series([pd.NA] * len(table), dtype="boolean")
    write_table(_order(table), outdir / "neurons.csv")
    return {"n_neurons_detected": int(len(table))}


def _run_skin(ch: dict[str, np.ndarray], px: float, cfg: PipelineConfig, outdir: Path,
              path: Path) -> dict:
    from .skin import NoEpidermisError, analyze_skin, summarize

    params = cfg.params()
    try:
        res = analyze_skin(ch["fibre"], pixel_size_um=px, membrane=ch.get("membrane"),
                           nuclei=ch.get("nuclei"), params=params)
    except NoEpidermisError as exc:
        raise InputError(path, f"no epidermis found ({exc})") from exc
    write_labels_zarr({"epidermis": res.epidermis, "fibres": res.fibres},
                      outdir / "labels.zarr", pixel_size_um=px)
    write_polylines({"dej": res.dej_um, "surface": res.surface_um}, outdir / "polylines.json")
    write_table(res.crossings, outdir / "crossings.csv")
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
            for k, v in summarize(res, params).items()}


RUNNERS: dict[str, Callable[..., dict]] = {"drg": _run_drg, "skin": _run_skin}
OUTPUTS: dict[str, tuple[str, ...]] = {
    "drg": ("labels.zarr", "neurons.csv"),
    "skin": ("labels.zarr", "polylines.json", "crossings.csv"),
}


def _order(table: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in NEURON_COLUMNS if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def _read_neurons(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    if "touches_border" in df.columns:
        df["touches_border"] = df["touches_border"].astype(bool)
    return df


def run_pipeline(
    cfg: PipelineConfig,
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    samples: str | Path | None = None,
    resume: bool = True,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
    argv: Sequence[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> RunReport:
    """Run a pipeline over files and write every output of the output contract.

    Parameters
    ----------
    cfg : PipelineConfig
        Validated configuration (:func:`histo_fms.config.load_config`).
    inputs : iterable of str or Path
        Image files and/or folders of images.
    out : str or Path
        Output folder.
    samples : str or Path, optional
        Sample sheet CSV (``image, subject, animal, group, control``).
    resume : bool
        Skip files whose outputs are complete for the same input and config.
    progress : callable, optional
        Called as ``progress(i, n, outcome)`` after each file.
    argv : sequence of str, optional
        The command line, for provenance.
    say : callable, optional
        Where to print one-line notices (the dask dashboard link).

    Returns
    -------
    RunReport
        Per-file outcomes, the threshold used and where the summaries are.
    """
    started = _now()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    files = collect_inputs(inputs)
    sheet = read_sample_sheet(samples) if samples is not None else None
    params = cfg.params()
    if cfg.pipeline == "drg" and params.segmentation_backend == "cellpose":
        from .segment._cellpose import preflight

        preflight(params.segmentation_options)
    warnings: list[str] = []
    outcomes = _process_all(files, cfg, out, resume=resume, progress=progress, say=say)

    rows_meta = {o.stem: match_sample(sheet, o.path, o.stem) for o in outcomes}
    if sheet is not None:
        listed = {o.path.name for o in outcomes} | {o.stem for o in outcomes}
        for o in outcomes:
            if rows_meta[o.stem] is None:
                warnings.append(f"{o.path.name}: not in the sample sheet")
        for img in sheet["image"]:
            if img not in listed and Path(img).name not in listed:
                warnings.append(f"sample sheet lists {img} but it is not among the inputs")

    for o in outcomes:
        if o.status != "failed" and o.summary.get("roles_skipped"):
            warnings.append(f"{o.path.name}: optional channel role(s) "
                            f"{o.summary['roles_skipped']} not in the file; skipped "
                            f"(roles used: {o.summary.get('roles_used', '')})")
    threshold = source = None
    summary_path: Path | None = None
    if cfg.pipeline == "drg":
        threshold, source, summary_path = _finish_drg(cfg, out, outcomes, rows_meta, warnings)
    else:
        summary_path = _finish_skin(out, outcomes, rows_meta)

    run = {
        "histo_fms_version": __version__,
        "command": list(argv) if argv is not None else sys.argv,
        "started": started,
        "finished": _now(),
        "versions": versions(),
        "config": cfg.resolved(),
        "config_hash": cfg.measurement_hash(),
        "samples": str(samples) if samples is not None else None,
        "threshold": {"ring_igg": threshold, "source": source} if cfg.pipeline == "drg" else None,
        "warnings": warnings,
        "files": [
            {"image": o.path.name, "path": str(o.path), "sha256": o.sha256, "status": o.status,
             "error": o.error, "seconds": o.seconds, "pixel_size_um": o.pixel_size_um,
             **{k: o.summary[k] for k in ("roles_used", "roles_skipped") if k in o.summary},
             **({"traceback": o.traceback} if o.traceback else {})}
            for o in outcomes
        ],
        "failed": [o.error for o in outcomes if o.status == "failed"],
    }
    run_json = write_json(run, out / "run.json")
    return RunReport(out=out, outcomes=outcomes, summary_path=summary_path, run_json=run_json,
                     threshold=threshold, threshold_source=source, warnings=warnings)


def _process_all(files: list[Path], cfg: PipelineConfig, out: Path, *, resume: bool,
                 progress: Callable[[int, int, FileOutcome], None] | None,
                 say: Callable[[str], None] | None) -> list[FileOutcome]:
    """Process files in this process or spread over a dask cluster (``parallel:``)."""
    from .parallel import SYNCHRONOUS, open_client

    par = cfg.parallel
    results: dict[int, FileOutcome] = {}
    large = {i for i, f in enumerate(files) if _is_large(f, cfg)}
    scheduler = par.scheduler
    if scheduler is None and not large and (len(files) <= 1 or par.workers == 1):
        scheduler = SYNCHRONOUS
    with open_client(scheduler=scheduler, workers=par.workers,
                     threads_per_worker=par.threads_per_worker, say=say) as client:
        # large images: one at a time from here, their tiles spread over the cluster
        for i in sorted(large):
            tp = None
            if say is not None:
                def tp(stage: str, done: int, total: int, _name: str = files[i].name) -> None:
                    if stage == "tiles" and (done == total or done % max(1, total // 10) == 0):
                        say(f"  {_name}: tiles {done}/{total}")
            results[i] = process_file(files[i], cfg, out, resume=resume, client=client,
                                      tile_progress=tp)
            if progress is not None:
                progress(len(results), len(files), results[i])
        small = [i for i in range(len(files)) if i not in large]
        if client is None:
            for i in small:
                results[i] = process_file(files[i], cfg, out, resume=resume)
                if progress is not None:
                    progress(len(results), len(files), results[i])
        else:
            from distributed import as_completed

            futs = {client.submit(process_file, files[i], cfg, out, resume=resume, pure=False,
                                  retries=2, key=f"histo-fms-{i}-{image_stem(files[i])}"): i
                    for i in small}
            for fut in as_completed(futs):
                i = futs[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed repeatedly
                    results[i] = FileOutcome(path=files[i], stem=image_stem(files[i]),
                                             status="failed",
                                             error=f"{files[i].name}: worker failed: "
                                                   f"{type(exc).__name__}: {exc}")
                if progress is not None:
                    progress(len(results), len(files), results[i])
    return [results[i] for i in range(len(files))]


def _is_large(path: Path, cfg: PipelineConfig) -> bool:
    """Tell whether an image will be tiled (from its header only; errors give False)."""
    try:
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        if img.pixel_size_um is None:
            return False
        t = tile_size_px(cfg, img.pixel_size_um)
        return t is not None and max(img.shape_yx) > t
    except Exception:  # noqa: BLE001 - the file's own run reports the error
        return False


def _meta_cols(meta: dict | None) -> dict:
    base = {"subject": "", "animal": "", "group": "", "control": False}
    if meta:
        base.update(meta)
    return base


def _finish_drg(cfg: PipelineConfig, out: Path, outcomes: list[FileOutcome],
                rows_meta: dict, warnings: list[str]) -> tuple[float | None, str | None, Path]:
    from .drg import calibrate_threshold, call_igg, summarize_section

    ok = [o for o in outcomes if o.status != "failed"]
    tables = {o.stem: _read_neurons(out / o.stem / "neurons.csv") for o in ok}
    threshold: float | None = None
    source: str | None = None
    if cfg.calibration.threshold is not None:
        threshold = float(cfg.calibration.threshold)
        source = "explicit (calibration.threshold)"
    else:
        controls = [o.stem for o in ok if _meta_cols(rows_meta[o.stem])["control"]]
        if controls:
            vals = []
            for s in controls:
                t = tables[s]
                if cfg.summary.exclude_border and len(t):
                    t = t[~t["touches_border"]]
                vals.append(t["ring_igg"].to_numpy(float))
            pooled = np.concatenate(vals) if vals else np.array([])
            pooled = pooled[np.isfinite(pooled)]
            if pooled.size:
                threshold = float(calibrate_threshold(pooled, cfg.calibration.percentile))
                source = (f"control sections ({len(controls)}: {', '.join(controls)}; "
                          f"{pooled.size} rings; percentile {cfg.calibration.percentile:g})")
            else:
                warnings.append("control sections have no measurable rings; no threshold")
        else:
            warnings.append("no threshold: give calibration.threshold or mark control-IgG "
                            "sections (control=true) in the sample sheet; igg_positive left empty")
    rows = []
    for o in outcomes:
        meta = _meta_cols(rows_meta.get(o.stem))
        if o.status == "failed":
            continue
        t = tables[o.stem]
        if threshold is not None:
            t = call_igg(t.drop(columns=["igg_positive"], errors="ignore"), threshold)
        write_table(_order(t), out / o.stem / "neurons.csv")
        s = summarize_section(t, exclude_border=cfg.summary.exclude_border)
        if threshold is None:
            s["n_igg_positive"] = np.nan
            s["pct_igg_positive"] = np.nan
        rows.append({"image": o.path.name, **s, "threshold": threshold,
                     "pixel_size_um": o.pixel_size_um, **_roles_cols(o), **meta})
    cols = ["image", "n_neurons", "n_igg_positive", "pct_igg_positive", "median_ring_igg",
            "threshold", "pixel_size_um", "subject", "animal", "group", "control"]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=cols)
    df = df[[c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]]
    return threshold, source, write_table(df, out / "drg_summary.csv")


def _roles_cols(o: FileOutcome) -> dict:
    """Return the ``roles_used`` / ``roles_skipped`` summary columns of one file."""
    return {k: o.summary.get(k, "") for k in ("roles_used", "roles_skipped")}


def _finish_skin(out: Path, outcomes: list[FileOutcome], rows_meta: dict) -> Path:
    rows = []
    for o in outcomes:
        if o.status == "failed":
            continue
        meta = _meta_cols(rows_meta.get(o.stem))
        meta.pop("control", None)
        rows.append({"image": o.path.name, **o.summary, "pixel_size_um": o.pixel_size_um,
                     **meta})
    cols = ["image", "n_crossings", "epidermis_length_mm", "dej_length_mm", "ienfd_per_mm",
            "dej_source", "dej_to_surface_ratio", "epidermis_thickness_um", "qc_flag",
            "roles_used", "roles_skipped", "pixel_size_um", "subject", "animal", "group"]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=cols)
    df = df[[c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]]
    return write_table(df, out / "skin_summary.csv")
