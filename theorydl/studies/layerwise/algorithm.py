"""The layer-wise learner of Malach & Shalev-Shwartz (2018) and its end-to-end baseline.

What the paper says (abstract, introduction): the network is trained layer by layer; each
step runs gradient updates on a *two-layer network* and then a *simple clustering*, whose
output is the next layer's input. The loss, widths, clustering rule and numbers of
clusters are not published; the rest is the project's choice:

* level l's two-layer net (:func:`level_net`): an s x s convolution with stride s
  (``width`` channels, one per-patch embedding) and ReLU, then a linear readout of every
  position to the label logits; cross-entropy, Adam, trained through the project's one
  engine (``theorydl.nn.train``) on a stack of models (one per seed);
* the embedding of a patch is the trained first layer's output on it; k-means
  (scikit-learn, ``k`` = the number of classes of the level, which the algorithm is told)
  clusters the training patches' embeddings, and each patch's cluster becomes a one-hot
  input cell of the next level (resolution divided by s);
* the first layer starts at ``init_scale`` times PyTorch's default initialisation: the
  part of an embedding that training does not move comes from the initialisation, and
  two patches of one class differ only there (their contexts are the same law), so a
  small start makes them cluster together;
* on top, a linear classifier of the last level's one-hot codes (same engine).

:func:`e2e_net` is the baseline: the same depth (one stride-s convolution per latent
level, ReLU, then a linear readout), trained end to end with the same loss and optimiser.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LayerwiseFit", "Training", "adjusted_rand", "cluster_patches", "e2e_net", "fit_e2e",
           "fit_layerwise", "level_net", "one_hot", "patch_embeddings"]


@dataclass(frozen=True)
class Training:
    """How one network trains through the engine (every level and the baseline alike)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.003
    weight_decay: float = 0.0


def level_net(c_in: int, grid: int, s: int, width: int, n_labels: int,
              init_scale: float = 1.0) -> nn.Sequential:
    """The two-layer net of one level: (b, c_in, grid, grid) -> (b, n_labels) through
    Conv2d(c_in, width, s, stride s), ReLU and a linear readout of the (grid / s)**2
    positions; the convolution's weights and bias scaled by ``init_scale``."""
    conv = nn.Conv2d(c_in, width, s, stride=s)
    with torch.no_grad():
        conv.weight.mul_(init_scale)
        conv.bias.mul_(init_scale)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(),
                         nn.Linear(width * (grid // s) ** 2, n_labels))


def e2e_net(side: int, s: int, depth: int, width: int, n_labels: int) -> nn.Sequential:
    """The baseline of the same depth: ``depth`` x (Conv2d(., width, s, stride s), ReLU)
    on (b, 1, side, side), then a linear readout; PyTorch's default initialisation."""
    layers: list[nn.Module] = []
    c, g = 1, side
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, s, stride=s), nn.ReLU()]
        c, g = width, g // s
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * g * g, n_labels))


def adjusted_rand(classes: np.ndarray, codes: np.ndarray) -> float:
    """The adjusted Rand index of cluster ``codes`` against the true ``classes`` (same
    shape, every cell one item): 1 for the same partition up to names, 0 in expectation
    for random codes (scikit-learn's ``adjusted_rand_score``)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.ravel(classes), np.ravel(codes)))


def one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    """Codes (n, g, g) ints in [0, k) -> (n, k, g, g) float32 one-hot images."""
    return np.moveaxis(np.eye(k, dtype=np.float32)[codes], -1, 1)


@torch.no_grad()
def patch_embeddings(stack, i: int, x: Tensor, s: int) -> np.ndarray:
    """Model ``i``'s first-layer output on every s x s patch of ``x`` (n, c, H, W):
    (n, H / s, W / s, width) float32 on the host. ``stack``: a ModuleStack of
    :func:`level_net` models (its parameters "0.weight", "0.bias")."""
    p = dict(zip(stack.names, stack.tensors))
    h = torch.relu(F.conv2d(x.to(p["0.weight"].device), p["0.weight"][i], p["0.bias"][i],
                            stride=s))
    return h.permute(0, 2, 3, 1).cpu().numpy()


def cluster_patches(train: np.ndarray, test: np.ndarray, k: int, seed: int, *,
                    max_samples: int = 20_000, n_init: int = 4
                    ) -> tuple[np.ndarray, np.ndarray]:
    """k-means of patch embeddings (n, g, g, width): fitted on at most ``max_samples``
    training patches (a uniform subsample drawn with ``seed``), then every training and
    test patch assigned to its nearest centre: codes (n, g, g) for each."""
    from sklearn.cluster import KMeans

    flat = train.reshape(-1, train.shape[-1])
    rng = np.random.default_rng(seed)
    fit = flat if len(flat) <= max_samples else flat[rng.choice(len(flat), max_samples,
                                                                replace=False)]
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(fit)
    return (km.predict(flat).reshape(train.shape[:-1]),
            km.predict(test.reshape(-1, test.shape[-1])).reshape(test.shape[:-1]))


@dataclass(frozen=True)
class LayerwiseFit:
    """One model's layer-wise fit: ``codes[l]`` (train, test) cluster codes of level l + 1
    ((n, g, g) each), ``raw_codes[l]`` the codes k-means gives on the level's raw input
    patches (no training: the comparison), ``level_accuracy[l]`` the test accuracy of
    level l + 1's two-layer net, ``train_accuracy`` and ``test_accuracy`` of the top linear
    classifier, ``seconds`` of training and clustering (a shared stack's time split
    evenly between its models)."""

    codes: tuple[tuple[np.ndarray, np.ndarray], ...]
    raw_codes: tuple[tuple[np.ndarray, np.ndarray], ...]
    level_accuracy: tuple[float, ...]
    train_accuracy: float
    test_accuracy: float
    seconds: float


def _train(build, seeds: Sequence[int], X: Tensor, y: Tensor, training: Training, device):
    """A stack of ``build()`` models, one per seed, trained by the engine on (X, y)."""
    from theorydl.nn import Adam, Arrays, init_modules, train

    stack = init_modules(build, seeds, device=device)
    train(stack, Arrays(X, y), Adam(training.lr, weight_decay=training.weight_decay),
          training.epochs, loss="cross_entropy", batch_size=training.batch_size)
    return stack


def _accuracy(stack, X: Tensor, y: Tensor) -> np.ndarray:
    from theorydl.nn import evaluate

    err, _ = evaluate(stack, X, y, "cross_entropy")
    return 1.0 - err.cpu().numpy()


def _raw_patches(x: np.ndarray, s: int) -> np.ndarray:
    """(n, c, H, W) -> (n, H / s, W / s, c s s): every s x s patch as a vector."""
    n, c, h, w = x.shape
    return (x.reshape(n, c, h // s, s, w // s, s).transpose(0, 2, 4, 1, 3, 5)
            .reshape(n, h // s, w // s, c * s * s))


def fit_layerwise(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  y_test: np.ndarray, seeds: Sequence[int], ks: Sequence[int], *, s: int,
                  width: int, n_labels: int, training: Training, top: Training,
                  init_scale: float, cluster_samples: int, n_init: int,
                  device) -> list[LayerwiseFit]:
    """The layer-wise algorithm for every seed: images (n, side, side), labels (n,);
    ``ks[l]`` clusters at level l + 1. Level 1 trains every seed's net in one stack (they
    share the input); from level 2 on each model's input is its own clustering, so its
    net trains in a stack of one. Seeds fix the nets' initialisation and data order and
    k-means's subsample and starts."""
    m = len(seeds)
    inputs = [(x_train[:, None], x_test[:, None])] * m  # per model, level by level
    ytr = torch.as_tensor(y_train)
    codes: list[list] = [[] for _ in range(m)]
    raw: list[list] = [[] for _ in range(m)]
    level_acc: list[list] = [[] for _ in range(m)]
    seconds = np.zeros(m)
    for k in ks:
        groups: dict[int, list[int]] = {}
        for i, inp in enumerate(inputs):
            groups.setdefault(id(inp[0]), []).append(i)
        new_inputs = list(inputs)
        for members in groups.values():
            start = time.perf_counter()
            xtr, xte = inputs[members[0]]
            c_in, grid = xtr.shape[1], xtr.shape[2]
            Xtr, Xte = torch.as_tensor(xtr), torch.as_tensor(xte)
            stack = _train(lambda: level_net(c_in, grid, s, width, n_labels, init_scale),
                           [seeds[i] for i in members], Xtr, ytr, training, device)
            acc = _accuracy(stack, Xte, torch.as_tensor(y_test))
            raw_tr, raw_te = _raw_patches(xtr, s), _raw_patches(xte, s)
            shared = (time.perf_counter() - start) / len(members)
            for j, i in enumerate(members):
                start = time.perf_counter()
                ctr, cte = cluster_patches(patch_embeddings(stack, j, Xtr, s),
                                           patch_embeddings(stack, j, Xte, s), k, seeds[i],
                                           max_samples=cluster_samples, n_init=n_init)
                seconds[i] += shared + time.perf_counter() - start
                raw[i].append(cluster_patches(raw_tr, raw_te, k, seeds[i],
                                              max_samples=cluster_samples, n_init=n_init))
                codes[i].append((ctr, cte))
                level_acc[i].append(float(acc[j]))
                new_inputs[i] = (one_hot(ctr, k), one_hot(cte, k))
        inputs = new_inputs
    out = []
    for i in range(m):
        start = time.perf_counter()
        xtr, xte = (torch.as_tensor(a) for a in inputs[i])
        k, g = xtr.shape[1], xtr.shape[2]
        stack = _train(lambda: nn.Sequential(nn.Flatten(), nn.Linear(k * g * g, n_labels)),
                       [seeds[i]], xtr, ytr, top, device)
        train_acc = float(_accuracy(stack, xtr, ytr)[0])
        test_acc = float(_accuracy(stack, xte, torch.as_tensor(y_test))[0])
        seconds[i] += time.perf_counter() - start
        out.append(LayerwiseFit(tuple(codes[i]), tuple(raw[i]), tuple(level_acc[i]),
                                train_acc, test_acc, float(seconds[i])))
    return out


def fit_e2e(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
            y_test: np.ndarray, seeds: Sequence[int], *, s: int, depth: int, width: int,
            n_labels: int, training: Training, device) -> tuple[np.ndarray, np.ndarray, float]:
    """The end-to-end baseline, every seed in one stack: (train accuracy (M,), test
    accuracy (M,), seconds per model)."""
    start = time.perf_counter()
    side = x_train.shape[-1]
    Xtr, ytr = torch.as_tensor(x_train[:, None]), torch.as_tensor(y_train)
    stack = _train(lambda: e2e_net(side, s, depth, width, n_labels), seeds, Xtr, ytr,
                   training, device)
    train_acc = _accuracy(stack, Xtr, ytr)
    test_acc = _accuracy(stack, torch.as_tensor(x_test[:, None]), torch.as_tensor(y_test))
    return train_acc, test_acc, (time.perf_counter() - start) / len(seeds)
