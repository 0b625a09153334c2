"""Run a pipeline over many files: resumable, atomic, never stopped by one bad file.

Data flow per file: reader -> pure stage functions (:mod:`histo_fms.drg` /
:mod:`histo_fms.skin`) -> atomic writers. After all files, the DRG pipeline calibrates the
IgG threshold on the control sections of the sample sheet and calls every neuron.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import __version__, schema
from ._outfolder import (
    FolderConflict,
    FolderLock,
    check_output_folder,
    config_conflict,
    damaged_output,
    file_record,
    output_records,
    read_status,
)
from .brightfield_wsi import needs_regions, run_brightfield_wsi
from .config import ConfigError, PipelineConfig
from .io import (
    InputError,
    OutputError,
    batch_column,
    check_calibration_batches,
    image_stem,
    is_image_file,
    match_sample,
    read_image,
    read_sample_sheet,
    recover_folder,
    require_pixel_size,
    resolve_channels_report,
    transaction,
    write_json,
    write_labels_zarr,
    write_polylines,
)
from .io._clipping import clip_block, clipped_from_blocks, clipping_warning, constant_from_blocks
from .io._errors import is_write_error
from .io._levels import coarse_levels_error, grey_levels, level_block
from .io._read import other_series_warning, override_mismatch_warning
from .parallel._local_read import read_local

if TYPE_CHECKING:
    from .parallel._plan import TilePlan

STATUS_FILE = "status.json"
#: Status of a section measured by an earlier run into the folder, not among the inputs.
EARLIER = "earlier"


@dataclass
class FileOutcome:
    """What happened to one input file."""

    path: Path
    stem: str
    status: str  # "ok", "resumed", "failed" or "earlier" (EARLIER)
    sha256: str | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    pixel_size_um: float | None = None
    summary: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    #: the output folder could not be written: the batch stops
    write_error: bool = False


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
    #: completed sections of earlier runs into the folder, summarised with this run's
    earlier: list[FileOutcome] = field(default_factory=list)

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
    return {role: read_local(img.data[i]) for role, i in idx.items()}


def _check_modality(img: Any, cfg: PipelineConfig) -> None:
    """One-line error for a bright-field config on fluorescence or the reverse."""
    rgb = bool(img.metadata.get("rgb"))
    if cfg.brightfield is None:
        named = {str(v).upper() for v in cfg.channels.values()}
        if rgb and not named & {"R", "G", "B"}:
            raise InputError(img.path, "an RGB bright-field image, but the config is for "
                                       "fluorescence channels: use a bright-field config "
                                       "(pipelines/skin_ienfd_brightfield.yaml), or name "
                                       "the roles' channels R, G, B")
    elif not rgb:
        raise InputError(img.path, f"not an RGB bright-field image ({len(img.channel_names)} "
                                   f"channel(s): {', '.join(map(str, img.channel_names))}), "
                                   "but the config is for bright-field: use a fluorescence "
                                   "config")


def _load_inputs(img: Any, cfg: PipelineConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Channels by role (bright-field RGB images are colour-deconvolved first).

    Returns the channels and the extra per-file summary columns (modality and, for
    bright-field, the stain vectors used).
    """
    _check_modality(img, cfg)
    if cfg.brightfield is None:
        return _load_channels(img, cfg), {"modality": "fluorescence"}
    from .stain import deconvolve, tissue_mask

    bf = cfg.brightfield
    ny, nx = img.shape_yx
    if ny < 2 or nx < 2:
        raise InputError(img.path, f"image is too small ({ny} x {nx} px)")
    rgb_arr = np.moveaxis(read_local(img.data[:3]), 0, -1)
    try:
        sep = deconvolve(rgb_arr, stains=bf.stains, white=bf.white_level,
                         reference=bf.reference, pixel_size_um=img.pixel_size_um)
    except ValueError as exc:
        raise InputError(img.path, f"colour deconvolution failed: {exc}") from exc
    chromogen = "dab" if "dab" in sep.names else sep.names[1]
    channels = {"fibre": sep.plane(chromogen) * np.float32(bf.od_scale),
                "nuclei": sep.plane("haematoxylin") * np.float32(bf.od_scale),
                # glass is near-white in every colour (not "no stain" in the stain maps)
                "tissue": tissue_mask(rgb_arr, sep.white, img.pixel_size_um)}
    prov = sep.provenance()
    img.metadata["brightfield"] = prov
    extra = {"modality": "brightfield", "stain_source": prov["stain_source"],
             "stain_vectors": json.dumps(prov["stain_vectors"], separators=(",", ":")),
             "white_level": json.dumps(prov["white_level"])}
    return channels, extra


def _stamp_ok(outdir: Path, sha: str, cfg_hash: str, outputs: Sequence[str]) -> dict | None:
    """Return the section's status when it can be resumed, else None.

    Resumable: same input and measurement config, and every output still matches the
    size and SHA-256 recorded for it.
    """
    st = read_status(outdir)
    if st is None or st.get("sha256") != sha or st.get("config_hash") != cfg_hash:
        return None
    if damaged_output(outdir, st, outputs) is not None:
        return None
    return st


def _check_levels(levels: dict[str, tuple[int, list[float]] | None], constant: list[str],
                  path: Path) -> None:
    """Refuse a file with a role channel quantised to a few grey levels."""
    problem = coarse_levels_error(levels, constant)
    if problem:
        raise InputError(path, problem)


def _check_finite(channels: dict[str, np.ndarray], path: Path) -> None:
    for role, arr in channels.items():
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise InputError(path, f"image contains NaN/inf values (channel {role!r})")


def check_tiling(cfg: PipelineConfig) -> None:
    """Refuse ``parallel:`` tile margins that cannot work, before anything is computed.

    Parameters
    ----------
    cfg : PipelineConfig
        The configuration.

    Raises
    ------
    ConfigError
        ``overlap_um: 0`` with ``exact_tiles: true`` (no context to segment a tile
        exactly), or with ``exact_tiles: false`` an overlap smaller than the largest
        neuron (``drg.max_diameter_um``), which would cut neurons at tile seams.
    """
    par = cfg.parallel
    if cfg.pipeline != "drg" or par.overlap_um is None:
        return
    if par.exact_tiles and par.overlap_um <= 0:
        raise ConfigError("parallel.overlap_um: 0 cannot work with exact_tiles: true (each "
                          "tile needs context around its core); leave overlap_um out or give "
                          "a positive value")
    dmax = float(cfg.params().max_diameter_um)
    if not par.exact_tiles and par.overlap_um < dmax:
        raise ConfigError(f"parallel.overlap_um: {par.overlap_um:g} µm is less than the largest "
                          f"neuron (drg.max_diameter_um = {dmax:g} µm), so neurons at tile "
                          f"seams would be cut; give at least {dmax:g} or use exact_tiles: true")


def process_file(path: Path, cfg: PipelineConfig, out: Path, *, resume: bool = True,
                 client: Any = None,
                 tile_progress: Callable[[str, int, int], None] | None = None,
                 memory_bytes: int | None = None) -> FileOutcome:
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
    memory_bytes : int, optional
        Memory one worker may use, for the whole-image-or-tiles decision
        (:func:`drg_plan`); default: this dask worker's memory limit, or the machine's
        memory outside a worker.

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
        recover_folder(outdir)
        # from here until the new status.json, the section is not complete
        (outdir / STATUS_FILE).unlink(missing_ok=True)
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        px = require_pixel_size(img)
        outcome.pixel_size_um = px
        plan = drg_plan(img.shape_yx, cfg, px, memory_bytes)
        _check_modality(img, cfg)
        if cfg.brightfield is not None:  # roles come from colour deconvolution
            roles_used = {"roles_used": "fibre+nuclei", "roles_skipped": ""}
        else:
            _, roles_used = _resolve_roles(img, cfg)
        if plan is not None and plan.tiled:
            summary = _run_drg_tiled(img, px, cfg, outdir, plan.tile_px, client, tile_progress)
        elif cfg.brightfield is not None and needs_regions(img.shape_yx,
                                                           cfg.brightfield.memory_gib):
            summary, extra = run_brightfield_wsi(img, px, cfg, outdir, path)
            summary.update(extra)
        else:
            channels, extra = _load_inputs(img, cfg)
            _check_finite(channels, path)
            # one pass per channel gives both its clipping and whether it is blank, by
            # the same definition as a tiled section's context pass
            blocks = {role: clip_block(a) for role, a in channels.items() if role != "tissue"}
            clipped = {role: list(clipped_from_blocks([b], channels[role].dtype))
                       for role, b in blocks.items()}
            constant = [role for role, b in blocks.items() if constant_from_blocks([b])]
            if cfg.brightfield is None:  # deconvolved stains are not the file's levels
                _check_levels({role: grey_levels([level_block(a)])
                               for role, a in channels.items() if role != "tissue"},
                              constant, path)
            summary = RUNNERS[cfg.pipeline](channels, px, cfg, outdir, path)
            summary.update(extra)
            summary["clipped"] = clipped
            if constant:
                summary["constant"] = constant
        summary.update(roles_used)
        if plan is not None:
            summary["tiled"] = plan.tiled
            summary["tiling"] = plan.reason
        notes = [str(v) for k, v in sorted(img.metadata.items()) if k.endswith("_note")]
        if notes:
            summary["axis_notes"] = notes
        if img.metadata.get("other_series"):
            summary["other_series"] = list(img.metadata["other_series"])
        file_px = img.metadata.get("file_pixel_size_um")
        if override_mismatch_warning(path.name, px, file_px):
            summary["file_pixel_size_um"] = file_px
        outcome.summary = summary
        write_json({"image": path.name, "path": str(path), "sha256": outcome.sha256,
                    "config_hash": cfg_hash, "measurement": cfg.measurement_config(),
                    "pipeline": cfg.pipeline, "pixel_size_um": px,
                    "outputs": output_records(outdir, outputs), "summary": summary,
                    "finished": _now(), "reader": img.metadata},
                   outdir / STATUS_FILE)
        outcome.status = "ok"
    except InputError as exc:
        outcome.error = str(exc)
    except OSError as exc:
        if not is_write_error(exc, out):
            outcome.error = f"{path.name}: cannot read or write: {exc}"
        else:
            outcome.write_error = True
            outcome.error = (str(exc) if isinstance(exc, OutputError)
                             else f"{outdir}: cannot write ({exc.strerror or exc})")
    except MemoryError:
        hint = ("use smaller tiles (parallel.tile_size_um) or fewer workers"
                if cfg.pipeline == "drg"
                else "lower brightfield.memory_gib (whole-slide scans are processed in "
                     "windows)" if cfg.brightfield is not None
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
    res = measure_drg(ch["neuron"], ch.get("igg"), pixel_size_um=px, sgc=ch.get("sgc"),
                      nuclei=ch.get("nuclei"), params=params)
    write_labels_zarr({"neurons": res.neurons, "rings": res.rings},
                      outdir / "labels.zarr", pixel_size_um=px)
    table = res.table.copy()
    table["igg_positive"] = pd.Series([pd.NA] * len(table), dtype="boolean")
    schema.write_table(table, outdir / "neurons.csv", "neurons")
    return {"n_neurons_detected": int(len(table)), **_qc_summary(res.qc_flag, res.context)}


def _qc_summary(flag: str, context: Any) -> dict:
    """Return the ``qc_flag`` of a DRG file's summary, and the SGC signal ratio it rests on."""
    ratio = context.sgc_signal_ratio
    return {"qc_flag": flag, **({"sgc_signal_ratio": ratio} if ratio is not None else {})}


#: what a run did without a channel role that showed no structure above its noise
_NO_SIGNAL_DONE = {
    "sgc": "neurons were segmented and rings measured without it; sgc_coverage is left "
           "empty",
    "membrane": "the DEJ was placed without it (see dej_source)",
    "nuclei": "the epidermis was found without it (see dej_source)",
}


def no_signal_warnings(name: str, summary: dict) -> list[str]:
    """Return the warning lines of a file's ``*_no_signal`` quality flags."""
    from ._numerics._noise import no_signal_message

    out = []
    blank = summary.get("constant") or []  # a constant channel has its own warning
    for token in str(summary.get("qc_flag") or "").split(";"):
        role = token.removesuffix("_no_signal")
        if role != token and role not in blank:
            out.append(f"{name}: {no_signal_message(role, summary.get(f'{role}_signal_ratio'))}"
                       f" It was left out: {_NO_SIGNAL_DONE.get(role, 'not used')}")
    return out


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


def drg_plan(shape_yx: tuple[int, int], cfg: PipelineConfig, pixel_size_um: float,
             memory_bytes: int | None = None) -> TilePlan | None:
    """Decide whether a DRG section is processed whole or in tiles (None: not DRG).

    With ``parallel.tile_size_um`` set, a section larger than one tile is tiled. By
    default the section is processed whole when its estimated peak memory fits the
    budget (half of one worker's memory, ``parallel.memory_limit``), else tiled with the
    largest cores that fit it (at least the default 16 x ``drg.max_diameter_um``); see
    :func:`histo_fms.parallel._plan.plan_drg`.

    Parameters
    ----------
    shape_yx : tuple of int
        Section shape.
    cfg : PipelineConfig
        The configuration.
    pixel_size_um : float
        The section's pixel size.
    memory_bytes : int, optional
        Memory one worker may use (default: this dask worker's limit, else
        ``parallel.memory_limit`` over the local workers).

    Returns
    -------
    TilePlan or None
        The decision and its reason.
    """
    from .drg._context import alignment_px
    from .parallel._plan import current_worker_memory, plan_drg

    if cfg.pipeline != "drg":
        return None
    params = cfg.params()
    px = float(pixel_size_um)
    if memory_bytes is None:
        memory_bytes = current_worker_memory() or local_worker_memory(cfg)
    explicit = tile_size_px(cfg, px) if cfg.parallel.tile_size_um is not None else None
    default_core = tile_size_px(cfg, px) or 64
    return plan_drg(shape_yx, memory_bytes=memory_bytes, margin_px=drg_margin_px(cfg, px),
                    align_px=alignment_px(params, px), tile_px=explicit,
                    min_tile_px=default_core)


def local_worker_memory(cfg: PipelineConfig) -> int:
    """Memory of one local worker: ``parallel.memory_limit`` (``auto``: RAM / workers)."""
    from .parallel import default_workers
    from .parallel._plan import parse_memory

    return parse_memory(getattr(cfg.parallel, "memory_limit", None),
                        cfg.parallel.workers or default_workers())


def drg_margin_px(cfg: PipelineConfig, pixel_size_um: float) -> int:
    """Tile margin (px) of a tiled DRG run: the exact passes' larger one, or ``overlap_um``."""
    from .drg._context import exact_tile_margins_px

    params = cfg.params()
    px = float(pixel_size_um)
    if cfg.parallel.overlap_um is not None:
        return int(round(cfg.parallel.overlap_um / px))
    if not cfg.parallel.exact_tiles:
        return int(round(2 * params.max_diameter_um / px))
    return max(exact_tile_margins_px(params, px))


def _run_drg_tiled(img: Any, px: float, cfg: PipelineConfig, outdir: Path, tile_px: int,
                   client: Any, progress: Callable[[str, int, int], None] | None = None
                   ) -> dict:
    from .drg._context import section_flags
    from .parallel import context_and_clipping_tiled, measure_drg_tiled

    idx, _ = _resolve_roles(img, cfg)
    channels = {role: img.data[i] for role, i in idx.items()}
    params = cfg.params()
    for role, ch in channels.items():
        if np.dtype(ch.dtype).kind in "fc" and not bool(da_isfinite_all(ch)):
            raise InputError(img.path, f"image contains NaN/inf values (channel {role!r})")
    margin = None
    if cfg.parallel.overlap_um is not None or not cfg.parallel.exact_tiles:
        margin = drg_margin_px(cfg, px)
    say = progress or (lambda *_: None)
    # the context pass reads every pixel once: it also gives each channel's clipping
    say("context", 0, 1)
    context, clipped, constant, levels = context_and_clipping_tiled(
        channels, pixel_size_um=px, params=params, tile_px=tile_px, client=client)
    say("context", 1, 1)
    _check_levels(levels, constant, img.path)
    table = measure_drg_tiled(channels, pixel_size_um=px, params=params, tile_px=tile_px,
                              margin_px=margin, labels_path=outdir / "labels.zarr",
                              client=client, check_margin=cfg.parallel.exact_tiles,
                              progress=progress, context=context)
    table = table.copy()
    table["igg_positive"] = pd.Series([pd.NA] * len(table), dtype="boolean")
    schema.write_table(table, outdir / "neurons.csv", "neurons")
    flag = section_flags(context, channels, params)
    return {"n_neurons_detected": int(len(table)),
            "clipped": {role: list(clipped[role]) for role in channels},
            **({"constant": constant} if constant else {}),
            **_qc_summary(flag, context)}


def da_isfinite_all(arr: Any) -> bool:
    """Tell whether a lazy (dask) channel holds only finite values (one pass over it)."""
    import dask.array as da

    return bool(da.isfinite(arr).all().compute())


def _run_skin(ch: dict[str, np.ndarray], px: float, cfg: PipelineConfig, outdir: Path,
              path: Path) -> dict:
    from .skin import NoEpidermisError, analyze_skin, summarize

    if "tissue" in ch:  # bright-field: each tissue piece separated by glass on its own
        from .brightfield_wsi import run_brightfield_pieces

        return run_brightfield_pieces(ch, px, cfg, outdir, path)
    params = cfg.params()
    try:
        res = analyze_skin(ch["fibre"], pixel_size_um=px, membrane=ch.get("membrane"),
                           nuclei=ch.get("nuclei"), params=params)
    except NoEpidermisError as exc:
        raise InputError(path, f"no epidermis found ({exc})") from exc
    write_labels_zarr({"epidermis": res.epidermis, "fibres": res.fibres},
                      outdir / "labels.zarr", pixel_size_um=px)
    write_polylines({"dej": res.dej_um, "surface": res.surface_um}, outdir / "polylines.json")
    schema.write_table(res.crossings, outdir / "crossings.csv", "crossings")
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
            for k, v in summarize(res, params).items()}


RUNNERS: dict[str, Callable[..., dict]] = {"drg": _run_drg, "skin": _run_skin}
OUTPUTS: dict[str, tuple[str, ...]] = {
    "drg": ("labels.zarr", "neurons.csv"),
    "skin": ("labels.zarr", "polylines.json", "crossings.csv"),
}


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
    overwrite: bool = False,
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
        Where to print one-line notices (the dask dashboard link, a stale lock).
    overwrite : bool
        Run even if the folder holds results of a different measurement config
        (its sections among the inputs are measured again; the others are left out
        of the summary).

    Returns
    -------
    RunReport
        Per-file outcomes, the threshold used and where the summaries are.

    Raises
    ------
    OutputError
        The output folder is a file or not writable (checked before computing), a write
        failed mid-batch (what was complete is kept), or another live run holds the
        folder (:class:`histo_fms._outfolder.FolderBusy`).
    FolderConflict
        The folder holds results of a different measurement config and not
        ``overwrite``.

    Notes
    -----
    One rule for a folder: its summary, ``run.json`` and every section's calls always
    cover every completed section in it (those of earlier runs with the same
    measurement config included, listed with status ``"earlier"``), called with this
    run's threshold, and are written as one commit.
    """
    started = _now()
    out = check_output_folder(out)
    files = collect_inputs(inputs)
    sheet = read_sample_sheet(samples) if samples is not None else None
    if cfg.pipeline == "drg":
        check_calibration_batches(sheet, samples, cfg.calibration.thresholds,
                                  cfg.calibration.threshold)
    params = cfg.params()
    check_tiling(cfg)
    if cfg.pipeline == "drg" and params.segmentation_backend == "cellpose":
        from .segment._cellpose import preflight

        preflight(params.segmentation_options)
    if cfg.pipeline == "drg" and params.segmentation_backend == "pixel_classifier":
        from .segment._pixel_classifier import preflight_model

        preflight_model(params.segmentation_options, roles=["neuron", *cfg.channels])
    with FolderLock(out, say=say):
        for d in [out, *sorted(p for p in out.iterdir()
                               if p.is_dir() and not p.name.startswith("."))]:
            recover_folder(d)
        if not overwrite:
            conflict = config_conflict(out, cfg.measurement_hash(), cfg.measurement_config())
            if conflict is not None:
                raise FolderConflict(f"{out}: {conflict}")
        warnings: list[str] = []
        outcomes = _process_all(files, cfg, out, resume=resume, progress=progress, say=say)
        earlier = _earlier_sections(out, cfg, outcomes, warnings)
        report = _finish(cfg, out, outcomes, earlier, sheet, warnings, started=started,
                         samples=samples, argv=argv)
    return report


def _earlier_sections(out: Path, cfg: PipelineConfig, outcomes: list[FileOutcome],
                      warnings: list[str]) -> list[FileOutcome]:
    """Completed sections of the folder that are not among this run's inputs.

    Only sections measured with this run's measurement config whose outputs still match
    their recorded hashes count; the others are named in ``warnings``.
    """
    current = {o.stem for o in outcomes}
    cfg_hash = cfg.measurement_hash()
    found: list[FileOutcome] = []
    other_config: list[str] = []
    for d in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name in current:
            continue
        st = read_status(d)
        if st is None:
            continue
        if st.get("config_hash") != cfg_hash or st.get("pipeline") != cfg.pipeline:
            other_config.append(d.name)
            continue
        bad = damaged_output(d, st, OUTPUTS[cfg.pipeline])
        if bad is not None:
            warnings.append(f"{d.name}: measured by an earlier run but {bad}; left out of the "
                            f"summary (re-run with its image to measure it again)")
            continue
        path = Path(st.get("path") or st.get("image") or d.name)
        found.append(FileOutcome(path=path, stem=d.name, status=EARLIER,
                                 sha256=st.get("sha256"), pixel_size_um=st.get("pixel_size_um"),
                                 summary=st.get("summary", {}),
                                 details={"sample": st.get("sample")}))
    if other_config:
        warnings.append(f"{len(other_config)} section(s) measured with another config are left "
                        f"out of the summary: {', '.join(other_config)}")
    return found


def _finish(cfg: PipelineConfig, out: Path, outcomes: list[FileOutcome],
            earlier: list[FileOutcome], sheet: pd.DataFrame | None, warnings: list[str], *,
            started: str, samples: str | Path | None, argv: Sequence[str] | None) -> RunReport:
    """Call, summarise and record every completed section of the folder as one commit.

    Every section's ``neurons.csv`` and ``status.json``, the summary table and
    ``run.json`` are staged and renamed into place together (:func:`histo_fms.io.
    transaction`): a run killed here leaves the folder as it was, or, once the commit
    journal is written, as this run leaves it (the next run rolls it forward).
    """
    every = outcomes + earlier
    if earlier:  # the folder's sections in name order, whichever run measured them
        every = sorted(every, key=lambda o: o.stem)
    rows_meta = {o.stem: match_sample(sheet, o.path, o.stem) for o in every}
    for o in earlier:  # not in this run's sheet: keep what its earlier run recorded
        if rows_meta[o.stem] is None and o.details.get("sample"):
            rows_meta[o.stem] = o.details["sample"]
    if sheet is not None:
        listed = {o.path.name for o in every} | {o.stem for o in every}
        for o in outcomes:
            if rows_meta[o.stem] is None:
                warnings.append(f"{o.path.name}: not in the sample sheet")
        for img in sheet["image"]:
            if img not in listed and Path(img).name not in listed:
                warnings.append(f"sample sheet lists {img} but it is not among the inputs")

    for o in outcomes:
        line = (clipping_warning(o.path.name, o.summary.get("clipped") or {})
                if o.status != "failed" else None)
        if line:
            warnings.append(line)
        if o.status != "failed" and o.summary.get("axis_notes"):
            warnings.append(f"{o.path.name}: {'; '.join(o.summary['axis_notes'])} (the rest "
                            "of the file was not measured)")
        if o.status != "failed":
            warnings.extend(no_signal_warnings(o.path.name, o.summary))
        if o.status != "failed" and o.summary.get("constant"):
            warnings.append(f"{o.path.name}: channel role(s) {', '.join(o.summary['constant'])} "
                            "hold one value everywhere (a blank channel: wrong channel, or no "
                            "signal recorded); nothing measured on them is a finding")
        line = (other_series_warning(o.path.name, cfg.image.series,
                                     o.summary.get("other_series"))
                if o.status != "failed" else None)
        if line:
            warnings.append(line)
        line = (override_mismatch_warning(o.path.name, o.pixel_size_um,
                                          o.summary.get("file_pixel_size_um"))
                if o.status != "failed" and o.pixel_size_um else None)
        if line:
            warnings.append(line)
        if o.status != "failed" and o.summary.get("roles_skipped"):
            line = (f"{o.path.name}: optional channel role(s) "
                    f"{o.summary['roles_skipped']} not in the file; skipped "
                    f"(roles used: {o.summary.get('roles_used', '')})")
            if cfg.pipeline == "drg" and not _measured_igg(o):
                line += ("; without IgG the neurons are segmented and measured but ring "
                         "IgG is not: its columns and the section's % IgG+ are left empty")
            warnings.append(line)
    threshold = source = calibration = None
    summary_path: Path | None = None
    with transaction(out) as tx:
        if cfg.pipeline == "drg":
            threshold, source, summary_path, calibration = _finish_drg(
                cfg, out, every, rows_meta, warnings, batch_column(sheet))
        else:
            summary_path = _finish_skin(out, every, rows_meta)
        called = _now()
        for o in every:
            if o.status == "failed":
                continue
            d = out / o.stem
            st = read_status(d) or {}
            rec = dict(st.get("outputs") or {})
            for name in OUTPUTS[cfg.pipeline]:
                if tx.current(d / name) != d / name:  # rewritten by the calling step
                    rec[name] = file_record(tx.current(d / name))
            st["outputs"] = rec
            st["sample"] = rows_meta.get(o.stem)
            if cfg.pipeline == "drg":
                st["calls"] = {"threshold": threshold, "source": source, "called": called}
            write_json(st, d / STATUS_FILE)
        run = {
            "histo_fms_version": __version__,
            "command": list(argv) if argv is not None else sys.argv,
            "started": started,
            "finished": _now(),
            "versions": versions(),
            "config": cfg.resolved(),
            "config_hash": cfg.measurement_hash(),
            "samples": str(samples) if samples is not None else None,
            "threshold": ({"ring_igg": threshold, "source": source,
                           "calibration": calibration}
                          if cfg.pipeline == "drg" else None),
            "warnings": warnings,
            "files": [
                {"image": o.path.name, "path": str(o.path), "sha256": o.sha256,
                 "status": o.status, "error": o.error, "seconds": o.seconds,
                 "pixel_size_um": o.pixel_size_um,
                 **{k: o.summary[k] for k in ("roles_used", "roles_skipped", "tiled", "tiling")
                    if k in o.summary},
                 **({"traceback": o.traceback} if o.traceback else {})}
                for o in every
            ],
            "failed": [o.error for o in outcomes if o.status == "failed"],
        }
        run_json = write_json(run, out / "run.json")
    return RunReport(out=out, outcomes=outcomes, summary_path=summary_path, run_json=run_json,
                     threshold=threshold, threshold_source=source, warnings=warnings,
                     earlier=earlier)


def _process_all(files: list[Path], cfg: PipelineConfig, out: Path, *, resume: bool,
                 progress: Callable[[int, int, FileOutcome], None] | None,
                 say: Callable[[str], None] | None) -> list[FileOutcome]:
    """Process files in this process or spread over a dask cluster (``parallel:``)."""
    from .parallel import SYNCHRONOUS, default_workers, open_client

    par = cfg.parallel
    results: dict[int, FileOutcome] = {}
    # the whole-image-or-tiles decision uses one worker's memory: the local workers'
    # share of this machine, or (external scheduler) the cluster's smallest worker
    mem = local_worker_memory(cfg)
    heads = {i: _header(f, cfg) for i, f in enumerate(files)}
    large = {i for i, h in heads.items() if _tiled(h, cfg, mem)}
    scheduler = par.scheduler
    if scheduler is None and not large and (len(files) <= 1 or par.workers == 1):
        scheduler = SYNCHRONOUS
    elif scheduler is None and not large and par.workers is None:
        n = default_workers()
        work = SECONDS_PER_PIXEL * sum(h[0][0] * h[0][1] for h in heads.values() if h)
        if n <= 1 or work * (1 - 1 / n) < CLUSTER_START_SECONDS:
            scheduler = SYNCHRONOUS
            if say is not None:
                say(f"small batch (~{work:.0f} s of work): processed in this process; "
                    f"starting {n} local workers would cost more than it saves")
    with open_client(scheduler=scheduler, workers=par.workers,
                     threads_per_worker=par.threads_per_worker,
                     memory_limit=getattr(par, "memory_limit", None) or "auto",
                     say=say) as client:
        if par.scheduler not in (None, SYNCHRONOUS) and client is not None:
            from .parallel._plan import cluster_worker_memory

            mem = cluster_worker_memory(client) or mem
            large = {i for i, h in heads.items() if _tiled(h, cfg, mem)}
        # large images: one at a time from here, their tiles spread over the cluster
        for i in sorted(large):
            if say is not None:
                plan = drg_plan(heads[i][0], cfg, heads[i][1], mem)
                say(f"{files[i].name}: {plan.reason if plan else 'tiled'}")
            tp = None
            if say is not None:
                def tp(stage: str, done: int, total: int, _name: str = files[i].name) -> None:
                    if stage == "tiles" and (done == total or done % max(1, total // 10) == 0):
                        say(f"  {_name}: tiles {done}/{total}")
            results[i] = process_file(files[i], cfg, out, resume=resume, client=client,
                                      tile_progress=tp, memory_bytes=mem)
            _stop_on_write_error(results, files, out)
            if progress is not None:
                progress(len(results), len(files), results[i])
        small = [i for i in range(len(files)) if i not in large]
        if client is None:
            for i in small:
                results[i] = process_file(files[i], cfg, out, resume=resume, memory_bytes=mem)
                _stop_on_write_error(results, files, out)
                if progress is not None:
                    progress(len(results), len(files), results[i])
        else:
            from distributed import as_completed

            futs = {client.submit(process_file, files[i], cfg, out, resume=resume, pure=False,
                                  memory_bytes=mem, retries=2,
                                  key=f"histo-fms-{i}-{image_stem(files[i])}"): i
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
                if results[i].write_error:
                    client.cancel(list(futs))
                _stop_on_write_error(results, files, out)
                if progress is not None:
                    progress(len(results), len(files), results[i])
    return [results[i] for i in range(len(files))]


def _stop_on_write_error(results: dict[int, FileOutcome], files: list[Path], out: Path) -> None:
    """Stop the batch when the output folder cannot take a write (disk full, ...)."""
    bad = next((o for o in results.values() if o.write_error), None)
    if bad is None:
        return
    n_done = sum(o.status in ("ok", "resumed") for o in results.values())
    raise OutputError(out, f"{bad.error.removeprefix(str(out) + '/')}; batch stopped, "
                           f"{n_done} of {len(files)} image(s) completed and kept; free space "
                           f"(or fix permissions) and re-run the same command to resume")


#: single-core seconds per pixel of a section (DRG, 4 channels, 2026 x86 core; 24 x
#: 1536² in ``benchmarks/bench_drg_batch.py``: ~5 s per section): only to tell a batch too
#: small for a local cluster
SECONDS_PER_PIXEL = 2.2e-6
#: wall time a local cluster needs before its workers compute (start-up, imports)
CLUSTER_START_SECONDS = 6.0


def _header(path: Path, cfg: PipelineConfig) -> tuple[tuple[int, int], float | None] | None:
    """Shape and pixel size of an image from its header (None if it cannot be read)."""
    try:
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        return tuple(int(v) for v in img.shape_yx), img.pixel_size_um
    except Exception:  # noqa: BLE001 - the file's own run reports the error
        return None


def _tiled(head: tuple[tuple[int, int], float | None] | None, cfg: PipelineConfig,
           memory_bytes: int) -> bool:
    """Whether a section with this header is processed in tiles."""
    if head is None or head[1] is None or cfg.pipeline != "drg":
        return False
    try:
        plan = drg_plan(head[0], cfg, head[1], memory_bytes)
    except Exception:  # noqa: BLE001 - the file's own run reports the error
        return False
    return plan is not None and plan.tiled


def _is_large(path: Path, cfg: PipelineConfig, memory_bytes: int | None = None) -> bool:
    """Tell whether an image will be tiled (from its header only; errors give False)."""
    if cfg.pipeline != "drg":
        return False
    try:
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=cfg.pixel_size_um, reader=cfg.image.reader)
        if img.pixel_size_um is None:
            return False
        plan = drg_plan(img.shape_yx, cfg, img.pixel_size_um, memory_bytes)
        return plan is not None and plan.tiled
    except Exception:  # noqa: BLE001 - the file's own run reports the error
        return False


def _meta_cols(meta: dict | None) -> dict:
    base = {"subject": "", "animal": "", "group": "", "control": False}
    if meta:
        base.update(meta)
    return base


def _control_values(cfg: PipelineConfig, tables: dict, stems: list[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Finite ``ring_igg`` of the control sections' (inner) neurons, with their section."""
    vals, secs = [], []
    for s in stems:
        t = tables[s]
        if cfg.summary.exclude_border and len(t):
            t = t[~t["touches_border"]]
        v = t["ring_igg"].to_numpy(float)
        v = v[np.isfinite(v)]
        vals.append(v)
        secs.append(np.full(v.size, s, dtype=object))
    if not vals:
        return np.zeros(0), np.zeros(0, dtype=object)
    return np.concatenate(vals), np.concatenate(secs)


def _calibrate_batch(cfg: PipelineConfig, tables: dict, controls: list[str], batch: str,
                     warnings: list[str]) -> tuple[float | None, str | None, dict | None,
                                                   np.ndarray]:
    """Threshold of one staining batch: (threshold, source, run.json record, bootstrap)."""
    from .drg import calibrate

    c = cfg.calibration
    where = f"batch {batch!r}: " if batch else ""
    if c.threshold is not None:
        return (float(c.threshold), "explicit (calibration.threshold)",
                {"method": "explicit", "threshold": float(c.threshold)}, np.zeros(0))
    if batch and batch in {str(k) for k in c.thresholds}:
        thr = float({str(k): v for k, v in c.thresholds.items()}[batch])
        return (thr, f"explicit (calibration.thresholds[{batch}])",
                {"method": "explicit", "threshold": thr}, np.zeros(0))
    if not controls:
        warnings.append(f"{where}no threshold: give calibration.threshold or mark control-IgG "
                        "sections (control=true) in the sample sheet; igg_positive left empty")
        return None, None, None, np.zeros(0)
    vals, secs = _control_values(cfg, tables, controls)
    if not vals.size:
        warnings.append(f"{where}control sections have no measurable rings; no threshold")
        return None, None, None, np.zeros(0)
    cal = calibrate(vals, sections=secs, method=c.method,
                    false_positive_rate=c.false_positive_rate, percentile=c.percentile,
                    n_bootstrap=c.bootstrap)
    warnings.extend(where + w for w in cal.warnings)
    rule = (f"robust, false-positive rate {c.false_positive_rate:g} on unbound rings"
            if c.method == "robust" else f"percentile {c.percentile:g}")
    # the sections whose rings it was calibrated on (a control without IgG gives none)
    used = [s for s in controls if s in set(secs.tolist())]
    source = (f"{where}control sections ({len(used)}: {', '.join(used)}; "
              f"{vals.size} rings; {rule})")
    rec = {**cal.as_dict(), "control_sections": used}
    return cal.threshold, source, rec, cal.bootstrap


#: share of a section's neurons with an unmeasurable ring IgG above which a run warns
UNMEASURED_WARN_FRACTION = 0.1


def _unmeasured_warning(o: FileOutcome, t: pd.DataFrame, exclude_border: bool) -> str | None:
    """Return a warning line when many of a section's rings have no IgG value, or None."""
    if not _measured_igg(o) or not len(t):
        return None
    inner = t[~t["touches_border"].astype(bool)] if exclude_border else t
    n = len(inner)
    bad = int((~np.isfinite(inner["ring_igg"].to_numpy(float))).sum())
    if n == 0 or bad <= UNMEASURED_WARN_FRACTION * n:
        return None
    if bad == n:
        return (f"{o.path.name}: ring IgG could not be measured on any of its {n} neurons "
                "(a blank or constant IgG channel? check the igg role's channel): its "
                "% IgG+ is left empty")
    return (f"{o.path.name}: ring IgG could not be measured on {bad} of its {n} neurons "
            "(no ring pixels left, or no background); they are left uncalled, out of "
            "its % IgG+")


def _measured_igg(o: FileOutcome) -> bool:
    """Whether a DRG section's IgG was measured (False: its file has no IgG channel)."""
    used = o.summary.get("roles_used")
    return used is None or "igg" in str(used).split("+")


def _finish_drg(cfg: PipelineConfig, out: Path, outcomes: list[FileOutcome],
                rows_meta: dict, warnings: list[str], batch_col: str | None = None
                ) -> tuple[float | None, str | None, Path, dict]:
    """Calibrate per staining batch, call every neuron and write ``drg_summary.csv``.

    Returns the threshold and its source (of the only batch; None with several), the
    summary's path and the calibration record of each batch (for ``run.json``).
    """
    from .drg import call_igg, percent_interval, summarize_section

    ok = [o for o in outcomes if o.status != "failed"]
    tables = {o.stem: schema.read_table(out / o.stem / "neurons.csv", "neurons")
              for o in ok}

    def batch_of(stem: str) -> str:
        meta = rows_meta.get(stem) or {}
        return str(meta.get(batch_col, "") or "") if batch_col else ""

    batches: dict[str, list[str]] = {}
    for o in ok:
        batches.setdefault(batch_of(o.stem), []).append(o.stem)
    per_batch: dict[str, tuple] = {}
    for b, stems in batches.items():
        controls = [s for s in stems if _meta_cols(rows_meta[s])["control"]]
        per_batch[b] = _calibrate_batch(cfg, tables, controls, b, warnings)
    rows = []
    for o in outcomes:
        meta = _meta_cols(rows_meta.get(o.stem))
        if o.status == "failed":
            continue
        threshold, _, rec, boot = per_batch[batch_of(o.stem)]
        if not _measured_igg(o):  # no IgG channel: nothing to call (not 0 % positive)
            threshold = None
        t = tables[o.stem]
        if threshold is not None:
            t = call_igg(t.drop(columns=["igg_positive"], errors="ignore"), threshold)
        schema.write_table(t, out / o.stem / "neurons.csv", "neurons")
        s = summarize_section(t if threshold is not None else t.drop(
            columns=["igg_positive"], errors="ignore"), exclude_border=cfg.summary.exclude_border)
        line = _unmeasured_warning(o, t, cfg.summary.exclude_border)
        if line:
            warnings.append(line)
        lo = hi = np.nan
        if threshold is None:
            s["n_called"] = np.nan
            s["n_igg_positive"] = np.nan
            s["pct_igg_positive"] = np.nan
        else:
            inner = t[~t["touches_border"]] if cfg.summary.exclude_border and len(t) else t
            lo, hi = percent_interval(inner["ring_igg"].to_numpy(float), threshold, boot)
        rows.append({"image": o.path.name, **s, "pct_ci_low": lo, "pct_ci_high": hi,
                     "threshold": threshold,
                     "calibration": rec["method"] if rec else "",
                     "qc_flag": o.summary.get("qc_flag", ""),
                     "pixel_size_um": o.pixel_size_um, **_roles_cols(o), **meta})
    cols = ["image", "n_neurons", "n_called", "n_igg_positive", "pct_igg_positive", "pct_ci_low",
            "pct_ci_high", "median_ring_igg", "threshold", "calibration", "qc_flag",
            "pixel_size_um", "subject", "animal", "group", "control"]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=cols)
    df = df[[c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]]
    calibration = {b: {**(v[2] or {"method": None, "threshold": None}), "source": v[1]}
                   for b, v in per_batch.items()}
    if len(per_batch) == 1:
        threshold, source = next(iter(per_batch.values()))[:2]
    else:
        threshold, source = None, "per staining batch (" + "; ".join(
            f"{b}: {v[0]:.3f}" if v[0] is not None else f"{b}: none"
            for b, v in per_batch.items()) + ")"
    return (threshold, source, schema.write_table(df, out / "drg_summary.csv", "drg_summary"),
            calibration)


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
    return schema.write_table(df, out / "skin_summary.csv", "skin_summary")
