"""Any ``torch.nn.Module`` as a stacked family: M copies of one architecture, each with
its own parameters, trained together by the engine through ``torch.func``.

Model i is ``seeded(build, seeds[i])``: the module ``build()`` returns, created with the
global RNG seeded ``seeds[i]`` inside ``torch.random.fork_rng`` (so the caller's global
RNG is neither used nor advanced). Its parameters are stacked along a leading model axis
(``torch.func.stack_module_state``), and every forward pass is one
``torch.func.vmap(functional_call(...))`` over the M models: one batched kernel per layer
where a loop would launch M. Gradients come from one ``torch.autograd.grad`` of the
outputs with the loss's own gradient as the output gradient (``theorydl.nn.losses``), so
model i's gradient is its own (models share no parameters).

What a module may hold:

* trainable parameters (``requires_grad=True``): trained;
* buffers and frozen parameters (``requires_grad=False``): per-model constants, stacked
  and carried with their model (random gates fixed at initialisation, masks, tied
  patterns). A buffer that the forward pass updates (BatchNorm's running statistics)
  is not supported.

A family may define its own backward rule with ordinary autograd tricks that ``vmap``
accepts, e.g. :func:`straight_through` (forward f(x), backward the identity).

**The folded path.** An ``nn.Sequential`` of ``Conv2d``, ``Linear``, ``Flatten`` and
parameter-free layers (ReLU, Tanh, Sigmoid, max and average pooling, Identity) skips
``vmap``: the models are folded into the channel axis, images as one (b, M * C, H, W)
channels-last tensor (convolutions grouped per model, pooling and activations applied
to all models at once), then (M, b, F) after ``Flatten`` (linear layers as one ``baddbmm``).
The numbers are the same as vmap's (the same kernels in another layout, a test compares
them); the layout is what vmap does not choose: on 50 small CNNs its pooling and
activations run on a copy-heavy strided layout, and the folded step took about half the
time (12 against 24 ms, 2 threads).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from theorydl.nn.losses import Loss, loss_backward

__all__ = ["ModuleStack", "init_modules", "module_bytes", "seeded", "straight_through"]


def seeded(build: Callable[[], nn.Module], seed: int, *, dtype: torch.dtype = torch.float32
           ) -> nn.Module:
    """``build()`` with the global RNG seeded ``seed`` (inside ``fork_rng``: the caller's
    RNG state is restored), cast to ``dtype``: a lone model exactly as model ``i`` of
    ``init_modules(build, seeds)`` starts."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return module.to(dtype)


def straight_through(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``f(x)`` in the forward pass, the identity in the backward pass (a
    straight-through estimator: the gradient flows as if f were x)."""
    return x + (f(x) - x).detach()


#: Layers without parameters that act on every channel (or feature) alike: the folded
#: path applies them to all M models at once.
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.MaxPool2d, nn.AvgPool2d)


def _foldable(module: nn.Module) -> bool:
    """Whether ``module`` takes the folded path (see the module docstring)."""
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return False
    if any(not p.requires_grad for p in module.parameters()) or list(module.buffers()):
        return False
    flat_seen = False
    for layer in module:
        if isinstance(layer, nn.Conv2d):
            if flat_seen or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                return False
        elif isinstance(layer, nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                return False
            flat_seen = True
        elif isinstance(layer, nn.Linear) or isinstance(layer, _ELEMENTWISE):
            pass
        else:
            return False
    return True


def _folded_forward(base: nn.Sequential, params: dict[str, Tensor], x: Tensor, m: int,
                    shared: bool) -> Tensor:
    """The outputs (M, b, C) of every model of an ``nn.Sequential`` with the models
    folded into the channel axis (images) or stacked in front (features)."""
    if x.dim() - (0 if shared else 1) == 4:  # images (b, C, H, W) or (M, b, C, H, W)
        if shared:
            b, c = x.shape[0], x.shape[1]
            h = x.unsqueeze(1).expand(b, m, *x.shape[1:]).reshape(b, m * c, *x.shape[2:])
        else:
            b, c = x.shape[1], x.shape[2]
            h = x.transpose(0, 1).reshape(b, m * c, *x.shape[3:])
        h = h.contiguous(memory_format=torch.channels_last)
        image = True
    else:  # features (b, F) or (M, b, F)
        h = x.expand(m, *x.shape) if shared else x
        image = False
    for i, layer in enumerate(base):
        if isinstance(layer, nn.Conv2d):
            w = params[f"{i}.weight"]  # (M, out, in / groups, kh, kw)
            bias = params.get(f"{i}.bias")
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]),
                         None if bias is None else bias.reshape(-1), layer.stride,
                         layer.padding, layer.dilation, groups=m * layer.groups)
        elif isinstance(layer, nn.Flatten):
            if image:  # (b, M * C, H, W) -> (M, b, C * H * W), each model's own (C, H, W)
                h = h.reshape(h.shape[0], m, -1).transpose(0, 1)
                image = False
        elif isinstance(layer, nn.Linear):
            w, bias = params[f"{i}.weight"], params.get(f"{i}.bias")  # (M, out, in), (M, out)
            if bias is None:
                h = torch.bmm(h, w.transpose(1, 2))
            else:
                h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
        else:
            h = layer(h)
    if image:
        raise ValueError("a folded Sequential must end in features (Flatten, Linear)")
    return h


@dataclass(frozen=True, eq=False)
class ModuleStack:
    """M modules of one architecture: ``tensors[k]`` (M, ...) is trainable parameter
    ``names[k]`` of every model, ``constants`` the per-model fixed tensors by name.
    Build with :func:`init_modules`; the engine trains ``tensors`` in place."""

    base: nn.Module  # the architecture, on the meta device (holds no values)
    names: tuple[str, ...]
    seeds: tuple[int, ...]
    tensors: tuple[Tensor, ...]
    constants: dict[str, Tensor]
    folded: bool = False  # the folded path (set by init_modules for a plain Sequential)

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.tensors[0].dtype

    @property
    def params(self) -> list[Tensor]:
        return list(self.tensors)

    @property
    def stat_params(self) -> tuple[int, ...]:
        """The parameters named ``*weight`` (all of them if none is)."""
        weights = tuple(k for k, n in enumerate(self.names) if n.endswith("weight"))
        return weights or tuple(range(len(self.names)))

    def bind(self, params: Sequence[Tensor], models: Sequence[int]) -> "ModuleStack":
        idx = torch.as_tensor(list(models), device=self.device)
        constants = {k: v.index_select(0, idx) for k, v in self.constants.items()}
        return ModuleStack(self.base, self.names, tuple(self.seeds[i] for i in models),
                           tuple(params), constants, self.folded)

    @torch.no_grad()
    def load(self, params: Sequence[Tensor]) -> None:
        torch._foreach_copy_(list(self.tensors), list(params))

    def prepare(self, X: Tensor) -> Tensor:
        return X

    def _forward(self, params: Sequence[Tensor], x: Tensor, shared: bool) -> Tensor:
        """Outputs (M, b, C) of every model; ``x`` (b, ...) shared or (M, b, ...)."""
        names, base = self.names, self.base
        if self.folded:
            return _folded_forward(base, dict(zip(names, params)), x, len(self.seeds), shared)

        def one(p: tuple[Tensor, ...], consts: dict[str, Tensor], xi: Tensor) -> Tensor:
            return functional_call(base, {**dict(zip(names, p)), **consts}, (xi,))

        out = vmap(one, in_dims=(0, 0, None if shared else 0))(tuple(params), self.constants, x)
        return out.unsqueeze(2) if out.dim() == 2 else out

    def outputs_t(self, x: Tensor) -> Tensor:
        """Outputs (M, C, b) for ``x`` (b, ...) shared by all models."""
        with torch.no_grad():
            return self._forward(self.tensors, x, True).transpose(1, 2)

    def value_and_grad(self, x: Tensor, y: Tensor, loss: Loss, grads: Sequence[Tensor], *,
                       shared: bool, dropout: tuple[float, torch.Generator] | None = None
                       ) -> Tensor:
        if dropout is not None:
            raise ValueError("engine dropout is the MLP's; a module family puts its own "
                             "regularisation in the module")
        params = [p.detach().requires_grad_() for p in self.tensors]
        with torch.enable_grad():
            z = self._forward(params, x, shared).transpose(1, 2)  # (M, C, b)
        return loss_backward(z, params, y, loss, list(grads))

    def member(self, i: int) -> dict[str, Tensor]:
        """Model ``i``'s state (trainable and constant tensors) by name, detached copies:
        ``module.load_state_dict(stack.member(i))`` recreates it alone."""
        state = {n: t[i].detach().clone() for n, t in zip(self.names, self.tensors)}
        state.update({n: t[i].detach().clone() for n, t in self.constants.items()})
        return state


def init_modules(build: Callable[[], nn.Module], seeds: Sequence[int], *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 fold: bool = True) -> ModuleStack:
    """A :class:`ModuleStack` whose model i is ``seeded(build, seeds[i], dtype=dtype)``.
    ``fold=False`` keeps a foldable ``nn.Sequential`` on the vmap path."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("a stack needs at least one seed")
    modules = [seeded(build, s, dtype=dtype) for s in seeds]
    first = modules[0]
    names = tuple(n for n, p in first.named_parameters() if p.requires_grad)
    if not names:
        raise ValueError(f"{type(first).__name__} has no trainable parameter")
    fixed = [n for n, p in first.named_parameters() if not p.requires_grad]
    fixed += [n for n, _ in first.named_buffers()]
    states = [dict(m.named_parameters()) | dict(m.named_buffers()) for m in modules]
    tensors = tuple(torch.stack([s[n].detach() for s in states]).to(device) for n in names)
    constants = {n: torch.stack([s[n].detach() for s in states]).to(device) for n in fixed}
    base = copy.deepcopy(first).to("meta")
    return ModuleStack(base, names, seeds, tensors, constants, folded=fold and _foldable(first))


def module_bytes(build: Callable[[], nn.Module], input_shape: Sequence[int], batch: int,
                 n_eval: int, dtype_bytes: int = 4) -> int:
    """Estimated memory of one model of ``build()`` in a stack, in bytes, for the
    engine's sizing: 7 P (parameters, gradients, two optimiser buffers, three
    gradient-statistics accumulators) plus, per sample, the input and 3 A (every
    submodule's output A, kept for the backward pass with its gradient and a
    temporary) for a training batch, and A for an evaluation chunk of ``n_eval``;
    times 1.5 for allocator slack. A is measured by one forward pass on the meta device
    (no memory, no compute)."""
    with torch.device("meta"):
        module = build()
    n_params = sum(p.numel() for p in module.parameters())
    outputs = [0]

    def count(_mod, _inp, out) -> None:
        if isinstance(out, Tensor):
            outputs[0] += out.numel()

    handles = [m.register_forward_hook(count) for m in module.modules()]
    try:
        with torch.no_grad():
            module(torch.empty(1, *input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    per_sample = outputs[0]
    n_in = math.prod(input_shape)
    return int(dtype_bytes * (7 * n_params + batch * (n_in + 3 * per_sample)
                              + n_eval * per_sample) * 1.5)
