"""SPSA and NES (art_he.attacks): real effect on real data (scikit-learn digits), eps/box, queries, errors."""

import numpy as np
import pytest
import torch
from art.attacks.attack import EvasionAttack
from sklearn.datasets import load_digits
from torch import nn

from art_he import HEPyTorchClassifier
from art_he.attacks import NES, SPSA
from art_he.losses import margin_score

EPS = 0.2


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="module")
def digits_classifier(digits):
    """An undefended MLP on the 8x8 digits (about 90 % test accuracy)."""
    x_train, y_train, _, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.eval()
    return HEPyTorchClassifier(model, None, (1, 8, 8), 10, clip_values=(0.0, 1.0), device_type="cpu")


def accuracy(classifier, x, y):
    return float((classifier.predict(x).argmax(1) == y).mean())


@pytest.mark.parametrize("cls", [SPSA, NES])
def test_attack_breaks_an_undefended_model_within_eps_and_box(cls, digits, digits_classifier):
    _, _, x, y = digits
    x, y = x[:60], y[:60]
    clean = accuracy(digits_classifier, x, y)
    assert clean > 0.8
    attack = cls(digits_classifier, eps=EPS, eps_step=0.02, max_iter=20, seed=0)
    assert isinstance(attack, EvasionAttack)
    x_adv = attack.generate(x, y)
    assert accuracy(digits_classifier, x_adv, y) <= 0.1
    assert np.abs(x_adv - x).max() <= EPS + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # the step trace agrees with the model: never-broken images are exactly the correctly classified ones
    still_correct = digits_classifier.predict(x_adv).argmax(1) == y
    assert np.array_equal(attack.first_success_ == -1, still_correct)
    assert attack.nb_queries_ == attack.queries_by_step_[-1] > 0


def test_box_is_respected_when_it_binds(digits, digits_classifier):
    _, _, x, y = digits
    clf = HEPyTorchClassifier(digits_classifier.model, None, (1, 8, 8), 10, clip_values=(0.1, 0.6), device_type="cpu")
    x = np.clip(x[:20], 0.1, 0.6)
    x_adv = NES(clf, eps=0.5, eps_step=0.1, max_iter=5, seed=1).generate(x, y[:20])
    assert x_adv.min() >= 0.1 - 1e-7 and x_adv.max() <= 0.6 + 1e-7
    assert np.abs(x_adv - x).max() <= 0.5 + 1e-6


def test_query_count_follows_the_formula(digits, digits_classifier):
    """Without early stopping: per image (2q) queries per step plus one check per step and one at the end."""
    _, _, x, y = digits
    q, steps, n = 16, 3, 5
    attack = SPSA(digits_classifier, eps=0.05, eps_step=0.01, max_iter=steps, nb_samples=q, early_stop=False, seed=0)
    attack.generate(x[:n], y[:n])
    assert attack.nb_queries_ == n * (steps * 2 * q + steps + 1)
    assert list(np.diff(attack.queries_by_step_)) == [n * (2 * q + 1)] * steps


def test_seed_makes_runs_reproducible(digits, digits_classifier):
    _, _, x, y = digits
    a = SPSA(digits_classifier, eps=0.1, eps_step=0.01, max_iter=3, seed=7).generate(x[:8], y[:8])
    b = SPSA(digits_classifier, eps=0.1, eps_step=0.01, max_iter=3, seed=7).generate(x[:8], y[:8])
    c = SPSA(digits_classifier, eps=0.1, eps_step=0.01, max_iter=3, seed=8).generate(x[:8], y[:8])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_directions_are_rademacher_and_gaussian():
    gen = torch.Generator().manual_seed(0)
    u = SPSA.directions(None, (4, 128, 64), gen, torch.device("cpu"))
    assert set(torch.unique(u).tolist()) == {-1.0, 1.0} and abs(float(u.mean())) < 0.02
    g = NES.directions(None, (4, 128, 64), gen, torch.device("cpu"))
    assert abs(float(g.mean())) < 0.02 and abs(float(g.std()) - 1) < 0.02 and len(torch.unique(g)) > 1000


@pytest.mark.parametrize("cls", [SPSA, NES])
def test_gradient_estimate_points_along_the_true_gradient(cls, digits, digits_classifier):
    """Eq. 23 with q = 128 on a 64-pixel input: the estimate correlates with autograd's gradient of J."""
    _, _, x, y = digits
    attack = cls(digits_classifier, eps=0.1, sigma=1e-3, seed=0)
    xt, yt = torch.from_numpy(x[:10]), torch.from_numpy(y[:10])
    est = attack.estimate_gradient(xt, yt, torch.Generator().manual_seed(0)).flatten(1)
    xg = xt.clone().requires_grad_(True)
    j = -margin_score(digits_classifier.model(xg), yt).sum()  # J = Z_y - max_{i != y} Z_i
    (true,) = torch.autograd.grad(j, xg)
    cos = nn.functional.cosine_similarity(est, true.flatten(1), dim=1)
    assert float(cos.mean()) > 0.6


@pytest.mark.parametrize("cls", [SPSA, NES])
def test_gradient_estimate_is_central_on_saturated_pixels(cls):
    """J linear (two classes: J = (w_0 - w_1) . x = g . x): each antithetic difference is exactly g . u_i, also on
    pixels at 0 or 1 (clipped probes would make it one-sided there), so the estimate is about g, not g / 2."""
    g = torch.tensor([1.0, -1.0, 2.0, -2.0, 1.5, -1.5, 0.5, -0.5])
    model = nn.Linear(8, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.stack([g, torch.zeros(8)]))
    clf = HEPyTorchClassifier(model, None, (8,), 2, clip_values=(0.0, 1.0), device_type="cpu")
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])  # every pixel saturated, half of them 0
    attack = cls(clf, sigma=0.05, nb_samples=4096)
    est = attack.estimate_gradient(x, torch.tensor([0]), torch.Generator().manual_seed(0))[0]
    u = attack.directions((1, 4096, 8), torch.Generator().manual_seed(0), torch.device("cpu"))[0]
    central = (u @ g) @ u / 4096  # 1/q sum_i (g . u_i) u_i
    assert torch.allclose(est, central, rtol=1e-3, atol=1e-3)
    assert torch.equal(est.sign(), g.sign()) and torch.allclose(est, g, atol=0.25)  # clipped probes: about g / 2


@pytest.mark.parametrize("seed", [3, None])
def test_generate_keeps_global_generators_and_attributes(seed, digits, digits_classifier):
    """The directions come from the attack's own generator (also without a seed); generate adds no attributes."""
    _, _, x, y = digits
    attack = NES(digits_classifier, eps=0.1, eps_step=0.02, max_iter=2, nb_samples=8, seed=seed)
    names = set(vars(attack))
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    attack.generate(x[:4], y[:4])
    assert set(vars(attack)) == names
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.get_rng_state(), torch_state)


def test_targeted_attack_reaches_the_target(digits, digits_classifier):
    _, _, x, y = digits
    target = (y[:20] + 1) % 10
    x_adv = SPSA(digits_classifier, eps=0.3, eps_step=0.03, max_iter=20, targeted=True, seed=0).generate(x[:20], target)
    assert float((digits_classifier.predict(x_adv).argmax(1) == target).mean()) >= 0.8


def test_numpy_predict_path_for_non_torch_estimators(digits):
    """Estimators without torch get their queries through predict (scikit-learn logistic regression)."""
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, x, y = digits
    model = LogisticRegression(max_iter=300).fit(x_train.reshape(len(x_train), -1), y_train)
    clf = ScikitlearnLogisticRegression(model, clip_values=(0.0, 1.0))
    x2 = x[:30].reshape(30, -1)
    x_adv = NES(clf, eps=EPS, eps_step=0.02, max_iter=15, seed=0).generate(x2, y[:30])
    assert float((clf.predict(x_adv).argmax(1) == y[:30]).mean()) <= 0.2
    assert np.abs(x_adv - x2).max() <= EPS + 1e-6


@pytest.mark.parametrize("kwargs, error", [
    ({"nb_samples": 0}, ValueError), ({"sigma": 0.0}, ValueError), ({"eps": -0.1}, ValueError),
    ({"max_iter": 1.5}, TypeError), ({"eps_step": 0}, ValueError), ({"targeted": "yes"}, TypeError),
])
def test_bad_parameters_are_rejected(kwargs, error, digits_classifier):
    with pytest.raises(error):
        SPSA(digits_classifier, **kwargs)


def test_bad_inputs_are_rejected(digits, digits_classifier):
    _, _, x, y = digits
    with pytest.raises(ValueError, match="target labels"):
        SPSA(digits_classifier, targeted=True).generate(x[:2])
    with pytest.raises(ValueError, match="shape"):
        SPSA(digits_classifier).generate(x[:2].reshape(2, 64), y[:2])
