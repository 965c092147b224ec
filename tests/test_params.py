"""Parameters cell parsing and override checking (hand-written cases)."""

import pytest

from cellrepro import CellreproError
from cellrepro.publish.params import apply_overrides, coerce, parse_parameters

CELL = '''
epochs = 20  # fine-tuning epochs
lr: float = 1e-4
name = "synthetic"
flag = False
sizes = [64, 128]
data_root: str | None = None  # None: synthetic
anything = None
'''


@pytest.fixture
def params():
    return parse_parameters(CELL)


def test_parse_names_types_defaults_and_help(params):
    assert list(params) == ["epochs", "lr", "name", "flag", "sizes", "data_root", "anything"]
    assert params["epochs"].types == ("int",) and params["epochs"].default == 20
    assert params["epochs"].help == "fine-tuning epochs"
    assert params["lr"].types == ("float",) and params["lr"].default == 1e-4
    assert params["data_root"].type_name == "str | None"
    assert params["anything"].type_name == "any"
    assert params["sizes"].types == ("list",)


@pytest.mark.parametrize(
    "pname, raw, expected",
    [
        ("epochs", "3", 3),
        ("lr", "1e-3", 1e-3),          # YAML would read this as a string
        ("lr", 2, 2.0),                # ints are fine for floats
        ("flag", "true", True),
        ("flag", "True", True),
        ("name", "123", "123"),        # a str parameter keeps the text
        ("data_root", "None", None),
        ("data_root", "/data/x", "/data/x"),
        ("sizes", "[1, 2]", [1, 2]),
        ("anything", "0.5", 0.5),
    ],
)
def test_coerce_accepts(params, pname, raw, expected):
    value = coerce(params[pname], raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "pname, raw",
    [("epochs", "three"), ("epochs", "2.5"), ("epochs", True), ("lr", "fast"), ("flag", "2"), ("sizes", "5")],
)
def test_coerce_refuses(params, pname, raw):
    with pytest.raises(TypeError, match="expected"):
        coerce(params[pname], raw)


def test_unknown_parameter_lists_valid_names_and_types(params):
    with pytest.raises(CellreproError) as err:
        apply_overrides(params, {"epoch": "3"}, where="demo/x", source="-p")
    msg = str(err.value)
    assert "unknown parameter 'epoch'" in msg and "demo/x" in msg
    for line in ("epochs  ", "int", "lr", "float", "str | None"):
        assert line in msg


def test_wrong_type_message_names_parameter_and_source(params):
    with pytest.raises(CellreproError, match=r"parameter 'epochs' \(from profile smoke\): expected int"):
        apply_overrides(params, {"epochs": "many"}, where="demo/x", source="profile smoke")


@pytest.mark.parametrize("cell", ["x = compute()", "a, b = 1, 2", "import os", "x = [i for i in range(3)]"])
def test_non_declarative_cell_is_refused(cell):
    with pytest.raises(CellreproError, match="parameters"):
        parse_parameters(cell, where="nb.md")


def test_uncheckable_annotation_is_refused():
    with pytest.raises(CellreproError, match="annotation"):
        parse_parameters("x: Path = None")
