"""art_he.robustbench.leaderboard and ``art-he leaderboard``: RobustBench's ranking rule on model cards."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from art_he.cli import main
from art_he.errors import UserError
from art_he.robustbench.leaderboard import Card, rank, read_cards, to_html, to_markdown
from tests.conftest import one_line_error


def _card(title, clean, autoattack, *, link="https://arxiv.org/abs/2002.08619", dataset="cifar10", eps="8/255",
          additional_data=False, venue="NeurIPS 2020", architecture="WideResNet-34-10", **extra):
    return {"link": link, "name": title, "authors": "A. Author, B. Author", "additional_data": additional_data,
            "number_forward_passes": 1, "dataset": dataset, "venue": venue, "architecture": architecture,
            "eps": eps, "clean_acc": clean, "reported": autoattack, "autoattack_acc": autoattack, **extra}


#: a fake RobustBench model_info/cifar10/Linf (real-looking entries; the numbers are made up around real ones)
THEIRS = {
    "Pang2020Boosting": _card("Boosting Adversarial Training with Hypersphere Embedding", "85.14", "53.74",
                              architecture="WideResNet-34-20", unreliable=False),
    "Zhang2019Theoretically": _card("Theoretically Principled Trade-off between Robustness and Accuracy", "84.92",
                                    "53.08", eps="0.031", venue="ICML 2019", unreliable=False,
                                    footnote="Uses \\(\\ell_{\\infty} \\) = 0.031 instead of 8/255."),
    # external (a stronger attack) wins over AutoAttack: ranked by 50.10, not 60.00
    "Strong2024External": _card("A Defense Broken by an Adaptive Attack", "90.00", "60.00", external="50.10",
                                additional_data=True, venue="arXiv, Jan 2024",
                                footnote="50.10% robust accuracy is due to an adaptive attack.<br>See "
                                         '<a href="https://example.org/eval">this evaluation</a>.'),
    "Flagged2021Defense": _card("A Defense AutoAttack Flags", "80.00", "55.00", unreliable=True, venue="ICLR 2021"),
    "Tied2020Other": _card("Another Model with 53.74", "86.00", "53.74", venue=""),  # no `unreliable`: Unknown
    "Standard": _card("Standardly trained model", "94.78", "0.0", link="https://github.com/RobustBench/robustbench/",
                      venue="N/A", architecture="WideResNet-28-10"),
}
#: our exporter's cards (eps as benchmark(to_disk=True) writes it: a float)
OURS = {
    "ArtHe2025PGD_HE": _card("Boosting Adversarial Training with Hypersphere Embedding (art_he <reproduction>)",
                             "84.10", "53.74", eps=8 / 255, unreliable=False),
    "ArtHe2025PGD": _card("PGD-AT baseline (art_he)", "84.50", "50.10", eps=8 / 255, unreliable=False),
}
#: RobustBench's rule by hand: best known robust accuracy (external, else autoattack_acc), highest first; ties keep
#: the input order: RobustBench's entries (by file name) before ours
EXPECTED = ["Flagged2021Defense",  # 55.00
            "Pang2020Boosting", "Tied2020Other", "ArtHe2025PGD_HE",  # 53.74 x3
            "Zhang2019Theoretically",  # 53.08
            "Strong2024External", "ArtHe2025PGD",  # 50.10 (external) and 50.10
            "Standard"]  # 0.0


def _write(folder, cards):
    folder.mkdir(parents=True, exist_ok=True)
    for name, card in cards.items():
        (folder / f"{name}.json").write_text(json.dumps(card, indent=2))


@pytest.fixture
def folders(tmp_path):
    rb = tmp_path / "robustbench"
    _write(rb / "model_info" / "cifar10" / "Linf", THEIRS)
    # other leaderboards and files that are no model cards: left out, or skipped with a note
    _write(rb / "model_info" / "cifar10" / "L2", {"L2Model": _card("An L2 model", "95.00", "80.00", eps="0.5")})
    _write(rb / "model_info" / "cifar100" / "Linf", {"C100Model": _card("A CIFAR-100 model", "70.00", "70.00",
                                                                         dataset="cifar100")})
    _write(rb / "model_info" / "cifar10" / "corruptions", {"Corrupt": {"name": "x", "clean_acc": "95.00",
                                                                        "corruptions_acc": "90.00"}})
    _write(rb / "robustbench" / "helper_files", {"imagenet_class_to_id_map": {"0": "n01440764"}})
    out = tmp_path / "out"
    _write(out / "model_info" / "cifar10" / "Linf", OURS)
    _write(out / "runs" / "he", {"config": {"framework": "pgd", "head": "he"}})
    _write(out / "elsewhere", {"Cifar100Card": _card("Ours on CIFAR-100", "60.00", "90.00", dataset="cifar100")})
    return rb, out


def _names(cards):
    return [card.name for card in cards]


def _row_names(text):
    """Model IDs in the order of the table's rows (Markdown: `ID`; HTML: the model-id span)."""
    return [a or b for a, b in re.findall(r'<br>`([^`]+)`|<span class="model-id">([^<]+)</span>', text)]


def test_read_cards_filters_by_layout_and_dataset(folders):
    rb, out = folders
    notes = []
    theirs = read_cards([rb], source="robustbench", dataset="cifar10", threat_model="Linf", notes=notes)
    assert sorted(_names(theirs)) == sorted(THEIRS)
    assert all(card.source == "robustbench" and not card.ours for card in theirs)
    assert all(card.dataset == "cifar10" and card.threat_model == "Linf" for card in theirs)
    assert len(notes) == 1 and "imagenet_class_to_id_map.json" in notes[0] and "not a model card" in notes[0]
    # OUT/ and OUT/model_info/cifar10/Linf give the same cards; the same file given twice is read once
    notes = []
    ours = read_cards([out, out / "model_info" / "cifar10" / "Linf"], dataset="cifar10", threat_model="Linf",
                      notes=notes)
    assert _names(ours) == sorted(OURS) and all(card.ours for card in ours)
    assert len(notes) == 1 and "config.json" in notes[0]
    # the card's own `dataset` field filters where the folders do not say; without filters every card is read
    assert "Cifar100Card" in _names(read_cards([out]))
    assert _names(read_cards([rb], threat_model="L2")) == ["L2Model"]
    assert _names(read_cards([rb / "model_info" / "cifar10" / "L2" / "L2Model.json"])) == ["L2Model"]


def test_rank_is_robustbench_rule(folders):
    rb, out = folders
    theirs = read_cards([rb], source="robustbench", dataset="cifar10", threat_model="Linf")
    ours = read_cards([out], dataset="cifar10", threat_model="Linf")
    ranked = rank(theirs + ours)
    assert _names(ranked) == EXPECTED
    by_name = {card.name: card for card in ranked}
    strong = by_name["Strong2024External"]
    assert (strong.autoattack_acc, strong.external, strong.robust_acc) == (60.0, 50.1, 50.1)
    assert by_name["Pang2020Boosting"].external is None and by_name["Pang2020Boosting"].robust_acc == 53.74
    # ties keep the order they come in (Python's stable sort, as in RobustBench's generator)
    assert _names(rank(ours + theirs))[1:4] == ["ArtHe2025PGD_HE", "Pang2020Boosting", "Tied2020Other"]


def test_markdown_and_html_rows(folders):
    rb, out = folders
    ranked = rank(read_cards([rb], source="robustbench", dataset="cifar10", threat_model="Linf")
                  + read_cards([out], dataset="cifar10", threat_model="Linf"))
    md = to_markdown(ranked, dataset="cifar10", threat_model="Linf")
    assert _row_names(md) == EXPECTED
    assert md.startswith("# RobustBench leaderboard: cifar10, Linf, eps = 8/255\n")
    rows = {name: line for line in md.splitlines() for name in EXPECTED if f"`{name}`" in line}
    assert rows["Strong2024External"].startswith("| 6 | [A Defense Broken by an Adaptive Attack]("
                                                 "https://arxiv.org/abs/2002.08619)")
    assert "| 90.00% | 60.00% | 50.10% | Unknown | \u2611 | WideResNet-34-10 | arXiv, Jan 2024 |" \
        in rows["Strong2024External"]
    assert "See this evaluation (https://example.org/eval)." in rows["Strong2024External"]  # footnote as text
    assert "| \u2611 | \u00d7 |" in rows["Flagged2021Defense"]  # unreliable, no extra data
    assert "| Unknown | \u00d7 | WideResNet-34-10 | Unpublished |" in rows["Tied2020Other"]
    assert "eps = 0.031" in rows["Zhang2019Theoretically"] and "eps =" not in rows["ArtHe2025PGD_HE"]
    assert [name for name, line in rows.items() if "**(ours)**" in line] == ["ArtHe2025PGD_HE", "ArtHe2025PGD"]
    assert "art\\_he" not in md and "\\<reproduction\\>" in md  # Markdown escapes '<' (and '|', '[', ...)
    assert md.count("\n| ") == len(EXPECTED) + 1  # header + one line per card

    page = to_html(ranked, dataset="cifar10", threat_model="Linf")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert _row_names(page) == EXPECTED
    assert "&lt;reproduction&gt;" in page and "<reproduction>" not in page
    assert '<a href="https://arxiv.org/abs/2002.08619" target="_blank" rel="noopener">A Defense Broken' in page
    assert page.count('<tr class="ours">') == 2 and page.count('<span class="badge">ours</span>') == 2
    assert "<br>See" not in page and "https://example.org/eval" in page and 'href="https://example.org' not in page


def test_html_escapes_every_text_and_links_only_http():
    card = Card("Evil<1>", path=Path("Evil.json"), source="ours",
                info=_card('<script>alert("x")</script> & co', "50.00", "40.00", link="javascript:alert(1)",
                           architecture="<b>WRN</b>", venue="A & B", footnote="<img src=x onerror=alert(1)>"))
    page = to_html([card])
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "javascript:" not in page and "<b>" not in page and "onerror" not in page
    assert "Evil&lt;1&gt;" in page and "A &amp; B" in page


def test_bad_values_name_file_and_field(tmp_path):
    folder = tmp_path / "model_info" / "cifar10" / "Linf"
    _write(folder, {"Bad": _card("t", "85,14", "50.00")})
    with pytest.raises(UserError, match=r"Bad\.json: field 'clean_acc' is '85,14'"):
        read_cards([tmp_path])
    card = Card("X", tmp_path / "X.json", "ours", _card("t", "85.00", "50.00", external="n/a"))
    with pytest.raises(UserError, match=r"X\.json: field 'external'"):
        rank([card])
    ok = Card("Y", tmp_path / "Y.json", "ours", _card("t", " 85.00% ", 50, external=""))
    assert (ok.clean_acc, ok.robust_acc, ok.external) == (85.0, 50.0, None)  # "%" and numbers accepted


def test_cli_prints_markdown_and_writes_html(folders, tmp_path, capsys):
    rb, out = folders
    page = tmp_path / "leaderboard.html"
    assert main(["leaderboard", str(out), "--robustbench-model-info", str(rb), "--html", str(page)]) == 0
    captured = capsys.readouterr()
    assert _row_names(captured.out) == EXPECTED
    assert _row_names(page.read_text()) == EXPECTED
    assert "config.json" in captured.err and "imagenet_class_to_id_map.json" in captured.err
    # our cards alone; another leaderboard
    assert main(["leaderboard", str(out / "model_info" / "cifar10" / "Linf")]) == 0
    assert _row_names(capsys.readouterr().out) == ["ArtHe2025PGD_HE", "ArtHe2025PGD"]
    assert main(["leaderboard", str(out), "--dataset", "cifar100"]) == 0
    assert _row_names(capsys.readouterr().out) == ["Cifar100Card"]


def test_cli_errors_are_one_line(folders, tmp_path, capsys):
    rb, out = folders
    broken = tmp_path / "broken" / "model_info" / "cifar10" / "Linf"
    broken.mkdir(parents=True)
    (broken / "Broken.json").write_text('{"clean_acc": "85.00", "autoattack_acc": ')
    assert main(["leaderboard", str(tmp_path / "broken")]) == 2
    one_line_error(capsys, "Broken.json", "not valid JSON")

    bad = tmp_path / "bad"
    _write(bad, {"BadField": _card("t", "85.00", "fifty")})
    assert main(["leaderboard", str(bad)]) == 2
    one_line_error(capsys, "BadField.json", "autoattack_acc", "'fifty'")

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["leaderboard", str(empty)]) == 2
    one_line_error(capsys, "no cifar10 Linf model cards", str(empty))
    assert main(["leaderboard", str(out / "runs")]) == 2  # only a run's config.json: skipped, then none left
    one_line_error(capsys, "no cifar10 Linf model cards", "1 JSON file skipped")
    assert main(["leaderboard", str(out), "--threat-model", "L2"]) == 2
    one_line_error(capsys, "no cifar10 L2 model cards")
    assert main(["leaderboard", str(out), "--robustbench-model-info", str(empty)]) == 2
    one_line_error(capsys, "no cifar10 Linf model cards", str(empty))
    assert main(["leaderboard", str(tmp_path / "missing")]) == 2
    one_line_error(capsys, "missing", "no such file or folder")
    assert main(["leaderboard", str(out), "--html", str(tmp_path / "no" / "such" / "dir.html")]) == 2
    one_line_error(capsys, "--html", "cannot be written")


def test_leaderboard_does_not_import_torch(folders):
    _, out = folders
    code = ("import sys; from art_he.cli import main\n"
            f"assert main(['leaderboard', {str(out)!r}]) == 0\n"
            "import art_he.robustbench as rb; assert 'to_robustbench' in rb.__all__\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
