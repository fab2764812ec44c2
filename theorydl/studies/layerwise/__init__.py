"""layerwise: does a layer-wise algorithm (two-layer nets and clustering) learn a
hierarchical generative model, and compete with end-to-end SGD?

Malach & Shalev-Shwartz, "A Provably Correct Algorithm for Deep Learning that Actually
Works" (arXiv:1803.09522, 2018), built from its abstract, introduction and Figure 1 (the
rest is the project's choice). Science modules: ``generative`` (the hierarchical model,
``HierarchicalModel``, every example with its latent classes) and ``algorithm`` (the
layer-wise learner and the end-to-end baseline, both through the engine). Notes in its
README.md.
"""
