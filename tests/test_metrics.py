"""Metrics against hand-computed cases, the official CellSeg definition, and pycocotools."""

import contextlib
import io
import json

import numpy as np
import pytest
import tifffile
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cellrepro.cli import main
from cellrepro.metrics import coco_ap, evaluate, instance_scores, per_class_scores, pixel_ap, relabel, semantic_scores

S = 64  # image side; objects stay away from the 2-pixel frame unless a test says otherwise


def square(y, x, h=10, w=10, value=1, shape=(S, S)):
    out = np.zeros(shape, np.int32)
    out[y:y + h, x:x + w] = value
    return out


TWO = square(10, 10) + square(30, 30, value=2)


def f1(gt, pred, **kw):
    return instance_scores(gt, pred, **kw)


# --- hand-computed cases: (name, gt, pred, threshold, plain (tp, fp, fn, F1), official F1) -----------------------
MERGED_GT = square(20, 10) + square(20, 20, value=2)  # two touching 10x10 cells
MERGED_PRED = square(20, 10, 10, 20)  # one 10x20 prediction: IoU 0.5 with each
CASES = [
    ("perfect", TWO, TWO, 0.5, (2, 0, 0, 1.0), 1.0),
    ("empty prediction", TWO, np.zeros((S, S), int), 0.5, (0, 0, 2, 0.0), 0.0),
    ("empty ground truth", np.zeros((S, S), int), TWO, 0.5, (0, 2, 0, 0.0), 0.0),
    ("both empty", np.zeros((S, S), int), np.zeros((S, S), int), 0.5, (0, 0, 0, 1.0), 0.0),
    ("merged pair", MERGED_GT, MERGED_PRED, 0.5, (1, 0, 1, 2 / 3), 0.6667),
    ("merged pair, stricter", MERGED_GT, MERGED_PRED, 0.51, (0, 1, 2, 0.0), 0.0),
    ("split cell", MERGED_PRED, MERGED_GT, 0.5, (1, 1, 0, 2 / 3), 0.6667),
    # a 10x10 cell shifted 3 px: IoU = 70 / 130 = 0.53846
    ("shift, IoU just above", square(20, 20), square(20, 23), 0.538, (1, 0, 0, 1.0), 1.0),
    ("shift, IoU just below", square(20, 20), square(20, 23), 0.539, (0, 1, 1, 0.0), 0.0),
    ("non-consecutive ids", square(5, 5, value=17) + square(30, 30, value=250) + square(45, 5, value=3),
     square(5, 5, value=1) + square(30, 30, value=2) + square(45, 5, value=3), 0.5, (3, 0, 0, 1.0), 1.0),
]


@pytest.mark.parametrize("name, gt, pred, th, plain, official", CASES, ids=[c[0] for c in CASES])
def test_hand_computed_cases(name, gt, pred, th, plain, official):
    got = f1(gt, pred, threshold=th)
    assert (got["tp"], got["fp"], got["fn"]) == plain[:3]
    assert got["f1"] == pytest.approx(plain[3])
    assert f1(gt, pred, threshold=th, mode="cellseg")["f1"] == official


def test_shift_iou_and_instance_dice():
    got = f1(square(20, 20), square(20, 23))
    assert got["mean_iou"] == pytest.approx(70 / 130)
    assert got["inst_dice"] == pytest.approx(2 * 70 / 200)  # Dice = 2|A n B| / (|A| + |B|)
    assert got["dice"] == pytest.approx(0.7)


def test_official_frame_removal():
    gt = TWO + square(0, 40, value=3)  # cell 3 touches the top frame
    pred = TWO + square(1, 50, value=3)  # a different frame cell in the prediction
    official = f1(gt, pred, mode="cellseg")
    assert (official["n_true"], official["n_pred"], official["tp"]) == (2, 2, 2) and official["f1"] == 1.0
    plain = f1(gt, pred)
    assert (plain["tp"], plain["fp"], plain["fn"]) == (2, 1, 1)
    # a cell whose nearest pixel is 2 px from the edge is kept
    assert f1(square(2, 40), square(2, 40), mode="cellseg")["n_true"] == 1


def test_official_rounding_per_image():
    gt = sum(square(5 + 15 * (i // 3), 5 + 15 * (i % 3), 8, 8, value=i + 1) for i in range(9))  # 9 cells
    pred = sum(square(5 + 15 * (i // 3), 5 + 15 * (i % 3), 8, 8, value=i + 1) for i in range(7))  # finds 7
    # P = 1, R = 7/9, F1 = 14/16 = 0.875 exactly; add one false positive: P = 7/8, F1 = 14/17 = 0.823529...
    pred = pred + square(50, 50, 6, 6, value=8)
    got = f1(gt, pred, mode="cellseg")
    assert got["f1"] == 0.8235 and got["precision"] == 0.875 and got["recall"] == 0.7778
    assert f1(gt, pred)["f1"] == pytest.approx(14 / 17)


def test_official_tiles_for_large_images():
    shape = (5000, 5000)  # 25 megapixels: evaluated in 2000 x 2000 tiles
    gt = np.zeros(shape, np.int32)
    gt[100:120, 100:120] = 1
    gt[1990:2010, 500:520] = 2  # straddles the tile boundary at row 2000: touches both tiles' frames
    gt[4990:4999, 100:110] = 3  # 1 px from the image edge, but inside the last (zero-padded) tile
    got = f1(gt, gt, mode="cellseg")
    assert got["n_true"] == 2 and got["f1"] == 1.0
    # just under 25 megapixels the image is scored whole: cell 2 is kept, cell 3 is on the frame
    assert f1(gt[:4999, :4999], gt[:4999, :4999], mode="cellseg")["n_true"] == 2


def test_overlapping_amodal_masks():
    a = np.zeros((2, S, S), bool)
    a[0, 10:30, 10:30] = True
    a[1, 20:40, 20:40] = True  # overlaps cell 0 by 100 px
    assert f1(a, a)["tp"] == 2
    flat = np.where(a[1], 2, np.where(a[0], 1, 0))  # a label image hides 100 px of cell 0
    got = f1(a, flat)
    assert got["tp"] == 2 and got["mean_iou"] == pytest.approx((300 / 400 + 1.0) / 2)


def reference_official_f1(gt, pred, th=0.5):
    """A direct transcription of the official definition's steps (dense IoU, all pairs)."""
    from scipy.optimize import linear_sum_assignment

    def strip(m):
        bd = np.ones(m.shape, bool)
        bd[2:-2, 2:-2] = False
        out = m.copy()
        for i in np.unique(m[bd]):
            if i:
                out[m == i] = 0
        return relabel(out)

    gt, pred = strip(gt), strip(pred)
    nt, npred = gt.max(), pred.max()
    if npred == 0:
        return 0.0
    iou = np.zeros((nt, npred))
    for i in range(1, nt + 1):
        for j in range(1, npred + 1):
            inter = np.sum((gt == i) & (pred == j))
            iou[i - 1, j - 1] = inter / (np.sum(gt == i) + np.sum(pred == j) - inter)
    n_min = min(iou.shape)
    r, c = linear_sum_assignment(-(iou >= th).astype(float) - iou / (2 * n_min)) if n_min else ([], [])
    tp = int(np.sum(iou[r, c] >= th)) if n_min else 0
    if tp == 0:
        return 0.0
    p, rc = tp / npred, tp / nt
    return round(2 * p * rc / (p + rc), 4)


def test_agrees_with_the_official_definition_on_random_images():
    rng = np.random.default_rng(0)
    for trial in range(15):
        gt = np.zeros((48, 48), np.int32)
        pred = np.zeros((48, 48), np.int32)
        for i in range(rng.integers(0, 7)):
            y, x, h, w = rng.integers(0, 40), rng.integers(0, 40), rng.integers(3, 10), rng.integers(3, 10)
            gt[y:y + h, x:x + w] = i + 1
            if rng.random() < 0.8:
                dy, dx = rng.integers(-3, 4, 2)
                pred[max(y + dy, 0):y + dy + h, max(x + dx, 0):x + dx + w] = rng.integers(1, 200)
        assert f1(gt, pred, mode="cellseg")["f1"] == reference_official_f1(gt, pred), trial


def test_evaluate_summarises_mean_and_median():
    table, summary = evaluate([("a", TWO, TWO), ("b", TWO, np.zeros_like(TWO)), ("c", TWO, TWO)])
    assert list(table["f1"]) == [1.0, 0.0, 1.0]
    assert summary["mean_f1"] == pytest.approx(2 / 3) and summary["median_f1"] == 1.0 and summary["tp"] == 4


def test_semantic_hand_case_and_pooling():
    pred = np.array([[1, 1], [0, 0]], bool)
    target = np.array([[1, 0], [1, 0]], bool)
    s = semantic_scores(pred, target)
    assert s == pytest.approx({"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "dice": 0.5, "iou": 1 / 3})
    probs = np.array([[0.9, 0.5], [0.49, 0.0]])
    assert semantic_scores(probs, target)["precision"] == 0.5  # >= 0.5 counts as positive
    # pooled over pixels vs averaged per image
    p2, t2 = np.ones((2, 2), bool), np.ones((2, 2), bool)
    assert semantic_scores([pred, p2], [target, t2])["f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 1))
    assert semantic_scores([pred, p2], [target, t2], pooled=False)["f1"] == pytest.approx(0.75)
    classes = per_class_scores(np.array([[1, 2], [2, 0]]), np.array([[1, 2], [1, 0]]), {1: "a", 2: "b"})
    assert classes["a"]["recall"] == 0.5 and classes["b"]["precision"] == 0.5


def test_pixel_ap_ranks_without_a_threshold_and_pools_the_images():
    target = np.array([[1, 1, 0, 0]])
    ranked = np.array([[0.2, 0.15, 0.1, 0.05]])  # every positive above every negative, all below 0.5
    assert pixel_ap(ranked, target) == 1.0 and semantic_scores(ranked, target)["f1"] == 0.0
    assert pixel_ap(ranked * 4, target) == 1.0  # moving the operating point leaves it unchanged
    assert pixel_ap(ranked[:, ::-1], target) == pytest.approx((1 / 3 + 2 / 4) / 2)  # positives ranked last
    assert pixel_ap(np.full((1, 4), 0.5), target) == pytest.approx(0.5)  # a constant map: the positives' share
    # pooled: the second image's confident false positive outranks the first's positives
    assert pixel_ap([ranked, np.array([[0.9, 0.0]])], [target, np.array([[0, 0]])]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert np.isnan(pixel_ap(ranked, np.zeros_like(target)))
    with pytest.raises(ValueError, match="image 0"):
        pixel_ap([ranked], [np.zeros((1, 3))])


def reference_coco(gts, preds, scores, iou_type="segm"):
    """pycocotools used directly, the way its own demo builds the structures."""
    anns, res, images = [], [], []
    for k, (g, p, s) in enumerate(zip(gts, preds, scores), start=1):
        images.append({"id": k, "height": S, "width": S})
        for i in range(1, g.max() + 1):
            rle = mask_utils.encode(np.asfortranarray((g == i).astype(np.uint8)))
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": 1, "segmentation": rle,
                         "area": float(mask_utils.area(rle)), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
        for i in range(1, p.max() + 1):
            rle = mask_utils.encode(np.asfortranarray((p == i).astype(np.uint8)))
            res.append({"image_id": k, "category_id": 1, "segmentation": rle, "score": float(s[i - 1])})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1}]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(res), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:6]


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_coco_ap_equals_pycocotools(iou_type):
    rng = np.random.default_rng(1)
    gts, preds, scores = [], [], []
    for _ in range(3):
        g = sum(square(int(rng.integers(3, 50)), int(rng.integers(3, 50)), int(rng.integers(4, 12)),
                       int(rng.integers(4, 12)), value=i + 1) for i in range(4))
        g = relabel(np.where(g > 4, 0, g))
        p = relabel(np.roll(g, int(rng.integers(-2, 3)), axis=1))
        gts.append(g)
        preds.append(p)
        scores.append(rng.random(p.max()))
    ours = coco_ap(gts, preds, scores, iou_type=iou_type)
    ref = [v if v >= 0 else float("nan") for v in reference_coco(gts, preds, scores, iou_type)]
    assert list(ours.values()) == pytest.approx(ref, nan_ok=True)


def test_coco_hand_case_ranking_matters():
    gt = square(20, 20)
    wrong_first = np.stack([square(40, 40) > 0, gt > 0])
    assert coco_ap([gt], [wrong_first], [[0.9, 0.8]])["AP"] == pytest.approx(0.5)
    assert coco_ap([gt], [wrong_first], [[0.1, 0.8]])["AP"] == pytest.approx(1.0)
    assert coco_ap([gt], [np.zeros((0, S, S), bool)], [[]])["AP"] == 0.0


def test_eval_command_pairs_folders_and_refuses_mismatches(tmp_path, capsys):
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
    tifffile.imwrite(tmp_path / "gt" / "a_label.tiff", TWO)
    tifffile.imwrite(tmp_path / "pred" / "a_label.tiff", TWO)
    tifffile.imwrite(tmp_path / "gt" / "b_label.tiff", MERGED_GT)
    tifffile.imwrite(tmp_path / "pred" / "b_label.tiff", MERGED_PRED)
    out = tmp_path / "scores.json"
    assert main(["eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["summary"]["mean_f1"] == pytest.approx((1 + 0.6667) / 2)
    assert [r["name"] for r in result["images"]] == ["a", "b"]
    tifffile.imwrite(tmp_path / "gt" / "c_label.tiff", TWO)
    tifffile.imwrite(tmp_path / "pred" / "d_label.tiff", TWO)
    assert main(["eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert "no prediction for 1: c" in err and "no ground truth for 1: d" in err
    (tmp_path / "gt" / "c_label.tiff").unlink()
    tifffile.imwrite(tmp_path / "pred" / "d_label.tiff", np.zeros((8, 8), np.int32))
    tifffile.imwrite(tmp_path / "gt" / "d_label.tiff", TWO)
    assert main(["eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert "pred/d_label.tiff: label shape (8, 8) differs from its image's (64, 64)" in err
