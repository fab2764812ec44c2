"""The machines the census counts for, by architecture name.

``threshold`` (one linear-threshold unit) and the other names of
:data:`theorydl.expressivity.ARCHITECTURES`, ``net-k1-...-kL`` (networks of threshold
units, :func:`theorydl.expressivity.networks.parse_network`), and :data:`FORMULAS`.
"""

from __future__ import annotations

__all__ = ["FORMULAS"]

#: The architecture name of the formula (X-form) counts; its rows in the census table are
#: named ``formulas<=s``, one per size bound s.
FORMULAS = "formulas"
