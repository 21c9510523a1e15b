"""Backbone registry: a spec's ``backend`` name -> the class that builds and runs that model.

Adding a backend is one file in this package, named after the backend, holding one class
decorated with ``@register_backbone("<name>")`` (a subclass of ``_base.Backbone``)::

    # encoders/backbones/my_backend.py
    @register_backbone("my_backend")
    class MyBackbone(Backbone): ...

The one list of names, ``BACKENDS``, is the list of those files: ``pkgutil`` reads the folder
and imports nothing, so a job's driver validates specs without importing torch (the backend
modules import it). ``backbone_class(name)`` imports the backend's module when a model is built;
its decorator registers the class then, and refuses a name other than its file's, so the file
name and the decorator cannot drift apart. Modules starting with ``_`` hold shared code.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

C = TypeVar("C", bound=type)

BACKENDS: tuple[str, ...] = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
)
_CLASSES: dict[str, type] = {}


def register_backbone(name: str):  # noqa: ANN201 - a class decorator
    """Class decorator: the backbone of backend ``name``, defined in ``backbones/<name>.py``."""

    def add(cls: C) -> C:
        if cls.__module__ != f"{__name__}.{name}":
            raise ValueError(
                f"backend {name!r} must be defined in {__name__}.{name}, not {cls.__module__}"
            )
        if name in _CLASSES:
            raise ValueError(f"backend {name!r} is already registered ({_CLASSES[name]!r})")
        _CLASSES[name] = cls
        return cls

    return add


def backbone_class(name: str) -> type:
    """The registered class of backend ``name``; imports its module (and with it torch)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    if name not in _CLASSES:
        raise RuntimeError(f"{module.__name__} has no class decorated @register_backbone({name!r})")
    return _CLASSES[name]
