"""Pipeline configuration: YAML files in ``pipelines/`` validated into typed objects."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: Channel roles each pipeline knows: (required, optional).
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "drg": (("neuron", "igg"), ("sgc", "nuclei")),
    "skin": (("fibre",), ("membrane", "nuclei")),
}


class ConfigError(ValueError):
    """An invalid pipeline configuration (one line, naming the file and the key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    false_positive_rate: float = Field(0.01, gt=0, lt=0.5,
                                       description="robust: false-positive rate on unbound rings")
    percentile: float = Field(99.0, gt=0, le=100, description="percentile of control rings")
    threshold: float | None = Field(None, gt=0, description="explicit threshold (skips controls)")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="explicit threshold per staining batch (sample "
        "sheet 'batch' or 'slide'), for batches without controls")
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples for the threshold's "
                           "uncertainty (confidence intervals)")


class Summary(_Strict):
    """Options for the per-image summary tables."""

    exclude_border: bool = True


class ParallelOptions(_Strict):
    """Dask execution over files (and tiles of large images).

    ``exact_tiles`` (default) gives every tile the conservative margin that makes a tiled
    run equal the untiled one; ``false`` uses ``overlap_um`` (default 2 x the largest
    neuron) without that guarantee, for speed and memory on very large sections.
    """

    workers: int | None = Field(None, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    scheduler: str | None = None
    tile_size_um: float | None = Field(None, gt=0)
    overlap_um: float | None = Field(None, ge=0)
    exact_tiles: bool = True


class PipelineConfig(_Strict):
    """A whole pipeline configuration, as in ``pipelines/*.yaml``."""

    pipeline: Literal["drg", "skin"]
    channels: dict[str, str | int] = Field(default_factory=dict)
    pixel_size_um: float | None = Field(None, gt=0)
    image: ImageOptions = Field(default_factory=ImageOptions)
    drg: dict[str, Any] = Field(default_factory=dict)
    skin: dict[str, Any] = Field(default_factory=dict)
    calibration: Calibration = Field(default_factory=Calibration)
    summary: Summary = Field(default_factory=Summary)
    parallel: ParallelOptions = Field(default_factory=ParallelOptions)

    @field_validator("channels")
    @classmethod
    def _no_blank(cls, v: dict[str, str | int]) -> dict[str, str | int]:
        return {k: val for k, val in v.items() if val is not None and val != ""}

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
        vals = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
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

    def measurement_hash(self) -> str:
        """Return a hash of everything that changes per-file measurements.

        Calibration and summary options are excluded: changing them re-calls and
        re-summarises without re-measuring.
        """
        r = self.resolved()
        for k in ("calibration", "summary", "parallel"):
            r.pop(k, None)
        return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]


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
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
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
