"""gating: what do gated linear units (GaLU) memorise and learn?

Fiat, Malach & Shalev-Shwartz, "Decoupling Gating from Linearity" (2019). Science modules:
``galu`` (the gated design matrix, its closed-form least squares, ``GatedNet``) and
``published`` (the published numbers and the metrics' kd/m keys). Notes in its README.md.
"""
