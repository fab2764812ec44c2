"""theorydl: distributed sweeps for the science of why and when deep learning works.

The public surface is small on purpose: the subpackages (`config`, `sweep`, `store`,
`experiments`, `nn`, `info`, `data`, `expressivity`, `report`) each say in their
``__init__`` what they export.
"""

__version__ = "0.1.0"
