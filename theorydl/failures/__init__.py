"""The failures of gradient-based deep learning (Shalev-Shwartz, Shamir & Shammah 2017):
tasks and exact computations (:mod:`theorydl.failures.tasks`), the learners and their
training (:mod:`theorydl.failures.learners`), the analysis and figures
(:mod:`theorydl.failures.analysis`). The experiment is
:mod:`theorydl.experiments.failures`."""
