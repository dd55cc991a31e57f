"""SoundingNet: shapes, the audio-visual map and object maps by hand, classifier reset, registry, errors."""
import pytest
import torch

import mmlib as mm
from mmlib.localization.model import LocOutput, SoundingNet


def inputs(b=3, size=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.randn(b, 129, 9, generator=g), "visual": torch.randn(b, 1, size, size, generator=g)}


@pytest.mark.parametrize("size, cells", [(20, 5), (40, 10)])
def test_shapes(size, cells):
    model = SoundingNet(129, num_clusters=7, width=4, embed_dim=6).eval()
    out = model(inputs(size=size))
    assert isinstance(out, LocOutput)
    assert out.visual_map.shape == (3, 8, cells, cells) and out.visual_embed.shape == (3, 6, cells, cells)
    assert out.audio_feat.shape == (3, 8) and out.audio_embed.shape == (3, 6)
    assert out.visual_logits.shape == out.audio_logits.shape == (3, 7)
    assert model.av_map(out.visual_embed, out.audio_embed).shape == (3, cells, cells)
    assert model.object_maps(out).shape == (3, 7, cells, cells)


def test_av_map_is_sigmoid_of_scaled_cosine():
    model = SoundingNet(129, width=4, embed_dim=2)
    v = torch.zeros(1, 2, 1, 3)
    v[0, :, 0, 0] = torch.tensor([1.0, 0.0])   # same direction as a: cos 1
    v[0, :, 0, 1] = torch.tensor([0.0, 3.0])   # orthogonal: cos 0
    v[0, :, 0, 2] = torch.tensor([-2.0, 0.0])  # opposite: cos -1
    a = torch.tensor([[5.0, 0.0]])
    expected = torch.sigmoid(torch.tensor([5.0, 0.0, -5.0]))  # w starts at 5
    assert torch.allclose(model.av_map(v, a)[0, 0], expected)


def test_object_maps_are_an_affine_raw_inner_product():
    for space in ("embed", "backbone"):
        model = SoundingNet(129, num_clusters=2, width=1, embed_dim=2, dictionary_space=space)
        model.dictionary.copy_(torch.tensor([[1.0, 0.0], [0.5, 2.0]]))
        with torch.no_grad():
            model.object_scale.fill_(2.0)
            model.object_bias.fill_(-1.0)
        f = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
        out = LocOutput(f, None, f, None, None, None)
        # <(3, 4), (1, 0)> = 3 -> 2*3 - 1 = 5; <(3, 4), (0.5, 2)> = 9.5 -> 18
        assert model.object_maps(out).flatten().tolist() == [5.0, 18.0]
    assert SoundingNet(129, width=4, embed_dim=6, dictionary_space="backbone").dictionary.shape == (10, 8)
    assert SoundingNet(129, width=4, embed_dim=6).dictionary.shape == (10, 6)


def test_reset_classifiers():
    model = SoundingNet(129, num_clusters=50, width=32, embed_dim=4)
    model.reset_classifiers(torch.Generator().manual_seed(0))
    for head in (model.visual_classifier, model.audio_classifier):
        assert float(head.weight.detach().std()) == pytest.approx(0.01, rel=0.1)
        assert float(head.bias.detach().abs().max()) == 0.0


def test_registered_and_sized_from_the_data():
    data = mm.load_dataset("av-solo", n_scenes=30)
    model = mm.build_model(data, model="sounding-net", width=4)
    assert isinstance(model, SoundingNet) and model.num_clusters == 10
    assert model.audio[0].in_channels == 129
    assert mm.build_model(data, model="sounding-net", num_clusters=12).num_clusters == 12


def test_errors():
    with pytest.raises(ValueError, match="dictionary_space must be one of"):
        SoundingNet(129, dictionary_space="pixels")
    with pytest.raises(KeyError, match="no input for modality 'audio'"):
        SoundingNet(129, width=2)({"visual": torch.zeros(1, 1, 20, 20)})


def test_gradients_reach_both_streams():
    model = SoundingNet(129, width=4, embed_dim=6)
    out = model(inputs())
    model.av_map(out.visual_embed, out.audio_embed).sum().backward()
    assert model.visual[0].weight.grad.abs().sum() > 0 and model.audio[0].weight.grad.abs().sum() > 0
    assert model.map_scale.grad.abs().item() > 0  # the scale w trains too
