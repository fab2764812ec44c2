"""fractal: is deeper better only when shallow is good?

Malach & Shalev-Shwartz, "Is Deeper Better only when Shallow is Good?" (NeurIPS 2019,
arXiv 1903.03488): fractal distributions whose approximation curve P(j) sets how much a
shallow network can already get right; depth realises every such distribution (an
explicit construction), but gradient training succeeds only where the curve is coarse.
Science modules: ``fractals`` (the IFS, the curves, the seeded sampler), ``construction``
(the explicit depth-2n+1 network), ``gradient`` (the population gradient at
initialisation), ``published`` (the digitised published numbers), ``nets`` (the
networks and their initialisation on the engine). Notes in its README.md.
"""
