"""learnability: of the Boolean functions a small network expresses, which does training find?

The trained counterpart of the census (Xiong, "What Really is Deep Learning Doing?"): every
function of N inputs is a target of stacked full-batch training. The study: its
``experiment``, ``analysis`` and ``figures`` modules, ``architectures`` (the network names
they share); notes in its README.md.
"""
