"""Switches for CPU/GPU parity: the CPU tanh shortcut and TF32 convolutions."""

from __future__ import annotations

import torch

from theorydl.nn import Adam, init_stack, train_stack


def _data(n=64, d=5):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, d, generator=g)
    return X, (X.sum(1) > 0).long()


def test_tanh_shortcut_off_computes_torch_tanh_bit_for_bit():
    X, _ = _data()
    exact = init_stack([5, 7, 4, 2], seeds=range(3), activation="tanh", fast_tanh=False)
    fast = init_stack([5, 7, 4, 2], seeds=range(3), activation="tanh")
    with torch.no_grad():  # the shortcut applies only without autograd, on CPU
        out_exact, hid_exact = exact.forward_t(X, return_hidden=True)
        out_fast, hid_fast = fast.forward_t(X, return_hidden=True)
    with torch.enable_grad():  # torch.tanh through autograd: never the shortcut
        out_ref, hid_ref = exact.forward_t(X, return_hidden=True)
    assert all(torch.equal(a, b) for a, b in zip(hid_exact, hid_ref))
    assert torch.equal(out_exact, out_ref.detach())
    # The shortcut is the same function to float rounding, but not the same bits.
    assert torch.allclose(out_fast, out_exact, atol=1e-5)
    assert not all(torch.equal(a, b) for a, b in zip(hid_fast, hid_exact))


def test_tanh_switch_survives_training_and_compaction():
    X, y = _data()
    stack = init_stack([5, 6, 2], seeds=range(2), fast_tanh=False)
    train_stack(stack, X, y, Adam(1e-2), 2, batch_size=16)
    assert stack.fast_tanh is False
    assert stack.bind([p[1:] for p in stack.params], [1]).fast_tanh is False


def test_tf32_switch_is_set_for_the_run_and_restored():
    from theorydl.rl.dqn import allow_tf32

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, matmul.allow_tf32
    with allow_tf32(False):
        assert (cudnn.allow_tf32, matmul.allow_tf32) == (False, False)
        with allow_tf32(True):
            assert (cudnn.allow_tf32, matmul.allow_tf32) == (True, True)
        assert (cudnn.allow_tf32, matmul.allow_tf32) == (False, False)
    assert (cudnn.allow_tf32, matmul.allow_tf32) == before


def test_dqn_runs_with_tf32_off_by_default(monkeypatch):
    from theorydl.rl import dqn

    seen = []
    real = dqn._train_dqn

    def spy(*args, **kwargs):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return real(*args, **kwargs)

    monkeypatch.setattr(dqn, "_train_dqn", spy)
    cfg = dqn.DQNConfig(total_steps=60, learning_starts=20, replay_capacity=100,
                        eps_decay_steps=20, target_update=20)
    assert cfg.allow_tf32 is False
    dqn.train_dqn(cfg, seed=0)
    assert seen == [(False, False)]
