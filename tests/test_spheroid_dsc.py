"""Spheroid chapter: DSCMask R-CNN's consistency loss (Eq. 13-14), SSC stability and selection
(Sec. 3.3), the Table 1 backbones, the U-Net++ baseline's instances and multi-class COCO AP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from cellrepro.chapters.spheroid import instances_from_detections, table1_ap
from cellrepro.chapters.spheroid.dsc import (box_pixels, consistency_loss, dsc_loss, dsc_step, paste_probabilities,
                                             weak_detections)
from cellrepro.chapters.spheroid.ssc import (checkpoint_epochs, class_map, detection_class_map, mean_iou,
                                             pseudo_targets, reliable, select_reliable, stability)
from cellrepro.chapters.spheroid.unetpp import SMALL_FEATURES, build_unetpp, instances_from_probs, unetpp_loss, \
    unetpp_probs
from cellrepro.metrics import coco_ap
from cellrepro.nets.maskrcnn import (BACKBONES, REDUCED_VARIANT, build_spheroid_maskrcnn, instance_targets,
                                     load_weights, resnet_fpn)

LN2 = math.log(2)


# --- Eq. 13: the consistency loss -------------------------------------------------------------

# Four pixels, tau = 0.75 (exact in binary, so the >= at the threshold is tested exactly):
# p_w = 0.875 (confident: 0.875), 0.5 (not: 0.5), 0.25 (confident: 1 - 0.25 = 0.75 = tau), 0.125 (confident).
PW = torch.tensor([0.875, 0.5, 0.25, 0.125])
PS = torch.tensor([0.5, 0.75, 0.5, 0.25])
H1 = -(0.875 * math.log(0.5) + 0.125 * math.log(0.5))   # = ln 2
H3 = -(0.25 * math.log(0.5) + 0.75 * math.log(0.5))     # = ln 2
H4 = -(0.125 * math.log(0.25) + 0.875 * math.log(0.75))  # = 0.4250...


def test_consistency_loss_hand_case_thresholds_and_both_normalisations():
    assert H1 == pytest.approx(LN2) and H4 == pytest.approx(0.425009, abs=1e-6)
    assert float(consistency_loss(PW, PS, 0.75, "all")) == pytest.approx((H1 + H3 + H4) / 4)  # 0.4528
    assert float(consistency_loss(PW, PS, 0.75, "confident")) == pytest.approx((H1 + H3 + H4) / 3)  # 0.6038
    # tau = 0.8: pixel 3 (0.75) drops out, pixels 1 (0.875) and 4 (0.875) stay
    assert float(consistency_loss(PW, PS, 0.8, "all")) == pytest.approx((H1 + H4) / 4)
    assert float(consistency_loss(PW, PS, 0.8, "confident")) == pytest.approx((H1 + H4) / 2)
    # only the first three pixels considered: "all" divides by 3, "confident" by the 2 confident ones
    considered = torch.tensor([True, True, True, False])
    assert float(consistency_loss(PW, PS, 0.75, "all", considered)) == pytest.approx((H1 + H3) / 3)
    assert float(consistency_loss(PW, PS, 0.75, "confident", considered)) == pytest.approx(LN2)
    # hard targets (FixMatch): 1, -, 0, 0 -> -ln 0.5, -ln 0.5, -ln 0.75
    assert float(consistency_loss(PW, PS, 0.75, "all", hard=True)) == \
        pytest.approx((2 * LN2 - math.log(0.75)) / 4)
    # nothing confident: zero, under both normalisations
    assert float(consistency_loss(PW, PS, 0.95, "all")) == 0.0
    assert float(consistency_loss(PW, PS, 0.95, "confident")) == 0.0


def test_consistency_loss_refuses_bad_arguments():
    with pytest.raises(ValueError, match="normalize"):
        consistency_loss(PW, PS, normalize="mean")
    with pytest.raises(ValueError, match="tau"):
        consistency_loss(PW, PS, tau=0.3)
    with pytest.raises(ValueError, match="shape"):
        consistency_loss(PW, PS[:3])


def test_gradient_reaches_the_student_only_and_only_at_confident_pixels():
    pw, ps = PW.clone().requires_grad_(True), PS.clone().requires_grad_(True)
    consistency_loss(pw, ps, 0.75, "all").backward()
    assert pw.grad is None
    g = ps.grad
    assert g[1] == 0 and (g[[0, 2, 3]] != 0).all()
    # d/dp_s of the BCE is (p_s - p_w) / (p_s (1 - p_s)), here over 4 considered pixels
    assert float(g[0]) == pytest.approx((0.5 - 0.875) / 0.25 / 4)


def test_box_pixels_and_pasting_put_the_box_on_the_image_grid():
    boxes = torch.tensor([[2.0, 1.0, 6.0, 4.0]])
    inside = box_pixels(boxes, (6, 8))
    assert inside.sum() == 12 and inside[0, 1:4, 2:6].all()
    pasted = paste_probabilities(torch.ones(1, 28, 28), boxes, (6, 8))
    assert pasted.shape == (1, 6, 8) and torch.all(pasted[inside] > 0.5) and pasted[0, 5].sum() == 0


# --- DSCMask R-CNN on a real (reduced) model --------------------------------------------------

def scene(size: int = 64) -> tuple[np.ndarray, dict[int, int]]:
    """A core (class 2) inside an invasive area (class 1) and two single cells (class 3)."""
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    labels[(yy - 32) ** 2 + (xx - 32) ** 2 <= 18 ** 2] = 1
    labels[(yy - 32) ** 2 + (xx - 32) ** 2 <= 8 ** 2] = 2
    labels[3:9, 3:9], labels[54:60, 50:57] = 3, 4
    return labels, {1: 1, 2: 2, 3: 3, 4: 3}


@pytest.fixture(scope="module")
def reduced_model():
    torch.manual_seed(0)
    return build_spheroid_maskrcnn(**REDUCED_VARIANT)


def test_dsc_step_gives_finite_supervised_and_consistency_terms(reduced_model):
    torch.manual_seed(1)
    labels, classes = scene()
    weak = [torch.rand(1, 64, 64), torch.rand(1, 64, 64)]
    strong = [w + 0.1 * torch.randn_like(w) for w in weak]
    targets = [instance_targets(labels, classes), instance_targets(np.zeros((64, 64), np.int32), {})]
    assert targets[0]["labels"].tolist() == [1, 2, 3, 3]
    stats = {}
    losses = dsc_step(reduced_model, weak, targets, strong, tau=0.5, lam=0.1, score_threshold=0.0, stats=stats)
    assert reduced_model.training
    # how much Eq. 13 acts: at tau = 0.5 every pixel inside a target box enters
    assert stats["dsc_detections"] > 0 and 0 < stats["dsc_confident"] <= 1 and stats["dsc_box_share"] == 1.0
    none = {}
    dsc_step(reduced_model, weak, targets, strong, tau=0.5, score_threshold=1.01, stats=none)
    assert none == {"dsc_detections": 0.0, "dsc_confident": 0.0, "dsc_box_share": 0.0}
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg",
            "loss_consistency"} == set(losses)
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    assert float(losses["loss_consistency"].detach()) > 0  # tau = 0.5: every pixel of every detection counts
    reduced_model.zero_grad()
    sum(losses.values()).backward()
    assert reduced_model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pixel grid"):
        dsc_step(reduced_model, weak, targets, [s[:, :32] for s in strong])


def test_consistency_term_trains_the_student_path_and_not_the_targets(reduced_model):
    torch.manual_seed(2)
    weak = [torch.rand(1, 64, 64)]
    dets = weak_detections(reduced_model, weak, score_threshold=0.0)
    assert len(dets[0]["boxes"]) > 0 and dets[0]["masks"].shape[1:] == (28, 28)
    assert not any(v.requires_grad for v in dets[0].values())
    # the targets are the model's own eval-mode output: pasted, they are its output masks
    reduced_model.eval()
    with torch.no_grad():
        out = reduced_model(weak)[0]
    keep = out["scores"] >= 0.0
    assert torch.allclose(paste_probabilities(dets[0]["masks"], dets[0]["boxes"], (64, 64)), out["masks"][keep, 0])
    reduced_model.train()
    reduced_model.zero_grad()
    dsc_loss(reduced_model, [weak[0] + 0.1], dets, tau=0.5).backward()
    grads = {n: p.grad for n, p in reduced_model.named_parameters()}
    assert grads["roi_heads.mask_predictor.mask_fcn_logits.weight"].abs().sum() > 0
    assert grads["backbone.body.conv1.weight"].abs().sum() > 0   # the strong view's features
    assert grads["roi_heads.box_predictor.cls_score.weight"] is None  # the box head made the targets only
    assert grads["rpn.head.conv.0.0.weight"] is None


def test_weak_detections_threshold_before_nms_keeps_the_same_detections(reduced_model):
    """The score threshold applied inside roi_heads (before NMS and the mask head) keeps exactly the
    detections that filtering the full eval output keeps, and restores the model's own threshold."""
    torch.manual_seed(3)
    weak = [torch.rand(1, 64, 64), torch.rand(1, 64, 64)]
    floor = reduced_model.roi_heads.score_thresh
    full = weak_detections(reduced_model, weak, score_threshold=0.0)
    scores = torch.cat([d["scores"] for d in full])
    cut = float(scores.median())  # about half of the boxes on each side
    assert (scores >= cut).any() and (scores < cut).any()
    cut_dets = weak_detections(reduced_model, weak, score_threshold=cut)
    assert reduced_model.roi_heads.score_thresh == floor
    for f, c in zip(full, cut_dets):
        keep = f["scores"] >= cut
        for key in ("boxes", "labels", "scores", "masks"):
            assert torch.equal(f[key][keep], c[key]), key


def test_dsc_loss_without_detections_is_zero(reduced_model):
    none = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 28, 28)}]
    assert float(dsc_loss(reduced_model, [torch.rand(1, 64, 64)], none)) == 0.0


# --- Backbones ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, groups, width", [("r50", 1, 64), ("r101", 1, 64), ("x101_32x4d", 32, 128),
                                                 ("x101_64x4d", 64, 256)])
def test_table1_backbones_give_the_fpn_levels(name, groups, width):
    torch.manual_seed(0)
    fpn = resnet_fpn(name, in_channels=1)
    conv2 = fpn.body.layer1[0].conv2  # the grouped 3 x 3 convolution of the first bottleneck
    assert (conv2.groups, conv2.out_channels) == (groups, width)
    assert fpn.body.conv1.in_channels == 1 and fpn.out_channels == 256
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fpn.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in fpn.modules())
    assert all(p.requires_grad for p in fpn.parameters())
    fpn.eval()
    with torch.no_grad():
        out = fpn(torch.rand(1, 1, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "0": (1, 256, 16, 16), "1": (1, 256, 8, 8), "2": (1, 256, 4, 4), "3": (1, 256, 2, 2), "pool": (1, 256, 1, 1)}


def test_resnext101_32x4d_has_the_reference_parameter_count():
    # 44,177,704 parameters with the ImageNet classifier: the published ResNeXt-101 32x4d (timm, pretrainedmodels)
    assert sum(p.numel() for p in BACKBONES["x101_32x4d"]().parameters()) == 44_177_704
    with pytest.raises(ValueError, match="backbone"):
        resnet_fpn("vgg16")


def test_spheroid_model_has_four_classes_and_loads_its_weights(tmp_path, reduced_model):
    model = reduced_model
    assert model.roi_heads.box_predictor.cls_score.out_features == 4
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 4
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(5)
    loaded = build_spheroid_maskrcnn(**REDUCED_VARIANT, weights=str(path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    state = dict(model.state_dict())
    state.pop("rpn.head.conv.0.0.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"w\.pt.*1 missing keys \(rpn\.head\.conv\.0\.0\.weight\).*extra\.weight"):
        load_weights(loaded, path)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        build_spheroid_maskrcnn(**REDUCED_VARIANT, weights=tmp_path / "nothing.pt")


# --- SSC: stability and selection ---------------------------------------------------------------

def test_mean_iou_identical_disjoint_and_hand_partial_maps():
    a = np.array([[1, 1, 2], [0, 0, 3]])
    assert mean_iou(a, a) == 1.0 and mean_iou(a, a, background=False) == 1.0
    left, right = np.array([[1, 1, 0, 0]]), np.array([[0, 0, 2, 2]])
    assert mean_iou(left, right) == 0.0 and mean_iou(left, right, background=False) == 0.0
    # background: IoU 2/3 (pixels 3-4 of 3); class 1: 1/2 (pixel 1 of 2); class 2 absent from both
    assert mean_iou(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]])) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert mean_iou(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]), background=False) == pytest.approx(0.5)


def test_mean_iou_of_empty_maps():
    empty, one = np.zeros((3, 3), int), np.zeros((3, 3), int)
    one[0, 0] = 1
    assert mean_iou(empty, empty) == 1.0                    # background agrees everywhere
    assert mean_iou(empty, empty, background=False) == 1.0  # no class in either: defined as full agreement
    assert mean_iou(empty, one, background=False) == 0.0
    assert mean_iou(empty, one) == pytest.approx((8 / 9 + 0) / 2)


def test_stability_mean_and_sum_over_checkpoints():
    last = np.array([[1, 1, 0, 0]])
    half = np.array([[1, 0, 0, 0]])   # mIoU with last: 7/12
    maps = [half, last, last]         # K = 3: agreements 7/12 and 1
    assert stability(maps) == pytest.approx((7 / 12 + 1) / 2)
    assert stability(maps, "sum") == pytest.approx(7 / 12 + 1)
    assert stability([half, last], "sum") == stability([half, last], "mean")  # equal for K = 2
    with pytest.raises(ValueError, match="aggregate"):
        stability(maps, "max")
    with pytest.raises(ValueError, match="K >= 2"):
        stability([last])


def test_reliable_is_strict_and_ordered():
    assert reliable([0.8, 0.9, 0.80001, 0.2, 0.95]).tolist() == [4, 1, 2]
    assert reliable([0.8, 0.8]).size == 0
    assert reliable([1.0, 0.9], tau=0.9).tolist() == [0]
    with pytest.raises(ValueError, match="NaN"):
        reliable([0.9, float("nan")])


def test_checkpoint_epochs():
    assert checkpoint_epochs(100) == [33, 67, 100]
    assert checkpoint_epochs(6) == [2, 4, 6]
    with pytest.raises(ValueError, match="epochs"):
        checkpoint_epochs(2)


def detections(boxes_masks_classes_scores, size=(8, 8)):
    """A Mask R-CNN output dict from (row slice, col slice, class, score) entries."""
    masks = torch.zeros(len(boxes_masks_classes_scores), 1, *size)
    for i, (rows, cols, _, _) in enumerate(boxes_masks_classes_scores):
        masks[i, 0, rows, cols] = 0.9
    return {"masks": masks, "labels": torch.tensor([c for *_, c, _ in boxes_masks_classes_scores]),
            "scores": torch.tensor([s for *_, s in boxes_masks_classes_scores]),
            "boxes": torch.zeros(len(masks), 4)}


def test_pseudo_targets_and_class_maps_paint_higher_scores_on_top():
    pred = detections([(slice(0, 4), slice(0, 4), 1, 0.6), (slice(2, 6), slice(2, 6), 3, 0.9),
                       (slice(6, 8), slice(6, 8), 2, 0.3)])
    cmap = detection_class_map(pred)
    assert (cmap == 3).sum() == 16 and (cmap == 1).sum() == 12 and (cmap == 2).sum() == 0  # 0.3 < 0.5
    t = pseudo_targets(pred, min_pixels=1)
    assert t["labels"].tolist() == [3, 1]   # numbered by decreasing score
    assert t["boxes"].tolist() == [[2, 2, 6, 6], [0, 0, 4, 4]]
    assert t["masks"].sum((1, 2)).tolist() == [16, 12]
    assert class_map(np.array([[0, 2, 1]]), {1: 3, 2: 1}).tolist() == [[0, 1, 3]]
    with pytest.raises(ValueError, match="instance ids"):
        class_map(np.array([[0, 2]]), {1: 3})


def test_select_reliable_keeps_images_whose_checkpoints_agree():
    stable = detections([(slice(0, 4), slice(0, 4), 1, 0.9)])
    moved = detections([(slice(4, 8), slice(4, 8), 1, 0.9)])
    # moved vs stable: background 32 shared of 48 + 48 - 32 = 64 -> 1/2; class 1 disjoint -> 0; mIoU 1/4
    assert mean_iou(detection_class_map(moved), detection_class_map(stable)) == pytest.approx(0.25)
    keep, scores = select_reliable([[stable, moved], [stable, stable], [stable, stable]])
    assert keep.tolist() == [0]
    assert scores.tolist() == pytest.approx([1.0, (0.25 + 1.0) / 2])
    keep, scores = select_reliable([[stable, moved], [stable, stable], [stable, stable]], aggregate="sum")
    assert keep.tolist() == [0, 1] and scores.tolist() == pytest.approx([2.0, 1.25])  # the sum keeps both


# --- U-Net++ baseline -------------------------------------------------------------------------

def test_unetpp_instances_from_a_hand_made_probability_map():
    p = np.zeros((4, 6, 6))
    p[0] = 1.0
    p[:, 0:2, 0:2] = np.array([0.1, 0.7, 0.1, 0.1])[:, None, None]  # class 1 component, 4 pixels at 0.7
    p[:, 0:2, 1] = np.array([0.1, 0.5, 0.3, 0.1])[:, None]          # still class 1, two pixels at 0.5
    p[:, 4, 4:6] = np.array([0.0, 0.0, 0.0, 1.0])[:, None]          # class 3, two pixels at 1.0
    p[:, 5, 0] = np.array([0.2, 0.0, 0.8, 0.0])                     # class 2, one pixel at 0.8
    p[:, 3, 3] = np.array([0.0, 0.0, 0.0, 0.6])                     # class 3, diagonal to (4, 4): 8-connected
    p[:, 5, 5] = np.array([0.0, 0.0, 0.0, 1.0])                     # class 3, below (4, 5)
    inst = instances_from_probs(torch.from_numpy(p))
    assert inst["classes"].tolist() == [1, 2, 3]
    assert inst["masks"].sum((1, 2)).tolist() == [4, 1, 4]
    assert inst["scores"] == pytest.approx([(2 * 0.7 + 2 * 0.5) / 4, 0.8, (0.6 + 3 * 1.0) / 4])
    assert instances_from_probs(p, min_pixels=2)["classes"].tolist() == [1, 3]
    empty = instances_from_probs(np.stack([np.ones((4, 4)), np.zeros((4, 4))]))
    assert empty["masks"].shape == (0, 4, 4) and empty["scores"].shape == (0,)


def test_unetpp_forward_gives_class_probabilities_and_a_loss():
    torch.manual_seed(0)
    model = build_unetpp(features=SMALL_FEATURES)
    probs = unetpp_probs(model, torch.rand(1, 1, 32, 32))
    assert probs.shape == (1, 4, 32, 32) and torch.allclose(probs.sum(1), torch.ones(1, 32, 32))
    loss = unetpp_loss(model(torch.rand(1, 1, 32, 32)), torch.zeros(1, 32, 32, dtype=torch.long))
    assert math.isfinite(float(loss.detach()))


# --- Multi-class COCO AP (Table 1) ------------------------------------------------------------

def test_multiclass_coco_ap_perfect_empty_and_wrong_class():
    labels, classes = scene()
    cls = [classes[i] for i in sorted(classes)]
    for iou_type in ("segm", "bbox"):
        perfect = coco_ap([labels], [labels], gt_classes=[cls], pred_classes=[cls], iou_type=iou_type)
        assert perfect["AP"] == pytest.approx(1.0) and perfect["AP75"] == pytest.approx(1.0)
        empty = coco_ap([labels], [np.zeros((0, 64, 64), bool)], [[]], gt_classes=[cls], pred_classes=[[]],
                        iou_type=iou_type)
        assert empty["AP"] == 0.0
    # class 3 predicted as class 1: classes 1 and 2 are perfect, class 3 has no true positive
    wrong = coco_ap([labels], [labels], gt_classes=[cls], pred_classes=[[1, 2, 1, 1]])
    assert wrong["AP"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="categories"):
        coco_ap([labels], [labels], gt_classes=[cls], pred_classes=[cls], categories={1: "a", 2: "b"})
    with pytest.raises(ValueError, match="pred_classes"):
        coco_ap([labels], [labels], gt_classes=[cls], pred_classes=[[1, 2]])


def test_table1_ap_of_a_perfect_semantic_map_and_of_shifted_boxes():
    labels, classes = scene()
    cmap = class_map(labels, classes)
    # cell 3 and 4 are separate components of class 3: instances of the one-hot map are the ground truth
    probs = np.eye(4)[cmap].transpose(2, 0, 1)
    scores = table1_ap([labels], [[classes[i] for i in sorted(classes)]], [instances_from_probs(probs)])
    assert all(v == pytest.approx(1.0) for v in scores.values()), scores
    # a Mask R-CNN output: perfect masks, boxes shifted by half their size -> box AP 0, mask AP 1
    t = instance_targets(labels, classes)
    shift = (t["boxes"][:, 2:] - t["boxes"][:, :2]).repeat(1, 2) / 2
    out = {"masks": t["masks"][:, None].float(), "labels": t["labels"], "scores": torch.ones(4),
           "boxes": t["boxes"] + shift}
    scores = table1_ap([labels], [t["labels"].numpy()], [instances_from_detections(out)])
    assert scores["mask_AP"] == pytest.approx(1.0) and scores["bbox_AP50"] == 0.0
