"""The brightfield chapter (Prytula, whole-cell instance segmentation from brightfield, BSc thesis 2023).

* :mod:`.train`: the SE-U-Net loop shared by the semantic tables (crops of the two brightfield planes,
  per-head losses, MONAI sliding-window inference, pooled-pixel scores);
* :mod:`.heads`: Tables 5.1-5.2, 1 to 4 decoupled heads, the SE and Otsu controls, fragments near nuclei;
* :mod:`.overlap` and :mod:`.overlap_loss`: the overlap probability maps v0-v4 (Sec. 4.3, 5.4) and
  Table 5.3, with the reweighted focal losses of :mod:`cellrepro.losses.focal` (Eq. 4.5, Eq. 5.1);
* :mod:`.synthesis`, :mod:`.pix2pix` and :mod:`.synthetic_data`: copy-paste in phase contrast, the
  phase -> brightfield translator, and Tables 5.4-5.6 (Sec. 4.4, 5.5);
* :mod:`.fidelity`: how real translated brightfield looks, by a conditional classifier two-sample test
  with its controls (Sec. 5.6, claim C10);
* :mod:`.claims`: the registered gates and verdict rules of the four sections (issue 31).
"""
