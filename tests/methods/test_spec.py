"""Method specs: every accepted form, and a clear error for each wrong one."""
import pytest

import mmlib as mm
from mmlib.methods.ogm_ge import OGMGE
from mmlib.methods import Joint, JointUnimodal, Unimodal
from mmlib.methods.spec import make_methods, parse_name


def test_names_with_arguments_parse_as_yaml():
    assert parse_name("opm") == ("opm", {})
    assert parse_name("mmpareto:batched=true, gamma=2") == ("mmpareto", {"batched": True, "gamma": 2})
    assert parse_name("ogm-ge:alpha=0.5,end_epoch=null") == ("ogm-ge", {"alpha": 0.5, "end_epoch": None})
    with pytest.raises(ValueError, match="name:key=value"):
        parse_name("mmpareto:batched")
    with pytest.raises(ValueError, match="not a valid value"):
        parse_name("mmpareto:gamma=[1")


def test_every_form_gives_methods():
    given = OGMGE(alpha=0.7)
    made = make_methods([given, "ogm:alpha=0.2", ("mmpareto", {"gamma": 1.0}), lambda: OGMGE(alpha=0.1)])
    assert [type(m).__name__ for m in made] == ["OGMGE", "OGM", "MMPareto", "OGMGE"]
    assert made[0] is not given and made[0].alpha == 0.7  # fresh copies by default
    assert made[1].alpha == 0.2 and made[2].gamma == 1.0 and made[3].alpha == 0.1
    assert make_methods(given, fresh=False)[0] is given
    assert make_methods(None) == [] and [m.registry_name for m in make_methods("joint")] == ["joint"]


def test_a_method_class_is_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"pass an instance, e.g. OGMGE\(\) or the registered name 'ogm-ge'"):
        make_methods(OGMGE)
    with pytest.raises(TypeError, match=r"OGMGE\(\)"):
        make_methods([OGMGE])


def test_other_wrong_specs():
    with pytest.raises(TypeError, match="cannot make a method from 3"):
        make_methods([3])
    with pytest.raises(TypeError, match="returned 'x', not a Method"):
        make_methods(lambda: "x")
    with pytest.raises(mm.UnknownNameError, match="Did you mean 'opm'"):
        make_methods("opn")


def test_make_methods_from_names_and_name_kwargs():
    ms = make_methods(["joint", ("unimodal", {"modality": "b"}), ("joint-uni", {"weight": 0.5})])
    assert [type(m) for m in ms] == [Joint, Unimodal, JointUnimodal]
    assert ms[1].modality == "b" and ms[2].weight == 0.5


def test_make_methods_single_specs_and_none():
    assert make_methods(None) == []
    assert [type(m) for m in make_methods("joint-uni")] == [JointUnimodal]
    assert [type(m) for m in make_methods(("unimodal", {"modality": "a"}))] == [Unimodal]


def test_make_methods_deep_copies_instances():
    proto = JointUnimodal(weight=0.3)
    proto.history = [1, 2]
    a, b = make_methods(proto)[0], make_methods([proto])[0]
    assert a is not proto and b is not proto and a is not b
    assert a.weight == b.weight == 0.3
    a.history.append(3)
    assert proto.history == [1, 2] and b.history == [1, 2]


def test_make_methods_calls_factories_each_time():
    calls = []

    def factory():
        calls.append(1)
        return Unimodal("a")

    first, second = make_methods(factory)[0], make_methods([factory])[0]
    assert first is not second and len(calls) == 2


@pytest.mark.parametrize("bad", [[3], [None], ["joint", 2.5]])
def test_make_methods_bad_spec_is_an_error(bad):
    with pytest.raises(TypeError, match=r"cannot make a method from"):
        make_methods(bad)


def test_make_methods_unknown_name_suggests_close_match():
    with pytest.raises(mm.UnknownNameError, match=r"Did you mean 'joint-uni'\?"):
        make_methods("joint-unii")

