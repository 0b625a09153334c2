"""Pipeline configuration: YAML files in ``pipelines/`` validated into typed objects."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
)

from .schema import check_pixel_size

#: Channel roles each pipeline knows: (required, optional).
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # IgG is optional: a section without it gets its neurons (counts, sizes, outlines to
    # validate) and empty IgG columns, with a warning naming the file
    "drg": (("neuron",), ("igg", "sgc", "nuclei")),
    "skin": (("fibre",), ("membrane", "nuclei")),
}


class ConfigError(ValueError):
    """An invalid pipeline configuration (one line, naming the file and the key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: A finite number (an int is accepted; a string, a bool, inf or NaN is not).
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class ImageOptions(_Strict):
    """How to read each image: series/scene, pyramid level, z handling."""

    series: int = Field(0, ge=0, description="series / scene index")
    level: int = Field(0, ge=0, description="pyramid level (0 = full resolution)")
    z: Literal["max"] | int = Field("max", description="'max' projection or a plane index")
    reader: Literal["auto", "bioio"] = Field("auto", description="'bioio' forces bioio")


class Calibration(_Strict):
    """How the IgG-positive threshold on ``ring_igg`` is chosen."""

    method: Literal["robust", "percentile"] = Field(
        "robust", description="robust: unbound control population at a stated false-positive "
        "rate; percentile: a percentile of all control rings")
    false_positive_rate: float = Field(0.01, gt=0, lt=0.5, allow_inf_nan=False,
                                       description="robust: false-positive rate on unbound rings")
    percentile: float = Field(99.0, gt=0, le=100, allow_inf_nan=False,
                              description="percentile of control rings")
    threshold: float | None = Field(None, gt=0, allow_inf_nan=False,
                                    description="explicit threshold (skips controls)")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="explicit threshold per staining batch (sample "
        "sheet 'batch' or 'slide'), for batches without controls")
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples for the threshold's "
                           "uncertainty (confidence intervals)")


class Summary(_Strict):
    """Options for the per-image summary tables."""

    exclude_border: StrictBool = True


class ParallelOptions(_Strict):
    """Dask execution over files (and tiles of large images).

    ``exact_tiles`` (default) gives every tile the conservative margin that makes a tiled
    run equal the untiled one; ``false`` uses ``overlap_um`` (default 2 x the largest
    neuron) without that guarantee, for speed and memory on very large sections.
    ``memory_limit`` is each local worker's memory (dask syntax, ``auto`` = the machine's
    memory shared by the workers); a DRG section is processed whole when it fits half of
    it, else in tiles that fit it.
    """

    workers: int | None = Field(None, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    scheduler: str | None = None
    memory_limit: str | None = None

    @field_validator("memory_limit")
    @classmethod
    def _dask_bytes(cls, v: str | None) -> str | None:
        if v is None or v == "auto":
            return v
        from dask.utils import parse_bytes

        try:
            if parse_bytes(v) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f"memory_limit {v!r} is not a size such as '4GiB' or 'auto'"
                             ) from None
        return v
    tile_size_um: float | None = Field(None, gt=0, allow_inf_nan=False)
    overlap_um: float | None = Field(None, ge=0, allow_inf_nan=False)
    exact_tiles: StrictBool = True


class BrightfieldOptions(_Strict):
    """Bright-field RGB input (IHC with a chromogen): colour deconvolution into roles.

    The RGB image is turned into optical density against the slide's white level and
    separated into stains; the chromogen becomes the ``fibre`` role and the
    counterstain the ``nuclei`` role of the skin pipeline.
    """

    stains: Literal["estimate", "hdab", "hed"] | list[list[float]] = Field(
        "estimate", description="'estimate' (Macenko, per image), a named matrix, or 2-3 "
                                "OD vectors [R, G, B] (counterstain, chromogen[, residual])")
    reference: Literal["hdab", "hed"] = Field(
        "hdab", description="named stains the estimate is matched to")
    white_level: list[float] | None = Field(
        None, description="slide white level [R, G, B]; null = brightest tissue-free area")
    od_scale: float = Field(1000.0, gt=0, allow_inf_nan=False,
                            description="stain maps in OD x this")
    memory_gib: float = Field(
        1.5, gt=0, allow_inf_nan=False,
        description="whole-slide scans: memory for one region (GiB); a larger image is "
                    "processed by tissue piece, in overlapping windows along the section")
    window_overlap_um: float = Field(
        300.0, gt=0, allow_inf_nan=False,
        description="overlap of neighbouring windows (µm); crossings are counted once")

    @field_validator("white_level")
    @classmethod
    def _three_positive(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 3 or not all(x > 0 for x in v)):
            raise ValueError("white_level must be three positive numbers [R, G, B]")
        return v

    @field_validator("stains")
    @classmethod
    def _vectors(cls, v: Any) -> Any:
        if isinstance(v, list):
            if len(v) not in (2, 3) or not all(len(r) == 3 for r in v):
                raise ValueError("stains: give 2 or 3 vectors of 3 numbers [R, G, B]")
            if any(x < 0 for r in v[:2] for x in r):
                raise ValueError("stains: optical-density vectors are non-negative")
        return v


class PipelineConfig(_Strict):
    """A whole pipeline configuration, as in ``pipelines/*.yaml``."""

    pipeline: Literal["drg", "skin"]
    channels: dict[str, str | int] = Field(default_factory=dict)
    pixel_size_um: float | None = Field(None, description="µm per pixel, 0.01-50")
    image: ImageOptions = Field(default_factory=ImageOptions)
    drg: dict[str, Any] = Field(default_factory=dict)
    skin: dict[str, Any] = Field(default_factory=dict)
    calibration: Calibration = Field(default_factory=Calibration)
    summary: Summary = Field(default_factory=Summary)
    parallel: ParallelOptions = Field(default_factory=ParallelOptions)
    brightfield: BrightfieldOptions | None = None

    @field_validator("channels")
    @classmethod
    def _no_blank(cls, v: dict[str, str | int]) -> dict[str, str | int]:
        return {k: val for k, val in v.items() if val is not None and val != ""}

    @field_validator("brightfield")
    @classmethod
    def _brightfield_skin(cls, v: BrightfieldOptions | None, info: Any) -> Any:
        if v is not None and info.data.get("pipeline") != "skin":
            raise ValueError("bright-field input is supported by the skin pipeline only")
        return v

    @field_validator("pixel_size_um")
    @classmethod
    def _plausible_pixel(cls, v: float | None) -> float | None:
        return None if v is None else check_pixel_size(v, what="pixel size")

    def roles(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return the (required, optional) channel roles of this pipeline."""
        return ROLES[self.pipeline]

    def params(self) -> Any:
        """Build the typed parameter object of the pipeline (``DrgParams`` / ``SkinParams``).

        Returns
        -------
        DrgParams or SkinParams
            Frozen dataclass with the config's values over the defaults.

        Raises
        ------
        ConfigError
            Unknown keys or bad values, with the key named.
        """
        if self.pipeline == "drg":
            from .drg import DrgParams as cls
            values = self.drg
        else:
            from .skin import SkinParams as cls
            values = self.skin
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"unknown {self.pipeline}: option(s) {unknown}; known: {sorted(names)}"
            )
        try:
            typed = section_model(cls).model_validate(dict(values))
        except ValidationError as exc:
            raise ConfigError("; ".join(
                f"{self.pipeline}.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                f" (got {e['input']!r})" for e in exc.errors())) from None
        vals = {k: getattr(typed, k) for k in values}
        try:
            return cls(**vals)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.pipeline}: {exc}") from exc

    def resolved(self) -> dict[str, Any]:
        """Return the full config with every default filled in (for provenance)."""
        out = self.model_dump(mode="json")
        params = self.params()
        out[self.pipeline] = json.loads(json.dumps(dataclasses.asdict(params), default=str))
        return out

    def measurement_config(self) -> dict[str, Any]:
        """Return the part of the resolved config that changes per-file measurements.

        Calibration and summary options are left out (changing them re-calls and
        re-summarises without re-measuring), and so are the ``parallel:`` options that
        only change speed; the tiling options that change DRG results
        (``tile_size_um``, ``overlap_um``, ``exact_tiles``) are kept.
        """
        return measurement_view(self.resolved())

    def measurement_hash(self) -> str:
        """Return a hash of everything that changes per-file measurements.

        See :meth:`measurement_config`.
        """
        return hashlib.sha256(json.dumps(self.measurement_config(), sort_keys=True)
                              .encode()).hexdigest()[:16]


#: ``parallel:`` options that change DRG measurements (the tiling), not only speed.
RESULT_PARALLEL_KEYS = ("tile_size_um", "overlap_um", "exact_tiles")


def measurement_view(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """Return the measurement part of a resolved config (as in ``run.json``'s ``config``).

    Parameters
    ----------
    resolved : mapping
        :meth:`PipelineConfig.resolved` output.

    Returns
    -------
    dict
        The config without calibration, summary and speed-only parallel options.
    """
    r = {k: v for k, v in resolved.items() if k not in ("calibration", "summary", "parallel")}
    par = resolved.get("parallel") or {}
    if r.get("pipeline") == "drg":
        r["parallel"] = {k: par.get(k) for k in RESULT_PARALLEL_KEYS}
    return r


def _typed(tp: Any, name: str) -> Any:
    """Return the strict pydantic type of a parameter's annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return StrictBool
    if tp is float:
        unit_ge = {"ge": 0} if name.endswith(("_um", "_um2")) or name == "dark_level" else {}
        if "percentile" in name:
            unit_ge = {"ge": 0, "le": 100}
        return Annotated[float, Strict(), Field(allow_inf_nan=False, **unit_ge)]
    if tp is int:
        return Annotated[int, Strict()]
    if tp is str:
        return Annotated[str, Strict()]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple[_typed(args[0], name), ...]  # type: ignore[misc]
        return tuple[tuple(_typed(a, name) for a in args)]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_typed(a, name) if a is not type(None) else a  # noqa: UP007
                           for a in args)]
    return tp


@functools.cache
def section_model(cls: type) -> type[BaseModel]:
    """Return the strict pydantic model of a parameter dataclass (``drg:`` / ``skin:``).

    Booleans must be YAML booleans (``"false"`` is an error), numbers finite numbers,
    lengths (``*_um``, ``*_um2``) non-negative, percentiles within 0-100; unknown keys
    are refused. The dataclass then checks the relations between values.

    Parameters
    ----------
    cls : type
        :class:`~histo_fms.drg.DrgParams` or :class:`~histo_fms.skin.SkinParams`.

    Returns
    -------
    type of pydantic.BaseModel
        The model (fields and defaults as in the dataclass).
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        fields[f.name] = (_typed(hints[f.name], f.name), default)
    return create_model(f"{cls.__name__}Section", __config__=ConfigDict(extra="forbid"),
                        **fields)


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (lines {seen[key]} and {line})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    pipeline: str | None = None,
) -> PipelineConfig:
    """Read and validate a pipeline YAML, applying overrides.

    Parameters
    ----------
    path : str or Path, optional
        YAML file (as in ``pipelines/``). Without one, the defaults of ``pipeline``.
    overrides : mapping, optional
        Values to merge over the file: ``channels`` (merged role by role),
        ``pixel_size_um``, ``calibration.threshold`` as ``{"calibration": {...}}``, ...
    pipeline : {"drg", "skin"}, optional
        Pipeline kind when no file is given.

    Returns
    -------
    PipelineConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        Missing file, bad YAML or invalid values, in one line naming the file.
    """
    data: dict[str, Any] = {}
    name = "<defaults>"
    if path is not None:
        p = Path(path)
        name = p.name
        if not p.is_file():
            raise ConfigError(f"{name}: config file not found")
        try:
            data = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"{name}: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML ({' '.join(str(exc).split())})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: expected a mapping at the top level")
    elif pipeline is not None:
        data = {"pipeline": pipeline}
    data = _merge(data, dict(overrides or {}))
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{name}: {errs}") from None
    req, opt = cfg.roles()
    unknown = sorted(set(cfg.channels) - set(req) - set(opt))
    if unknown:
        raise ConfigError(f"{name}: unknown channel role(s) {unknown} for the {cfg.pipeline} "
                          f"pipeline; roles are {list(req) + list(opt)}")
    try:
        cfg.params()
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return cfg


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
