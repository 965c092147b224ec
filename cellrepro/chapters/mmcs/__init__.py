"""The MMCS chapter (Hu et al., "Advanced Multi-Microscopic Views Cell Semi-supervised Segmentation").

:mod:`.train` (CPnet with a nucleus channel, the self-adaptive diameter, phase 1 and phase 2 with
temporal ensembling), :mod:`.schedule` (SGD, warm-up, halving), :mod:`.architectures` (CPnet, MONAI's
U-Net and SwinUNETR on flows or on 3 classes: Table 8), :mod:`.protocol` (the data of each seed,
Tables 1, 3 and 4's runs, and how rows become the paper's tables; the notebooks' one entry point),
:mod:`.comparisons` (Tables 2 and 8), :mod:`.sweeps` (Tables 5-7), :mod:`.figures`.
"""
