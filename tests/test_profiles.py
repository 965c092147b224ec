"""Profiles: every TOC notebook has a smoke entry; every override names a real, well-typed parameter."""

from cellrepro.publish.profile import check_profiles, load_profile


def test_project_profiles_are_complete_and_valid(repo):
    assert check_profiles(repo) == []


def test_every_toc_notebook_has_a_smoke_entry(repo):
    smoke = load_profile(repo, "smoke")
    missing = [nb.key for nb in repo.toc_notebooks() if nb.key not in smoke]
    assert missing == []


def test_problems_are_reported(tiny):
    assert check_profiles(tiny) == []
    (tiny.profiles_dir / "smoke.yml").write_text("{}\n")
    (tiny.profiles_dir / "paper.yml").write_text("demo/tiny:\n  epochz: 3\n  n: 1.5\ndemo/gone: {}\n")
    problems = check_profiles(tiny)
    assert any("unknown parameter 'epochz'" in p for p in problems)
    assert any("names no notebook" in p and "demo/gone" in p for p in problems)
    assert any("no entry for 'demo/tiny'" in p for p in problems)


def test_wrong_type_in_profile_is_reported(tiny):
    (tiny.profiles_dir / "book.yml").write_text("demo/tiny:\n  n: 1.5\n")
    assert any("expected int" in p for p in check_profiles(tiny))


def test_gpu_only_is_a_reserved_key_not_a_notebook(tiny):
    from cellrepro.publish.profile import gpu_only

    assert gpu_only(tiny) == []
    (tiny.profiles_dir / "book.yml").write_text("_gpu_only: [demo/tiny]\ndemo/tiny:\n  n: 4\n")
    assert gpu_only(tiny) == ["demo/tiny"]
    assert load_profile(tiny, "book") == {"demo/tiny": {"n": 4}}  # the reserved key is no notebook entry
    assert check_profiles(tiny) == []
    (tiny.profiles_dir / "book.yml").write_text("_gpu_only: [demo/gone]\n")
    assert any("_gpu_only entry 'demo/gone' names no notebook" in p for p in check_profiles(tiny))
    (tiny.profiles_dir / "book.yml").write_text("_gpu_only: demo/tiny\n")
    assert any("must be a list" in p for p in check_profiles(tiny))
    (tiny.profiles_dir / "book.yml").write_text("_gpu: [demo/tiny]\n")
    assert any("unknown reserved key '_gpu'" in p for p in check_profiles(tiny))
    (tiny.profiles_dir / "book.yml").write_text("{}\n")
    (tiny.profiles_dir / "smoke.yml").write_text("_gpu_only: [demo/tiny]\ndemo/tiny: {}\n")
    assert any("belongs in book.yml" in p for p in check_profiles(tiny))


def test_project_book_profile_has_a_gpu_only_list(repo):
    from cellrepro.publish.profile import gpu_only

    assert isinstance(gpu_only(repo), list)


def test_every_profile_value_of_a_registered_parameter_is_among_its_choices(repo):
    from cellrepro.publish.params import coerce, load_choices

    registry = load_choices(repo.choices_file)
    notebooks = repo.notebooks()
    checked = 0
    for profile in ("smoke", "book", "paper"):
        for key, overrides in load_profile(repo, profile).items():
            for name, value in overrides.items():
                if name in registry.get(key, {}):
                    coerce(notebooks[key].parameters[name], value)  # ValueError: outside the choices
                    checked += 1
    assert checked  # the paper profile sets organoid/ablation-frozen's losses and spheroid's backbones


def test_registry_choices_reach_profiles_and_notebooks(tiny):
    (tiny.profiles_dir / "choices.yml").write_text("demo/tiny:\n  label: [demo, other]\n")
    assert tiny.notebook("demo/tiny").parameters["label"].choices == ("demo", "other")
    assert check_profiles(tiny) == []
    (tiny.profiles_dir / "book.yml").write_text("demo/tiny:\n  label: nope\n")
    assert any("parameter 'label' (from profile book): expected one of 'demo', 'other', got 'nope'" in p
               for p in check_profiles(tiny))
