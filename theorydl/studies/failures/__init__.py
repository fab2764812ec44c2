"""failures: the failures of gradient-based deep learning.

Shalev-Shwartz, Shamir & Shammah, "Failures of Gradient-Based Deep Learning" (ICML 2017):
parity, linear-periodic functions, end-to-end against decomposition, encoders,
conditioning and flat activations. Science modules: ``tasks`` (tasks and exact
computations), ``learners`` (the learners on the engine). Notes in its README.md.
"""
