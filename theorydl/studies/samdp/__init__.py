"""samdp: what does a trained DQN policy do, read through its activations?

Zahavy, Ben-Zrihem & Mannor, "Graying the Black Box: Understanding DQNs" (ICML 2016);
Baram, Zahavy & Mannor on Semi-Aggregated MDPs. Science modules: ``embedding`` (PCA and
t-SNE), ``clustering`` (spatio-temporal k-means), ``model`` (the SAMDP), ``criteria`` (its
quality measures), ``recording`` (a trial's stored steps and checkpoint, read back).
Notes in its README.md.
"""
