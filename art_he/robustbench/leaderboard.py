"""A RobustBench-style leaderboard from model cards: ours next to RobustBench's own entries.

A model card is RobustBench's ``model_info/<dataset>/<threat_model>/<Name>.json`` (the fields are listed in
``docs``' robustbench.md); ``Name``, the file's stem, is the model's ID. RobustBench's pip wheel ships neither its
``model_info`` folder nor the template of its leaderboard, so this module reads the cards and renders the table
itself, ranked the way RobustBench's own generator (``robustbench/leaderboard/template.py``) ranks it:

* the key is ``external`` (the best known robust accuracy, from a stronger attack than AutoAttack) when the card
  has one, else ``autoattack_acc``; both are percent strings such as ``"53.74"``; highest first;
* Python's sort is stable, so RobustBench keeps tied entries in the order it read them (the order its directory
  listing gives). Here that order is defined: :func:`rank` keeps the order it is given, :func:`read_cards` gives
  files sorted by path, and ``art-he leaderboard`` puts RobustBench's entries before ours, so an entry of ours
  has to beat an existing one to pass it;
* ranks are 1, 2, 3, ... down the table, ties included (RobustBench numbers its rows the same way).

The columns are those of RobustBench's L-inf/L2 tables: rank; method (the paper's title linked to the paper,
the model's ID and the card's ``footnote``); standard (clean) accuracy; AutoAttack robust accuracy; best known
robust accuracy (``external``, else AutoAttack's); whether the AutoAttack evaluation is flagged as potentially
unreliable (``unreliable``; "Unknown" when the card does not say); extra training data (``additional_data``);
architecture; venue. ``eps`` is the leaderboard's, not a column: the title gives the value most cards use and a
card with another one says so in its method cell. Our cards are marked "ours".

This module does not import torch, so ``art-he leaderboard`` starts at once.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from art_he.errors import MissingFileError, UserError
from art_he.robustbench.benchmark import EXPORT_FILE

#: RobustBench's data sets and threat models (``robustbench.model_zoo.enums``): the folder names of ``model_info``
DATASETS = ("cifar10", "cifar100", "imagenet")
LAYOUT_THREAT_MODELS = ("Linf", "L2", "corruptions", "corruptions_3d")
#: the threat models whose leaderboard is ranked by an attack's robust accuracy (what this module renders)
THREAT_MODELS = ("Linf", "L2")
#: the ranking key: the first of these fields a card has (RobustBench's ``ACC_FIELDS`` for Linf and L2)
SORT_FIELDS = ("external", "autoattack_acc")
#: fields without which a JSON file is not taken for a model card
REQUIRED_FIELDS = ("clean_acc", "autoattack_acc")
SOURCES = ("ours", "robustbench")

SORT_RULE = ("ranked as RobustBench's leaderboard: by best known robust accuracy (external when the card has it, "
             "else AutoAttack's), highest first; ties keep RobustBench's entries first, then file order")

_ANCHOR = re.compile(r"""<a\s[^>]*?href\s*=\s*["'](?P<href>[^"']*)["'][^>]*>(?P<text>.*?)</a\s*>""",
                     re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_CHECK, _CROSS, _UNKNOWN = "\u2611", "\u00d7", "Unknown"  # what RobustBench's table shows for yes / no / not given


@dataclass(frozen=True)
class Card:
    """One model card: its JSON, the file it came from and whose it is."""

    name: str  #: the model's ID: the file's stem
    path: Path
    source: str  #: "ours" or "robustbench"
    info: dict[str, Any] = field(repr=False)
    dataset: str | None = None  #: from the folder layout, else the card's ``dataset``; None if neither says
    threat_model: str | None = None  #: from the folder layout only (cards do not say)

    @property
    def ours(self) -> bool:
        return self.source == "ours"

    def percent(self, key: str) -> float | None:
        """The field ``key`` as a number of percent (``"53.74"`` -> 53.74); None when absent or empty."""
        value = self.info.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip().removesuffix("%").strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number) or not 0 <= number <= 100:
            raise UserError(f"{self.path}: field {key!r} is {value!r}, not an accuracy in percent such as \"53.74\"")
        return number

    @property
    def clean_acc(self) -> float:
        return self._required("clean_acc")

    @property
    def autoattack_acc(self) -> float:
        return self._required("autoattack_acc")

    @property
    def external(self) -> float | None:
        return self.percent("external")

    @property
    def robust_acc(self) -> float:
        """The ranking key: ``external`` when given, else ``autoattack_acc`` (RobustBench's best known accuracy)."""
        for key in SORT_FIELDS:
            value = self.percent(key)
            if value is not None:
                return value
        return self.autoattack_acc  # raises, naming the field

    def _required(self, key: str) -> float:
        value = self.percent(key)
        if value is None:
            raise UserError(f"{self.path}: field {key!r} is missing or empty")
        return value

    def check(self) -> Card:
        """This card, once its accuracies are known to be numbers of percent (else a :class:`UserError`)."""
        for key in REQUIRED_FIELDS:
            self._required(key)
        self.percent("external")
        return self

    def flag(self, key: str) -> bool | None:
        """A yes/no field (``additional_data``, ``unreliable``); None when the card does not say."""
        value = self.info.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise UserError(f"{self.path}: field {key!r} is {value!r}, not true or false")

    def text(self, key: str) -> str:
        """A text field, whitespace collapsed; "" when absent."""
        value = self.info.get(key)
        return "" if value is None else " ".join(str(value).split())

    @property
    def title(self) -> str:
        return self.text("name") or self.name

    @property
    def link(self) -> str | None:
        """The paper's URL when it is an http(s) one (anything else is not made a link)."""
        link = self.text("link")
        return link if re.match(r"https?://", link, re.IGNORECASE) else None

    @property
    def venue(self) -> str:
        return self.text("venue") or "Unpublished"  # RobustBench's model list says so for an empty venue

    @property
    def footnote(self) -> str:
        """``footnote`` as plain text: RobustBench's carry a little HTML (``<br>``, links), made text here."""
        text = re.sub(r"<br\s*/?>", " ", self.text("footnote"), flags=re.IGNORECASE)
        text = _ANCHOR.sub(lambda m: f"{m['text']} ({m['href']})", text)
        return " ".join(_TAG.sub("", text).split())

    @property
    def eps(self) -> str | None:
        """``eps`` as written on a leaderboard: "8/255" for 8/255 in any spelling, else the number or the text."""
        value = self.info.get("eps")
        if value is None or value == "":
            return None
        number = _eps_number(value)
        if number is None:
            return self.text("eps")
        steps = number * 255
        if number > 0 and abs(steps - round(steps)) < 1e-6 and number < 1:
            return f"{round(steps)}/255"
        return f"{number:g}"


def _eps_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        if "/" in text:
            top, bottom = text.split("/", 1)
            return float(top) / float(bottom)
        return float(text)
    except (ValueError, ZeroDivisionError):
        return None


def _layout(path: Path) -> tuple[str | None, str | None]:
    """(dataset, threat model) from a ``.../<dataset>/<threat_model>/<Name>.json`` path, else (None, None)."""
    parent = path.parent
    if parent.name in LAYOUT_THREAT_MODELS and parent.parent.name in DATASETS:
        return parent.parent.name, parent.name
    return None, None


def _json_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingFileError(f"{path}: no such file or folder (give folders of model cards, "
                               "e.g. OUT/model_info/cifar10/Linf, or .json files)")
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files)
                  if f.endswith(".json") and not f.startswith(".") and f != EXPORT_FILE]
    return found


def read_cards(paths: Iterable[str | os.PathLike[str]], *, source: str = "ours", dataset: str | None = None,
               threat_model: str | None = None, notes: list[str] | None = None) -> list[Card]:
    """The model cards in ``paths`` (``.json`` files, or folders searched recursively), sorted by path.

    With ``dataset``/``threat_model``, a card is left out when its folder layout
    (``<dataset>/<threat_model>/<Name>.json``, e.g. under ``model_info``) or, for the data set, its ``dataset``
    field names another one; a card whose layout does not say is kept. A JSON file lacking ``clean_acc`` or
    ``autoattack_acc`` (a run's config, a helper file) is not a model card: it is skipped, with a line appended to
    ``notes``. Invalid JSON, or a card whose accuracies are not numbers of percent, is a :class:`UserError` naming
    the file (and the field). The same file reached twice is read once.
    """
    if source not in SOURCES:
        raise UserError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    cards, seen = [], set()
    for given in paths:
        for path in _json_files(Path(given)):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            layout_dataset, layout_threat_model = _layout(path)
            if (threat_model and layout_threat_model and layout_threat_model != threat_model) or (
                    dataset and layout_dataset and layout_dataset != dataset):
                continue
            info = _load_json(path)
            missing = [k for k in REQUIRED_FIELDS if not isinstance(info, dict) or k not in info]
            if missing:
                if notes is not None:
                    notes.append(f"skipped {path}: not a model card (no {' or '.join(missing)})")
                continue
            card_dataset = layout_dataset or (str(info["dataset"]) if info.get("dataset") else None)
            if dataset and card_dataset and card_dataset != dataset:
                continue
            card = Card(path.stem, path, source, info, card_dataset, layout_threat_model)
            cards.append(card.check())
    return sorted(cards, key=lambda c: str(c.path))


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror or error})") from None


def rank(cards: Iterable[Card]) -> list[Card]:
    """``cards`` in RobustBench's leaderboard order: best known robust accuracy (``external`` if given, else
    ``autoattack_acc``) from highest to lowest; tied cards keep the order they are given in."""
    cards = list(cards)
    keys = {id(card): card.robust_acc for card in cards}  # every card's key is checked before sorting
    return sorted(cards, key=lambda card: -keys[id(card)])


# ---------------------------------------------------------------------------------------------------- rendering

COLUMNS = ("Rank", "Method", "Standard accuracy", "AutoAttack robust accuracy", "Best known robust accuracy",
           "AA eval. potentially unreliable", "Extra data", "Architecture", "Venue")


@dataclass(frozen=True)
class _Row:
    rank: int
    card: Card
    eps_note: str | None
    cells: tuple[str, ...]  # the plain-text cells after the method cell


def _common(values: Iterable[str | None]) -> str | None:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


def _yes_no(value: bool | None) -> str:
    return _UNKNOWN if value is None else (_CHECK if value else _CROSS)


def _rows(ranked: Sequence[Card]) -> tuple[list[_Row], str | None]:
    eps = _common(card.eps for card in ranked)
    rows = []
    for i, card in enumerate(ranked, 1):
        extra = card.flag("additional_data")
        cells = (f"{card.clean_acc:.2f}%", f"{card.autoattack_acc:.2f}%", f"{card.robust_acc:.2f}%",
                 _yes_no(card.flag("unreliable")), _yes_no(extra), card.text("architecture"), card.venue)
        eps_note = f"eps = {card.eps}" if card.eps and eps and card.eps != eps else None
        rows.append(_Row(i, card, eps_note, cells))
    return rows, eps


def _heading(ranked: Sequence[Card], eps: str | None, dataset: str | None, threat_model: str | None) -> str:
    dataset = dataset or _common(c.dataset for c in ranked) or "?"
    threat_model = threat_model or _common(c.threat_model for c in ranked) or "?"
    return f"RobustBench leaderboard: {dataset}, {threat_model}" + (f", eps = {eps}" if eps else "")


def _summary(ranked: Sequence[Card]) -> str:
    ours = sum(card.ours for card in ranked)
    return f"{len(ranked)} models, {ours} of them ours; {SORT_RULE}."


_MARKDOWN_SPECIAL = re.compile(r"([\\|<>\[\]*`])")


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def to_markdown(ranked: Sequence[Card], *, dataset: str | None = None, threat_model: str | None = None) -> str:
    """The ranked cards as a Markdown table (GitHub's flavour), with a heading and the ranking rule."""
    rows, eps = _rows(ranked)
    lines = [f"# {_md(_heading(ranked, eps, dataset, threat_model))}", "", _md(_summary(ranked)), "",
             "| " + " | ".join(COLUMNS) + " |", "|---:|---|---:|---:|---:|:---:|:---:|---|---|"]
    for row in rows:
        card = row.card
        title = f"[{_md(card.title)}]({card.link.replace(' ', '%20').replace(')', '%29')})" if card.link \
            else _md(card.title)
        method = f"{title}<br>`{card.name.replace('`', '')}`" + (" **(ours)**" if card.ours else "")
        method += "".join(f"<br>{_md(note)}" for note in (row.eps_note, card.footnote) if note)
        lines.append("| " + " | ".join([str(row.rank), method, *map(_md, row.cells)]) + " |")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 8px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num, td.rank { text-align: right; white-space: nowrap; }
td.flag { text-align: center; }
tr.ours { background: #fff6d5; }
.model-id { font-family: monospace; color: #555; }
.badge { background: #d9480f; color: #fff; border-radius: 3px; padding: 0 4px; font-size: 12px; }
.footnote { color: #666; font-size: 12px; }
"""


def to_html(ranked: Sequence[Card], *, dataset: str | None = None, threat_model: str | None = None) -> str:
    """The ranked cards as a self-contained HTML page (one table, every text escaped, our rows marked)."""
    esc = html.escape
    rows, eps = _rows(ranked)
    heading = _heading(ranked, eps, dataset, threat_model)
    table_id = f"{dataset or 'all'}_leaderboard_{threat_model or 'all'}"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{esc(heading)}</title>",
           f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{esc(heading)}</h1>",
           f"<p>{esc(_summary(ranked))}</p>", f'<table id="{esc(table_id)}">', "<thead><tr>",
           *(f"<th>{esc(column)}</th>" for column in COLUMNS), "</tr></thead>", "<tbody>"]
    for row in rows:
        card = row.card
        title = (f'<a href="{esc(card.link)}" target="_blank" rel="noopener">{esc(card.title)}</a>' if card.link
                 else esc(card.title))
        method = f'{title}<br><span class="model-id">{esc(card.name)}</span>'
        if card.ours:
            method += ' <span class="badge">ours</span>'
        method += "".join(f'<br><span class="footnote">{esc(note)}</span>'
                          for note in (row.eps_note, card.footnote) if note)
        classes = ("num", "num", "num", "flag", "flag", "text", "text")
        cells = "".join(f'<td class="{cls}">{esc(text)}</td>' for cls, text in zip(classes, row.cells))
        out.append(f'<tr class="{card.source}"><td class="rank">{row.rank}</td><td class="method">{method}</td>'
                   f"{cells}</tr>")
    out += ["</tbody>", "</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------- art-he CLI

def add_leaderboard_arguments(parser: argparse.ArgumentParser) -> None:
    """``art-he leaderboard``'s options."""
    parser.add_argument("cards", metavar="CARD_DIR", nargs="+",
                        help="our model cards: folders searched recursively (OUT/ or OUT/model_info/cifar10/Linf) "
                             "or .json files")
    parser.add_argument("--robustbench-model-info", metavar="DIR", default=None,
                        help="RobustBench's model_info folder (from its GitHub repository; the wheel has none), "
                             "to rank our cards among its entries")
    parser.add_argument("--html", metavar="FILE", default=None, help="also write the table as an HTML page")
    parser.add_argument("--dataset", choices=DATASETS, default="cifar10", help="default: cifar10")
    parser.add_argument("--threat-model", choices=THREAT_MODELS, default="Linf", help="default: Linf")


def _no_cards(paths: Sequence[str], dataset: str, threat_model: str, notes: Sequence[str]) -> UserError:
    where = ", ".join(map(str, paths))
    skipped = f" ({len(notes)} JSON file{'' if len(notes) == 1 else 's'} skipped as not model cards)" if notes else ""
    return UserError(f"found no {dataset} {threat_model} model cards in {where}{skipped}; a card is "
                     "<dataset>/<threat_model>/<Name>.json with clean_acc and autoattack_acc")


def run_leaderboard(args: argparse.Namespace) -> int:
    """``art-he leaderboard`` with parsed ``args``: Markdown on stdout, HTML to ``--html``."""
    where = {"dataset": args.dataset, "threat_model": args.threat_model}
    notes: list[str] = []
    theirs: list[Card] = []
    if args.robustbench_model_info is not None:
        their_notes: list[str] = []
        theirs = read_cards([args.robustbench_model_info], source="robustbench", notes=their_notes, **where)
        if not theirs:
            raise _no_cards([args.robustbench_model_info], args.dataset, args.threat_model, their_notes)
        notes += their_notes
    our_notes: list[str] = []
    ours = read_cards(args.cards, source="ours", notes=our_notes, **where)
    if not ours:
        raise _no_cards(args.cards, args.dataset, args.threat_model, our_notes)
    notes += our_notes
    ranked = rank(theirs + ours)  # RobustBench's entries first: on a tie they stay ahead of ours
    markdown = to_markdown(ranked, **where)
    if args.html:
        try:
            Path(args.html).write_text(to_html(ranked, **where), encoding="utf-8")
        except OSError as error:
            raise UserError(f"--html {args.html}: cannot be written ({error.strerror or error})") from None
    for note in notes[:5]:  # only now: an error above is the one line on stderr
        print(f"art-he leaderboard: note: {note}", file=sys.stderr)
    if len(notes) > 5:
        print(f"art-he leaderboard: note: skipped {len(notes) - 5} more JSON files that are not model cards",
              file=sys.stderr)
    print(markdown, end="")
    return 0
