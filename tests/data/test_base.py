"""Splits, the stratified split, the batch loader and MultimodalDataset."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlib.data.base import BatchLoader, MultimodalDataset, Split, make_splits, stratified_split


def ids_split(n, dim=2):
    """A split whose sample i has features (i, i, ...) and label i % 3, to trace samples."""
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, dim)
    return Split({"a": x, "b": -x}, torch.arange(n) % 3)


def seen(loader):
    return torch.cat([b["index"] for b in loader]).tolist()


# --- stratified_split -------------------------------------------------------------------

def test_stratified_split_sizes_per_class_are_rounded_fractions():
    y = np.array([0] * 10 + [1] * 20 + [2] * 5)
    tr, va, te = stratified_split(y, (0.6, 0.2, 0.2), seed=0)
    # class 0: 6/2/2, class 1: 12/4/4, class 2: round(3.0)=3, round(1.0)=1, rest 1
    for part, expected in ((tr, [6, 12, 3]), (va, [2, 4, 1]), (te, [2, 4, 1])):
        assert np.bincount(y[part], minlength=3).tolist() == expected


def test_stratified_split_is_disjoint_covering_sorted_and_seeded():
    y = np.arange(50) % 4
    parts = stratified_split(y, (0.5, 0.25, 0.25), seed=3)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(50))
    assert all(np.array_equal(p, np.sort(p)) for p in parts)
    assert all(p.dtype == np.int64 for p in parts)
    again = stratified_split(y, (0.5, 0.25, 0.25), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = stratified_split(y, (0.5, 0.25, 0.25), seed=4)
    assert not np.array_equal(parts[0], other[0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60),
       st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(1, 20)), st.integers(0, 2**16))
def test_stratified_split_always_partitions_the_indices(labels, weights, seed):
    y = np.asarray(labels)
    fractions = tuple(w / sum(weights) for w in weights)
    parts = stratified_split(y, fractions, seed)
    allidx = np.concatenate(parts)
    assert len(allidx) == len(y)
    assert sorted(allidx.tolist()) == list(range(len(y)))


@pytest.mark.parametrize("bad", [(0.5, 0.5), (0.6, 0.2, 0.3), (0.8, 0.2, 0.0), (1.2, -0.1, -0.1),
                                 (0.25, 0.25, 0.25, 0.25)])
def test_stratified_split_bad_fractions_are_an_error(bad):
    with pytest.raises(ValueError, match=r"three positive numbers summing to 1, got"):
        stratified_split(np.arange(10) % 2, bad, seed=0)


# --- Split ------------------------------------------------------------------------------

def test_split_defaults_index_to_arange_and_len():
    s = ids_split(5)
    assert len(s) == 5
    assert s.index.tolist() == [0, 1, 2, 3, 4]


def test_split_length_mismatch_is_an_error_naming_the_modality():
    with pytest.raises(ValueError, match=r"modality 'b' has 3 samples but there are 4 labels"):
        Split({"a": torch.zeros(4, 2), "b": torch.zeros(3, 2)}, torch.zeros(4, dtype=torch.long))


def test_subset_keeps_the_original_sample_ids():
    s = ids_split(10)
    sub = s.subset(np.array([7, 2, 4]))
    assert sub.index.tolist() == [7, 2, 4]
    assert sub.y.tolist() == [1, 2, 1]
    assert sub.inputs["a"][:, 0].tolist() == [7.0, 2.0, 4.0]
    assert sub.inputs["b"][:, 0].tolist() == [-7.0, -2.0, -4.0]
    assert sub.subset([2, 0]).index.tolist() == [4, 7]


def test_batch_holds_inputs_labels_and_index():
    b = ids_split(6).batch(torch.tensor([5, 1]))
    assert set(b) == {"inputs", "y", "index"}
    assert b["index"].tolist() == [5, 1]
    assert b["y"].tolist() == [2, 1]
    assert b["inputs"]["a"].shape == (2, 2)


def test_make_splits_partitions_samples_and_numbers_each_split():
    x = torch.arange(30, dtype=torch.float32)[:, None]
    y = torch.arange(30) % 3
    tr, va, te = make_splits({"a": x}, y, (0.6, 0.2, 0.2), seed=1)
    assert (len(tr), len(va), len(te)) == (18, 6, 6)
    rows = torch.cat([tr.inputs["a"], va.inputs["a"], te.inputs["a"]])[:, 0].long().sort().values
    assert rows.tolist() == list(range(30))  # a partition of the samples
    for s in (tr, va, te):  # labels travel with their rows; ids are 0..N-1 within the split
        assert torch.equal(s.y, s.inputs["a"][:, 0].long() % 3)
        assert s.index.tolist() == list(range(len(s)))


# --- BatchLoader ------------------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n,bs", [(10, 3), (9, 3), (4, 10), (1, 1)])
def test_loader_visits_every_sample_once_per_epoch(shuffle, n, bs):
    loader = BatchLoader(ids_split(n), bs, shuffle=shuffle)
    for _ in range(2):
        order = seen(loader)
        assert sorted(order) == list(range(n))
        assert len(list(loader)) == len(loader) == -(-n // bs)


def test_loader_without_shuffle_is_in_order_with_last_partial_batch():
    batches = [b["index"].tolist() for b in BatchLoader(ids_split(7), 3)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_loader_batch_content_matches_its_index():
    for b in BatchLoader(ids_split(11), 4, shuffle=True):
        assert torch.equal(b["inputs"]["a"][:, 0].long(), b["index"])
        assert torch.equal(b["y"], b["index"] % 3)


@pytest.mark.parametrize("n,bs,expected", [(10, 3, 3), (9, 3, 3), (2, 3, 0)])
def test_drop_last_drops_the_partial_batch(n, bs, expected):
    loader = BatchLoader(ids_split(n), bs, shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader) == expected
    assert all(len(b["y"]) == bs for b in batches)
    assert len(set(torch.cat([b["index"] for b in batches]).tolist()) if batches else set()) == expected * bs


def test_same_generator_seed_gives_same_order_and_epochs_differ():
    s = ids_split(20)
    a = BatchLoader(s, 4, shuffle=True, generator=torch.Generator().manual_seed(5))
    b = BatchLoader(s, 4, shuffle=True, generator=torch.Generator().manual_seed(5))
    c = BatchLoader(s, 4, shuffle=True, generator=torch.Generator().manual_seed(6))
    first_a, first_b, first_c = seen(a), seen(b), seen(c)
    assert first_a == first_b
    assert first_a != first_c
    assert first_a != list(range(20))
    second_a = seen(a)
    assert second_a != first_a  # a new permutation each epoch
    assert second_a == seen(b)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n", [8, 7])
def test_two_ranks_get_disjoint_equal_shares_covering_all(shuffle, n):
    s = ids_split(n)
    loaders = [BatchLoader(s, 3, shuffle=shuffle, generator=torch.Generator().manual_seed(1),
                           rank=r, world_size=2) for r in range(2)]
    shares = [seen(ld) for ld in loaders]
    assert len(shares[0]) == len(shares[1]) == -(-n // 2)
    assert set(shares[0]) | set(shares[1]) == set(range(n))
    overlap = set(shares[0]) & set(shares[1])
    assert len(overlap) == (0 if n % 2 == 0 else 1)  # odd n: one sample is repeated as padding
    per_rank = -(-n // 2)
    for ld in loaders:
        assert len(list(ld)) == len(ld) == -(-per_rank // 3)


def test_two_ranks_without_shuffle_interleave():
    s = ids_split(5)
    assert seen(BatchLoader(s, 10, rank=0, world_size=2)) == [0, 2, 4]
    assert seen(BatchLoader(s, 10, rank=1, world_size=2)) == [1, 3, 0]


def test_every_rank_gets_its_share_when_world_size_exceeds_twice_the_samples():
    s = ids_split(2)
    loaders = [BatchLoader(s, 4, rank=r, world_size=5) for r in range(5)]
    assert [len(list(ld)) for ld in loaders] == [len(ld) for ld in loaders]


@pytest.mark.parametrize("bad", [0, -3])
def test_batch_size_below_one_is_an_error(bad):
    with pytest.raises(ValueError, match=rf"batch_size must be >= 1, got {bad}"):
        BatchLoader(ids_split(4), bad)


# --- MultimodalDataset ------------------------------------------------------------------

def test_select_restricts_and_reorders_modalities(make_data):
    data = make_data(modalities=("a", "b", "c"))
    sub = data.select(["c", "a"])
    assert sub.modalities == ("c", "a")
    assert tuple(sub.encoders) == ("c", "a")
    for name, s in sub.splits().items():
        assert tuple(s.inputs) == ("c", "a")
        assert torch.equal(s.y, data.splits()[name].y)
        assert torch.equal(s.index, data.splits()[name].index)
        assert s.inputs["c"] is data.splits()[name].inputs["c"]
    assert data.modalities == ("a", "b", "c")  # the original is untouched
    assert sub.num_classes == data.num_classes and sub.name == data.name


def test_weak_defaults_to_none_and_select_keeps_it_only_when_selected(make_data):
    data = make_data(modalities=("a", "b", "c"))
    assert data.weak is None and data.select(["b"]).weak is None
    data.weak = "b"
    assert data.select(["c", "b"]).weak == "b"
    assert data.select(["a", "c"]).weak is None


def test_select_unknown_modality_is_an_error_listing_the_modalities(make_data):
    data = make_data()
    with pytest.raises(ValueError, match=r"unknown modality 'c' for tiny; it has \('a', 'b'\)"):
        data.select(("a", "c"))


def test_input_shape_and_summary(make_data):
    data = make_data(n=60, kind="cnn")
    assert data.input_shape("a") == (1, 8, 8)
    summ = data.summary()
    assert set(summ) == {"dataset", "modalities", "classes", "train / val / test"}
    assert summ["dataset"] == "tiny"
    assert summ["modalities"] == "a (1, 8, 8), b (1, 8, 8)"
    assert summ["classes"] == 3
    assert summ["train / val / test"] == "36 / 12 / 12"


def test_tiny_data_is_a_multimodal_dataset(make_data):
    data = make_data(modalities=("x", "y", "z"), n=30, num_classes=5)
    assert isinstance(data, MultimodalDataset)
    assert data.modalities == ("x", "y", "z")
    assert len(data.train) + len(data.val) + len(data.test) == 30
    assert set(data.train.y.tolist()) == set(range(5))


def _split(n=10):
    return Split({"a": torch.arange(n, dtype=torch.float32).view(n, 1)}, torch.arange(n) % 2)


def test_loader_follows_a_given_order_with_repeats():
    loader = BatchLoader(_split(), 4, shuffle=True, order=torch.tensor([3, 3, 0, 9, 1]))
    batches = list(loader)
    assert [b["index"].tolist() for b in batches] == [[3, 3, 0, 9], [1]]
    assert len(loader) == 2


def test_loader_draws_an_order_every_epoch_from_its_generator():
    loader = BatchLoader(_split(), 5, generator=torch.Generator().manual_seed(1),
                         order=lambda g: torch.randint(0, 10, (7,), generator=g))
    first, second = ([i for b in loader for i in b["index"].tolist()] for _ in range(2))
    assert len(first) == 7 and first != second


def test_loader_transform_edits_each_batch():
    def blank(batch):
        return {**batch, "inputs": {m: torch.zeros_like(x) for m, x in batch["inputs"].items()}}

    batches = list(BatchLoader(_split(), 4, transform=blank))
    assert all(b["inputs"]["a"].abs().sum() == 0 for b in batches) and len(batches) == 3


def test_loader_shards_a_given_order_across_ranks():
    order = torch.tensor([5, 4, 3, 2, 1])
    seen = [[i for b in BatchLoader(_split(), 2, order=order, rank=r, world_size=2) for i in b["index"].tolist()]
            for r in range(2)]
    assert seen == [[5, 3, 1], [4, 2, 5]]  # padded by wrap-around to 3 each


@pytest.mark.parametrize("order, msg", [(torch.tensor([0, 10]), "outside 0..9"),
                                        (torch.tensor([[0, 1]]), "1-D integer"),
                                        (torch.tensor([0.5]), "1-D integer"),
                                        (torch.tensor([], dtype=torch.long), "non-empty")])
def test_bad_orders_are_errors(order, msg):
    with pytest.raises(ValueError, match=msg):
        BatchLoader(_split(), 2, order=order)
