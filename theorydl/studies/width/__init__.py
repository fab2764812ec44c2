"""width: does the size of a network control generalization, or does the optimizer?

Neyshabur, Tomioka & Srebro, "In Search of the Real Inductive Bias" (2015), and Neyshabur,
Salakhutdinov & Srebro, "Path-SGD" (NeurIPS 2015): width and depth sweeps to zero training
error, with SGD and Path-SGD and an Optuna learning-rate search. Notes in its README.md.
"""
