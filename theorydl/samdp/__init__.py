"""theorydl.samdp: understanding a trained DQN through its activation map and an SAMDP.

Zahavy, Ben-Zrihem & Mannor, "Graying the black box: Understanding DQNs" (ICML 2016);
Baram, Zahavy & Mannor, Semi-Aggregated MDPs.  The recorded last hidden layer of a
playing DQN is mapped with t-SNE, clustered in space and time, and the clusters become
the states of a Semi-Aggregated MDP whose transitions ("skills") explain the policy.
Pure functions of numpy arrays in trajectory order; every random choice takes an
explicit seed.  Inputs per recording of T steps: activations (T, D), value
v_t = max_a Q (T,), reward (T,), episode_end (T,) bool (True at an episode's last step),
optionally truncated (T,) bool (the episode_end steps that were time limits, not game
ends), gamma.  The abstract chain has a terminal state (value 0) into which the last
run of every terminated episode makes a skill.

Embedding (``theorydl.samdp.embedding``):
    embed(activations, *, pca_dims=50, tsne_dims=2, perplexity=30.0, seed=0,
          max_iter=1000) -> (T, tsne_dims)
    effective_perplexity(perplexity, n_samples) -> float    min(perplexity, (T-1)/3)

Clustering (``theorydl.samdp.clustering``):
    clustering_features(embedding, value, *, value_weight=1.0) -> (T, E+1)
    episode_ids(episode_end) -> (T,) int
    temporal_smooth(features, episode_end, window, *, kernel="uniform", pull=1.0)
    kmeans(features, k, *, seed=0, n_init=10, max_iter=300) -> KMeansResult
    spatio_temporal_kmeans(features, k, episode_end, *, window=2, kernel="uniform",
                           pull=1.0, seed=0, n_init=10, max_iter=300) -> KMeansResult
    select_k(features, ks, seed=0, *, episode_end=None, window=0, ...) -> KSelection
    KMeansResult(labels, centres, inertia, n_iter)
    KSelection(k, ks, silhouettes, inertias, results)

SAMDP (``theorydl.samdp.model``):
    build_samdp(labels, value, reward, episode_end, gamma, *, n_clusters=None,
                min_skill_length=1, prune=0.0, truncated=None) -> SAMDP
    SAMDP(n_clusters, transition, counts, skill_reward, skill_length, skill_discount,
          cluster_values, entry_values, entry_returns, samdp_values, masses, labels,
          gamma, prune, min_skill_length); .K .P .discount .terminal   ((K, K + 1)
          matrices, column K the terminal state)
    TERMINAL = -1   (SkillInstances.target of a skill into the terminal state)
    segment_runs(labels, episode_end) -> Runs
    merge_short_runs(labels, episode_end, min_skill_length) -> (T,) int
    skill_instances(labels, reward, episode_end, gamma, *, min_skill_length=1,
                    truncated=None) -> SkillInstances
    transition_matrix(counts, prune=0.0) -> (K, K + 1)
    samdp_values(transition, skill_reward, skill_length, gamma, *, discount=None) -> (K,)
    cluster_means(x, labels, n_clusters=None) -> (K,) or (K, F)

Criteria (``theorydl.samdp.criteria``):
    vmse(v_dqn, v_samdp) -> float
    inertia(features, labels, centres=None) -> float
    intensity_factor(labels, episode_end) -> float
    transition_entropy(transition, weights=None) -> float   (bits)
    greedy_skills(samdp) -> (K,) int
    greedy_consistency(samdp, reward, episode_end, *, fraction=0.25, truncated=None)
        -> GreedyConsistency(top, bottom, difference, n_top_episodes, n_bottom_episodes)
    evaluate_samdp(samdp, features, reward, episode_end, *, fraction=0.25,
                   truncated=None) -> dict

Figures (``theorydl.samdp.plots``; imported lazily, needs matplotlib):
    plot_embedding(embedding, value, labels, path, *, title=None)
    plot_samdp_graph(embedding, samdp, path, *, title=None, min_probability=0.0)
    plot_criteria(ks, criteria, path, *, title=None)
    plot_cluster_frames(frames, embedding, labels, path, *, n_per_cluster=5)
    save_png_atomic(fig, path, *, dpi=130)
"""

from theorydl.samdp.clustering import (
    KMeansResult,
    KSelection,
    clustering_features,
    episode_ids,
    kmeans,
    select_k,
    spatio_temporal_kmeans,
    temporal_smooth,
)
from theorydl.samdp.criteria import (
    GreedyConsistency,
    evaluate_samdp,
    greedy_consistency,
    greedy_skills,
    inertia,
    intensity_factor,
    transition_entropy,
    vmse,
)
from theorydl.samdp.embedding import effective_perplexity, embed
from theorydl.samdp.model import (
    SAMDP,
    TERMINAL,
    Runs,
    SkillInstances,
    build_samdp,
    cluster_means,
    merge_short_runs,
    samdp_values,
    segment_runs,
    skill_instances,
    transition_matrix,
)

__all__ = [
    "SAMDP",
    "TERMINAL",
    "GreedyConsistency",
    "KMeansResult",
    "KSelection",
    "Runs",
    "SkillInstances",
    "build_samdp",
    "cluster_means",
    "clustering_features",
    "effective_perplexity",
    "embed",
    "episode_ids",
    "evaluate_samdp",
    "greedy_consistency",
    "greedy_skills",
    "inertia",
    "intensity_factor",
    "kmeans",
    "merge_short_runs",
    "samdp_values",
    "segment_runs",
    "select_k",
    "skill_instances",
    "spatio_temporal_kmeans",
    "temporal_smooth",
    "transition_entropy",
    "transition_matrix",
    "vmse",
]
