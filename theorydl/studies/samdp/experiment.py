"""SAMDP extraction: what a trained DQN's last hidden layer says about its policy.

After Zahavy, Ben-Zrihem & Mannor ("Graying the black box: Understanding DQNs", ICML
2016): train a DQN per (game, seed), let it play while its last hidden layer, Q-values,
actions and rewards are recorded, embed the activations with PCA and t-SNE, cluster
them in space and time, and build the Semi-Aggregated MDP whose skills (persistent
transitions between clusters) explain the policy.

One trial = one (game, seed): a Ray task trains the DQN and records the policy; the
store gets, per trial, one ``checkpoint`` row (the weights, as the bytes of a
weights-only ``torch.save``), one ``train_episode`` row per training episode, and one
``step`` row per recorded step. The analysis stage embeds, clusters and models each
trial's recording and compares K and plain against spatio-temporal K-means.

Run it: ``dvc repro samdp_analyze``.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

from pydantic import Field, field_validator

from theorydl.spine.config import Paths, Section, figure_dir, figure_file, plot_file
from theorydl.spine.experiment import Experiment, Plot, Stage, Unit, run_each, utcnow
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import worker_device
from theorydl.spine.store.rows import TrialResult
from theorydl.studies.samdp.claims import CLAIMS
from theorydl.studies.samdp.recording import checkpoint_from_rows, recording_from_rows

__all__ = ["SAMDPExperiment", "SAMDPConfig", "recording_from_rows", "checkpoint_from_rows"]

GAMES = ("breakout", "space_invaders", "seaquest", "asterix", "freeway")


class DQNParams(Section):
    total_steps: int = Field(default=30_000, ge=1)
    """Environment steps of training (MinAtar paper: 5M)."""
    replay_capacity: int = Field(default=100_000, ge=1)
    """Transitions the replay buffer holds."""
    batch_size: int = Field(default=32, ge=1)
    """Minibatch size of each update."""
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    """Discount factor."""
    lr: float = Field(default=2.5e-4, gt=0.0)
    """Learning rate (RMSprop, as the MinAtar paper)."""
    target_update: int = Field(default=1000, ge=1)
    """Steps between target-network syncs."""
    learning_starts: int = Field(default=5000, ge=0)
    """Random-action steps that fill the replay buffer before learning."""
    eps_start: float = Field(default=1.0, ge=0.0, le=1.0)
    """Initial exploration rate."""
    eps_end: float = Field(default=0.1, ge=0.0, le=1.0)
    """Final exploration rate."""
    eps_decay_steps: int = Field(default=15_000, ge=1)
    """Steps over which exploration decays linearly (after learning_starts)."""
    conv_channels: int = Field(default=16, ge=1)
    """Filters of the 3x3 convolution."""
    hidden: int = Field(default=128, ge=2)
    """Units of the last hidden layer: the layer that is recorded and analysed."""
    allow_tf32: bool = False
    """TF32 convolutions and matmuls on Ampere+ GPUs (faster, 10-bit mantissa: results
    differ from the CPU's beyond float32 rounding). Off for CPU/GPU parity."""


class RecordParams(Section):
    steps: int = Field(default=3000, ge=10)
    """Steps the trained policy plays while recorded (across episodes)."""
    epsilon: float = Field(default=0.01, ge=0.0, le=1.0)
    """Exploration while recorded."""
    frames: bool = True
    """Also store each step's game frame (for the nearest-frames figure)."""


class AnalysisParams(Section):
    pca_dims: int = Field(default=50, ge=2)
    """PCA dimensions before t-SNE."""
    perplexity: float = Field(default=30.0, gt=1.0)
    """t-SNE perplexity (clamped below a third of the recording's length)."""
    ks: list[int] = Field(default_factory=lambda: [4, 6, 8, 10, 12], min_length=1)
    """Numbers of clusters to build SAMDPs for (criteria against K)."""
    k: int | None = Field(default=None, ge=2)
    """K of the figures and metrics; null: chosen among ks by silhouette."""
    window: int = Field(default=2, ge=0)
    """Temporal window of spatio-temporal K-means (0: plain K-means)."""
    value_weight: float = Field(default=1.0, ge=0.0)
    """Weight of the (standardised) DQN value beside the 2-D embedding when clustering."""
    min_skill_length: int = Field(default=2, ge=1)
    """Cluster visits shorter than this many steps are merged into a neighbour."""
    prune: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Transition probabilities below this are dropped (rows renormalised)."""

    @field_validator("ks")
    @classmethod
    def _ks(cls, value: list[int]) -> list[int]:
        if any(k < 2 for k in value) or len(set(value)) != len(value):
            raise ValueError(f"ks must be distinct values >= 2, got {value}")
        return sorted(value)


class SAMDPPaths(Paths):
    criteria: str = plot_file("criteria")
    """Plot data: criteria against K (spatio-temporal and plain K-means)."""
    figures: str = figure_dir()
    """Folder of figures: per game and seed, the t-SNE map, SAMDP graph, criteria, frames."""
    figure_greedy: str = figure_file("greedy")
    """Greedy consistency (the claim's measure) per game and seed: the top and bottom quarter
    of episodes and their difference at the figures' K, the difference against K, and the
    claim's bound."""


class SAMDPConfig(Section):
    games: list[str] = Field(min_length=1)
    """MinAtar games (breakout, space_invaders, seaquest, asterix, freeway)."""
    n_seeds: int = Field(default=1, ge=1)
    """Agents per game, seeds 0..n_seeds-1."""
    backend: Literal["minatar", "atari"] = "minatar"
    """minatar (CPU-friendly) or atari (gymnasium + ale-py, for GPU clusters)."""
    sticky_action_prob: float = Field(default=0.1, ge=0.0, le=1.0)
    """Probability that the environment repeats the previous action."""
    dqn: DQNParams = DQNParams()
    """Training."""
    record: RecordParams = RecordParams()
    """Recording the trained policy."""
    analysis: AnalysisParams = AnalysisParams()
    """Embedding, clustering and the SAMDP."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where each DQN trains: auto = CUDA when the worker has a GPU."""
    gpus_per_trial: float = Field(default=0.25, ge=0.0, le=8.0)
    """GPU share each trial asks Ray for (asked only where the cluster has GPUs)."""
    paths: SAMDPPaths = SAMDPPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("games")
    @classmethod
    def _games(cls, value: list[str]) -> list[str]:
        for game in value:
            if game not in GAMES:
                raise ValueError(f"unknown game {game!r}; MinAtar games: {', '.join(GAMES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"repeated games in {value}")
        return value


def _dqn_config(spec: TrialSpec):
    from theorydl.rl import DQNConfig

    c = spec.config
    d = dict(c["dqn"])
    return DQNConfig.from_dict({
        **{k: v for k, v in d.items() if k not in ("conv_channels",)},
        "conv_channels": (d["conv_channels"],), "backend": c["backend"], "game": c["game"],
        "sticky_action_prob": c["sticky_action_prob"]})


class SAMDPExperiment(Experiment):
    name = "samdp"
    version = 1
    section = SAMDPConfig
    stages = {
        "train": Stage(reads=("games", "n_seeds", "backend", "sticky_action_prob", "dqn",
                              "record", "device", "gpus_per_trial")),
        "analyze": Stage(reads=("analysis",)),
    }
    claims = CLAIMS
    figure_claims = {"*greedy*": ("greedy_*",)}
    plots = {"samdp_vmse": Plot(
        "criteria", x="k", y=("vmse_spatiotemporal", "vmse_plain"),
        title="SAMDP value error against K", x_label="K (clusters)", y_label="VMSE",
        about="SAMDP criteria against K: spatio-temporal against plain K-means.")}

    def trials(self, cfg: SAMDPConfig) -> list[TrialSpec]:
        return [
            TrialSpec(self.name, self.version, {
                "game": game, "backend": cfg.backend,
                "sticky_action_prob": cfg.sticky_action_prob,
                "dqn": cfg.dqn.model_dump(), "record": cfg.record.model_dump()},
                seed=seed, swept=("game",))
            for game in cfg.games for seed in range(cfg.n_seeds)]

    def units(self, trials, cfg: SAMDPConfig) -> list[Unit]:
        gpus = 0.0 if cfg.device == "cpu" else cfg.gpus_per_trial
        return [Unit((t,), num_cpus=1, num_gpus=gpus,
                     label=f"{t.config['game']}-{t.seed}") for t in trials]

    def trial_cost(self, trial: TrialSpec, cfg: SAMDPConfig) -> float:
        """Environment steps: training (with a learning step every step after
        learning_starts) plus recording."""
        c = trial.config
        return float(c["dqn"]["total_steps"] + c["record"]["steps"])

    def run_unit(self, unit: Unit, cfg: SAMDPConfig) -> list[TrialResult]:
        device = str(worker_device(cfg.device))

        def one(spec: TrialSpec) -> TrialResult:
            import torch

            from theorydl.rl import record_policy, train_dqn

            start = utcnow()
            dqn = _dqn_config(spec)
            # One thread per task: Ray runs a task per CPU, and torch's default thread
            # pool oversubscribes shared cores badly (10-30x slower measured here).
            out = train_dqn(dqn, spec.seed, device=device, num_threads=1)
            rec_cfg = spec.config["record"]
            rec = record_policy(out.state_dict, dqn, rec_cfg["steps"], rec_cfg["epsilon"],
                                seed=spec.seed + 1_000_003, device=device,
                                keep_frames=rec_cfg["frames"], num_threads=1)
            blob = io.BytesIO()
            torch.save(dict(out.state_dict), blob)
            rows: list[dict[str, Any]] = [{"kind": "checkpoint", "blob": blob.getvalue(),
                                           "dqn_config": json.dumps(dqn.to_dict())}]
            rows += [{"kind": "train_episode", "episode": i, "episode_return": float(r),
                      "step": int(s)}
                     for i, (r, s) in enumerate(zip(out.episode_returns, out.episode_end_steps))]
            frames = rec.frames.reshape(len(rec), -1) if rec.frames is not None else None
            for t in range(len(rec)):
                rows.append({
                    "kind": "step", "step": t, "episode": int(rec.episode_index[t]),
                    "hidden": rec.hidden[t].tolist(), "q_values": rec.q_values[t].tolist(),
                    "value": float(rec.value[t]), "action": int(rec.action[t]),
                    "reward": float(rec.reward[t]), "episode_end": bool(rec.episode_end[t]),
                    "frame": None if frames is None else frames[t].tobytes()})
            if rec.frames is not None:
                rows[0]["frame_shape"] = json.dumps(list(rec.frames.shape[1:]))
            return TrialResult(spec.id, "ok", start, utcnow(), rows=rows, device=device)

        return run_each(unit, one)
