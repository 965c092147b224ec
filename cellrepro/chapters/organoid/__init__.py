"""The organoid chapter (Zwijghuizen, semi-supervised contrastive learning for organoid segmentation).

:mod:`.split` (data and the held-out test set), :mod:`.protocol` (the three stages, k-fold
selection, caching), :mod:`.evaluate` (per crop, image and seed), :mod:`.controls` (classical
pipeline, linear probe), :mod:`.claims` (the register's tests), :mod:`.figures`.
"""
