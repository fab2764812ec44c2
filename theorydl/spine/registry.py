"""The experiment registry: studies found by looking, registered by being defined.

A study is a package ``theorydl.studies.<name>`` whose ``experiment`` module defines a
concrete :class:`~theorydl.spine.experiment.Experiment` subclass (with a ``name`` and a
params ``section``). :func:`names` and :func:`get` import every such module on first use
and register each such class, so adding a study is adding its folder: there is no list to
edit. An experiment defined elsewhere (a test's toy) is added with :func:`register`.

The spine knows no study by name: this module finds them through the package path only.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil

from theorydl.spine.experiment import Experiment

__all__ = ["STUDIES", "get", "names", "register", "study_modules"]

#: The package whose subpackages are the studies.
STUDIES = "theorydl.studies"

_REGISTRY: dict[str, Experiment] = {}
_discovered = False


def register(experiment: Experiment) -> Experiment:
    """Make an experiment runnable by name (stages, CLI) and its section a params section."""
    if experiment.name in _REGISTRY and type(_REGISTRY[experiment.name]) is not type(experiment):
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def study_modules() -> list[str]:
    """The ``experiment`` module of every study package, by name (none imported)."""
    package = importlib.import_module(STUDIES)
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.ispkg:
            module = f"{STUDIES}.{info.name}.experiment"
            if importlib.util.find_spec(module) is not None:
                found.append(module)
    return found


def _discover() -> None:
    """Import every study's experiment module once; register the experiments they define."""
    global _discovered
    if _discovered:
        return
    _discovered = True  # set first: a module may look an experiment up while importing
    try:
        for name in study_modules():
            module = importlib.import_module(name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Experiment)
                        and obj.__module__ == module.__name__ and not inspect.isabstract(obj)
                        and isinstance(getattr(obj, "name", None), str)):
                    register(obj())
    except BaseException:
        _discovered = False
        raise
