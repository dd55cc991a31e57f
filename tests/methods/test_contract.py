"""Contract tests run for every registered method (like timm's tests over list_models).

Each method trains for two steps with every fusion head and with 2 and 3 modalities, keeps
parameters finite, round-trips its state_dict (after on_fit_start, as fit resumes), and leaves evaluation untouched.
"""
import copy

import pytest
import torch

import mmlib as mm
from mmlib.methods.base import TrainState

CASES = [(method, fusion, m) for method in mm.METHODS.names() for fusion in mm.FUSIONS.names() for m in (2, 3)]


@pytest.mark.parametrize("name,fusion,num_modalities", CASES)
def test_method_contract(make_data, name, fusion, num_modalities):
    modalities = ("a", "b", "c")[:num_modalities]
    data = make_data(modalities=modalities, n=40)
    method = mm.METHODS.get(name).example(modalities)
    mm.seed_everything(0)
    model = mm.build_model(data, fusion=fusion)
    res = mm.fit(model, data, [method], num_epochs=1, batch_size=12, lr=1e-2)
    assert all(torch.isfinite(p).all() for p in res.model.parameters()), f"{name} made a parameter non-finite"
    assert torch.isfinite(torch.tensor(res.history[0]["train_loss"]))

    state = method.state_dict()
    clone = mm.METHODS.get(name).example(modalities)  # set up as fit does on resume, then restored
    clone.on_fit_start(TrainState(model=mm.build_model(data, fusion=fusion), optimizer=None, modalities=modalities,
                                  num_classes=data.num_classes, num_epochs=1, device=torch.device("cpu"),
                                  generator=torch.Generator().manual_seed(1), data=data))
    clone.load_state_dict(copy.deepcopy(state))
    assert str(clone.state_dict()) == str(state)

    first = mm.evaluate(res.model, data.test)
    again = mm.evaluate(res.model, data.test)
    assert first == again
    res.model.eval()
    with torch.no_grad():
        logits = res.model(data.test.inputs).logits
    assert torch.equal(logits.argmax(1), mm.predict(res.model, data.test)["logits"].argmax(1))


def test_every_method_is_listed_and_documented():
    for name in mm.METHODS.names():
        cls = mm.METHODS.get(name)
        assert cls.__doc__ and "Hooks:" in cls.__doc__, f"{name}: docstring needs a 'Hooks:' line"
