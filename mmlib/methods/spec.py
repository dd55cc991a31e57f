"""Method specs: the one parser of what a user may write for "the methods of a run".

``fit``, ``run``, ``mmlib run``'s notebooks and the benchmark all accept the same forms:

* a ``Method`` instance;
* a registered name, ``"ogm-ge"``, or a name with keyword arguments, ``"ogm-ge:alpha=0.5,ge=false"``
  (values read as YAML: numbers, booleans, lists);
* a ``(name, kwargs)`` pair, ``("mmpareto", {"gamma": 1.0})``;
* a factory: any callable that returns a ``Method`` (not a ``Method`` class: pass an instance);
* a list of any of these (their hooks run in list order); ``None`` for no method.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import yaml

from ..registry import METHODS
from .base import Method

MethodSpec = Method | str | tuple[str, dict[str, Any]] | Callable[[], Method]


def parse_name(text: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``"name:key=value,key=value"`` -> ``(name, kwargs)``."""
    name, _, args = text.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"bad method argument {item!r} in {text!r}: write name:key=value,key=value")
        try:
            kwargs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"method argument {item!r} in {text!r}: {value!r} is not a valid value") from None
    return name.strip(), kwargs


def make_methods(spec: MethodSpec | Iterable[MethodSpec] | None, fresh: bool = True) -> list[Method]:
    """Method objects from a spec (see the module docstring).

    Args:
        fresh: deep-copy given instances, so every run (seed) starts from unused methods;
            ``fit`` passes ``False`` and uses the caller's instances, which then hold their state.
    """
    if spec is None:
        return []
    if isinstance(spec, (Method, str, tuple)) or (callable(spec) and not isinstance(spec, type)):
        spec = [spec]
    elif isinstance(spec, type):
        spec = [spec]
    if not isinstance(spec, Iterable):
        raise TypeError(f"methods must be a method spec or a list of them, got {spec!r}")
    return [_one(s, fresh) for s in spec]


def _one(s: Any, fresh: bool) -> Method:
    if isinstance(s, Method):
        return copy.deepcopy(s) if fresh else s
    if isinstance(s, type):
        name = vars(s).get("registry_name")  # its own, not a parent's: a subclass may be unregistered
        hint = f" or the registered name {name!r}" if name else ""
        raise TypeError(f"got the class {s.__name__}, not a method: pass an instance, e.g. {s.__name__}(){hint}")
    if isinstance(s, str):
        name, kwargs = parse_name(s)
        return METHODS.create(name, **kwargs)
    if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) and isinstance(s[1], dict):
        return METHODS.create(s[0], **s[1])
    if callable(s) and not isinstance(s, tuple):
        made = s()
        if not isinstance(made, Method):
            raise TypeError(f"the method factory {s!r} returned {made!r}, not a Method")
        return made
    raise TypeError(f"cannot make a method from {s!r}: give a Method, a registered name, "
                    f"a (name, kwargs) pair or a factory; several methods go in a list")
