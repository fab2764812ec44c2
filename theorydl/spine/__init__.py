"""The spine: what every study runs on, knowing none of them.

The experiment interface and the stacked base (:mod:`~theorydl.spine.experiment`,
:mod:`~theorydl.spine.stacked`), claims, the registry, params sections
(:mod:`~theorydl.spine.config`), provenance, the sweep (trial specs and ids, planner, Ray
executor, GPU slots, Optuna) and the Arrow trial store.
"""
