"""The SAMDP study's published claims, apart from the experiment so that the figures can
draw a claim's bound without importing the training code."""

from __future__ import annotations

from theorydl.spine.experiment import Claim

__all__ = ["CLAIMS"]

#: Checked on the metrics samdp_analysis writes per game and seed.
CLAIMS = (
    Claim("greedy_consistency_top_over_bottom",
          "high-return episodes follow the SAMDP's greedy skills more often than "
          "low-return ones",
          "Zahavy, Ben-Zrihem & Mannor 2016 (ICML), SAMDP criteria: greedy consistency",
          "*.seed_*.greedy_difference", ">=", 0.0, scale={"dqn.total_steps": 5_000_000},
          note="every (game, seed) (the worst one); measured: greedy fraction of the top "
               "quarter of recorded episodes by return minus the bottom quarter's; "
               "MinAtar games stand in for the paper's Atari games, and 5M steps per "
               "agent (the MinAtar paper's DQN) for its trained agents",
          needs="5M DQN steps per agent, 10-19 h on one CPU core: a GPU, or a cluster "
                "(one agent per task)"),
)
