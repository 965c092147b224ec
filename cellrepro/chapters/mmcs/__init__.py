"""The MMCS chapter (Hu et al., "Advanced Multi-Microscopic Views Cell Semi-supervised Segmentation").

:mod:`.train` (CPnet with a nucleus channel, the self-adaptive diameter, phase 1 and phase 2 with
temporal ensembling), :mod:`.schedule` (SGD, warm-up, halving), :mod:`.protocol` (what each section
runs per seed and how rows become the paper's tables), :mod:`.figures`.
"""
