"""Author–year bibliography labels that match the in-text citations.

sphinxcontrib-bibtex 2.7 takes the labels printed in the bibliography from the pybtex
formatting style (``alpha`` prints ``[CCK+14]``), while the in-text ``author_year`` reference
style prints ``[Cao et al., 2014]``. This extension registers, under the name ``authoryear``:

- a pybtex formatting style (``bibtex_default_style: authoryear``): pybtex's ``plain`` entry
  formatting, with labels ``Names, Year`` built from the same name template as the in-text
  citations, and entries sorted by label (accents folded), then by the full author list and
  title; works that share names and year sit together and get the suffixes a, b, ... in that
  order (``Wei et al., 2024a``);
- a reference style (``bibtex_reference_style: authoryear``): ``author_year``, except that the
  year carries the label's suffix and "et al." is plain text as in the labels, so that a
  citation reads exactly as the label of the entry it links to.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from string import ascii_lowercase

import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitleSorting
from sphinxcontrib.bibtex.plugin import register_plugin as register_bibtex_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle, GroupReferenceStyle, PersonStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import ExtraAuthorReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_empty import ExtraEmptyReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_label import ExtraLabelReferenceStyle
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import (
    join,
    join2,
    node,
    post_text,
    pre_text,
    reference,
    year,
)

STYLE_NAME = "authoryear"
LABEL_SEP = ", "  # between the names and the year, in labels and in parenthetical citations


def _person_style() -> PersonStyle:
    """Names as in ``author_year``, but with a plain " et al." (a label is plain text)."""
    return PersonStyle(other=" et al.")


@dataclass
class _NamesHolder:
    """What the sphinxcontrib-bibtex name templates read from ``data["style"]``."""

    person: PersonStyle = field(default_factory=_person_style)


def _label_base(entry, holder: _NamesHolder) -> tuple[str, str]:
    data = {"entry": entry, "style": holder}
    names = holder.person.author_or_editor_or_title(full=False).format_data(data)
    return names.render_as("text"), Text(year.format_data(data)).render_as("text")


def _suffix(index: int) -> str:
    """a, b, ..., z, aa, ab, ... for the 0-based ``index``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, len(ascii_lowercase))
        letters = ascii_lowercase[rest] + letters
    return letters


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels ``Names, Year`` with a, b, ... appended to the year when two entries share both."""

    def format_labels(self, sorted_entries):
        holder = _NamesHolder()
        bases = [_label_base(entry, holder) for entry in sorted_entries]
        totals = Counter(bases)
        seen: Counter = Counter()
        for base in bases:
            names, yr = base
            suffix = ""
            if totals[base] > 1:
                suffix = _suffix(seen[base])
                seen[base] += 1
            yield f"{names}{LABEL_SEP}{yr}{suffix}"


def _fold(text: str) -> str:
    """Case- and accent-insensitive sort text (``Désidéri`` sorts as ``desideri``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class AuthorYearSorting(BaseSortingStyle):
    """By label names and year, then by pybtex's author-year-title key (full author list)."""

    def __init__(self):
        self._holder = _NamesHolder()
        self._full = AuthorYearTitleSorting()

    def sorting_key(self, entry):
        names, yr = _label_base(entry, self._holder)
        return (_fold(names), yr, _fold(str(self._full.sorting_key(entry))))


class AuthorYearStyle(PlainStyle):
    """pybtex's ``plain`` formatting with author–year labels and sorting."""

    default_label_style = AuthorYearLabelStyle
    default_sorting_style = AuthorYearSorting


@node
def label_year(children, data):
    """The year part of the cited entry's label, suffix included (``2024a``)."""
    assert not children
    label = data["formatted_entry"].label
    return Text(label.rsplit(LABEL_SEP, 1)[-1])


@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name):
        names = self.person.author_or_editor_or_title(full="s" in role_name)
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text, reference[join(sep=self.author_year_sep)[names, label_year]], post_text
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name):
        names = self.person.author_or_editor_or_title(full="s" in role_name)
        bracketed = join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text, reference[label_year], post_text
        ]
        return join(sep=self.text_reference_sep)[
            names, join[self.bracket.left, bracketed, self.bracket.right]
        ]


@dataclass
class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name):
        return reference[label_year]


@dataclass
class AuthorYearReferenceStyle(GroupReferenceStyle):
    """``author_year`` citations whose text equals the :class:`AuthorYearLabelStyle` label."""

    bracket: BracketStyle = field(default_factory=BracketStyle)
    person: PersonStyle = field(default_factory=_person_style)

    def __post_init__(self):
        self.styles.extend(
            [
                _Parenthetical(bracket=self.bracket, person=self.person, author_year_sep=LABEL_SEP),
                _Textual(bracket=self.bracket, person=self.person),
                ExtraAuthorReferenceStyle(bracket=self.bracket, person=self.person),
                ExtraLabelReferenceStyle(bracket=self.bracket),
                _Year(bracket=self.bracket),
                ExtraEmptyReferenceStyle(),
            ]
        )
        super().__post_init__()


def register() -> None:
    """Make ``authoryear`` known to pybtex and to sphinxcontrib-bibtex (idempotent)."""
    pybtex.plugin.register_plugin("pybtex.style.labels", STYLE_NAME, AuthorYearLabelStyle)
    pybtex.plugin.register_plugin("pybtex.style.sorting", STYLE_NAME, AuthorYearSorting)
    pybtex.plugin.register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle)
    register_bibtex_plugin(
        "sphinxcontrib.bibtex.style.referencing", STYLE_NAME, AuthorYearReferenceStyle
    )


def setup(app):
    register()
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
