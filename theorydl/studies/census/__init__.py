"""census: how many Boolean functions of N inputs does a machine express?

Exact counts for a linear-threshold unit (OEIS A000609), small networks of threshold units,
and AND/OR/NOT formulas (Xiong, "What Really is Deep Learning Doing?"). The study: its
``experiment``, ``analysis`` and ``figures`` modules, and ``machines`` (the architecture
names); notes in its README.md.
"""
