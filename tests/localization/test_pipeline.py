"""Both stages over seeds: the rows of the table, finite scores in range, determinism, bad input."""
import numpy as np
import pytest

import mmlib as mm
from tests.localization.helpers import tiny

TRAIN = {"num_epochs": 1, "batch_size": 16, "lr": 1e-3, "optimizer": "adam"}


def run():
    return mm.localization.run(tiny("solo"), tiny("cocktail", 40), seeds=[0], stage1=TRAIN, stage2=TRAIN,
                               variants={"stage 2": {}, "no l": {"suppress": False}},
                               dictionary={"warmup_epochs": 0, "n_init": 1}, model_kwargs={"width": 4, "embed_dim": 6})


def test_tiny_run_is_complete_and_deterministic():
    a = run()
    labels = a.table.groupby("scenes")["label"].apply(list).to_dict()
    assert labels["solo"] == ["centre prior", "untrained", "stage 1"]
    assert labels["cocktail"] == ["random", "class-agnostic", "dictionary only", "stage 2", "stage 2, no l at test",
                                  "no l"]
    scores = a.table[["iou@0.5", "auc", "miou", "ciou@0.3", "ciou@0.5", "nsa", "purity", "cls/audio"]]
    values = scores.to_numpy(dtype=float)
    assert np.all((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1))
    assert a.table.query("scenes == 'cocktail'")["nsa"].notna().all()
    res = a.results[0]
    assert set(res.stage2) == {"stage 2", "no l"} and sorted(res.assignment.tolist()) == list(range(10))
    assert set(a.curves["stage"]) == {"1", "stage 2", "no l"} and set(a.logs["name"]) == {"dictionary/purity",
                                                                                           "dictionary/nmi"}
    b = run()
    assert a.table.drop(columns="seconds").equals(b.table.drop(columns="seconds"))


def test_needs_scenes_datasets():
    with pytest.raises(TypeError, match="scenes dataset"):
        mm.localization.run(mm.load_dataset("mfeat"), tiny("cocktail", 40), stage1=TRAIN, stage2=TRAIN)
