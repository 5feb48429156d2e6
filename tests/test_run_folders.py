"""Run folders are never destroyed silently, and damaged files, reused folders and wrong paths get one line
naming the file or folder (exit code 2, no traceback)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from art_he import UserError, load_run
from art_he.cli import main
from art_he.trainers.base import ATTrainer
from tests.conftest import one_line_error

TRAIN = ["train", "--subset", "128", "--width", "4", "--epochs", "2", "--max-iter", "1", "--batch-size", "64",
         "--quiet"]


def train(out, *extra) -> int:
    return main([*TRAIN, "--out", str(out), *extra])


def checksums(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(out) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "run")


def test_a_finished_run_is_not_overwritten(run_copy, capsys):
    before = checksums(run_copy)
    assert set(before) == {"model.safetensors", "config.json", "metrics.jsonl", "checkpoint.pt"}
    assert train(run_copy) == 2
    one_line_error(capsys, str(run_copy), "--resume", "--overwrite")
    assert checksums(run_copy) == before
    with pytest.raises(SystemExit) as exit_:  # argparse: one or the other
        main([*TRAIN, "--out", str(run_copy), "--resume", "--overwrite"])
    assert exit_.value.code == 2
    assert checksums(run_copy) == before


def test_overwrite_replaces_the_run(run_copy, capsys):
    (run_copy / "notes.txt").write_text("mine")
    before = checksums(run_copy)
    assert train(run_copy, "--overwrite", "--seed", "1") == 0
    after = checksums(run_copy)
    assert after["notes.txt"] == before["notes.txt"]  # only the run's own files are replaced
    assert after["model.safetensors"] != before["model.safetensors"]


def test_resume_continues_an_interrupted_run_and_says_from_where(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    save = ATTrainer.save_checkpoint

    def save_then_interrupt(self, path, scheduler=None):
        save(self, path, scheduler)
        raise KeyboardInterrupt  # the run is stopped right after its first checkpoint

    monkeypatch.setattr(ATTrainer, "save_checkpoint", save_then_interrupt)
    assert main([*TRAIN, "--out", str(out)]) == 130
    monkeypatch.undo()
    assert not (out / "model.safetensors").exists() and (out / "checkpoint.pt").is_file()
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume"]) == 0  # the configuration comes from config.json
    assert "resuming from epoch 1 of 2" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file()
    assert [line.count('"epoch": ') for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 1]


def test_a_folder_that_holds_runs_is_not_a_run_folder(finished, capsys):
    assert train(finished.parent) == 2  # e.g. runs/quickstart, the folder of the quickstart's two runs
    one_line_error(capsys, str(finished.parent), "holds runs", finished.name)
    assert sorted(p.name for p in finished.parent.iterdir()) == [finished.name]


def test_resume_without_a_checkpoint_stops_in_one_line(tmp_path, capsys):
    assert train(tmp_path / "fresh", "--resume") == 2
    one_line_error(capsys, str(tmp_path / "fresh"), "checkpoint.pt")
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("change, key", [(["--head", "he"], "head"), (["--framework", "trades"], "framework"),
                                         (["--model", "small-cnn-nobn"], "model"),
                                         (["--dataset", "synthetic"], "dataset"), (["--epochs", "3"], "epochs")])
def test_resume_with_another_configuration_names_the_differences(run_copy, change, key, capsys):
    before = checksums(run_copy)
    assert train(run_copy, "--resume", *change) == 2
    one_line_error(capsys, str(run_copy), key)
    assert checksums(run_copy) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_checkpoint_is_one_line_without_torch_advice(run_copy, damage, capsys):
    path = run_copy / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x80\x02not a checkpoint" * 50)
    assert train(run_copy, "--resume") == 2
    err = one_line_error(capsys, str(path))
    assert "weights_only" not in err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other-model"])
def test_a_damaged_model_file_is_one_line_in_eval_and_load_run(run_copy, damage, capsys):
    from safetensors.torch import save_file

    path = run_copy / "model.safetensors"
    if damage == "other-model":
        import torch

        save_file({"w": torch.zeros(3)}, str(path))
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncate" else os.urandom(len(data)))
    with pytest.raises(UserError, match="model.safetensors"):
        load_run(run_copy)
    assert main(["eval", str(run_copy), "--n", "8", "--quiet"]) == 2
    one_line_error(capsys, str(path))


def test_an_invalid_config_is_one_line(run_copy, capsys):
    path = run_copy / "config.json"
    path.write_text(path.read_text()[:40])
    assert main(["eval", str(run_copy), "--n", "8", "--quiet"]) == 2
    one_line_error(capsys, str(path), "JSON")
    path.write_text("{}")
    assert main(["eval", str(run_copy), "--n", "8", "--quiet"]) == 2
    one_line_error(capsys, str(path), "dataset")


def test_a_data_dir_that_does_not_exist_is_an_error(tmp_path, finished, capsys):
    assert train(tmp_path / "run", "--data-dir", str(tmp_path / "nowhere")) == 2
    one_line_error(capsys, str(tmp_path / "nowhere"))
    assert main(["eval", str(finished), "--data-dir", str(tmp_path / "nowhere"), "--quiet"]) == 2
    one_line_error(capsys, str(tmp_path / "nowhere"))


def test_the_model_file_gets_the_same_mode_as_the_others(finished):
    modes = {p.name: p.stat().st_mode & 0o777 for p in finished.iterdir()}
    assert len(set(modes.values())) == 1, modes


def test_help_answers_without_importing_torch():
    code = ("import sys; from art_he.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'art' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "quickstart" in proc.stdout and "train" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "False False"


def test_progress_does_not_flood_a_log(tmp_path):
    """stderr is a pipe here: the bars redraw at most once a minute instead of after every batch."""
    proc = subprocess.run([sys.executable, "-m", "art_he", *TRAIN[:-1], "--epochs", "1", "--batch-size", "8",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("\r") <= 4, proc.stderr[-2000:]  # one draw and one clear of the epoch's bar
    assert "epoch=1" in proc.stdout


def test_learning_rates_are_recorded_rounded(finished):
    text = (finished / "metrics.jsonl").read_text()
    assert '"lr": 0.005}' in text and "0.005000000" not in text  # 0.05 * 0.1 after the milestone


def test_a_bar_off_a_terminal_redraws_rarely():
    """A thousand updates over about a second: a terminal bar would redraw about ten times (every 0.1 s), a log
    gets the first draw and the last."""
    import io
    import time

    from art_he.progress import progress

    log = io.StringIO()
    bar = progress(total=1000, file=log, desc="epoch 1")
    for _ in range(1000):
        bar.update(1)
        time.sleep(0.001)
    bar.close()
    assert log.getvalue().count("\r") <= 3, log.getvalue().count("\r")


def test_records_from_before_scale_and_margin_were_resolved_still_resume():
    from art_he.runs import config_differences

    old = {"head": "he", "scale": None, "margin": None, "head_kwargs": {"scale": 15.0, "margin": 0.2}}
    assert config_differences(old, {"head": "he", "scale": 15.0, "margin": 0.2}) == []
    assert config_differences(old, {"head": "he", "scale": 10.0, "margin": 0.2}) == ["scale"]
