"""Registry: register / create / names, and errors that say what is wrong and how to fix it."""
import pytest

import mmlib as mm
from mmlib.registry import Registry, UnknownNameError


@pytest.fixture
def reg():
    return Registry("widget", "mmlib/widgets/")


def thing():
    """A fresh class to register (register() sets ``registry_name`` on it)."""
    return type("Thing", (), {})


def test_register_and_create_passes_keyword_arguments(reg):
    @reg.register("box")
    class Box:
        def __init__(self, size=1):
            self.size = size

    obj = reg.create("box", size=5)
    assert isinstance(obj, Box) and obj.size == 5
    assert reg.create("box").size == 1
    assert reg.get("box") is Box
    assert Box.registry_name == "box"


def test_register_returns_the_object_unchanged(reg):
    def factory():
        return 42

    assert reg.register("forty-two")(factory) is factory
    assert reg.create("forty-two") == 42


def test_names_are_sorted(reg):
    for name in ("zeta", "alpha", "mid-one"):
        reg.register(name)(type(name, (), {}))
    assert reg.names() == ["alpha", "mid-one", "zeta"]


def test_contains(reg):
    reg.register("box")(thing())
    assert "box" in reg
    assert "Box" not in reg
    assert "crate" not in reg
    assert 3 not in reg


def test_builtin_registries_hold_the_shipped_components():
    assert {"av-digits", "mfeat"} <= set(mm.DATASETS.names())
    assert {"mlp", "cnn", "resnet18"} <= set(mm.ENCODERS.names())
    assert {"concat", "sum", "film", "gated"} <= set(mm.FUSIONS.names())
    assert {"joint", "joint-uni", "unimodal"} <= set(mm.METHODS.names())


def test_empty_registry_has_no_names(reg):
    assert reg.names() == []


def test_unknown_name_error_is_a_key_error_with_a_plain_message(reg):
    reg.register("box")(thing())
    with pytest.raises(KeyError) as info:
        reg.get("crate")
    assert isinstance(info.value, UnknownNameError)
    # KeyError would wrap its message in quotes; UnknownNameError does not
    assert str(info.value).startswith("unknown widget 'crate'.")


def test_duplicate_name_is_an_error(reg):
    first = reg.register("box")(thing())
    with pytest.raises(ValueError, match=r"widget 'box' is registered twice"):
        reg.register("box")(thing())
    assert reg.get("box") is first  # the first registration is kept


@pytest.mark.parametrize("bad", ["Box", "my_box", "my box", "BOX"])
def test_invalid_name_is_an_error_that_says_the_rule(reg, bad):
    with pytest.raises(ValueError, match=r"widget name .* must be lowercase with hyphens"):
        reg.register(bad)
    assert reg.names() == []


def test_unknown_name_lists_known_names_closest_match_and_where_to_register(reg):
    for name in ("box", "crate", "barrel"):
        reg.register(name)(thing())
    with pytest.raises(UnknownNameError) as info:
        reg.create("crat")
    msg = str(info.value)
    assert "unknown widget 'crat'" in msg
    assert "Did you mean 'crate'?" in msg
    assert "Known widgets: barrel, box, crate." in msg
    assert "@WIDGETS.register(...) in mmlib/widgets/" in msg
    assert "__init__.py" in msg


def test_unknown_name_without_close_match_gives_no_suggestion(reg):
    reg.register("box")(thing())
    with pytest.raises(UnknownNameError, match=r"Known widgets: box") as info:
        reg.get("zzzzzzzz")
    assert "Did you mean" not in str(info.value)


def test_builtin_registry_suggests_close_method_name():
    with pytest.raises(UnknownNameError, match=r"Did you mean 'joint'\?.*mmlib/methods/"):
        mm.METHODS.create("jiont")


@pytest.mark.parametrize("bad", [["box"], None, 3])
def test_a_name_that_is_not_a_string_is_a_type_error_with_an_example(reg, bad):
    reg.register("box")(thing())
    with pytest.raises(TypeError, match=rf"a widget name must be a string such as 'box', got .* "
                                        rf"\({type(bad).__name__}\)"):
        reg.get(bad)
