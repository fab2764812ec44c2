"""Norms and fit statistics against numpy and hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorydl.nn.norms import error_rate, frobenius_norms, l2_path_norm, margin, spectral_norms
from theorydl.nn.pathsgd import path_norm
from theorydl.nn.stack import init_stack

SIZES = (5, 7, 4, 3)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def weights():
    return [w.detach() for w in init_stack(SIZES, SEEDS, dtype=torch.float64).weights]


def test_frobenius_and_spectral_match_numpy(weights):
    fro, spec = frobenius_norms(weights), spectral_norms(weights)
    assert fro.shape == spec.shape == (len(SEEDS), len(SIZES) - 1)
    for i in range(len(SEEDS)):
        for l, w in enumerate(weights):
            a = w[i].numpy()
            assert fro[i, l].item() == pytest.approx(np.linalg.norm(a, "fro"), rel=1e-12)
            assert spec[i, l].item() == pytest.approx(np.linalg.norm(a, 2), rel=1e-10)
    assert torch.all(spec <= fro + 1e-12)


def test_l2_path_norm_is_pathsgd_path_norm(weights):
    torch.testing.assert_close(l2_path_norm(weights), path_norm(weights))
    assert l2_path_norm(weights).shape == (len(SEEDS),)


LOGITS = torch.tensor(
    [
        # model 0: all correct, margins 2, 0.5, 1 -> 0.5
        [[3.0, 1.0, 0.0], [0.0, 1.5, 1.0], [-1.0, 0.0, 1.0]],
        # model 1: sample 1 misclassified by 2, sample 2 a tie -> -2; argmax errors: 1 and 2
        [[1.0, 0.0, 0.0], [2.0, 0.0, 0.5], [1.0, 1.0, 1.0]],
    ]
)
Y = torch.tensor([0, 1, 2])


def test_margin_by_hand():
    torch.testing.assert_close(margin(LOGITS, Y), torch.tensor([0.5, -2.0]))
    # A tie alone gives margin 0.
    tie = torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
    torch.testing.assert_close(margin(tie, torch.tensor([0, 0])), torch.tensor([0.0]))


def test_error_rate_by_hand():
    # The tie in model 1, sample 2 goes to class 0 (first maximum), which is wrong.
    torch.testing.assert_close(error_rate(LOGITS, Y), torch.tensor([0.0, 2 / 3]))


def test_per_model_labels():
    y = torch.tensor([[0, 1, 2], [0, 0, 0]])
    torch.testing.assert_close(error_rate(LOGITS, y), torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(margin(LOGITS, y), torch.tensor([0.5, 0.0]))


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        margin(LOGITS, torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        error_rate(LOGITS[0], Y)
    with pytest.raises(ValueError):
        margin(torch.zeros(1, 3, 1), Y)
