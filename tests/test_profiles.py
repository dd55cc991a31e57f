"""Run profiles: names, overrides (training vs dataset), seeds, data_root, load and train."""
from pathlib import Path

import pytest

from mmlib.profiles import PROFILES, TRAIN_KEYS, Profile, ProfileError, check_data_root, resolve


def test_profile_names():
    assert set(PROFILES) == {"quick", "default", "paper"}


def test_quick_and_default_settings():
    q, d = resolve("quick"), resolve("default")
    assert q.seeds == [0] and d.seeds == [0, 1, 2]
    assert sorted(q.datasets) == sorted(d.datasets) == ["av-cocktail", "av-digits", "av-mnist", "av-solo", "mfeat"]
    assert q.data_kwargs("av-digits") == q.data_kwargs("av-mnist") == {"n_samples": 300}
    assert q.train("av-mnist")["num_epochs"] == 2 and d.train("av-mnist")["num_epochs"] == 20
    assert d.data_kwargs("av-mnist") == {}
    assert q.train("av-digits")["num_epochs"] == 2 and d.train("av-digits")["num_epochs"] == 20
    assert q.device == "cpu" and q.data_root is None


def test_train_includes_device_and_all_training_settings():
    p = resolve("default", device="cuda:1")
    assert p.train("mfeat") == {"num_epochs": 30, "batch_size": 64, "lr": 0.05, "optimizer": "sgd",
                                "momentum": 0.9, "weight_decay": 1e-4, "device": "cuda:1"}
    assert set(p.train("av-digits")) <= set(TRAIN_KEYS) | {"device"}


def test_training_override_applies_to_every_dataset():
    p = resolve("quick", lr=0.5, num_epochs=7)
    for ds in ("av-digits", "mfeat"):
        assert p.train(ds)["lr"] == 0.5 and p.train(ds)["num_epochs"] == 7
    assert PROFILES["quick"]["datasets"]["mfeat"]["train"]["lr"] == 0.05  # the table is not mutated


def test_new_training_key_is_added():
    p = resolve("default", lr_step=5)
    assert p.train("mfeat")["lr_step"] == 5 and p.train("av-digits")["lr_step"] == 5


def test_dataset_override_applies_only_where_the_loader_accepts_it():
    p = resolve("quick", n_samples=120, views=("fou", "kar"))
    assert p.data_kwargs("av-digits") == {"n_samples": 120}
    assert p.data_kwargs("mfeat") == {"views": ("fou", "kar")}
    both = resolve("default", data_seed=3)
    assert both.data_kwargs("av-digits") == both.data_kwargs("mfeat") == {"data_seed": 3}


def test_data_kwargs_is_a_copy():
    p = resolve("quick")
    p.data_kwargs("av-digits")["n_samples"] = 1
    assert p.data_kwargs("av-digits") == {"n_samples": 300}


def test_unknown_override_lists_valid_ones_and_closest():
    with pytest.raises(ProfileError, match=r"unknown override 'n_sample'\. Did you mean 'n_samples'\? "
                                           r"Valid overrides: .*audio_missing.*num_epochs.*views") as info:
        resolve("quick", n_sample=10)
    assert "lr" in str(info.value).split("Valid overrides: ")[1].split(", ")
    assert isinstance(info.value, ValueError)


def test_unknown_profile_suggests_close_match():
    with pytest.raises(ProfileError, match=r"unknown profile 'quik'\. Did you mean 'quick'\? "
                                           r"Known profiles: default, paper, quick"):
        resolve("quik")


def test_unknown_dataset_in_profile_lists_covered_ones():
    with pytest.raises(ProfileError, match=r"profile 'quick' has no settings for dataset 'mfet'; "
                                           r"it covers \['av-cocktail', 'av-digits', 'av-mnist', 'av-solo', 'mfeat'\]\. "
                                           r"Did you mean 'mfeat'\?"):
        resolve("quick").train("mfet")


@pytest.mark.parametrize("seeds,expected", [([3, 4], [3, 4]), (5, [5]), ((1, 2), [1, 2]), ([0], [0])])
def test_seeds_override(seeds, expected):
    cfg = resolve("default", seeds=seeds)
    assert cfg.seeds == expected and cfg.close_seeds == expected  # the caller's seeds are exact


@pytest.mark.parametrize("name", ["quick", "default"])
def test_close_seeds_extend_the_seeds(name):
    cfg = resolve(name)
    assert cfg.close_seeds[:len(cfg.seeds)] == cfg.seeds and len(set(cfg.close_seeds)) == len(cfg.close_seeds)
    assert len(resolve("default").close_seeds) > len(resolve("default").seeds)


@pytest.mark.parametrize("bad", [[], [-1], [1.5], ["0"], [0, None]])
def test_bad_seeds_are_an_error(bad):
    with pytest.raises(ProfileError, match=r"seeds must be a non-empty list of non-negative integers, got"):
        resolve("default", seeds=bad)


def test_data_root_is_kept_for_builtin_profiles_without_checking():
    assert resolve("default", data_root="somewhere").data_root == Path("somewhere")


def test_paper_profile_without_data_root_says_how_to_pass_it():
    with pytest.raises(ProfileError, match=r"profile 'paper' reads the real datasets: pass data_root=.*"
                                           r"-p data_root"):
        resolve("paper")
    with pytest.raises(ProfileError, match=r"pass data_root="):
        resolve("paper", data_root="")


def test_paper_profile_with_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ProfileError, match=rf"data_root '{missing}' is not an existing folder"):
        resolve("paper", data_root=missing)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ProfileError, match=r"is not an existing folder; point it at the folder"):
        check_data_root(a_file, "paper")


def test_check_data_root_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_data_root("~", "paper") == tmp_path


def test_paper_profile_with_valid_root_says_its_loaders_are_not_here_yet(tmp_path):
    with pytest.raises(ProfileError, match=r"needs dataset\(s\) \['cremad'\], whose loaders are not in this "
                                           r"version of mmlib yet; use profile 'default'"):
        resolve("paper", data_root=tmp_path)


def test_profile_load_uses_profile_settings_and_kwargs_win():
    p = resolve("quick")
    d = p.load("av-digits")
    assert (len(d.train), len(d.val), len(d.test)) == (180, 60, 60)
    d = p.load("av-digits", n_samples=100)
    assert (len(d.train), len(d.val), len(d.test)) == (60, 20, 20)
    m = resolve("quick", views=("mor", "zer")).load("mfeat")
    assert m.modalities == ("mor", "zer")


def test_profile_is_a_dataclass_with_its_fields():
    p = Profile("x", [1], "cpu", None, {"mfeat": {"data": {}, "train": {"lr": 1.0}}})
    assert p.train("mfeat") == {"lr": 1.0, "device": "cpu"}


@pytest.mark.parametrize("override,match", [
    ({"num_epochs": "3"}, r"override num_epochs must be an integer >= 1, got '3' \(str\)"),
    ({"num_epochs": True}, r"override num_epochs must be an integer >= 1, got True \(bool\)"),
    ({"batch_size": 0}, r"override batch_size must be >= 1, got 0"),
    ({"lr": "1e-3"}, r"override lr must be a real number > 0, got '1e-3' \(str\).*write exponents with a dot"),
    ({"momentum": 1.5}, r"override momentum must be a finite number in \[0, 1\), got 1\.5"),
    ({"lr_step": 0}, r"override lr_step must be None or >= 1, got 0"),
    ({"optimizer": "sdg"}, r"override unknown optimizer 'sdg'\. Did you mean 'sgd'\?"),
])
def test_training_override_values_follow_fits_rules(override, match):
    with pytest.raises(ProfileError, match=match):
        resolve("quick", **override)


@pytest.mark.parametrize("bad", [True, [True, 1], [0, False]])
def test_bool_seeds_are_an_error(bad):
    with pytest.raises(ProfileError, match=r"seeds must be a non-empty list of non-negative integers"):
        resolve("default", seeds=bad)


def test_bad_device_or_profile_type_is_a_profile_error():
    with pytest.raises(ProfileError, match=r"device 'gpu' is not a torch device; use 'cpu', 'cuda'"):
        resolve("quick", device="gpu")
    with pytest.raises(ProfileError, match=r"unknown profile \['quick'\]\..*Known profiles: default, paper, quick"):
        resolve(["quick"])
