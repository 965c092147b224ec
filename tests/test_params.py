"""Parameters cell parsing, override checking and parameter choices (hand-written cases)."""

from pathlib import Path

import pytest
import yaml

from cellrepro import CellreproError
from cellrepro.publish.params import (apply_overrides, coerce, describe, load_choices, parse_parameters, resolve_choices,
                                      with_choices)

CHOICES = Path(__file__).parents[1] / "cellrepro" / "profiles" / "choices.yml"

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


# --- choices: Literal annotations and the package's registry (choices.yml) ---------------------

LITERAL_CELL = '''
from typing import Literal

loss: Literal["bce_dice", "ssim_dice"] = "bce_dice"  # fine-tuning loss
head: Literal["a", "b"] | None = None
losses: list[Literal["bce_dice", "ssim_dice"]] = ["bce_dice"]
k: Literal[1, 2] = 1
'''


@pytest.fixture
def literal():
    return parse_parameters(LITERAL_CELL)


def test_literal_annotations_give_types_and_choices(literal):
    exec(LITERAL_CELL, {})  # the cell stays valid Python for the kernel: Literal is imported
    assert literal["loss"].types == ("str",) and literal["loss"].choices == ("bce_dice", "ssim_dice")
    assert literal["loss"].help == "fine-tuning loss"
    assert literal["head"].type_name == "str | None" and literal["head"].choices == ("a", "b")
    assert literal["losses"].types == ("list",) and literal["losses"].choices == ("bce_dice", "ssim_dice")
    assert literal["k"].types == ("int",) and literal["k"].choices == (1, 2)


@pytest.mark.parametrize("pname, raw, expected", [
    ("loss", "ssim_dice", "ssim_dice"), ("head", "None", None), ("head", "b", "b"),
    ("losses", "['ssim_dice', 'bce_dice']", ["ssim_dice", "bce_dice"]), ("k", "2", 2),
])
def test_coerce_accepts_a_choice(literal, pname, raw, expected):
    assert coerce(literal[pname], raw) == expected


@pytest.mark.parametrize("pname, raw, message", [
    ("loss", "foo", "expected one of 'bce_dice', 'ssim_dice', got 'foo'"),
    ("head", "c", "expected one of 'a', 'b', got 'c'"),
    ("losses", "['bce_dice', 'ssim']", "expected each item one of 'bce_dice', 'ssim_dice', got 'ssim'"),
    ("k", "3", "expected one of 1, 2, got 3"),
])
def test_coerce_refuses_a_value_outside_the_choices(literal, pname, raw, message):
    with pytest.raises(ValueError) as err:
        coerce(literal[pname], raw)
    assert str(err.value) == message


def test_outside_choices_is_refused_with_the_table(literal):
    with pytest.raises(CellreproError) as err:
        apply_overrides(literal, {"loss": "foo"}, where="demo/x", source="-p")
    msg = str(err.value)
    assert "parameter 'loss' (from -p): expected one of 'bce_dice', 'ssim_dice', got 'foo'" in msg
    assert "(one of 'bce_dice', 'ssim_dice')  # fine-tuning loss" in describe(literal) in msg
    assert "(each one of 'bce_dice', 'ssim_dice')" in msg


@pytest.mark.parametrize("cell", ['loss: Literal["a", "b"] = "c"', 'xs: list[Literal["a"]] = ["a", "b"]'])
def test_a_default_outside_its_choices_is_refused(cell):
    with pytest.raises(CellreproError, match=r"nb.md: parameter '(loss|xs)' has the default .* not one of its choices"):
        parse_parameters(cell, where="nb.md")


@pytest.mark.parametrize("cell", ["x: Literal[a, b] = 1", "x: Literal[None] = None", "import typing"])
def test_uncheckable_literal_or_statement_is_refused(cell):
    with pytest.raises(CellreproError, match="annotation|declarative"):
        parse_parameters(cell)


def test_registry_choices_merge_into_parameters(params):
    merged = with_choices(params, {"name": ("synthetic", "real"), "sizes": (64, 128, 256)}, where="demo/x")
    assert merged["name"].choices == ("synthetic", "real") and params["name"].choices == ()
    assert coerce(merged["sizes"], "[256]") == [256]
    with pytest.raises(ValueError, match="expected each item one of 64, 128, 256, got 5"):
        coerce(merged["sizes"], "[5]")
    with pytest.raises(CellreproError, match="names no parameter of the notebook: 'nme'"):
        with_choices(params, {"nme": ("a",)}, where="demo/x")
    with pytest.raises(CellreproError, match="demo/x: parameter 'name' has the default 'synthetic'"):
        with_choices(params, {"name": ("real",)}, where="demo/x")


def test_registry_does_not_override_a_literal(literal):
    with pytest.raises(CellreproError, match="declares its choices with Literal"):
        with_choices(literal, {"loss": ("bce_dice",)}, where="demo/x")


def test_load_choices_reads_lists_references_and_merge_keys(tmp_path):
    path = tmp_path / "choices.yml"
    assert load_choices(path) == {}
    path.write_text("a/one: &base\n  form: cellrepro.losses.contrastive:LOCAL_FORMS\n"
                    "a/two:\n  <<: *base\n  dataset: [organoid]\n")
    assert load_choices(path) == {"a/one": {"form": ("hu", "literal")},
                                  "a/two": {"form": ("hu", "literal"), "dataset": ("organoid",)}}
    for bad, message in [("a/one:\n  form: hu\n", "expected a list of values or 'module:ATTRIBUTE'"),
                         ("a/one:\n  form: cellrepro.losses.contrastive:NOPE\n", "does not resolve"),
                         ("a/one:\n  form: cellrepro.losses.contrastive:global_contrastive\n", "not a non-empty tuple"),
                         ("- a/one\n", "expected a mapping")]:
        path.write_text(bad)
        with pytest.raises(CellreproError, match=message):
            load_choices(path)


def test_static_reading_of_a_reference_matches_the_imported_object():
    """Every reference of the registry, read without importing, is what the module holds."""
    import importlib

    from cellrepro.publish.params import _static_value

    refs = {spec for entry in yaml.safe_load(CHOICES.read_text()).values() for spec in entry.values()
            if isinstance(spec, str)}
    assert refs
    root = CHOICES.parents[1]
    for ref in sorted(refs):
        module, attr = ref.split(":")
        value = getattr(importlib.import_module(module), attr)
        source = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
        assert _static_value(source, attr) is not None, f"{ref}: not a plain literal (it would import {module})"
        assert resolve_choices(ref) == tuple(value), ref


def test_every_registry_entry_names_a_notebook_and_parameter_whose_default_it_allows(repo):
    registry = load_choices(repo.choices_file)
    notebooks = repo.notebooks()
    assert registry, "cellrepro/profiles/choices.yml is missing or empty"
    for key, entry in registry.items():
        assert key in notebooks, f"choices.yml: '{key}' names no notebook"
        params = notebooks[key].parameters  # raises on a default outside the choices
        for name, allowed in entry.items():
            assert name in params, f"choices.yml: {key} has no parameter '{name}'"
            assert params[name].choices == allowed
            default = params[name].default
            assert all(v in allowed for v in (default if isinstance(default, (list, dict)) else [default]))
    assert "device" not in {name for entry in registry.values() for name in entry}  # "cuda:1" etc. are valid


def test_run_refuses_a_value_outside_the_choices_before_any_kernel(repo, tmp_path, capsys, monkeypatch):
    import papermill

    from cellrepro.cli import main

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    argv = ["--root", str(repo.root), "run", "organoid/pipeline", "-p", "loss", "foo", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "parameter 'loss' (from -p): expected one of 'bce_dice', 'ssim_dice', 'ssim_mae_dice', got 'foo'" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
