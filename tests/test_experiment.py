"""run over seeds, Runs and concat."""
import pytest

from mmlib.experiment import concat, run
from mmlib.methods import Method


# --- run ---------------------------------------------------------------------------------

class EpochLogger(Method):
    """Logs the epoch number once per epoch, so ``Runs.logs`` has rows."""

    registry_name = "epoch-logger"

    def on_train_epoch_end(self, state):
        state.log("epoch_seen", state.epoch)


FIT = {"num_epochs": 2, "batch_size": 16, "lr": 1e-2}


@pytest.fixture(scope="module")
def runs():
    from tests.helpers import make_tiny_data

    return run(make_tiny_data(), EpochLogger(), seeds=(0, 1), **FIT)


def test_run_gives_one_row_per_seed_with_expected_columns(runs):
    t = runs.table
    assert len(t) == 2
    assert t["seed"].tolist() == [0, 1]
    expected = {"dataset", "label", "fusion", "seed", "acc", "f1", "map", "acc/a", "acc/b",
                "best_epoch", "seconds", "probe/a", "probe/b"}
    assert set(t.columns) == expected
    assert t["label"].tolist() == ["epoch-logger"] * 2
    assert t["dataset"].tolist() == ["tiny"] * 2 and t["fusion"].tolist() == ["concat"] * 2
    for col in ("acc", "f1", "map", "acc/a", "probe/b"):
        assert t[col].between(0, 1).all()
    assert t["best_epoch"].isin([0, 1]).all()
    assert len(runs.results) == 2


def test_runs_logs_and_curves_concatenate_seeds(runs):
    logs = runs.logs
    assert list(logs.columns) == ["epoch", "step", "name", "value", "seed", "label"]
    assert len(logs) == 4  # two epochs x two seeds
    assert logs.groupby("seed")["value"].apply(list).to_dict() == {0: [0.0, 1.0], 1: [0.0, 1.0]}
    curves = runs.curves
    assert len(curves) == 4
    assert {"epoch", "train_loss", "val/acc", "val/acc/a", "seed", "label"} <= set(curves.columns)
    assert curves["seed"].tolist() == [0, 0, 1, 1]


def test_logs_keep_numeric_columns_when_a_run_logged_nothing(make_data, runs):
    silent = run(make_data(), None, seeds=(0,), **FIT)  # joint training logs nothing
    assert silent.logs.empty
    both = concat([runs, silent]).logs
    assert str(both["value"].dtype) == "float64"
    assert str(both["epoch"].dtype) == str(both["step"].dtype) == "int64"
    assert both["value"].tolist() == runs.logs["value"].tolist()
    table = both.groupby(["epoch", "name"])["value"].mean().unstack("name")
    assert all(str(t) == "float64" for t in table.dtypes)  # on object columns DataFrame.round does nothing


def test_curves_keep_datasets_apart_when_labels_repeat(make_data):
    """One label on two datasets: each curve row says which dataset it belongs to."""
    a, b = make_data(seed=0), make_data(seed=1)
    b.name = "other"
    both = concat([run(a, "joint", seeds=[0], probes=False, num_epochs=2, batch_size=16),
                   run(b, "joint", seeds=[0], probes=False, num_epochs=3, batch_size=16)]).curves
    assert both.groupby("dataset")["epoch"].max().to_dict() == {"tiny": 1, "other": 2}


def test_run_label_fusion_no_probes_no_keep(make_data):
    data = make_data(n=45)
    r = run(data, None, seeds=[3], label="mine", fusion="sum", probes=False, keep=False, **FIT)
    assert r.table["label"].tolist() == ["mine"] and r.table["fusion"].tolist() == ["sum"]
    assert not any(c.startswith("probe/") for c in r.table.columns)
    assert r.results == []
    assert r.logs.empty and r.curves.empty


def test_run_default_label_is_joint_or_method_names(make_data):
    data = make_data(n=45)
    r = run(data, seeds=[0], probes=False, num_epochs=1, batch_size=16)
    assert r.table["label"].tolist() == ["joint"]
    r = run(data, ["joint-uni", EpochLogger()], seeds=[0], probes=False, num_epochs=1, batch_size=16)
    assert r.table["label"].tolist() == ["joint-uni+epoch-logger"]


def test_run_is_reproducible_per_seed(make_data, runs):
    again = run(make_data(), EpochLogger(), seeds=(1,), **FIT)
    row = runs.table[runs.table["seed"] == 1].iloc[0]
    for col in ("acc", "f1", "map", "acc/a", "acc/b", "probe/a", "probe/b"):
        assert again.table[col].iloc[0] == row[col]


def test_adding_and_concatenating_runs(runs):
    both = runs + runs
    assert len(both.table) == 4 and len(both.results) == 4
    assert both.table.index.tolist() == [0, 1, 2, 3]
    cat = concat([runs, runs, runs])
    assert len(cat.table) == 6 and len(cat.logs) == 12
    assert concat([]).table.empty
