"""art_he.plots: the figures show their inputs (read back from the artists, not the pixels), files are written
(.png, .svg; through ``art-he plot`` too), bad input is a one-line error, and the HE diagnostics equal hand
computations on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import StepPatch

from art_he.cli import main
from art_he.errors import UserError
from art_he.evaluation import he_diagnostics
from art_he.evaluation.report import Report, Row
from art_he.plots import attacks_figure, corruptions_figure, curves_figure, diagnostics_figure, eps_figure, save
from tests.conftest import one_line_error

# -- inputs built by hand --------------------------------------------------------------------------------------

PLAIN_HISTORY = [{"framework": "pgd", "head": "plain", "epoch": e, "loss": loss, "clean_acc": c, "adv_acc": a,
                  "lr": 0.05} for e, loss, c, a in ((1, 1.7, 0.36, 0.21), (2, 1.35, 0.62, 0.44), (3, 1.2, 0.71, 0.53))]
HE_HISTORY = [{"framework": "pgd", "head": "he", "epoch": e, "loss": loss, "clean_acc": c, "adv_acc": a, "lr": 0.05,
               "val_clean_acc": vc, "val_adv_acc": va}
              for e, loss, c, a, vc, va in ((1, 6.9, 0.2, 0.19, 0.41, 0.33), (2, 4.5, 0.42, 0.33, 0.55, 0.45))]


def row(attack, kind, accuracy, eps=0.1, label=None, **details):
    return Row(attack, label or attack.upper(), kind, accuracy, 200, 0.1, eps, {}, details)


def attack_report(name, clean, accs, sweep=None):
    rows = [row("clean", "clean", clean, eps=0.0, label="Clean")]
    rows += [row(a, "white-box", v, label=a.upper()) for a, v in accs.items()]
    rows += [row(f"pgd20@{e}", "sweep", v, eps=e, label=f"PGD-20 @ eps {e}") for e, v in (sweep or {}).items()]
    return Report(name, "quick", rows, {"eps": 0.1})


PLAIN = attack_report("plain", 0.745, {"fgsm": 0.575, "pgd20": 0.53, "cw20": 0.52},
                      {0.2: 0.065, 0.05: 0.64, 0.1: 0.53})  # sweep rows out of eps order on purpose
HE = attack_report("he", 0.565, {"fgsm": 0.46, "pgd20": 0.45}, {0.05: 0.49, 0.1: 0.45, 0.2: 0.085})
GRID = {("gaussian_noise", 1): 0.52, ("gaussian_noise", 2): 0.5, ("gaussian_noise", 3): 0.31,
        ("contrast", 1): 0.5, ("contrast", 3): 0.28}  # (contrast, 2) missing


def corruption_report(name="he", grid=GRID):
    rows = [row("clean", "clean", 0.53, eps=0.0)]
    rows += [row(f"{c}@{s}", "corruption", v, eps=0.0, corruption=c, severity=s) for (c, s), v in grid.items()]
    rows.append(row("mca", "corruption-mean", float(np.mean(list(grid.values()))), eps=0.0, label="mCA"))
    return Report(name, "corruptions", rows, {})


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


# -- figures of runs and reports -------------------------------------------------------------------------------


def test_curves_show_each_runs_metrics_per_epoch():
    fig = curves_figure([PLAIN_HISTORY, HE_HISTORY], labels=["PGD-AT", "PGD-AT+HE"])
    assert isinstance(fig, Figure) and fig.canvas.manager is None  # not registered with pyplot
    loss_ax, clean_ax, adv_ax = fig.axes
    for ax, key, scale in ((loss_ax, "loss", 1), (clean_ax, "clean_acc", 100), (adv_ax, "adv_acc", 100)):
        lines = lines_by_label(ax)
        for label, history in (("PGD-AT", PLAIN_HISTORY), ("PGD-AT+HE", HE_HISTORY)):
            np.testing.assert_array_equal(lines[label].get_xdata(), [m["epoch"] for m in history])
            np.testing.assert_allclose(lines[label].get_ydata(), [scale * m[key] for m in history])
        if key != "loss":  # validation: only the HE run has it, dashed
            val = lines["PGD-AT+HE (validation)"]
            np.testing.assert_allclose(val.get_ydata(), [100 * m[f"val_{key}"] for m in HE_HISTORY])
            assert val.get_linestyle() == "--" and "PGD-AT (validation)" not in lines
        assert ax.get_xlabel() == "epoch" and ax.get_title()
    assert "%" in clean_ax.get_ylabel() and "%" in adv_ax.get_ylabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["PGD-AT", "PGD-AT+HE"]


def test_curves_read_run_directories(tmp_path):
    run = tmp_path / "he-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in HE_HISTORY))
    fig = curves_figure([run, run / "metrics.jsonl"])
    lines = lines_by_label(fig.axes[1])
    np.testing.assert_allclose(lines["he-run"].get_ydata(), [100 * m["clean_acc"] for m in HE_HISTORY])
    (run / "metrics.jsonl").write_text(json.dumps(HE_HISTORY[0]) + "\n{not json\n")
    with pytest.raises(UserError, match="metrics.jsonl:2"):
        curves_figure([run])
    with pytest.raises(UserError, match="does not exist"):
        curves_figure([tmp_path / "nowhere"])
    with pytest.raises(UserError, match="1 label"):
        curves_figure([PLAIN_HISTORY, HE_HISTORY], labels=["one"])


def test_eps_lines_are_the_sweep_rows_sorted_with_clean_at_zero():
    fig = eps_figure([PLAIN, HE], labels=["PGD-AT", "PGD-AT+HE"])
    ax = fig.axes[0]
    lines = lines_by_label(ax)
    np.testing.assert_allclose(lines["PGD-AT"].get_xdata(), [0, 0.05, 0.1, 0.2])
    np.testing.assert_allclose(lines["PGD-AT"].get_ydata(), [74.5, 64, 53, 6.5])
    np.testing.assert_allclose(lines["PGD-AT+HE"].get_ydata(), [56.5, 49, 45, 8.5])
    assert "%" in ax.get_ylabel() and "[0, 1]" in ax.get_xlabel()
    assert any("0.1" in t.get_text() for t in ax.get_legend().get_texts())  # the evaluation eps, marked
    no_clean = lines_by_label(eps_figure(HE, include_clean=False).axes[0])["he"]
    np.testing.assert_allclose(no_clean.get_xdata(), [0.05, 0.1, 0.2])
    with pytest.raises(UserError, match="no eps-sweep rows"):
        eps_figure([PLAIN, attack_report("nosweep", 0.9, {"pgd20": 0.5})])


def bars_of(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_attack_bars_are_the_accuracies_of_each_report():
    fig = attacks_figure([PLAIN, HE])
    ax = fig.axes[0]
    plain_bars, he_bars = bars_of(ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Clean", "FGSM", "PGD20", "CW20"]  # no sweep rows
    np.testing.assert_allclose([b.get_height() for b in plain_bars], [74.5, 57.5, 53, 52])
    np.testing.assert_allclose([b.get_height() for b in he_bars], [56.5, 46, 45])  # HE has no cw20: no bar
    centres = [b.get_x() + b.get_width() / 2 for b in plain_bars]
    assert all(c < tick for c, tick in zip(centres, ax.get_xticks()))  # plain left of HE within each group
    assert plain_bars.get_label() == "plain" and "%" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == ["74.5", "57.5", "53.0", "52.0", "56.5", "46.0", "45.0"]  # on bars
    chosen = attacks_figure([PLAIN, HE], ["a", "b"], attacks=["pgd20", "clean"]).axes[0]
    np.testing.assert_allclose([b.get_height() for b in bars_of(chosen)[1]], [45, 56.5])
    with pytest.raises(UserError, match="nope"):
        attacks_figure([PLAIN], attacks=["nope"])
    with pytest.raises(UserError, match="no attack rows"):
        attacks_figure([corruption_report()])


def test_corruption_heatmap_is_the_grid_with_its_means():
    report = corruption_report()
    fig = corruptions_figure([report, corruption_report("plain")], labels=["HE", "plain"])
    ax = fig.axes[0]
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    table = image.get_array()
    expected = np.array([[52, 50], [50, np.nan], [31, 28]])
    assert table.shape == (4, 3)
    np.testing.assert_allclose(table[:3, :2].filled(np.nan), expected)
    assert table.mask[1, 1]  # the missing cell stays empty
    np.testing.assert_allclose(table[3, :2], np.nanmean(expected, axis=0))  # mean over severities
    np.testing.assert_allclose(table[:3, 2], np.nanmean(expected, axis=1))  # mean over corruptions
    np.testing.assert_allclose(table[3, 2], np.nanmean(expected))  # mCA
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Gauss", "Contra", "mean"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3", "mean"]
    assert sorted(float(t.get_text()) for t in ax.texts) == sorted(float(f"{v:.1f}") for v in table.compressed())
    assert ax.get_title(loc="left") == f"HE: mCA {100 * report.mean_corruption_accuracy:.2f}%"
    assert image.get_clim() == (0, 100) and any("%" in a.get_ylabel() for a in fig.axes)  # the colour bar
    with pytest.raises(UserError, match="no corruption rows"):
        corruptions_figure(PLAIN)


def test_titles_write_cifar_eps_as_a_fraction_of_255():
    cifar = Report("he", "quick", [row("clean", "clean", 0.8, eps=0.0), row("pgd20", "white-box", 0.5, eps=8 / 255)],
                   {"eps": 8 / 255})
    assert attacks_figure(cifar).axes[0].get_title().endswith("= 8/255, 200 test images)")
    assert attacks_figure(PLAIN).axes[0].get_title().endswith("= 0.1, 200 test images)")


def test_titles_give_the_number_of_images(tmp_path):
    assert eps_figure([PLAIN, HE]).axes[0].get_title().endswith("(PGD-20, 200 test images)")
    small = Report("small", "quick", [row("clean", "clean", 0.8, eps=0.0), row("pgd20", "white-box", 0.5)],
                   {"eps": 0.1, "n": 50})
    assert "50 to 200 test images" in attacks_figure([small, PLAIN]).axes[0].get_title()
    assert corruptions_figure(corruption_report()).get_suptitle().endswith("(200 test images)")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in HE_HISTORY))
    (run / "config.json").write_text(json.dumps({"subset": 1024, "val_n": 300}))
    assert curves_figure([run]).get_suptitle() == ("Training curves (training on the first 1,024 images, "
                                                   "validation on 300 test images)")


def test_save_writes_png_and_svg_and_refuses_other_suffixes(tmp_path):
    fig = eps_figure(HE)
    assert save(fig, tmp_path / "eps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in save(fig, tmp_path / "eps.SVG").read_bytes()[:1000]
    with pytest.raises(UserError, match=r"\.png or \.svg"):
        save(fig, tmp_path / "eps.pdf")
    with pytest.raises(UserError, match="does not exist"):
        save(fig, tmp_path / "missing" / "eps.png")


def test_missing_matplotlib_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match=r"pip install 'art-he\[notebooks\]'"):
        curves_figure([PLAIN_HISTORY])


# -- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def report_files(tmp_path):
    paths = {}
    for name, report in (("plain", PLAIN), ("he", HE), ("corr", corruption_report())):
        paths[name] = str(report.to_json(tmp_path / f"{name}.json"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in PLAIN_HISTORY))
    paths["run"] = str(run)
    return paths


@pytest.mark.parametrize("kind, inputs, suffix", [
    ("curves", ["run"], "png"), ("eps", ["plain", "he"], "svg"), ("attacks", ["plain", "he"], "png"),
    ("corruptions", ["corr"], "svg")])
def test_cli_writes_each_figure(report_files, tmp_path, capsys, kind, inputs, suffix):
    out = tmp_path / f"{kind}.{suffix}"
    labels = [a for i in range(len(inputs)) for a in ("--label", f"model {i}")]
    assert main(["plot", kind, *(report_files[i] for i in inputs), *labels, "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and f"wrote {out}" in capsys.readouterr().out
    head = out.read_bytes()[:1000]
    assert head.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in head


@pytest.mark.parametrize("args, needles", [
    (["pie", "{plain}", "--out", "{tmp}/x.png"], ["unknown plot kind 'pie'", "curves"]),
    (["eps", "{tmp}/nowhere.json", "--out", "{tmp}/x.png"], ["nowhere.json", "does not exist"]),
    (["eps", "{plain}", "--out", "{tmp}/x.pdf"], ["x.pdf", ".png or .svg"]),
    (["eps", "{plain}"], ["--out"]),
    (["eps", "{corr}", "--out", "{tmp}/x.png"], ["no eps-sweep rows"]),
    (["corruptions", "{plain}", "--out", "{tmp}/x.png"], ["no corruption rows"]),
    (["attacks", "{plain}", "{he}", "--label", "a", "--out", "{tmp}/x.png"], ["1 --label(s) for 2 input(s)"]),
    (["attacks", "{run}/metrics.jsonl", "--out", "{tmp}/x.png"], ["not valid JSON"]),
    (["curves", "{plain}", "--out", "{tmp}/x.png"], ["plain.json", "curves take run folders", "plot eps"]),
])
def test_cli_bad_input_is_one_line(report_files, tmp_path, capsys, args, needles):
    args = [a.format(tmp=tmp_path, **report_files) for a in args]
    assert main(["plot", *args]) == 2
    err = one_line_error(capsys, *needles)
    assert err.startswith("art-he plot: error: ")
    assert not list(tmp_path.glob("x.*"))


def test_plot_help_imports_neither_torch_nor_matplotlib():
    code = ("import sys; import art_he.plots; from art_he.cli import main\ntry:\n    main(['plot', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, 'matplotlib' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "diagnostics" in proc.stdout, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"


# -- HE diagnostics --------------------------------------------------------------------------------------------


def tiny_model(head="he", seed=0):
    from art_he.models import build_model

    torch.manual_seed(seed)
    return build_model("small-cnn", in_channels=1, head=head, width=4, hidden=16)


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(24, 1, 28, 28, generator=generator), torch.randint(0, 10, (24,), generator=generator)


def test_diagnostics_of_an_he_model_equal_hand_computations(data):
    x, y = data
    model = tiny_model("he")
    model.train()  # it is measured in eval mode and left as it was
    d = he_diagnostics(model, x, y, eps=0.1, steps=2, batch_size=10)  # 3 batches, the last one short
    assert model.training and not model.linear._forward_hooks
    model.eval()
    with torch.no_grad():
        z = model.features(model.normalize(x))  # the body's output: the head's input
        cos = model(x)
    np.testing.assert_allclose(d["feature_norm_clean"], z.norm(dim=1).numpy(), rtol=1e-5)
    assert np.all(np.abs(d["cos_y_clean"]) <= 1) and np.all(np.abs(d["cos_y_adv"]) <= 1)
    np.testing.assert_allclose(d["cos_y_clean"], cos[torch.arange(len(y)), y].numpy(), atol=1e-6)
    np.testing.assert_allclose(d["weight_norm"], model.linear.weight.detach().norm(dim=1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(d["correct_clean"], (cos.argmax(1) == y).numpy())
    assert np.all(np.isfinite(d["grad_ratio"])) and np.all(d["grad_ratio"] > 0)
    np.testing.assert_allclose(d["grad_ratio"], d["grad_norm_adv"] / d["grad_norm_clean"], rtol=1e-6)
    assert not np.allclose(d["feature_norm_adv"], d["feature_norm_clean"])  # PGD moved the inputs
    assert float(d["eps"]) == 0.1 and all(isinstance(v, np.ndarray) for v in d.values())

    # one input's gradient on its own: the model's training objective (CE_m, s and m), per sample
    from art_he.heads import objective_of

    xi = x[5:6].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective_of(model).train_loss(model(xi), y[5:6]), xi)
    np.testing.assert_allclose(d["grad_norm_clean"][5], grad.norm().item(), rtol=1e-4)


def test_diagnostics_of_a_plain_model_and_given_adversarial_inputs(data):
    x, y = data
    model = tiny_model("plain").eval()
    d = he_diagnostics(model, x.numpy(), y.numpy(), x_adv=x.numpy())
    with torch.no_grad():
        z = model.features(model.normalize(x))
        expected = torch.nn.functional.cosine_similarity(z, model.linear.weight[y], dim=1)
    np.testing.assert_allclose(d["cos_y_clean"], expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(d["feature_norm_adv"], d["feature_norm_clean"])
    np.testing.assert_allclose(d["grad_ratio"], 1.0, rtol=1e-6)
    assert np.isnan(d["eps"])
    with pytest.raises(UserError, match="x_adv or eps"):
        he_diagnostics(model, x, y)
    with pytest.raises(UserError, match="shape"):
        he_diagnostics(model, x, y, x_adv=x[:3])


def test_diagnostics_figure_shows_the_measured_values(data):
    x, y = data
    results = [he_diagnostics(tiny_model(head), x, y, eps=0.1, steps=1) for head in ("plain", "he")]
    fig = diagnostics_figure(results, ["PGD-AT", "PGD-AT+HE"])
    ax_norm, ax_cos, ax_w, ax_ratio = fig.axes
    for ax, key in ((ax_norm, "feature_norm"), (ax_cos, "cos_y")):
        steps = {p.get_label(): p for p in ax.patches if isinstance(p, StepPatch)}
        assert len(steps) == 4
        for name, d in zip(("PGD-AT", "PGD-AT+HE"), results):
            for tag, suffix in (("clean", "clean"), ("adversarial", "adv")):
                counts, edges, _ = steps[f"{name}, {tag}"].get_data()
                np.testing.assert_array_equal(counts, np.histogram(d[f"{key}_{suffix}"], edges)[0])
                assert counts.sum() == len(y)
    plain_bars, he_bars = bars_of(ax_w)
    np.testing.assert_allclose([b.get_height() for b in he_bars], results[1]["weight_norm"])
    ratio_steps = [p for p in ax_ratio.patches if isinstance(p, StepPatch) and not p.get_label().startswith("_")]
    assert [p.get_label().split(" (")[0] for p in ratio_steps] == ["PGD-AT", "PGD-AT+HE"]
    counts, edges, _ = ratio_steps[1].get_data()
    np.testing.assert_array_equal(counts, np.histogram(results[1]["grad_ratio"], edges)[0])
    assert ax_ratio.get_xscale() == "log" and "median" in ratio_steps[0].get_label()
    assert fig.get_suptitle().startswith(f"Hypersphere-embedding diagnostics on {len(y)} test images; adversarial")


def test_cli_diagnostics_of_run_directories(tmp_path, capsys):
    from art_he.runs import save_run

    for head in ("plain", "he"):
        config = {"dataset": "synthetic", "model": "small-cnn", "head": head, "eps": 0.1,
                  "model_kwargs": {"width": 4, "hidden": 16}}
        save_run(tmp_path / head, tiny_model(head), config)
    out = tmp_path / "diagnostics.png"
    args = ["plot", "diagnostics", str(tmp_path / "plain"), str(tmp_path / "he"), "--n", "16", "--steps", "1",
            "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["plot", "diagnostics", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    one_line_error(capsys, "nowhere", "not an art-he run directory")
