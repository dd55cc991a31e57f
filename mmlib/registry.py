"""One small registry class shared by datasets, models and methods.

A component registers itself with a decorator and is created by name with keyword
hyper-parameters only, so no caller ever branches on a name::

    @METHODS.register("ogm-ge")
    class OGMGE(Method): ...

    METHODS.create("ogm-ge", alpha=0.8)
"""
from __future__ import annotations

import difflib
from typing import Any, Callable


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry:
    """Maps lowercase-hyphen names to constructors.

    Args:
        kind: what the registry holds ("dataset", "method", ...), used in messages.
        where: the package where a new component is added, used in messages.
    """

    def __init__(self, kind: str, where: str):
        self.kind = kind
        self.where = where
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase with hyphens")

        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            obj.registry_name = name
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        if not isinstance(name, str):
            example = self.names()[0] if self._items else "name"
            raise TypeError(f"a {self.kind} name must be a string such as {example!r}, got {name!r} "
                            f"({type(name).__name__})")
        if name not in self._items:
            raise UnknownNameError(self._unknown(name))
        return self._items[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the component ``name`` with keyword hyper-parameters."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(self.names())}. "
            f"To add one, register it with @{self.kind.upper()}S.register(...) in {self.where} "
            f"and import it in that package's __init__.py."
        )


DATASETS = Registry("dataset", "mmlib/data/")
ENCODERS = Registry("encoder", "mmlib/models/encoders.py")
FUSIONS = Registry("fusion", "mmlib/models/fusion.py")
MODELS = Registry("model", "mmlib/models/")
METHODS = Registry("method", "mmlib/methods/")
TASKS = Registry("task", "mmlib/task.py")
SELECTORS = Registry("selector", "mmlib/active/selection/")
