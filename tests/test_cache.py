"""Shared work (engine/cache.py): what a run served from the cache would have cost cold."""

from __future__ import annotations

import time

from cellrepro.engine import cache


def test_cold_seconds_count_each_result_once_whether_computed_or_served(tmp_path):
    def inner(x):
        time.sleep(0.2)
        return x

    def outer(x):
        time.sleep(0.1)
        return f_inner(x) + 1

    f_inner = cache.shared(inner, location=tmp_path)
    f_outer = cache.shared(outer, location=tmp_path)
    cache.cold_seconds(reset=True)
    assert f_outer(1) == 2 and f_inner(1) == 1  # computed: inner inside outer, then served
    cold = cache.cold_seconds(reset=True)
    assert 0.29 < cold < 0.55  # 0.1 (outer's own) + 0.2 (inner), inner not counted twice
    assert f_outer(1) == 2  # a new process would see this: everything from the cache
    assert abs(cache.cold_seconds() - cold) < 1e-9  # inner's seconds travel with outer's result


def test_cold_seconds_without_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.OFF_ENV, "1")
    slow = cache.shared(lambda x: time.sleep(0.05) or x, location=tmp_path)
    cache.cold_seconds(reset=True)
    slow(1), slow(1)
    assert 0.09 < cache.cold_seconds(reset=True) < 0.5  # computed twice, each result counted
    assert not any(tmp_path.iterdir())


def test_a_function_s_own_source_is_part_of_its_key(tmp_path):
    f = cache.shared(lambda x: x + 1, location=tmp_path)
    g = cache.shared(lambda x: x + 2, location=tmp_path)  # same name, same module, other source
    assert (f(1), g(1)) == (2, 3)
