"""gating: what do gated linear units (GaLU) memorise and learn?

Fiat, Malach & Shalev-Shwartz, "Decoupling Gating from Linearity" (2019). Science module:
``galu`` (the gated design matrix, its closed-form least squares, ``GatedNet``). Notes in
its README.md.
"""
