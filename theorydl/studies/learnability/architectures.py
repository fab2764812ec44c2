"""Names shared by the trained census's experiment and its analysis."""

from __future__ import annotations

__all__ = ["architecture_name"]


def architecture_name(width: int, depth: int) -> str:
    """The census name of the threshold network of the same shape (``net-3-3``)."""
    return "net-" + "-".join([str(width)] * depth)
