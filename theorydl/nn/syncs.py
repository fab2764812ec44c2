"""Counting the operations that would make the host wait for a GPU, on any device.

On CUDA, ``torch.cuda.set_sync_debug_mode`` reports synchronising calls, but only
there. :func:`count_host_syncs` counts them anywhere, the CPU included, by the kind of
operation: an operation is counted when, on a CUDA tensor, it would block the host
until the device has caught up, or copy between host and device memory:

- reading a value on the host: ``item()``, ``bool()``/``int()``/``float()`` of a
  tensor (``aten._local_scalar_dense``), ``tolist()``, ``numpy()``, ``cpu()``;
- operations whose output size depends on the values: ``nonzero``, ``masked_select``,
  boolean-mask indexing, ``unique``, ``repeat_interleave`` without an output size,
  ``bincount``, and ``equal``/``is_nonzero``;
- a tensor made from host data (``torch.tensor``, ``as_tensor``, ``from_numpy``:
  ``aten.lift_fresh``), which on CUDA is a copy from pageable memory.

A training step that counts zero here issues no host synchronisation on CUDA either
(up to what a kernel does inside, which no Python hook sees). The count is of calls
made under the context, on the tensors of any device (``meta`` included).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["count_host_syncs"]

_DISPATCH = {
    "aten._local_scalar_dense.default": "read",
    "aten.nonzero.default": "shape",
    "aten.masked_select.default": "shape",
    "aten._unique2.default": "shape",
    "aten.unique_dim.default": "shape",
    "aten.unique_consecutive.default": "shape",
    "aten.bincount.default": "shape",
    "aten.repeat_interleave.Tensor": "shape",
    "aten.equal.default": "read",
    "aten.is_nonzero.default": "read",
    "aten.lift_fresh.default": "copy",
}
#: Python-level reads that do not reach the dispatcher on every device.
_FUNCTION = {"tolist", "numpy", "cpu"}


def _bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
               for i in indices or ())


class _Dispatch(TorchDispatchMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in _DISPATCH:
            if not (name == "aten.repeat_interleave.Tensor"
                    and (kwargs or {}).get("output_size") is not None):
                self.counts[name] += 1
        elif name in ("aten.index.Tensor", "aten.index_put_.default",
                      "aten.index_put.default") and _bool_index(args):
            self.counts[f"{name} (boolean mask)"] += 1
        return func(*args, **(kwargs or {}))


class _Function(TorchFunctionMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _FUNCTION:
            self.counts[f"Tensor.{name}"] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_host_syncs() -> Iterator[Counter]:
    """Count, by operation, the host synchronisations made under the context.

    ``with count_host_syncs() as syncs: step()`` then ``sum(syncs.values())`` is the
    number of calls that would block the host (or copy host data to the device) on a
    GPU; see the module docstring for what counts.
    """
    counts: Counter = Counter()
    with _Function(counts), _Dispatch(counts):
        yield counts
