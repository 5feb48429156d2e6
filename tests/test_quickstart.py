"""The main job (``art-he quickstart``): PGD-AT against PGD-AT+HE end to end on a tiny budget."""

import numpy as np
import torch

from art_he import HEPyTorchClassifier
from art_he.models import build_model
from art_he.quickstart import QuickstartConfig, evaluate, run_quickstart
from art_he.runs import CONFIG_FILE, METRICS_FILE, MODEL_FILE

METRICS = ["clean", "FGSM", "PGD-20 (CE)", "PGD-20 (margin)", "train time (s)"]


def test_quickstart_trains_evaluates_and_writes_both_runs(tmp_path):
    cfg = QuickstartConfig(epochs=1, subset=256, n=50, out=str(tmp_path / "qs"), verbose=False)
    table, results = run_quickstart(cfg)
    assert list(results) == ["PGD-AT", "PGD-AT+HE"]
    for metrics in results.values():
        assert list(metrics) == METRICS and metrics["train time (s)"] > 0
        assert all(0.0 <= metrics[m] <= 1.0 for m in METRICS[:-1])
        assert metrics["PGD-20 (CE)"] <= metrics["clean"]
    lines = table.splitlines()
    assert lines[0] == "| accuracy (%) | PGD-AT | PGD-AT+HE | diff |" and len(lines) == 2 + len(METRICS)
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| {m}" for m in METRICS]
    for head in ("plain", "he"):
        run = tmp_path / "qs" / head
        assert all((run / name).is_file() for name in (MODEL_FILE, CONFIG_FILE, METRICS_FILE)), head


def test_quickstart_evaluation_is_seeded_without_touching_the_global_generators(fmnist_test):
    """ART draws PGD's random start from numpy's global generator: seeded for the run, then restored."""
    x, y = fmnist_test[0][:20], fmnist_test[1][:20]
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4).eval()
    clf = HEPyTorchClassifier(model, None, (1, 28, 28), 10, clip_values=(0.0, 1.0), device_type="cpu")
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    first = evaluate(clf, x, y, eps=0.1, seed=3)
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.get_rng_state(), torch_state)
    np.random.rand(5)
    assert evaluate(clf, x, y, eps=0.1, seed=3) == first


def test_readme_sample_output_ends_with_the_closing_text_the_quickstart_prints_in_4_lines():
    from pathlib import Path

    from art_he.quickstart import CLOSING

    assert CLOSING in (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert len(CLOSING.splitlines()) <= 4
