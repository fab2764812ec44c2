"""The studies: one package per study, each with the same file names.

``experiment.py`` (params section, claims, the Experiment), ``analysis.py`` (train table ->
metrics and plot data, pure), ``figures.py`` (analysis -> PNG), science modules of free
names, and a README.md. The registry (:mod:`theorydl.spine.registry`) finds every
``theorydl.studies.<name>.experiment``: a new study is a new folder, registered nowhere
else. No study imports another.
"""
