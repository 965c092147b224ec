"""The multimodal chapter (Wang et al., semi-supervised cell instance segmentation for
multi-modality microscope images, NeurIPS 2022 CellSeg).

:mod:`.split` (the chapter's data: training images per seed, a fixed test set),
:mod:`.train` (one trainer per branch, the CPS and pseudo-label cycles), :mod:`.evaluate`
(prediction and Table 3's per-image metrics), :mod:`.protocol` (the routing experiment),
:mod:`.figures`, :mod:`.pipeline` (routers + branch models saved as one folder, routed
prediction with models loaded on demand; Sec. 2.6) with its commands ``cellrepro route`` and
``cellrepro predict`` (:mod:`.commands`), :mod:`.table4` (the routed pipeline per data seed, Table 4),
:mod:`.table4_claims` (the rules of claims C6-C13 on its rows), :mod:`.loading` (route then load one model
vs load all, Sec. 2.6), and :mod:`.routing` (Sec. 2.2-2.4): K-Means on HSV
statistics routes an image to its modality's model, K-Means on RGB statistics splits brightfield into large/overlapping and small/dispersed
cells, the general-model fallback for phase contrast and DIC, and the routing confusion matrix.
The networks are :mod:`cellrepro.nets.cellpose` (phase contrast, DIC, large brightfield) and
:mod:`cellrepro.nets.vgg_unet` (small brightfield); the Cellpose loss is
:mod:`cellrepro.losses.flows`.
"""
