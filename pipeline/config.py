"""The one typed config loader: YAML files and plain mappings -> dataclasses.

Every config of the project goes through ``from_mapping``: the extract and train job configs,
encoder specs (``EncoderSpec``) and model specs (``ModelSpec``). Values are coerced to the
field's annotation (flags arrive as text: ``"4"``, ``"true"``, ``"a=/x,b=/y"``, ``"a,b"``),
unknown keys are refused with the list of known ones, and every error is one ``ConfigError``
line naming the source and the field.

A config file may hold an ``extract:`` and a ``train:`` section, or just the fields of one.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
SECTIONS = ("extract", "train")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read at call time (huggingface_hub reads its own
    constant only once, at import); every model loader of the project asks here."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


class ConfigError(ValueError):
    """A config value or file the user must fix; ``str(err)`` is one line saying which."""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], type(None) in args
    return annotation, False


def _scalar(value: Any, annotation: type) -> Any:
    if annotation is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if annotation is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise ValueError(value)  # True is an int in Python, never in a config
    return annotation(value)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` as ``annotation`` (scalars, Optional, list, tuple, dict, Any)."""
    annotation, optional = _unwrap_optional(annotation)
    if value is None:
        if optional or annotation is Any:
            return None
        raise ConfigError(f"{where}: needs a value (an empty YAML field reads as null)")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    try:
        if annotation is Any:
            return value
        if annotation in (int, float, str, bool):
            return _scalar(value, annotation)
        if origin is dict:
            if isinstance(value, str):  # "a=/x,b=/y" from a flag
                value = dict(kv.split("=", 1) for kv in value.split(",") if kv)
            value_type = args[1] if args else Any
            return {
                str(k): coerce(v, value_type, f"{where}[{k!r}]") for k, v in dict(value).items()
            }
        if origin in (list, tuple):
            if isinstance(value, str):  # "a,b" from a flag
                value = [v for v in value.split(",") if v]
            items = list(value)
            if origin is list:
                return [coerce(v, args[0] if args else Any, where) for v in items]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0], where) for v in items)
            if args and len(items) != len(args):
                raise ValueError(f"needs {len(args)} values")
            return tuple(
                coerce(v, a, where) for v, a in zip(items, args or [Any] * len(items), strict=True)
            )
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: cannot read {value!r} as {_name(annotation)}") from err
    return value


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Dataclass ``cls`` from a mapping: fields coerced to their types, unknown keys refused."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; known fields: {names}")
    kwargs = {k: coerce(v, hints[k], f"{source}: field {k!r}") for k, v in data.items()}
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
    if section in data or any(k in data for k in SECTIONS):
        data = data.get(section) or {}
    return dict(data)


def build_config(cls: type[T], path: str | None, section: str, overrides: Mapping[str, Any]) -> T:
    """File values, then flags that were actually given (None means not given)."""
    data = load_section(path, section)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(cls, data, source=f"{path or 'flags'} [{section}]")


def to_yaml(config: Any, section: str) -> str:
    """The effective config as a YAML section (tuples as lists), for printing and saving."""
    return yaml.safe_dump({section: _plain(dataclasses.asdict(config))}, sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a number field: ``low``..``high`` (None: unbounded), ``low``
    itself excluded when ``above``; ``none``: None (unset) is allowed too."""

    low: float | None = None
    high: float | None = None
    above: bool = False
    none: bool = False

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.none
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        if self.low is not None and self.high is not None and not self.above:
            text = f"{self.low}..{self.high}"
        else:
            low = f"{'>' if self.above else '>='} {self.low}" if self.low is not None else ""
            high = f"<= {self.high}" if self.high is not None else ""
            text = " and ".join(t for t in (low, high) if t)
        return f"unset (null) or {text}" if self.none else text


def check_ranges(config: Any, ranges: Mapping[str, Range]) -> None:
    """Refuse, in one ``ConfigError`` line naming the field and its range, the first number
    field of ``config`` outside its ``Range`` (a table: one entry per field)."""
    for name, allowed in ranges.items():
        value = getattr(config, name)
        if not allowed.allows(value):
            raise ConfigError(f"{name}: {value!r} is not allowed; it must be {allowed}")
