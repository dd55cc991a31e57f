"""Fast checks of the book's configuration: offline math, part order, bibliography.

Nothing here builds the book; the files are read as YAML / BibTeX text.
"""
import importlib
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MATH_EXTENSION = "sphinx-mathjax-offline"  # ships MathJax 3 (JS + fonts) into _static/mathjax
# The survey's taxonomy (zhang2024lowquality), in its own order, framed by the book's parts.
PARTS = [
    "Introduction",
    "Noisy modalities",
    "Incomplete modalities",
    "Imbalanced modalities",
    "Quality-varying modalities",
    "Beyond classification",
    "Reference",
]
INTERNAL_MARKERS = re.compile(
    r"not verified|unverified|\bn\.\s?d\.|\btodo\b|\bfixme\b|\bxxx\b", re.I)


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _pins(path):
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def _bib_entries():
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "references.bib")).entries


def test_math_extension_is_configured_and_pinned():
    sphinx = _config()["sphinx"]
    assert {"sphinx.ext.mathjax", MATH_EXTENSION} <= set(sphinx["extra_extensions"])
    # the extension points mathjax_path at the local copy; a CDN path here would override it
    assert "mathjax_path" not in sphinx.get("config", {})
    version = _pins("requirements.txt").get(MATH_EXTENSION)
    assert version, f"{MATH_EXTENSION} must be pinned in requirements.txt"
    assert _pins("environment.yml").get(MATH_EXTENSION) == version


def test_requirements_stay_sorted_exact_pins():
    lines = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s=]+", ln) for ln in lines)
    names = [ln.split("==")[0].lower() for ln in lines]
    assert names == sorted(names)


def test_parts_follow_the_survey_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert [part["caption"] for part in toc["parts"]] == PARTS
    imbalanced = next(p for p in toc["parts"] if p["caption"] == "Imbalanced modalities")
    files = [c["file"] for c in imbalanced["chapters"]]
    assert files[:7] == [
        "book/imbalanced", "notebooks/imbalance", "notebooks/ogm_opm", "notebooks/mmpareto",
        "notebooks/diagnosing_relearning", "notebooks/inforeg", "notebooks/modality_valuation"]
    assert files[-1] == "notebooks/benchmark", "the benchmark closes the part: it compares the chapters' methods"


def test_bibliography_carries_no_internal_notes():
    entries = _bib_entries()
    assert entries
    for key, entry in entries.items():
        for name, value in entry.fields.items():
            assert not INTERNAL_MARKERS.search(value), f"{key}.{name}: {value!r}"
            assert "internal note" not in value.lower(), f"{key}.{name}: {value!r}"


def test_internal_notes_live_in_bibtex_comments():
    # the notes moved out of the entries are kept, as comment lines outside any entry
    lines = (ROOT / "references.bib").read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("%")]
    assert any("not verified" in ln for ln in comments)


def test_bibliography_style_is_author_year():
    sphinx = _config()["sphinx"]
    assert sphinx["config"]["bibtex_default_style"] == "authoryear"
    assert sphinx["config"]["bibtex_reference_style"] == "authoryear"
    ext_dir = ROOT / sphinx["local_extensions"]["authoryear_bib"]
    assert (ext_dir / "authoryear_bib.py").is_file()


@pytest.fixture
def authoryear_style():
    sphinx = _config()["sphinx"]
    ext_dir = str(ROOT / sphinx["local_extensions"]["authoryear_bib"])
    sys.path.insert(0, ext_dir)
    try:
        module = importlib.import_module("authoryear_bib")
    finally:
        sys.path.remove(ext_dir)
    module.register()
    import pybtex.plugin

    return pybtex.plugin.find_plugin("pybtex.style.formatting", "authoryear")()


def test_labels_are_unique_author_year(authoryear_style):
    entries = authoryear_style.sort(_bib_entries().values())
    labels = dict(zip((e.key for e in entries), authoryear_style.format_labels(entries)))
    assert len(set(labels.values())) == len(labels)
    for key, label in labels.items():
        assert re.fullmatch(r".+, (\d{4}|n\.d\.)[a-z]?", label), (key, label)
    assert labels["cao2014cremad"] == "Cao et al., 2014"
    assert labels["wei2024mmpareto"] == "Wei and Hu, 2024"
    assert labels["desideri2012mgda"] == "Désidéri, 2012"
    # three "Wei et al., 2024" works, told apart in bibliography order
    assert sorted(labels[k] for k in ("wei2024onthefly", "wei2024diagnosing", "wei2024valuation")) \
        == ["Wei et al., 2024a", "Wei et al., 2024b", "Wei et al., 2024c"]


def test_printed_entries_show_no_internal_notes(authoryear_style):
    entries = list(_bib_entries().values())
    for entry in authoryear_style.format_entries(entries):
        text = entry.text.render_as("text")
        assert not re.search(r"not verified|\btodo\b|internal note", text, re.I), (entry.key, text)
