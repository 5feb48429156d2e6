"""The evaluation suites end to end on small trained Fashion-MNIST models, and their parts."""

import csv
import json
import logging

import numpy as np
import pytest
import torch
from art.attacks.evasion import FastGradientMethod
from torch import nn

import art_he.evaluation.attacks as attacks_module
import art_he.evaluation.catalog as catalog_module
from art_he import HEPyTorchClassifier
from art_he.evaluation import (
    Report,
    Row,
    as_torch_module,
    build_attack,
    corruption_table,
    evaluate,
    logits_view,
    paper_table,
    parse_attack,
    run_autoattack,
    run_checks,
)
from art_he.evaluation.sanity import OK, WARN
from art_he.evaluation.views import FeatureTap, feature_classifier
from art_he.heads import HypersphereHead
from art_he.models import build_model
from art_he.trainers import PGDATTrainer

EPS = 0.1


def _trained(head: str, seed: int, x, y) -> HEPyTorchClassifier:
    torch.manual_seed(seed)
    model = build_model("small-cnn", in_channels=1, head=head, width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    clf = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0), device_type="cpu")
    trainer = PGDATTrainer(clf, eps=EPS, eps_step=0.04, max_iter=2, seed=seed, precision="fp32", verbose=False)
    trainer.fit(x, y, batch_size=64, nb_epochs=2)
    model.eval()
    return clf


@pytest.fixture(scope="module")
def fmnist():
    from art_he.data import load_dataset

    x, y = load_dataset("fashion-mnist", train=True)
    xt, yt = load_dataset("fashion-mnist", train=False)
    return x[:2000], y[:2000], xt[:64], yt[:64]


@pytest.fixture(scope="module")
def he_clf(fmnist):
    return _trained("he", 0, *fmnist[:2])


@pytest.fixture(scope="module")
def plain_clf(fmnist):
    return _trained("plain", 1, *fmnist[:2])


def _check_files(report: Report, tmp_path):
    js, cs = report.to_json(tmp_path / "r.json"), report.to_csv(tmp_path / "r.csv")
    data = json.loads(js.read_text())
    assert data["suite"] == report.suite and len(data["rows"]) == len(report.rows)
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["time_s"] >= 0 for r in data["rows"])
    assert {c["name"] for c in data["sanity"]} == {c.name for c in report.checks} and len(report.checks) == 5
    with cs.open() as f:
        lines = list(csv.DictReader(f))
    assert [line["attack"] for line in lines] == [r.attack for r in report.rows]
    assert all(isinstance(json.loads(line["settings"]), dict) for line in lines)
    back = Report.from_json(js)
    assert [r.accuracy for r in back.rows] == [r.accuracy for r in report.rows]
    md = report.to_markdown()
    assert "| Attack | Accuracy (%)" in md and "Sanity checks:" in md
    return data


def test_quick_suite_end_to_end(he_clf, fmnist, tmp_path):
    _, _, x, y = fmnist
    report = evaluate(he_clf, x, y, suite="quick", n=24, eps=EPS, eps_step=0.03, max_steps=4, name="he")
    _check_files(report, tmp_path)
    keys = [r.attack for r in report.rows]
    assert keys[:5] == ["clean", "fgsm", "pgd20", "cw20", "adaptive20"]
    assert [r.eps for r in report.rows if r.kind == "sweep"] == pytest.approx([0.05, 0.1, 0.2])
    clean = report.clean_accuracy
    assert clean > 0.3
    assert report.row("pgd20").details["views"] == ["ce", "raw"] and report.row("pgd20").label.startswith("PGD-4")
    assert report.row("pgd20").settings["requested_steps"] == 20
    assert all(r.accuracy <= clean for r in report.rows if r.kind != "clean")
    assert report.row("pgd20").accuracy < clean  # the attack does something
    assert report.checks[0].status == OK and report.checks[4].status == OK


@pytest.mark.parametrize("suite, kwargs, expected", [
    ("paper", {"n": 12, "max_steps": 2}, ["pgd500", "mim20", "deepfool", "feature100", "fab", "autoattack",
                                          "adaptive500"]),
    ("blackbox", {"n": 6, "max_steps": 2}, ["zoo", "square1000", "spsa20", "spsa80", "nes50"]),
    ("transfer", {"n": 16, "max_steps": 3}, ["transfer-pgd20", "transfer-mim20"]),
    ("corruptions", {"n": 10, "corruptions": "gaussian_noise,glass_blur,fog", "severities": "1,5"},
     ["gaussian_noise@1", "glass_blur@5", "fog@5", "fog", "mca"]),
])
def test_each_suite_runs_end_to_end(suite, kwargs, expected, he_clf, plain_clf, fmnist, tmp_path):
    _, _, x, y = fmnist
    extra = {"substitute": plain_clf} if suite == "transfer" else {}
    eps = None if suite == "corruptions" else EPS
    report = evaluate(he_clf, x, y, suite=suite, eps=eps, dataset="fashion-mnist", data_dir=tmp_path / "data",
                      **kwargs, **extra)
    data = _check_files(report, tmp_path)
    keys = {r["attack"] for r in data["rows"]}
    assert set(expected) <= keys
    if suite == "corruptions":
        cells = [r.accuracy for r in report.rows if r.kind == "corruption"]
        assert len(cells) == 6 and report.mean_corruption_accuracy == pytest.approx(np.mean(cells))
        assert (tmp_path / "data" / "Fashion-MNIST-C" / "fog.npy").is_file()
        assert "| S | Gauss | Glass | Fog |" in report.to_markdown()
    else:
        assert report.checks[0].status == OK  # robust <= clean
        assert report.checks[4].status == OK  # within eps and box


def test_fgsm_row_is_the_per_sample_worst_case_of_scaled_and_raw(he_clf, fmnist):
    """FGSM is deterministic: the row must equal 'correct under CE(s cos) AND correct under CE(cos)'."""
    _, _, x, y = fmnist
    onehot = np.eye(10, dtype=np.float32)[y]
    correct = {}
    for kind in ("ce", "raw"):
        xa = FastGradientMethod(he_clf.with_attack_loss(kind), eps=EPS, eps_step=EPS).generate(x, onehot)
        correct[kind] = he_clf.predict(xa).argmax(1) == y
    row = evaluate(he_clf, x, y, attacks="fgsm", eps=EPS, sweep=()).row("fgsm")
    assert row.accuracy == pytest.approx(np.mean(correct["ce"] & correct["raw"]))
    assert row.accuracy <= min(correct["ce"].mean(), correct["raw"].mean())


def test_attack_settings_reach_art_as_given(plain_clf, fmnist, monkeypatch):
    _, _, x, y = fmnist
    seen: list[tuple[str, dict]] = []

    def recording(cls):
        class Recording(cls):
            def __init__(self, *args, **kwargs):
                seen.append((cls.__name__, kwargs))
                super().__init__(*args, **kwargs)
        return Recording

    for name in ("ProjectedGradientDescent", "MomentumIterativeMethod", "FastGradientMethod", "SPSA"):
        monkeypatch.setattr(catalog_module, name, recording(getattr(catalog_module, name)))
    calls = []
    original = HEPyTorchClassifier.loss_gradient
    monkeypatch.setattr(HEPyTorchClassifier, "loss_gradient",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    evaluate(plain_clf, x[:8], y[:8], attacks="pgd7", eps=0.05, eps_step=0.007, restarts=2, sweep=(),
             batch_size=8)
    assert len(calls) == 7 * 2  # 7 steps x 2 random starts, one batch, one view (plain head)
    evaluate(plain_clf, x[:8], y[:8], attacks="mim5,fgsm,cw3,spsa4", eps=0.05, eps_step=0.007, restarts=3,
             sweep=(), batch_size=8)
    by_name = {}
    for name, kwargs in seen:
        by_name.setdefault(name, []).append(kwargs)
    pgd = by_name["ProjectedGradientDescent"]
    assert pgd[0]["max_iter"] == 7 and pgd[0]["num_random_init"] == 2
    assert pgd[0]["eps"] == 0.05 and pgd[0]["eps_step"] == 0.007 and pgd[0]["norm"] == np.inf
    assert pgd[1]["max_iter"] == 3 and pgd[1]["num_random_init"] == 3  # cw3: PGD on the margin
    mim = by_name["MomentumIterativeMethod"][0]
    assert (mim["max_iter"], mim["eps"], mim["eps_step"], mim["decay"]) == (5, 0.05, 0.007, 1.0)
    fgsm = by_name["FastGradientMethod"][0]
    assert (fgsm["eps"], fgsm["eps_step"], fgsm["num_random_init"]) == (0.05, 0.05, 0)
    spsa = by_name["SPSA"][0]
    assert (spsa["max_iter"], spsa["eps"], spsa["eps_step"], spsa["nb_samples"], spsa["sigma"]) == \
        (4, 0.05, 0.007, 128, 1e-3)


def test_build_attack_for_every_family(he_clf):
    ctx = attacks_module.Context(batch_size=16)
    for name, attrs in [("deepfool", {"max_iter": 100, "epsilon": 0.02}), ("cw-art", {"max_iter": 10}),
                        ("zoo", {"max_iter": 77, "nb_parallel": 128, "variable_h": 1e-4}),  # 19,968 queries
                        ("square300", {"max_iter": 300, "eps": 0.1, "p_init": 0.8}),
                        ("nes9", {"max_iter": 9, "nb_samples": 128, "sigma": 1e-3})]:
        attack = build_attack(parse_attack(name, eps=0.1, eps_step=0.01), he_clf, ctx)
        for key, value in attrs.items():
            assert getattr(attack, key) == value, (name, key)
    with FeatureTap(he_clf.model) as tap:
        attack = build_attack(parse_attack("feature30", eps=0.1, eps_step=0.01), feature_classifier(he_clf, tap), ctx)
        assert (attack.max_iter, attack.delta, attack.step_size, attack.layer) == (30, 0.1, 0.01, ("features",))


def test_zoo_stays_within_its_query_budget(he_clf, fmnist, monkeypatch):
    """ART's ZooAttack takes no budget: the catalog passes it as iterations; count the rows it predicts."""
    _, _, x, y = fmnist
    spec = parse_attack("zoo3", eps=EPS, eps_step=EPS)
    budget = spec.option("max_queries")
    assert budget == 2 * 128 * 3
    clf = logits_view(he_clf)
    rows = []
    original = clf.predict
    monkeypatch.setattr(clf, "predict", lambda x, *a, **k: rows.append(len(x)) or original(x, *a, **k))
    attack = build_attack(spec, clf, attacks_module.Context())
    assert attack.max_iter == 2  # 2 x (2 x 128 + 1) + 2 <= 768 < 3 x 257 + 2
    attack.generate(x[:3], np.eye(10, dtype=np.float32)[y[:3]])
    assert 0 < sum(rows) <= 3 * budget
    with pytest.raises(ValueError, match="ZOO iteration"):
        build_attack(parse_attack("zoo1", eps=EPS, eps_step=EPS), clf, attacks_module.Context())


def _rng_states() -> tuple:
    return np.random.get_state()[1].copy(), torch.get_rng_state()


def _same_states(a: tuple, b: tuple) -> bool:
    return np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_attacks_leave_the_global_generators_alone_and_stay_reproducible(he_clf, fmnist):
    """ART's random starts (PGD, Square, ZOO, the feature attack) and pyautoattack draw from the global generators:
    they are seeded per attack and restored; a run does not depend on what was drawn before it."""
    _, _, x, y = fmnist
    ctx = attacks_module.Context(batch_size=16, seed=3)
    for name in ("pgd3", "square5", "zoo", "feature3", "spsa2", "aa-apgd-ce"):
        spec = parse_attack(name, eps=EPS, eps_step=0.03, max_steps=1 if name == "zoo" else 3)  # ZOO: 4 s a step
        np.random.rand(), torch.rand(1)  # whatever the caller drew before
        before = _rng_states()
        first = attacks_module.run_attack(spec, he_clf, x[:6], y[:6], ctx)
        assert _same_states(before, _rng_states()), name
        np.random.rand(), torch.rand(1)
        again = attacks_module.run_attack(spec, he_clf, x[:6], y[:6], ctx)
        assert np.array_equal(first.x_adv, again.x_adv), name


def test_feature_attack_matches_directions_on_an_he_head():
    """HE predicts from z / ||z||: scaling the features leaves the matched features unchanged (a plain head: not)."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8))
    x = np.random.default_rng(0).random((4, 1, 4, 4), dtype=np.float32)
    for head, normalized in ((HypersphereHead(8, 3), True), (nn.Linear(8, 3), False)):
        feats = []
        for factor in (1.0, 3.0):
            model = nn.Sequential(body, Scale(factor), head)
            clf = HEPyTorchClassifier(model, None, (1, 4, 4), 3, clip_values=(0.0, 1.0), device_type="cpu")
            with FeatureTap(model) as tap:
                feats.append(feature_classifier(clf, tap).get_activations(x, "features", framework=False))
            assert np.allclose(clf.predict(x), model(torch.from_numpy(x)).detach().numpy())  # head input unchanged
        assert np.allclose(feats[0], feats[1], atol=1e-6) == normalized
        assert np.allclose(np.linalg.norm(feats[1], axis=1), 1.0, atol=1e-5) == normalized


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, z):
        return self.factor * z


def test_corruption_table_from_a_real_corruption_report(he_clf, fmnist, tmp_path):
    _, _, x, y = fmnist
    report = evaluate(he_clf, x, y, suite="corruptions", n=8, corruptions="gaussian_noise,fog", severities="1",
                      name="HE")
    again = Report.from_json(report.to_json(tmp_path / "r.json"))
    table = corruption_table([report, again])
    assert "| Defense | mCA | Gauss | Fog |" in table
    fog, mca = report.accuracy("fog"), report.mean_corruption_accuracy
    assert table.count(f"| HE | {100 * mca:.2f} | {100 * report.accuracy('gaussian_noise'):.2f} | "
                       f"{100 * fog:.2f} |") == 2


def test_bim_from_the_catalog_lowers_accuracy_within_eps(he_clf, fmnist):
    _, _, x, y = fmnist
    report = evaluate(he_clf, x, y, attacks="bim10", eps=EPS, eps_step=0.02, sweep=())
    row = report.row("bim10")
    assert row.label == "BIM-10" and row.kind == "white-box" and row.details["views"] == ["ce", "raw"]
    assert row.settings == {"family": "bim", "eps": EPS, "steps": 10, "eps_step": 0.02}
    assert row.accuracy < report.clean_accuracy - 0.05  # measured: 0.64 -> 0.50 (9 of 64 images broken)
    assert row.details["max_perturbation"] <= EPS + 1e-6 and row.details["in_box"]
    attack = build_attack(parse_attack("bim20", eps=EPS, eps_step=0.01), he_clf, attacks_module.Context())
    assert (type(attack).__name__, attack.max_iter, attack.num_random_init) == ("BasicIterativeMethod", 20, 0)


def test_spsa_rows_at_several_steps_come_from_one_run(plain_clf, fmnist, monkeypatch):
    _, _, x, y = fmnist
    runs = []
    original = catalog_module.SPSA.generate
    monkeypatch.setattr(catalog_module.SPSA, "generate",
                        lambda self, *a, **k: runs.append(1) or original(self, *a, **k))
    report = evaluate(plain_clf, x[:10], y[:10], attacks="spsa2,spsa5", eps=0.3, eps_step=0.05, sweep=())
    assert len(runs) == 1
    short, long = report.row("spsa2"), report.row("spsa5")
    assert long.accuracy <= short.accuracy and short.details["queries"] < long.details["queries"]
    assert short.details["read_from"] == long.label


def test_adaptive_attack_on_a_plain_head_is_pgd_and_runs_once(plain_clf, fmnist):
    _, _, x, y = fmnist
    report = evaluate(plain_clf, x[:16], y[:16], attacks="pgd5,adaptive5", eps=EPS, sweep=())
    pgd, adaptive = report.row("pgd5"), report.row("adaptive5")
    assert adaptive.accuracy == pgd.accuracy and adaptive.details["same_as"] == "PGD-5" and adaptive.time_s == 0


class Quantized(nn.Module):
    """Gradient masking by construction: inputs are rounded to 4 levels (zero gradient almost everywhere)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


def test_sanity_checks_fire_on_a_gradient_masking_model(plain_clf, fmnist):
    _, _, x, y = fmnist
    masked = HEPyTorchClassifier(Quantized(plain_clf.model), None, (1, 28, 28), 10, clip_values=(0.0, 1.0),
                                 device_type="cpu")
    report = evaluate(masked, x[:32], y[:32], attacks="pgd10,square300", eps=0.2, sweep=())
    check = {c.name: c for c in report.checks}["black-box accuracy >= white-box accuracy"]
    assert report.row("square300").accuracy < report.row("pgd10").accuracy
    assert check.status == WARN and "gradient masking" in check.message
    assert report.warnings and "[WARN]" in report.to_markdown()
    report = evaluate(masked, x[:8], y[:8], attacks="aa-apgd-t", eps=0.2, sweep=(), max_steps=3)
    check = {c.name: c for c in report.checks}["AutoAttack checks"]
    assert check.status == WARN and "zero gradient" in check.message


def _row(attack, kind, acc, eps=0.1, **details):
    return Row(attack, attack.upper(), kind, acc, 10, 0.0, eps, {}, details)


def test_check_functions_catch_each_problem():
    rows = [_row("clean", "clean", 0.5), _row("pgd", "white-box", 0.6, max_perturbation=0.1, in_box=True),
            _row("s1", "sweep", 0.4, eps=0.05), _row("s2", "sweep", 0.45, eps=0.1),
            _row("bad", "white-box", 0.2, max_perturbation=0.3, in_box=True)]
    checks = {c.name: c for c in run_checks(rows, 0.5)}
    assert checks["robust accuracy <= clean accuracy"].status == WARN
    assert checks["accuracy non-increasing in eps"].status == WARN
    assert checks["perturbations within eps and the box"].status == WARN
    assert checks["black-box accuracy >= white-box accuracy"].status == "skipped"
    good = [_row("clean", "clean", 0.9), _row("pgd", "white-box", 0.5), _row("spsa", "black-box", 0.6),
            _row("s1", "sweep", 0.6, eps=0.05), _row("s2", "sweep", 0.5, eps=0.1)]
    assert all(c.status in (OK, "skipped") for c in run_checks(good, 0.9))


def test_autoattack_runner_reports_parts_and_flags(he_clf, fmnist):
    _, _, x, y = fmnist
    before = _rng_states()
    result = run_autoattack(he_clf, x[:16], y[:16], eps=EPS, attacks=("apgd-ce", "apgd-t"), n_iter=5)
    assert _same_states(before, _rng_states())  # pyautoattack reseeds torch: restored
    clean = he_clf.predict(x[:16]).argmax(1) == y[:16]
    assert result.correct.mean() <= clean.mean() and set(result.per_attack) >= {"apgd-ce", "apgd-t"}
    assert set(result.broken_by) == {"logits", "raw apgd-ce"}
    assert np.abs(result.x_adv - x[:16]).max() <= EPS + 1e-5
    with pytest.raises(ValueError, match="unknown AutoAttack parts"):
        run_autoattack(he_clf, x[:4], y[:4], eps=EPS, attacks=("pgd",))


def test_autoattack_part_by_part_gives_the_one_run(he_clf, fmnist):
    _, _, x, y = fmnist
    x, y = x[:16], y[:16]
    kwargs = dict(eps=EPS, n_iter=4, seed=0)
    whole = run_autoattack(he_clf, x, y, attacks=("apgd-ce", "apgd-t"), **kwargs)
    robust = np.ones(len(x), bool)
    for part, logits in (("apgd-ce", True), ("apgd-t", True), ("apgd-ce", False)):  # the raw-cosine pass last
        idx = np.flatnonzero(robust)
        result = run_autoattack(he_clf, x[idx], y[idx], attacks=(part,), raw_apgd=False, logits=logits, **kwargs)
        robust[idx] = result.correct
        assert set(result.broken_by) == {"logits" if logits else "raw"}
    assert robust.tolist() == whole.correct.tolist()


def test_autoattack_accuracies_come_from_its_results_and_the_logger_level_is_left_alone(plain_clf, fmnist):
    _, _, x, y = fmnist
    logger, seen = logging.getLogger("auto-attack"), []
    handler = logging.Handler()
    handler.emit = seen.append
    old = logger.level
    logger.setLevel(logging.ERROR)  # the user silenced pyautoattack: nothing it logs below ERROR reaches them
    logger.addHandler(handler)
    try:
        result = run_autoattack(plain_clf, x[:16], y[:16], eps=EPS, attacks=("apgd-ce", "apgd-t"), n_iter=3)
        assert logger.level == logging.ERROR and not seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert list(result.per_attack) == ["apgd-ce", "apgd-t"]
    assert result.per_attack["apgd-ce"] >= result.per_attack["apgd-t"] == pytest.approx(result.correct.mean())


def test_views_give_scaled_logits_features_and_a_torch_module(he_clf, fmnist):
    _, _, x, _ = fmnist
    cos = he_clf.predict(x[:8])
    assert np.allclose(logits_view(he_clf).predict(x[:8]), 15.0 * cos, atol=1e-4)
    module = as_torch_module(he_clf, logits=False)
    with torch.no_grad():
        assert np.allclose(module(torch.from_numpy(x[:8])).numpy(), cos, atol=1e-5)
    with FeatureTap(he_clf.model) as tap:
        feats = feature_classifier(he_clf, tap).get_activations(x[:8], "features", framework=False)
        assert feats.shape == (8, he_clf.model.linear.in_features)
    assert not he_clf.model.linear._forward_pre_hooks  # the hook is gone after the context


def test_paper_table_puts_runs_in_rows():
    a = Report("PGD-AT", "quick", [_row("clean", "clean", 0.8), _row("pgd20", "white-box", 0.5)])
    b = Report("PGD-AT+HE", "quick", [_row("clean", "clean", 0.79), _row("pgd20", "white-box", 0.55)])
    table = paper_table([a, b], title="Table 2")
    assert "| Defense | CLEAN | PGD20 |" in table and "| PGD-AT+HE | 79.00 | 55.00 |" in table
    assert "†" not in table  # one view each: nothing to say


def test_paper_table_marks_the_cells_that_are_a_worst_case_of_several_views():
    plain = Report("PGD-AT", "quick", [_row("clean", "clean", 0.8),
                                       _row("pgd20", "white-box", 0.5, broken_by={"ce": 5})])
    he = Report("PGD-AT+HE", "quick", [_row("clean", "clean", 0.79),
                                       _row("pgd20", "white-box", 0.55, broken_by={"ce": 3, "raw": 1})])
    table = paper_table([plain, he])
    assert "| PGD-AT | 80.00 | 50.00 |" in table and "| PGD-AT+HE | 79.00 | 55.00 †2 |" in table
    assert "†k: the worst case of k attack views" in table and "raw: cross-entropy on the raw cosines" in table


@pytest.mark.parametrize("kwargs, error, match", [
    ({"suite": "nope", "eps": EPS}, ValueError, "unknown suite"),
    ({"attacks": "pgd20,bogus", "eps": EPS}, ValueError, "unknown attack"),
    ({"n": 0, "eps": EPS}, ValueError, "n must be >= 1"),
    ({"suite": "quick"}, ValueError, "needs eps"),
    ({"suite": "transfer", "eps": EPS}, ValueError, "substitute"),
    ({"suite": "corruptions", "corruptions": "rain"}, ValueError, "unknown corruptions"),
    ({"suite": "corruptions", "severities": "0,6"}, ValueError, "severities"),
    ({"suite": "corruptions", "dataset": "cifar10"}, ValueError, "CIFAR-10-C/labels.npy"),
    ({"eps": -1.0}, ValueError, "eps"),
])
def test_bad_input_is_a_clear_error(kwargs, error, match, he_clf, fmnist, tmp_path):
    _, _, x, y = fmnist
    with pytest.raises(error, match=match):
        evaluate(he_clf, x[:4], y[:4], data_dir=tmp_path, **kwargs)


def test_non_classifiers_are_a_type_error(fmnist):
    _, _, x, y = fmnist
    with pytest.raises(TypeError, match="PyTorchClassifier"):
        evaluate(object(), x, y, eps=EPS)


def test_views_per_attack_family_and_head():
    from art_he.losses import Objective

    he, mhe, plain = Objective(True, 15.0, 0.2, "he"), Objective(True, 15.0, 0.1, "mhe"), Objective()
    spec = lambda name: parse_attack(name, eps=0.1, eps_step=0.01)  # noqa: E731
    for name in ("fgsm", "pgd20", "mim20"):
        assert spec(name).views(he) == spec(name).views(mhe) == ("ce", "raw")
        assert spec(name).views(plain) == ("ce",)
    assert spec("adaptive20").views(he) == ("adaptive",) and spec("adaptive20").views(plain) == ("ce",)
    assert spec("cw-art").views(he) == ("logits", "raw") and spec("cw20").views(he) == ("margin",)
    assert spec("autoattack").views(he) == ("logits", "raw") and spec("spsa20").views(he) == ("raw",)


def test_checks_find_the_rows_a_report_shows():
    blackbox = [_row("clean", "clean", 0.9), _row("spsa20", "black-box", 0.6), _row("pgd20@1eps", "sweep", 0.5)]
    check = {c.name: c for c in run_checks(blackbox, 0.9)}["black-box accuracy >= white-box accuracy"]
    assert check.status == OK and "1 black-box" in check.message  # the sweep's PGD row at the same eps
    corrupted = [_row("clean", "clean", 0.9), _row("fog@1", "corruption", 0.95), _row("mca", "corruption-mean", 0.7)]
    check = run_checks(corrupted, 0.9)[0]
    assert check.status == OK and "MCA" in check.message  # the mean over corruptions, not one easy set
    assert run_checks([*corrupted[:2], _row("mca", "corruption-mean", 0.95)], 0.9)[0].status == WARN
    assert run_checks(corrupted[:1], 0.9)[0].message == "no attack rows"
    assert run_checks(corrupted[1:], None)[0].message == "no clean row"


def test_an_attack_list_replaces_the_suite_and_its_sweep(he_clf, fmnist):
    _, _, x, y = fmnist
    report = evaluate(he_clf, x[:8], y[:8], suite="quick", attacks="fgsm", eps=EPS)
    assert [r.attack for r in report.rows] == ["clean", "fgsm"]


def test_the_notes_column_has_a_legend():
    worst = Report("he", "quick", [_row("clean", "clean", 0.9), _row("pgd20", "white-box", 0.5,
                                                                     broken_by={"ce": 3, "raw": 1})])
    text = worst.to_markdown()
    assert "worst case of ce (+3), raw (+1)" in text and "\nNotes: " in text
    assert "raw: cross-entropy on the raw cosines" in text
    assert "Notes:" not in Report("plain", "quick", [_row("clean", "clean", 0.9)]).to_markdown()
