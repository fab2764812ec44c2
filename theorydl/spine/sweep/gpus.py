"""Whether a sweep's units ask Ray for GPUs: the params decide, not the cluster's size now.

An experiment's ``device`` says where its units compute: ``cpu``, ``cuda`` or ``auto``.
Its units carry their GPU share (``Unit.num_gpus``, zero for ``cpu``). What the driver asks
Ray for:

- ``cuda``: the share, always. On an autoscaling cluster the pending GPU demand is what
  makes the autoscaler start GPU nodes (the shipped cluster configs keep their GPU
  worker types at zero until then). A static cluster without GPUs can never run them:
  a clear error before anything is submitted.
- ``auto``: the share where the cluster has GPUs now or has an autoscaler that can start
  them; on a static cluster without GPUs, a warning, and the units run on CPUs.
- ``cpu``: nothing.

An autoscaling cluster is recognised by its autoscaler's status in the GCS (see
:func:`cluster_autoscales`). Ray itself reports a GPU demand that no node
type can meet (an autoscaler whose types have no GPU) as infeasible in ``ray status``.
"""

from __future__ import annotations

import logging

from theorydl.spine.experiment import StageError

__all__ = ["GpuRequest", "decide", "cluster_autoscales"]

log = logging.getLogger("theorydl")


class GpuRequest(StageError):
    """A sweep asks for GPUs that the cluster can never provide (the stage fails with
    this message before anything is submitted)."""


def decide(experiment: str, device: str, wants_gpus: bool, cluster_gpus: float,
           autoscaling: bool) -> bool:
    """Whether the units' GPU shares go to Ray (see the module docstring).

    Raises :class:`GpuRequest` for ``device: cuda`` on a static cluster without GPUs.
    """
    if not wants_gpus or device == "cpu":
        return False
    if cluster_gpus > 0 or autoscaling:
        return True
    if device == "cuda":
        raise GpuRequest(
            f"{experiment}: device is cuda, but the cluster has no GPU and no autoscaler "
            f"that could start one: join a cluster with GPU nodes (cluster/), or set "
            f"{experiment}.device to auto (CPUs where there is no GPU) or cpu")
    log.warning("%s: the cluster has no GPU and no autoscaler; device auto runs the units "
                "on CPUs", experiment)
    return False


def cluster_autoscales() -> bool:
    """Whether the connected Ray cluster has an autoscaler with node types to start.

    Ray's monitor writes its status to the GCS on every cluster, autoscaling or not; a
    cluster started by hand (``ray start``, SLURM, the embedded Ray) has the read-only
    provider, whose node types are the nodes' own ids. Any other node type means a
    launch configuration (``ray up``, KubeRay) whose autoscaler can add nodes.
    """
    import json

    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get

    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        if is_autoscaler_v2(fetch_from_server=True):
            return True
        status = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
        if not status:
            return False
        from ray.autoscaler._private.util import format_readonly_node_type

        mapping = json.loads(status).get("autoscaler_report", {}).get("node_type_mapping") or {}
        return any(kind != format_readonly_node_type(node) for node, kind in mapping.items())
    except Exception:  # noqa: BLE001 - no answer from the GCS: treat the cluster as static
        return False
