"""ib: do networks compress their representations (the Information Bottleneck)?

Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via Information"
(2017), and Saxe et al., "On the Information Bottleneck Theory of Deep Learning" (ICLR 2018).
Science modules: ``dataset`` (the 12-bit task), ``binning`` and ``kde`` (batched mutual
information estimators), ``snr`` (gradient signal-to-noise and the drift/diffusion
transition). Notes in its README.md.
"""
