"""sharing: is weight sharing crucial to successful optimisation?

Shalev-Shwartz, Shamir & Shammah, "Weight Sharing is Crucial to Successful Optimization"
(2017), as a proxy built on its stated claims. Science module: ``teacher`` (``PatchNet``,
the teacher, its targets and their metrics keys). Notes in its README.md.
"""
