"""Readers: round trips of what the writers and `cellrepro data make` wrote, and bad input."""

import json
import os

import numpy as np
import pytest
import tifffile

from cellrepro import data
from cellrepro.cli import main
from cellrepro.data import readers, writers
from cellrepro.data.datasets import ArrayDataset, cell_arrays, flips_and_rotations
from cellrepro.data.files import atomic_dir, write_image
from cellrepro.data.summary import detect_format, summarize
from cellrepro.data.types import CellImage, DataError

from test_data_synthetic import SMALL, assert_same


@pytest.mark.parametrize("name", list(SMALL))
def test_data_make_round_trips_through_the_reader(name, tmp_path, capsys):
    fam = data.family(name)
    params = fam.params(n=3, size=96 if name != "organoid" else 256, seed=1)
    assert main(["data", "make", name, "--out", str(tmp_path / name), "--n", "3",
                 "--size", str(params["size"]), "--seed", "1"]) == 0
    assert_same(fam.generate(**params), fam.read(tmp_path / name))
    assert detect_format(tmp_path / name) == fam.format
    assert main(["data", "show", str(tmp_path / name), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["n_images"] >= 3 and shown["n_instances"] > 0


def test_data_make_takes_the_generators_other_parameters(tmp_path, capsys):
    """The stacking section's stand-in from the command line: a window of a 256-pixel field, 8-bit."""
    out = tmp_path / "stacks"
    assert main(["data", "make", "dic-spheroid", "--out", str(out), "--n", "2", "--size", "48",
                 "-p", "scene", "256", "-p", "bits", "8", "-p", "core_depth", "[0.25, 0.75]"]) == 0
    want = data.family("dic-spheroid").generate(n=2, size=48, seed=0, scene=256, bits=8, core_depth=(0.25, 0.75))
    assert_same(want, data.family("dic-spheroid").read(out))
    assert main(["data", "make", "dic-spheroid", "--out", str(out), "-p", "sceen", "256"]) == 2
    assert "no generator parameter 'sceen'" in capsys.readouterr().err


def test_cellpose_and_coco_round_trip(tmp_path):
    labeled, _ = data.family("multimodal").generate(n_labeled=4, n_unlabeled=0, size=64, seed=0)
    writers.write_cellpose(tmp_path / "cp", labeled)
    back = readers.read_cellpose(tmp_path / "cp", nucleus_channel_index=None)
    for a, b in zip(labeled, back):
        assert a.name == b.name and np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    # COCO with overlapping masks (LIVECell-style): RLE is exact
    masks = np.zeros((3, 64, 64), bool)
    masks[0, 5:30, 5:30] = masks[1, 20:50, 20:50] = masks[2, 40:60, 2:20] = True
    item = CellImage("overlap", labeled[0].image, None, np.zeros((64, 64), np.float32), masks=masks)
    writers.write_coco(tmp_path / "coco" / "ann.json", [item])
    (got,) = readers.read_livecell(tmp_path / "coco" / "ann.json")
    assert np.array_equal(got.masks, masks) and np.array_equal(got.image, item.image)
    assert (got.labels == 2)[25, 25] and summarize(tmp_path / "coco" / "ann.json")["overlap_fraction"]["max"] > 0


def test_livecell_polygons(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((20, 30), np.uint8))
    coco = {"images": [{"id": 7, "file_name": "a.png", "height": 20, "width": 30}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[5, 5, 15, 5, 15, 10, 5, 10]]}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    (img,) = readers.read_livecell(tmp_path / "ann.json", tmp_path)
    assert img.image.shape == (20, 30, 3) and img.masks.shape == (1, 20, 30)
    ys, xs = np.nonzero(img.masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (5, 9, 5, 14)  # pycocotools rasterises half-open


def test_zstack_folder_of_slices(tmp_path):
    stack = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    (tmp_path / "stacks" / "s1").mkdir(parents=True)
    for z, sl in enumerate(stack):
        tifffile.imwrite(tmp_path / "stacks" / "s1" / f"z{z:02d}.tif", sl)
    (got,) = readers.read_zstacks(tmp_path)
    assert got.name == "s1" and np.array_equal(got.stack, stack) and got.labels is None


def cellseg(tmp_path, n=2):
    labeled, _ = data.family("multimodal").generate(n_labeled=n, n_unlabeled=0, size=48, seed=0)
    return writers.write_cellseg(tmp_path / "cs", labeled)


def expect(path_part, match, fn, *args):
    with pytest.raises(DataError, match=match) as err:
        fn(*args)
    assert path_part in str(err.value)


def test_missing_label(tmp_path):
    root = cellseg(tmp_path)
    (root / "labels" / "cell_00001_label.tiff").unlink()
    expect("cell_00001.png", "no label file: expected labels/cell_00001_label.tiff", readers.read_cellseg, root)


def test_label_shape_differs(tmp_path):
    root = cellseg(tmp_path)
    tifffile.imwrite(root / "labels" / "cell_00000_label.tiff", np.zeros((10, 10), np.int32))
    expect("cell_00000_label.tiff", r"label shape \(10, 10\) differs from its image's \(48, 48\)", readers.read_cellseg, root)


def test_label_not_integer(tmp_path):
    root = cellseg(tmp_path)
    tifffile.imwrite(root / "labels" / "cell_00000_label.tiff", np.zeros((48, 48), np.float32))
    expect("cell_00000_label.tiff", "must hold integers", readers.read_cellseg, root)


def test_empty_folder(tmp_path):
    (tmp_path / "cs" / "images").mkdir(parents=True)
    (tmp_path / "cs" / "labels").mkdir()
    expect("images", "empty folder", readers.read_cellseg, tmp_path / "cs")
    (tmp_path / "z" / "stacks").mkdir(parents=True)
    expect("stacks", "empty folder", readers.read_zstacks, tmp_path / "z")


def test_truncated_file(tmp_path):
    root = cellseg(tmp_path)
    path = root / "images" / "cell_00000.png"
    path.write_bytes(path.read_bytes()[:60])
    expect("cell_00000.png", "cannot be read as an image", readers.read_cellseg, root)
    czi = tmp_path / "org" / "images" / "broken.czi"
    czi.parent.mkdir(parents=True)
    czi.write_bytes(b"ZISRAWFILE" + b"\0" * 20)
    expect("broken.czi", "cannot be read", readers.read_organoids, tmp_path / "org")


def test_zstack_with_one_slice_and_mismatched_slices(tmp_path):
    (tmp_path / "stacks").mkdir()
    tifffile.imwrite(tmp_path / "stacks" / "flat.tif", np.zeros((1, 8, 8), np.float32))
    expect("flat.tif", "at least 2 slices", readers.read_zstacks, tmp_path)
    os.remove(tmp_path / "stacks" / "flat.tif")
    (tmp_path / "stacks" / "s").mkdir()
    tifffile.imwrite(tmp_path / "stacks" / "s" / "z0.tif", np.zeros((8, 8), np.float32))
    tifffile.imwrite(tmp_path / "stacks" / "s" / "z1.tif", np.zeros((8, 9), np.float32))
    expect("z1.tif", "differs from the first slice", readers.read_zstacks, tmp_path)


def test_interrupted_generation_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "set") as tmp:
            (tmp / "images").mkdir()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_unknown_layout_and_cli_errors(tmp_path, capsys):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("x")
    expect("odd", "unrecognised layout", detect_format, tmp_path / "odd")
    assert main(["data", "show", str(tmp_path / "odd")]) == 2
    assert "unrecognised layout" in capsys.readouterr().err


def test_dataset_wrapper_with_monai_transforms():
    labeled, _ = data.family("multimodal").generate(n_labeled=3, n_unlabeled=0, size=32, seed=0)
    ds = ArrayDataset(cell_arrays(labeled, nucleus=True), transform=flips_and_rotations(["image", "label"]))
    item = ds[0]
    assert item["image"].shape == (2, 32, 32) and item["label"].shape == (1, 32, 32)
    assert float(item["label"].max()) == float(labeled[0].labels.max())
    with pytest.raises(ValueError, match="same number"):
        ArrayDataset({"image": [1, 2], "label": [1]})
