"""The brightfield chapter (Prytula, whole-cell instance segmentation from brightfield, BSc thesis 2023).

:mod:`.overlap` builds the thesis's overlap probability maps v0-v4 (Sec. 4.3, Sec. 5.4, Fig. 5.2,
Table 5.3) from a field's amodal cell masks and nuclei; the losses they feed, the label-reweighted
focal loss (Eq. 4.5) and the loss-reweighted variant (Eq. 5.1), live in :mod:`cellrepro.losses.focal`.
"""
