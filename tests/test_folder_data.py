"""Image folders in torchvision's on-disk layout (PNG and JPEG files), trained through a DataLoader, evaluated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from art_he import load_run
from art_he.cli import main
from art_he.config import TrainConfig
from art_he.data import load_dataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label, name in enumerate(("cat", "dog", "fox")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = (rng.random((40, 48, 3)) * 80 + 60 * label).astype(np.uint8)
                ext = "png" if i % 2 else "jpg"
                Image.fromarray(pixels).save(root / split / name / f"{i}.{ext}")
    return root


def test_classes_and_evaluation_transforms(folder):
    cfg = TrainConfig(dataset="imagefolder", data_dir=str(folder), image_size=32).resolved()
    assert cfg.nb_classes == 3 and cfg.augment is True and cfg.model == "resnet50"
    x, y = load_dataset("imagefolder", train=False, data_dir=folder, image_size=32, n=6)
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert sorted(set(y.tolist())) == [0, 1, 2]  # spread over the classes, not the first folder only
    with pytest.raises(ValueError, match="classes"):
        TrainConfig(dataset="imagenet", data_dir=str(folder)).resolved()  # 3 folders, not 1000


def test_missing_layout_is_one_line_naming_it(tmp_path, capsys):
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "train/<class>/<image>" in err
    assert main(["train", "--dataset", "imagefolder", "--out", str(tmp_path / "r")]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_train_one_epoch_through_a_loader_and_evaluate(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(folder), "--image-size", "32",
                 "--model", "resnet18", "--head", "he", "--epochs", "1", "--batch-size", "6", "--max-iter", "1",
                 "--workers", "0", "--val-n", "3", "--precision", "fp32", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["nb_classes"] == 3 and config["image_size"] == 32
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert metrics["epoch"] == 1 and "val_adv_acc" in metrics
    _, classifier, _ = load_run(out)
    assert classifier.nb_classes == 3 and tuple(classifier.input_shape) == (3, 32, 32)
    capsys.readouterr()
    assert main(["eval", str(out), "--data-dir", str(folder), "--n", "6", "--attacks", "fgsm", "--quiet"]) == 0
    assert "FGSM" in capsys.readouterr().out
