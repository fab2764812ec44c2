"""Experiments: one module per experiment, found by looking, registered by being defined.

A module of this package that defines a concrete :class:`Experiment` subclass (with a
``name`` and a params ``section``) is all it takes: :func:`names` and :func:`get` import
every module of the package on first use and register each such class, so there is no
list to edit. An experiment defined elsewhere (a test's toy) is added with
:func:`register`.

Public: :class:`Experiment`, :class:`Stage`, :class:`Plot`, :class:`Claim`, :class:`Unit`,
:func:`run_each`, :func:`get`, :func:`names`, :func:`register`.
"""

import importlib
import inspect
import pkgutil

from theorydl.experiments.base import Claim, Experiment, Plot, Stage, Unit, run_each

__all__ = ["Claim", "Experiment", "Plot", "Stage", "Unit", "run_each", "get", "names",
           "register"]

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


def _discover() -> None:
    """Import every module of this package once; register the experiments they define."""
    global _discovered
    if _discovered:
        return
    _discovered = True  # set first: a module may look an experiment up while importing
    try:
        for info in pkgutil.iter_modules(__path__, f"{__name__}."):
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Experiment)
                        and obj.__module__ == module.__name__ and not inspect.isabstract(obj)
                        and isinstance(getattr(obj, "name", None), str)):
                    register(obj())
    except BaseException:
        _discovered = False
        raise
