"""Mask R-CNN baseline (cellrepro.nets.maskrcnn): hand-made targets, a finite training loss, no
resizing, painting of overlapping detections, a two-step training run and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cellrepro.data.types import CellImage
from cellrepro.nets.maskrcnn import build_maskrcnn, instance_targets, predict_maskrcnn, train_maskrcnn


def two_channel(im: CellImage) -> torch.Tensor:
    """(2, H, W): the image's green channel as cytoplasm, then the nucleus."""
    return torch.stack([torch.from_numpy(im.image[..., 1] / 255.0), torch.from_numpy(im.nucleus)]).float()


def discs(name: str, size: int, centres, radius: int = 5) -> CellImage:
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    for i, (cy, cx) in enumerate(centres, 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = i
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 1] = np.where(labels > 0, 200, 20)
    return CellImage(name, image, labels, nucleus=(labels > 0).astype(np.float32) * 0.8)


def test_instance_targets_boxes_are_exclusive_and_ids_without_pixels_are_skipped():
    lab = np.zeros((6, 8), np.int32)
    lab[1:3, 2:5] = 3          # rows 1-2, cols 2-4
    lab[4, 7] = 9              # one pixel in the corner
    t = instance_targets(lab)  # ids 1, 2, 4..8 have no pixels
    assert t["boxes"].dtype == torch.float32 and t["labels"].dtype == torch.int64 and t["masks"].dtype == torch.uint8
    assert t["boxes"].tolist() == [[2, 1, 5, 3], [7, 4, 8, 5]]
    assert t["labels"].tolist() == [1, 1]
    assert t["masks"].shape == (2, 6, 8)
    assert torch.equal(t["masks"][0].bool(), torch.from_numpy(lab == 3))
    assert t["masks"][1].sum() == 1


def test_instance_targets_of_an_empty_image():
    t = instance_targets(np.zeros((5, 7), np.int32))
    assert t["boxes"].shape == (0, 4) and t["labels"].shape == (0,) and t["masks"].shape == (0, 5, 7)


def test_training_forward_gives_finite_losses():
    torch.manual_seed(0)
    model = build_maskrcnn(in_channels=2).train()
    lab = discs("a", 64, [(20, 20), (40, 45)]).labels
    targets = [instance_targets(lab), instance_targets(np.zeros((64, 64), np.int32))]  # the second has no cells
    losses = model([torch.rand(2, 64, 64), torch.rand(2, 64, 64)], targets)
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    assert all(math.isfinite(float(v.detach())) for v in losses.values())


def test_eval_forward_keeps_the_input_size():
    torch.manual_seed(0)
    model = build_maskrcnn(in_channels=2).eval()
    with torch.no_grad():
        out = model([torch.rand(2, 64, 96)])[0]
    assert out["masks"].shape[1:] == (1, 64, 96)
    assert model.backbone.body.conv1.in_channels == 2


class FixedDetections(nn.Module):
    """Stands in for a model: always returns the given scores and mask probabilities."""

    def __init__(self, scores, masks):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.scores, self.masks = torch.tensor(scores), torch.as_tensor(masks, dtype=torch.float32)[:, None]

    def forward(self, images):
        return [{"scores": self.scores, "masks": self.masks}]


def test_predict_paints_higher_scores_on_top_and_numbers_consecutively():
    m = np.zeros((4, 10, 10), np.float32)
    m[0, 0:6, 0:6] = 0.9   # score 0.6, partly under detection 1
    m[1, 3:9, 3:9] = 0.9   # score 0.9: wins the overlap
    m[2, 8:10, 0:3] = 0.4  # below mask_threshold: nothing
    m[3, 0:10, 9] = 0.9    # score 0.3: below score_threshold
    labels = predict_maskrcnn(FixedDetections([0.6, 0.9, 0.7, 0.3], m), torch.zeros(2, 10, 10))
    assert labels.dtype == np.int32 and labels.shape == (10, 10)
    assert set(np.unique(labels)) == {0, 1, 2}
    top = labels[5, 5]
    assert top == 1 and (labels == top).sum() == 36          # the 0.9 detection whole
    assert (labels[0:6, 0:6] != top).sum() == 27 and (labels == 3 - top).sum() == 27
    m2 = m.copy()
    m2[0, 0:6, 0:6], m2[0, 0, 0] = 0.0, 0.9                 # a one-pixel detection is dropped
    assert set(np.unique(predict_maskrcnn(FixedDetections([0.6, 0.9, 0.7, 0.3], m2), torch.zeros(2, 10, 10)))) == {0, 1}


def test_predict_with_a_real_model_gives_consecutive_int32_labels():
    torch.manual_seed(0)
    labels = predict_maskrcnn(build_maskrcnn(2), torch.rand(2, 64, 64), score_threshold=0.0)
    assert labels.dtype == np.int32 and labels.shape == (64, 64)
    ids = np.unique(labels)
    assert ids.tolist() == list(range(ids.max() + 1))


def test_predict_without_detections_gives_background():
    labels = predict_maskrcnn(FixedDetections([0.3], np.ones((1, 6, 7))), torch.zeros(2, 6, 7))
    assert labels.dtype == np.int32 and labels.shape == (6, 7) and not labels.any()


def test_train_two_steps():
    images = [discs("a", 48, [(12, 12), (30, 34), (40, 10)]), discs("b", 40, [(20, 20)])]
    model = train_maskrcnn(images, two_channel, steps=2, batch=2, crop=32, seed=0, device="cpu")
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert len(model.train_history) == 2 and np.isfinite(model.train_history["loss"]).all()


def test_train_rejects_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        train_maskrcnn([], two_channel, steps=1, batch=1, crop=32, seed=0)
    with pytest.raises(ValueError, match="crop 32 is larger"):
        train_maskrcnn([discs("small", 24, [(10, 10)])], two_channel, steps=1, batch=1, crop=32, seed=0)
    unlabelled = discs("u", 40, [(20, 20)])
    unlabelled.labels = None
    with pytest.raises(ValueError, match="labelled"):
        train_maskrcnn([unlabelled], two_channel, steps=1, batch=1, crop=32, seed=0)
