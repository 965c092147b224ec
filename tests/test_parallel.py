"""Seeds side by side: results in order, the same as in-process, one thread per unit, errors raised."""

from __future__ import annotations

import pytest
import torch

from cellrepro.engine.parallel import map_units, one_thread, workers_for


def threads_and_square(x: int) -> tuple[int, int]:
    return torch.get_num_threads(), x * x


def fail_on_two(x: int) -> int:
    if x == 2:
        raise RuntimeError("unit 2 broke")
    return x


def test_workers_give_the_in_process_results_in_order_with_one_thread_each():
    items = [3, 1, 2, 5]
    inline = map_units(threads_and_square, items, workers=1, device="cpu")
    spread = map_units(threads_and_square, items, workers=2, device="cpu")
    assert inline == spread == [(1, 9), (1, 1), (1, 4), (1, 25)]


def test_a_failing_unit_raises_in_the_caller():
    with pytest.raises(RuntimeError, match="unit 2 broke"):
        map_units(fail_on_two, [1, 2, 3], workers=2, device="cpu")


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_workers_for_caps_by_items_and_checks_its_argument():
    assert workers_for(1, "auto", "cpu") == 1
    assert workers_for(3, 8, "cpu") == 3
    with pytest.raises(ValueError, match="workers must be"):
        workers_for(3, 0, "cpu")
