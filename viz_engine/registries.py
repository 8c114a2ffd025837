"""What every registry of the project shares: named entries in the order they were added
(stages, attribution methods, and on the platform stage views, tasks and export formats),
a refusal to register a name twice unless told to replace it, and a lookup whose error
lists what there is; plus the lazy reference ``"module:function"`` by which a registration
names code without importing it. No imports beyond the standard library: the web process
and the engine both build on it."""

from __future__ import annotations

from importlib import import_module
from typing import Callable, Generic, TypeVar

__all__ = ["Registry", "load_callable"]

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names an entry in messages ("stage", "task" …); ``plural`` the list of names
    in a lookup's error; ``error`` is the exception a lookup of an unknown name raises."""

    def __init__(self, kind: str, plural: str | None = None, error: type[Exception] = KeyError):
        self.kind, self.plural, self.error = kind, plural or f"{kind}s", error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a toy entry clean up with this)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"{self.kind} {name!r} is unknown; {self.plural}: {', '.join(self._entries)}") from None

    def find(self, name: str) -> T | None:
        return self._entries.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entries(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def load_callable(ref: str | Callable) -> Callable:
    """``ref`` itself if it is callable, else the function a ``"module:function"`` names,
    imported now (so listing a registry loads no model code)."""
    if callable(ref):
        return ref
    module, _, function = ref.partition(":")
    return getattr(import_module(module), function)
