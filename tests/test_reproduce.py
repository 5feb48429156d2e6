"""``art-he reproduce``: the plan and its estimate, Table 4's refusal, and Table 2 end to end on tiny CIFAR-10
files in the real pickle format: a run interrupted after its first checkpoint, resumed, then a rerun that
trains and evaluates nothing."""

from __future__ import annotations

import json

import pytest

from art_he.cli import main
from art_he.errors import UserError
from art_he.recipes import RECIPES
from art_he.reproduce import TABLES, estimate_hours, get_table, row_configs
from art_he.reproduce.cache import RowState, cached_report, eval_settings, row_state
from art_he.reproduce.estimate import (
    AA_SQUARE_QUERIES,
    FORWARD,
    attack_passes,
    forward_flops,
    images_per_second,
    measured_throughput,
    train_passes_per_image,
    training_speed,
)
from art_he.runs import CONFIG_FILE, run_config
from art_he.trainers.base import ATTrainer
from tests.conftest import one_line_error
from tests.test_data import _write_cifar

TINY = ["--no-verify-data", "--subset", "32", "--epochs", "2", "--n", "8", "--max-steps", "1", "--model", "wrn-10-1",
        "--batch-size", "16", "--max-iter", "1", "--quiet"]


def stamps(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    _write_cifar(root, n=16)  # 80 training and 16 test images
    return root


def test_the_paper_numbers_name_existing_recipes_and_fill_every_column():
    for table in TABLES.values():
        assert all(row.recipe in RECIPES for row in table.rows)
        assert len(table.columns) == len(table.headers)
        assert all(len(row.values) == len(table.columns) for row in table.rows)
    rows = [n for n in RECIPES if not n.endswith("-readme")]  # a README variant is no row of the paper's
    assert get_table("table2").recipes == [n for n in rows if n.startswith("table2-")]
    assert get_table("table3").recipes == [n for n in rows if n.startswith("table3-")]
    assert get_table("table4").recipes == [n for n in rows if n.startswith("table4-")]
    assert len(get_table("table4").rows) == 8
    table10 = set(get_table("table10").recipes)
    assert table10 == {n for n in rows if n.startswith(("table2-", "table10-"))}
    assert get_table("table10").attacks == get_table("table2").attacks  # shared rows, shared evaluations


def test_dry_run_prints_the_plan_and_the_estimate_only(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "table2", "--dry-run", "--out", str(out)]) == 0
    plan = capsys.readouterr().out
    gpu = measured_throughput()
    for needle in ("Table 2", *get_table("table2").recipes, "wrn-34-10", "cifar10", "all 50,000", "all 10,000",
                   "pgd500", "eps 0.031", f"on one {gpu['gpu']}", f"measured there on {gpu['date']}", gpu["torch"],
                   "images/s: m = measured, x = extrapolated", "Measured: wrn-34-10 PGD-10 he",
                   "table2-alp-he from wrn-34-10 PGD-10 he by passes per image", "fab 1,000", "deepfool 1,000"):
        assert needle in plan, needle
    assert not out.exists()
    assert main(["reproduce", "table3", "--dry-run", "--out", str(out), "--epochs", "4", "--model", "wrn-10-1"]) == 0
    plan = capsys.readouterr().out
    rows = [line for line in plan.splitlines() if line.strip().startswith("table3-")]
    assert "--epochs 4 --model wrn-10-1" in plan and "pgd50" in plan and all("wrn-10-1" in row for row in rows)
    assert "by forward FLOPs" in plan  # no wrn-10-1 was measured


def test_the_estimate_counts_passes_images_and_what_is_left():
    table = get_table("table2")
    configs = row_configs(table, {})
    assert [train_passes_per_image(c) for c in configs.values()] == [11, 11, 12, 12, 12, 12]
    free = row_configs(get_table("table3"), {})["table3-free-he"]
    assert free.passes == 10 and train_passes_per_image(free) == 8  # Wong et al.: 10 passes of 8 replays
    cfg = configs["table2-pgd-he"]
    train, evaluate = estimate_hours(table, cfg, RowState("new"), None, None)
    assert 1 < train < 50 and 0 < evaluate < train
    half = row_configs(table, {"epochs": 50, "subset": 50_000})["table2-pgd-he"]
    assert estimate_hours(table, half, RowState("new"), None, None)[0] == pytest.approx(train / 2)
    assert estimate_hours(table, cfg, RowState("resume", 75), None, None)[0] == pytest.approx(train / 4)
    assert estimate_hours(table, cfg, RowState("trained", 100, True), None, None) == (0.0, 0.0)


def test_the_plan_reads_its_speeds_from_the_measured_table(monkeypatch):
    table = get_table("table2")
    configs = row_configs(table, {})
    rows = {(r["model"], r["head"]): r for r in measured_throughput()["rows"]
            if r["path"] == "eager" and r["precision"] == "bf16"}
    pgd_he = configs["table2-pgd-he"]
    assert training_speed(pgd_he).measured
    assert images_per_second(pgd_he) == rows["wrn-34-10", "he"]["images_per_s"]
    alp = training_speed(configs["table2-alp-he"])  # the same passes per second, 12 passes per image instead of 11
    assert not alp.measured and images_per_second(configs["table2-alp-he"]) == pytest.approx(
        rows["wrn-34-10", "he"]["images_per_s"] * 11 / 12)
    before = estimate_hours(table, pgd_he, RowState("new"), None, None)
    faster = {**measured_throughput(), "rows": [{**r, "images_per_s": 2 * r["images_per_s"]}
                                                for r in measured_throughput()["rows"]]}
    monkeypatch.setattr("art_he.reproduce.estimate.measured_throughput", lambda: faster)
    assert estimate_hours(table, pgd_he, RowState("new"), None, None) == pytest.approx(tuple(h / 2 for h in before))


def test_imagenet_rows_count_its_images_and_scale_by_flops(tmp_path):
    for split in ("train", "val"):
        for i in range(1000):
            (tmp_path / split / f"n{i:08d}").mkdir(parents=True)
    table = get_table("table4")
    configs = row_configs(table, {"data_dir": str(tmp_path)})
    assert len(configs) == 8
    wrn = row_configs(get_table("table2"), {})["table2-pgd-plain"]
    resnet = configs["table4-free-plain"]
    speed = training_speed(resnet)
    assert not speed.measured and "by forward FLOPs" in speed.source
    passes = images_per_second(wrn) * train_passes_per_image(wrn) * forward_flops(wrn) / forward_flops(resnet)
    assert speed.passes_per_s == pytest.approx(passes)
    train, evaluate = estimate_hours(table, resnet, RowState("new"), None, None)
    assert train * 3600 == pytest.approx(1_281_167 * 23 * 4 / passes)  # 23 passes of 4 replays over ImageNet
    assert evaluate * 3600 == pytest.approx(50_000 * (FORWARD + 10 + 50) / passes)  # clean, PGD-10, PGD-50


def test_attacks_cost_what_they_compute():
    from art_he.evaluation.specs import parse_attack

    def cost(name, classes=10, he=True, max_steps=None):
        return attack_passes(parse_attack(name, eps=0.03, eps_step=0.01, max_steps=max_steps), classes, he, max_steps)

    assert cost("pgd20") == 40 and cost("pgd20", he=False) == 20  # CE(s cos) and CE(cos) on an HE head
    assert cost("aa-apgd-t") == 9 * 100 and cost("aa-fab-t") == 9 * 100  # per target class
    assert cost("fab") == 10 * 100 and cost("aa-fab-t", classes=3) == 2 * 100  # FAB: a gradient per class
    assert cost("square1000") == pytest.approx(1000 * FORWARD)  # per query
    standard = 100 + 9 * 100 + 9 * 100 + AA_SQUARE_QUERIES * FORWARD
    assert cost("autoattack", he=False) == pytest.approx(standard)
    assert cost("autoattack") == pytest.approx(standard + 100)  # APGD-CE once more on the raw cosines
    assert cost("autoattack", classes=100) == pytest.approx(cost("autoattack"))  # 9 targets on CIFAR-100 too
    assert cost("autoattack", max_steps=5) == pytest.approx(5 + 45 + 45 + 50 * FORWARD + 5)
    assert cost("deepfool") == 100 * 10 and cost("spsa80") == pytest.approx(80 * 2 * 128 * FORWARD)


def test_table4_plans_imagenet_and_unknown_tables_are_one_line(capsys, tmp_path):
    assert main(["reproduce", "table4", "--dry-run"]) == 2  # ImageNet needs its folder
    one_line_error(capsys, "--data-dir")
    for split in ("train", "val"):
        for i in range(1000):
            (tmp_path / split / f"n{i:08d}").mkdir(parents=True)
    assert main(["reproduce", "table4", "--data-dir", str(tmp_path), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert all(name in plan for name in get_table("table4").recipes)
    assert "all 1,281,167 training images" in plan and "all 50,000 test images" in plan
    assert all(model in plan for model in ("resnet50", "resnet152", "wide_resnet50_2", "wide_resnet101_2"))
    assert main(["reproduce", "table9", "--dry-run"]) == 2
    one_line_error(capsys, "table2", "table10", "table3", "table4")


def test_the_data_are_checked_before_the_plan(tmp_path, capsys, monkeypatch):
    for table in ("table2", "table4"):
        assert main(["reproduce", table, "--data-dir", str(tmp_path / "none"), "--dry-run"]) == 2
        one_line_error(capsys, "data directory", "does not exist")
    monkeypatch.setattr("torchvision.datasets.CIFAR10.download", lambda self: (_ for _ in ()).throw(OSError("off")))
    assert main(["reproduce", "table2", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"), *TINY]) == 2
    captured = capsys.readouterr()
    assert "GPU-hours" not in captured.out and not (tmp_path / "out").exists()  # no plan, no row
    assert len(captured.err.strip().splitlines()) == 1 and "OSError: off" in captured.err


def test_overrides_keep_the_rows_what_they_are(capsys):
    with pytest.raises(SystemExit):  # not a flag of reproduce: the rows define it
        main(["reproduce", "table2", "--head", "he", "--dry-run"])
    capsys.readouterr()
    configs = row_configs(get_table("table3"), {"replays": 2, "epochs": 4})
    assert {n: c.replays for n, c in configs.items() if c.framework == "free"} == dict.fromkeys(
        ["table3-free-plain", "table3-free-he", "table3-free-mhe"], 2)
    assert all(c.epochs == 4 for c in configs.values())
    with pytest.raises(UserError, match="--beta applies to none"):
        row_configs(get_table("table3"), {"beta": 3.0})


def test_row_states_on_disk(tmp_path):
    table = get_table("table2")
    cfg = row_configs(table, {"model": "wrn-10-1", "epochs": 2})["table2-pgd-he"]
    run = tmp_path / "row"
    assert row_state(run, cfg).kind == "new"
    run.mkdir()
    (run / CONFIG_FILE).write_text(json.dumps(run_config(cfg)))
    (run / "metrics.jsonl").write_text("")
    assert row_state(run, cfg).kind == "restart"  # stopped before its first checkpoint: trained again
    other = row_configs(table, {"model": "wrn-10-1", "epochs": 3})["table2-pgd-he"]
    with pytest.raises(UserError, match="another configuration: epochs 2"):
        row_state(run, other)


def test_tiny_files_need_no_verify_data(data, tmp_path, capsys):
    args = [a for a in TINY if a != "--no-verify-data"]
    assert main(["reproduce", "table2", "--data-dir", str(data), "--out", str(tmp_path / "o"), *args]) == 2
    one_line_error(capsys, "verify=False")


@pytest.fixture(scope="module")
def table2(data, tmp_path_factory):
    """Table 2 on tiny files: stopped after the first row's first checkpoint (2 passes), then run again."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    argv = ["reproduce", "table2", "--data-dir", str(data), "--out", str(out), *TINY]
    save = ATTrainer.save_checkpoint

    def save_then_interrupt(self, path, scheduler=None):
        save(self, path, scheduler)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ATTrainer, "save_checkpoint", save_then_interrupt)
        assert main(argv) == 130
    first = out / "table2-pgd-plain"
    assert (first / "checkpoint.pt").is_file() and not (first / "model.safetensors").exists()
    assert not (out / "table2-pgd-he").exists()
    return out, argv


def test_an_interrupted_table_resumes_and_prints_the_comparison(table2, capsys):
    out, argv = table2
    capsys.readouterr()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "table2-pgd-plain             pgd       plain wrn-10-1" in text and "resume at pass 1/2" in text
    lines = (out / "table2-pgd-plain" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    for row in get_table("table2").rows:
        assert (out / row.recipe / "model.safetensors").is_file() and (out / row.recipe / "eval.json").is_file()
        assert f"| {row.label} (`{row.recipe}`) | " in text
    assert "| Defense | Clean | PGD-20 | PGD-500 | MIM-20 | FGSM | DeepFool | C&W | FeaAtt. | FAB |" in text
    assert "/ 86.75 (" in text and "ours on 8 test images" in text
    assert (out / "table2.md").read_text() in text
    cells = json.loads((out / "table2.json").read_text())["rows"]["table2-trades-he"]["fab"]
    assert cells["paper"] == 53.50 and cells["diff"] == pytest.approx(cells["ours"] - 53.50)


def test_a_rerun_trains_and_evaluates_nothing(table2, capsys, monkeypatch):
    out, argv = table2
    if not (out / "table2.md").exists():
        assert main(argv) == 0
    before = stamps(out)
    calls = []
    monkeypatch.setattr("art_he.runs.train_run", lambda *a, **k: calls.append("train"))
    monkeypatch.setattr("art_he.evaluation.evaluate", lambda *a, **k: calls.append("evaluate"))
    capsys.readouterr()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert calls == []
    assert text.count("trained, evaluated") == 6 and text.count("evaluation cached") == 6
    assert {k: v for k, v in stamps(out).items() if not k.startswith("table2.")} == \
        {k: v for k, v in before.items() if not k.startswith("table2.")}
    table = get_table("table2")
    row = out / "table2-pgd-he"
    assert cached_report(row, eval_settings(table, 8, 1)) is not None
    assert cached_report(row, eval_settings(table, 4, 1)) is None  # another n: evaluated again
    assert main([*argv, "--epochs", "3", "--dry-run"]) == 2  # a finished row of another configuration stays
    one_line_error(capsys, "table2-pgd-plain", "epochs 2")


def test_the_help_lists_every_table(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(key in text for key in TABLES)
