"""Typed job configs, one YAML file format, flags override the file.

A config file may hold an ``extract:`` and a ``train:`` section (or just the fields of one).
Every job prints its effective config and saves it beside its outputs, so a run can be repeated
from what it left behind.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


@dataclass
class ExtractConfig:
    input: str = ""  # folder or glob of videos
    store: str = ""  # path or fsspec URL of the Zarr store to create or resume
    encoders: str = "merv"  # "merv" (full size), "tiny", or a comma list of registered names
    shard_size: int = 32  # videos per Zarr shard = unit of work and of writing
    batch_size: int = 4  # videos per encoder forward
    encoder_actors: int = 1  # actors, each holding every encoder
    encoder_cpus: float = 1.0  # CPUs reserved per encoder actor
    encoder_threads: int = 0  # torch threads per actor; 0 = encoder_cpus. More than reserved
    # lets a CPU-only actor use the cores that light decoding leaves idle.
    encoder_gpus: float | None = None  # GPUs per actor (fractional ok); None = 1 if CUDA else 0
    decode_workers: int = 0  # concurrent decode tasks; 0 = let Ray use the free CPUs
    decode_memory_mb: int = 512  # memory reserved per decode task (bounds frames in flight)
    dtype: str = "auto"  # encoder compute dtype: auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16
    weights: dict[str, str] = field(default_factory=dict)  # encoder name -> local weights path
    random_weights: bool = False  # benchmarks only: full-size architectures, random weights
    # encoders declared here (EncoderSpec fields; see encoders/custom.py), usable in `encoders`
    custom_encoders: list[dict] = field(default_factory=list)
    retry_failed: bool = False  # recompute rows that failed in earlier runs
    overwrite_encoders: list[str] = field(default_factory=list)  # re-extract these (spec changed)
    all_files: bool = False  # list files without a video extension too (they fail with a reason)
    video_root: str = ""  # folder or URL that relative manifest paths are under (default: its folder)
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for input URLs
    time_steps: int = 16
    grid: int = 8
    num_frames: int = 32
    address: str | None = None  # Ray cluster address; None = local in-process Ray
    progress: bool = True


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        annotation = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    try:
        if annotation is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation in (int, float, str, bool):
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return annotation(value)
        if origin is dict:
            if isinstance(value, str):  # "a=/x,b=/y" from a flag
                value = dict(kv.split("=", 1) for kv in value.split(",") if kv)
            return {str(k): str(v) for k, v in dict(value).items()}
        if origin is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            return [_coerce(v, args[0], where) for v in value]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: cannot read {value!r} as {annotation}") from err
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, with a clear error for unknown or bad fields."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; known fields: {names}")
    kwargs = {k: _coerce(v, hints[k], f"{source}: field {k!r}") for k, v in data.items()}
    return cls(**kwargs)


def load_section(path: str | None, section: str) -> dict[str, Any]:
    """The ``section`` of a YAML file (or the whole file when it has no sections)."""
    if not path:
        return {}
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    if section in data or any(k in data for k in ("extract", "train")):
        data = data.get(section) or {}
    return dict(data)


def build_config(cls: type[T], path: str | None, section: str, overrides: Mapping[str, Any]) -> T:
    """File values, then flags that were actually given (None means not given)."""
    data = load_section(path, section)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(cls, data, source=f"{path or 'flags'} [{section}]")


def to_yaml(config: Any, section: str) -> str:
    return yaml.safe_dump({section: dataclasses.asdict(config)}, sort_keys=False)
