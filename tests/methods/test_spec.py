"""Method specs: every accepted form, and a clear error for each wrong one."""
import pytest

import mmlib as mm
from mmlib.methods.ogm_ge import OGMGE
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
