import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from art_he import HypersphereHead, to_hypersphere
from art_he.heads import find_head, normalize_rows
from art_he.losses import (
    ARCCOS_DELTA,
    Objective,
    alp_pairing,
    angles,
    he_loss,
    margin_logits,
    margin_score,
    mhe_loss,
    scaled_logits,
    trades_kl,
)


def test_head_equals_hand_computation():
    torch.manual_seed(0)
    head = HypersphereHead(5, 3).double()
    z = torch.randn(4, 5, dtype=torch.float64)
    expected = torch.empty(4, 3, dtype=torch.float64)
    for i in range(4):
        for j in range(3):
            w = head.weight[j]
            expected[i, j] = (z[i] @ w) / (z[i].norm() * w.norm())
    assert torch.allclose(head(z), expected, atol=1e-12)
    assert head(z).abs().max() <= 1 + 1e-12


def test_head_ablations_and_no_bias():
    torch.manual_seed(0)
    z = torch.randn(4, 5, dtype=torch.float64)
    fn_only = HypersphereHead(5, 3, weight_norm=False).double()
    wn_only = HypersphereHead(5, 3, feature_norm=False).double()
    none = HypersphereHead(5, 3, feature_norm=False, weight_norm=False).double()
    w = fn_only.weight
    assert torch.allclose(fn_only(z), (z / z.norm(dim=1, keepdim=True)) @ w.T)
    w = wn_only.weight
    assert torch.allclose(wn_only(z), z @ (w / w.norm(dim=1, keepdim=True)).T)
    assert torch.allclose(none(z), z @ none.weight.T)
    assert [name for name, _ in HypersphereHead(5, 3).named_parameters()] == ["weight"]


def test_head_zero_features_finite_values_and_gradients():
    head = HypersphereHead(4, 3)
    z = torch.zeros(2, 4, requires_grad=True)
    out = head(z)
    assert torch.isfinite(out).all() and (out == 0).all()
    out.sum().backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(head.weight.grad).all()
    v = torch.zeros(3, 4, requires_grad=True)
    normalize_rows(v).sum().backward()
    assert torch.isfinite(v.grad).all()


def test_head_under_bf16_autocast_computes_fp32():
    head = HypersphereHead(8, 3)
    z = torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(z.bfloat16())
    assert out.dtype == torch.float32


@pytest.mark.parametrize("variant", ["he", "mhe"])
def test_gradcheck_head(variant):
    torch.manual_seed(0)
    head = HypersphereHead(6, 4, variant=variant).double()
    z = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    w = head.weight.detach().clone().requires_grad_(True)

    def forward(z, w):
        return torch.func.functional_call(head, {"weight": w}, (z,))

    assert torch.autograd.gradcheck(forward, (z, w))


def _cos(b=4, classes=5, seed=0):
    torch.manual_seed(seed)
    return (torch.rand(b, classes, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)


@pytest.mark.parametrize(
    "fn",
    [
        lambda c, y: he_loss(c, y, 15.0, 0.2),
        lambda c, y: mhe_loss(c, y, 15.0, 0.1),
        lambda c, y: margin_logits(c, y, 10.0, 0.3, "mhe").sum(),
        lambda c, y: trades_kl(c * 15, c.flip(0) * 15),
        lambda c, y: alp_pairing(c, c.flip(0) ** 2, "l2"),
        lambda c, y: alp_pairing(c, c.flip(0) ** 2, "mse"),
        lambda c, y: margin_score(c, y).sum(),
        lambda c, y: Objective(True, 15.0, 0.2, "he").attack_loss(c, y),
        lambda c, y: Objective(True, 15.0, 0.1, "mhe").train_loss(c, y),
    ],
)
def test_gradcheck_losses(fn):
    cos = _cos()
    y = torch.tensor([0, 1, 2, 4])
    assert torch.autograd.gradcheck(lambda c: fn(c, y), (cos,))


@pytest.mark.parametrize("variant", ["he", "mhe"])
def test_margin_shifts_exactly_the_target_logit(variant):
    cos = _cos().detach()
    y = torch.tensor([0, 1, 2, 4])
    with_margin = margin_logits(cos, y, 15.0, 0.2, variant)
    without = scaled_logits(cos, 15.0, variant)
    diff = without - with_margin
    expected = torch.zeros_like(diff)
    expected[torch.arange(4), y] = 15.0 * 0.2
    assert torch.allclose(diff, expected, atol=1e-12)


def test_he_loss_matches_log_softmax_by_hand():
    cos = _cos().detach()
    y = torch.tensor([0, 1, 2, 4])
    s, m = 15.0, 0.2
    manual = []
    for i in range(4):
        logits = s * cos[i].clone()
        logits[y[i]] -= s * m
        manual.append(-(logits[y[i]] - torch.logsumexp(logits, 0)))
    assert torch.allclose(he_loss(cos, y, s, m), torch.stack(manual).mean())
    theta = torch.arccos(cos)
    assert torch.allclose(mhe_loss(cos, y, s, 0.0), F.cross_entropy(-s * theta, y))


def test_losses_finite_at_cos_plus_minus_one():
    cos = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 2])
    for loss in (he_loss(cos, y), mhe_loss(cos, y), trades_kl(15 * cos, -15 * cos), margin_score(cos, y).sum()):
        (grad,) = torch.autograd.grad(loss, cos)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert torch.isfinite(angles(cos)).all() and angles(cos).max() < math.pi


def test_trades_kl_direction_and_reduction():
    nat = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    adv = torch.tensor([[0.0, 1.0, 0.0], [1.0, -1.0, 2.0]])
    p, q = nat.softmax(1), adv.softmax(1)
    expected = (p * (p.log() - q.log())).sum(1)
    assert torch.allclose(trades_kl(nat, adv, reduction="none"), expected)
    assert torch.allclose(trades_kl(nat, adv), expected.mean())
    assert not torch.allclose(trades_kl(adv, nat), expected.mean())


def test_alp_pairing_is_the_authors_mse_or_the_papers_mean_l2():
    a, b = torch.tensor([[3.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(alp_pairing(a, b, "l2"), torch.tensor(2.5))  # (5 + 0) / 2 rows
    assert torch.allclose(alp_pairing(a, b, "mse"), torch.tensor(25 / 4))  # (9 + 16 + 0 + 0) / 4 elements
    assert torch.equal(alp_pairing(a, b), alp_pairing(a, b, "mse"))
    with pytest.raises(ValueError, match="pairing"):
        alp_pairing(a, b, "l1")


def test_to_hypersphere_on_common_models():
    import torchvision

    from art_he.models import PreActResNet18, SmallCNN, WideResNet

    cases = [
        (torchvision.models.resnet18(num_classes=10), "fc", torch.randn(2, 3, 32, 32)),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)), "3", torch.randn(2, 3, 2, 2)),
        (SmallCNN(width=4), "linear", torch.rand(2, 1, 28, 28)),
        (PreActResNet18(), "linear", torch.rand(2, 3, 32, 32)),
        (WideResNet(10, 1), "fc", torch.rand(2, 3, 32, 32)),
    ]
    for model, attr, x in cases:
        to_hypersphere(model, scale=10.0, margin=0.3)
        head = find_head(model)
        assert head is not None and head.scale == 10.0 and head.margin == 0.3
        assert dict(model.named_modules())[attr] is head
        out = model.eval()(x)
        assert out.shape == (2, head.num_classes) and out.abs().max() <= 1 + 1e-6


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"scale": 0}, ValueError),
        ({"scale": -1.0}, ValueError),
        ({"scale": float("nan")}, ValueError),
        ({"margin": -0.1}, ValueError),
        ({"variant": "arcface"}, ValueError),
    ],
)
def test_head_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        HypersphereHead(4, 3, **kwargs)


def test_bad_models_and_features():
    with pytest.raises(ValueError, match="no nn.Linear"):
        to_hypersphere(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    with pytest.raises(TypeError):
        to_hypersphere("resnet")
    with pytest.raises(ValueError, match="already has"):
        to_hypersphere(to_hypersphere(nn.Sequential(nn.Linear(3, 2))))
    with pytest.raises(ValueError, match="shape"):
        HypersphereHead(4, 3)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="num_classes"):
        HypersphereHead(4, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("margin", [0.0, 0.1])
def test_mhe_logits_equal_the_textbook_formula_bitwise(dtype, margin):
    """The cheaper m-HE logits (hardtanh clamp, no negation) give exactly ``s * (-arccos(clamp(cos)) - m * onehot)``
    and exactly its gradient, also at and beyond +-1 and at the clamp bounds."""
    lo, hi = -1 + ARCCOS_DELTA, 1 - ARCCOS_DELTA
    edge = torch.tensor([1.0, -1.0, 0.0, lo, hi, 1.0000001, -1.0000001, 0.9999995, -0.9999995, 0.5])
    rest = torch.rand(290, generator=torch.Generator().manual_seed(2)) * 2.2 - 1.1
    cos = torch.cat([edge, rest]).to(dtype).view(30, 10)
    y = torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(0))
    g = torch.randn(30, 10, dtype=dtype, generator=torch.Generator().manual_seed(1))
    a, b = cos.clone().requires_grad_(True), cos.clone().requires_grad_(True)
    ours = margin_logits(a, y, 15.0, margin, "mhe")
    textbook = 15.0 * (-torch.arccos(b.clamp(lo, hi)) - margin * F.one_hot(y, 10).to(dtype))
    (ga,) = torch.autograd.grad(ours, a, g)
    (gb,) = torch.autograd.grad(textbook, b, g)
    assert torch.equal(ours, textbook) and torch.equal(ga, gb) and torch.isfinite(ga).all()
    if margin == 0:
        assert torch.equal(scaled_logits(cos, 15.0, "mhe"), textbook.detach())
