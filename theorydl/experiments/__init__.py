"""Experiments: each module declares a params section and an :class:`Experiment`.

Public: :class:`Experiment`, :class:`Unit`, :func:`run_each`, :func:`get`, :func:`names`,
:func:`register`. Importing this package registers the built-in experiments.
"""

from theorydl.experiments.base import Experiment, Unit, run_each

__all__ = ["Experiment", "Unit", "run_each", "get", "names", "register"]

_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Make an experiment runnable by name (stages, CLI)."""
    if experiment.name in _REGISTRY and type(_REGISTRY[experiment.name]) is not type(experiment):
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def _register_builtins() -> None:
    from theorydl.experiments.census import Census
    from theorydl.experiments.ib import IB
    from theorydl.experiments.samdp import SAMDPExperiment
    from theorydl.experiments.width import Width

    register(Census())
    register(IB())
    register(SAMDPExperiment())
    register(Width())


_register_builtins()
