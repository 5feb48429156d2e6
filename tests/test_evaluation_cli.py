"""``art-he eval DIR``: run directories in, Markdown on screen, JSON and CSV on disk, clear errors."""

import csv
import json

import pytest

from art_he.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_runs")
    for head in ("he", "plain"):
        assert main(["train", "--dataset", "fashion-mnist", "--subset", "256", "--width", "4", "--epochs", "1",
                     "--max-iter", "1", "--batch-size", "64", "--head", head, "--out", str(root / head),
                     "--quiet"]) == 0
    return root


def test_eval_quick_prints_the_table_and_writes_json_and_csv(runs, tmp_path, capsys):
    js, cs = tmp_path / "e.json", tmp_path / "e.csv"
    code = main(["eval", str(runs / "he"), "--suite", "quick", "--n", "16", "--max-steps", "2", "--json", str(js),
                 "--csv", str(cs), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "### he: suite `quick`" in out and "| FGSM |" in out and "Sanity checks:" in out
    data = json.loads(js.read_text())
    assert data["dataset"] == "fashion-mnist" and data["n"] == 16 and data["eps"] == pytest.approx(0.1)
    assert data["head"] == "he" and data["framework"] == "pgd"
    with cs.open() as f:
        assert [r["attack"] for r in csv.DictReader(f)] == [r["attack"] for r in data["rows"]]


def test_eval_transfer_with_a_substitute_run(runs, tmp_path):
    js = tmp_path / "t.json"
    assert main(["eval", str(runs / "he"), "--suite", "transfer", "--substitute", str(runs / "plain"), "--n", "12",
                 "--max-steps", "2", "--json", str(js), "--quiet"]) == 0
    rows = {r["attack"]: r for r in json.loads(js.read_text())["rows"]}
    assert {"transfer-pgd20", "transfer-mim20"} <= set(rows)


@pytest.mark.parametrize("extra, match", [
    (["--suite", "transfer"], "--substitute"),
    (["--attacks", "pgd20,nope"], "unknown attack"),
    (["--suite", "corruptions", "--corruptions", "rain"], "unknown corruptions"),
])
def test_bad_eval_arguments_are_one_line_errors(runs, extra, match, capsys):
    assert main(["eval", str(runs / "he"), "--n", "4", "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_n_below_one_is_rejected_by_the_parser(runs, capsys):
    with pytest.raises(SystemExit):
        main(["eval", str(runs / "he"), "--n", "0"])
    assert "must be >= 1" in capsys.readouterr().err
