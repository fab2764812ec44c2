"""pooling: does the geometry of pooling decide which correlations a network models?

Cohen & Shashua, "Inductive Bias of Deep Convolutional Networks through Pooling Geometry"
(ICLR 2017). Science modules: ``blobs`` (the images and their closedness and symmetry),
``networks`` (the ConvAC and ReLU nets), ``ranks`` (exact separation ranks). Notes in its
README.md.
"""
