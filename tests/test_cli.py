import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier, load_run
from art_he.cli import main
from art_he.heads import find_head
from art_he.threads import cgroup_cpu_limit, usable_cores


def _train(out, *extra):
    return main(["train", "--dataset", "fashion-mnist", "--subset", "256", "--width", "4", "--epochs", "2",
                 "--max-iter", "2", "--batch-size", "64", "--out", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def he_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "he"
    assert _train(out, "--head", "he", "--scale", "10", "--margin", "0.3", "--val-n", "50") == 0
    return out


def test_train_writes_run_directory(he_run):
    assert (he_run / "model.safetensors").is_file()
    config = json.loads((he_run / "config.json").read_text())
    assert config["framework"] == "pgd" and config["head"] == "he" and config["head_kwargs"]["scale"] == 10.0
    lines = [json.loads(line) for line in (he_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(np.isfinite(m["loss"]) and "val_adv_acc" in m for m in lines)


def test_load_run_gives_model_and_classifier_back(he_run):
    from art_he.data import load_dataset

    model, classifier, config = load_run(he_run)
    assert isinstance(classifier, HEPyTorchClassifier)
    head = find_head(model)
    assert head is not None and head.scale == 10.0 and head.margin == 0.3
    x, _ = load_dataset("fashion-mnist", train=False)
    out_a = classifier.predict(x[:16])
    model2, classifier2, _ = load_run(he_run)
    assert np.allclose(out_a, classifier2.predict(x[:16]))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in model2.state_dict().items())


def test_plain_run_and_state_dict_loads_weights_only(tmp_path):
    from safetensors.torch import load_file

    assert _train(tmp_path / "plain", "--epochs", "1") == 0
    model, classifier, config = load_run(tmp_path / "plain")
    assert find_head(model) is None and config["head"] == "plain"
    assert set(load_file(str(tmp_path / "plain" / "model.safetensors"))) == set(model.state_dict())


@pytest.mark.parametrize("args, match", [
    (["train", "--out", "x", "--epochs", "0"], "epochs"),
    (["train", "--out", "x", "--subset", "0"], "subset"),
    (["train", "--out", "x", "--head", "plain", "--scale", "3"], "scale"),
    (["train", "--out", "x", "--head", "he", "--scale", "-1"], "scale"),
    (["train", "--out", "x", "--eps", "-0.1", "--subset", "64"], "eps"),
    (["train", "--out", "x", "--max-iter", "0", "--subset", "64"], "max_iter"),
])
def test_bad_arguments_end_in_one_line(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err


def test_missing_run_directory_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an art-he run"):
        load_run(tmp_path)


def test_missing_data_is_one_line_no_traceback(tmp_path):
    (tmp_path / "none").mkdir()  # an empty data folder: the data is not there and cannot be downloaded
    env = {"ART_HE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    code = ("import art_he.data.fashion_mnist as fm, pathlib, sys; fm.DEBIAN_DIR = pathlib.Path('/nonexistent');"
            "fm.FashionMNIST.mirrors = ['http://127.0.0.1:9/'];"
            "from art_he.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--out", str(tmp_path / "r"), "--data-dir",
                           str(tmp_path / "none")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "dataset-fashion-mnist" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_options_are_never_abbreviated_and_a_wrong_one_shows_the_commands_usage(capsys):
    from art_he.cli import COMMANDS, build_parser

    for argv in (["train", "--epoch", "1", "--print-config"], ["train", "--bogus", "1"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith("usage: art-he train")
        assert f"unrecognized arguments: {' '.join(argv[1:3])}" in err
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert not parser.allow_abbrev and set(commands) == set(COMMANDS)
    assert not any(p.allow_abbrev for p in commands.values())


def test_version(capsys):
    import art_he

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"art-he {art_he.__version__}"


def test_threads_option_and_a_passive_wait_policy(capsys):
    before = torch.get_num_threads()
    try:
        assert main(["train", "--threads", "1", "--print-config"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    code = ("import os, sys; from art_he.cli import main; main(['train', '--print-config']); import torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'), torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.splitlines()[-1] == f"PASSIVE {usable_cores()}"
    env.update(OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="1")  # the user's settings win
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.splitlines()[-1] == "ACTIVE 1"


@pytest.mark.parametrize("text, cores", [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000", 1)])
def test_cgroup_quota_caps_the_threads(tmp_path, text, cores):
    (tmp_path / "cpu.max").write_text(text)
    assert cgroup_cpu_limit(tmp_path) == cores
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1" if cores is None else str(cores * 100000 - 50000))
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == cores
    assert cgroup_cpu_limit(tmp_path / "none") is None


def test_the_epoch_line_carries_the_validation_metrics(tmp_path, capsys):
    assert main(["train", "--subset", "128", "--width", "4", "--epochs", "1", "--max-iter", "1", "--batch-size", "64",
                 "--val-n", "20", "--out", str(tmp_path / "run")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch=1 "))
    assert "val_clean_acc=" in line and "val_adv_acc=" in line
