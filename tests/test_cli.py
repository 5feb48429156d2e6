import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier, load_run
from art_he.cli import main
from art_he.heads import find_head


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
