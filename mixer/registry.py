"""A tiny name -> factory registry shared by projectors, fusions and objectives.

Adding a component is one `@REGISTRY.register("name")` on a class or function; config values
name components by these keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry(dict[str, Callable[..., Any]]):
    """A dict of factories with a decorator to add one and a lookup with a clear error."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        # name -> module that registers it when imported: heavy components (the lm objective
        # and its transformers imports) load only when a config names them
        self.lazy: dict[str, str] = {}

    def register_module(self, name: str, module: str) -> None:
        """``name`` is registered by importing ``module`` (done on first lookup)."""
        self.lazy[name] = module

    def register(self, name: str) -> Callable[[F], F]:
        def add(factory: F) -> F:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self[name]!r})")
            self[name] = factory
            return factory

        return add

    def lookup(self, name: str) -> Callable[..., Any]:
        if name not in self and name in self.lazy:
            importlib.import_module(self.lazy[name])
        if name not in self:
            known = ", ".join(sorted({*self, *self.lazy})) or "(none)"
            raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return self[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.lookup(name)(*args, **kwargs)
