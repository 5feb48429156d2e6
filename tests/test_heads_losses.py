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
    fn_only = HypersphereHead(5, 3, weight_norm="none").double()
    none = HypersphereHead(5, 3, feature_norm=False, weight_norm="none").double()
    w = fn_only.weight
    assert torch.allclose(fn_only(z), (z / z.norm(dim=1, keepdim=True)) @ w.T)
    for mode in ("project", "differentiable"):
        wn_only = HypersphereHead(5, 3, feature_norm=False, weight_norm=mode).double()
        w = wn_only.weight.detach().clone()
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
def test_gradcheck_head_differentiable_wn(variant):
    torch.manual_seed(0)
    head = HypersphereHead(6, 4, variant=variant, weight_norm="differentiable").double()
    z = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    w = head.weight.detach().clone().requires_grad_(True)

    def forward(z, w):
        return torch.func.functional_call(head, {"weight": w}, (z,))

    assert torch.autograd.gradcheck(forward, (z, w))


def test_projected_wn_keeps_unit_rows_and_has_a_plain_linear_gradient():
    """``"project"``: W is on the sphere after the first forward; the gradient w.r.t. W is a plain linear layer's
    (``g^T FN(z)``), with no component removed along W; the features' gradient is the full FN gradient."""
    torch.manual_seed(0)
    head = HypersphereHead(6, 4, weight_norm="project").double()
    assert not torch.allclose(head.weight.norm(dim=1), torch.ones(4, dtype=torch.float64))
    z = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 4, dtype=torch.float64)
    (head(z) * g).sum().backward()
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-15)
    zn = z.detach() / z.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(head.weight.grad, g.T @ zn, rtol=0, atol=1e-13)
    assert (head.weight.grad * head.weight.detach()).sum(dim=1).abs().max() > 1e-3  # not orthogonal to W
    w = head.weight.detach().clone()
    assert torch.autograd.gradcheck(lambda z: normalize_rows(z) @ w.T, (z.detach().requires_grad_(True),))


def _authors_linear(weight: torch.Tensor) -> nn.Linear:
    """The authors' head: ``nn.Linear(bias=False)`` whose ``weight.data`` their ``forward`` overwrites."""
    fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False).double()
    fc.weight.data = weight.clone()
    return fc


def test_projected_wn_is_the_authors_optimiser():
    """Ten SGD steps (momentum, weight decay) of our ``"project"`` head equal the authors' code, which sets
    ``fc.weight.data = F.normalize(fc.weight)`` before every ``fc(F.normalize(z))``, in float64; the
    differentiable WN is another optimiser (its ||W|| grows)."""
    torch.manual_seed(0)
    ours = HypersphereHead(8, 5, weight_norm="project").double()
    theirs = _authors_linear(ours.weight.detach())
    diff = HypersphereHead(8, 5, weight_norm="differentiable").double()
    diff.weight.data = ours.weight.detach().clone()
    opts = [torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4) for m in (ours, theirs, diff)]
    y = torch.randint(0, 5, (16,))
    for _ in range(10):
        z = torch.randn(16, 8, dtype=torch.float64)
        for model, opt in zip((ours, theirs, diff), opts):
            if model is theirs:
                theirs.weight.data = F.normalize(theirs.weight, p=2, dim=1)
                for _ in range(2):  # the attack's forwards: re-projecting a projected W changes nothing
                    theirs.weight.data = F.normalize(theirs.weight, p=2, dim=1)
                cos = theirs(F.normalize(z, p=2, dim=1))
            else:
                for _ in range(2):
                    model(z)
                cos = model(z)
            opt.zero_grad()
            he_loss(cos, y, 15.0, 0.2).backward()
            opt.step()
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=1e-12)
    assert diff.weight.norm() > 1.2 * ours.weight.norm()


def test_projected_wn_projects_once_per_change():
    """Forwards without a step between them leave W bit-for-bit alone (no drift from re-normalising); a step,
    ``load_state_dict`` or a move to another dtype is followed by a projection at the next forward."""
    torch.manual_seed(0)
    head = HypersphereHead(6, 4)
    assert head.weight_norm == "project"
    z = torch.randn(3, 6)
    head(z)
    w = head.weight.detach().clone()
    version = head.weight._version
    for _ in range(3):
        head(z)
    assert torch.equal(head.weight, w) and head.weight._version == version
    with torch.no_grad():
        head.weight.mul_(3.0)
    head(z)
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(4), rtol=0, atol=1e-6)
    head.load_state_dict({"weight": 2 * w})
    with torch.inference_mode():
        head(z)
    torch.testing.assert_close(head.weight, w, rtol=0, atol=1e-6)
    head.double()
    head(z.double())
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-15)


def test_weight_norm_bools_are_deprecated_aliases():
    with pytest.warns(DeprecationWarning, match="'differentiable'"):
        assert HypersphereHead(4, 3, weight_norm=True).weight_norm == "differentiable"
    with pytest.warns(DeprecationWarning, match="'none'"):
        assert HypersphereHead(4, 3, weight_norm=False).weight_norm == "none"
    with pytest.raises(ValueError, match="weight_norm"):
        HypersphereHead(4, 3, weight_norm="cosface")


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection_is_idempotent_bit_for_bit(dtype):
    """Projecting projected rows changes nothing (a resumed run must continue exactly); normalising twice would."""
    torch.manual_seed(0)
    head = HypersphereHead(640, 50).to(dtype)
    head.project_()
    once = head.weight.detach().clone()
    assert not torch.equal(normalize_rows(once), once)  # what a plain re-normalisation would do
    head.project_()
    assert torch.equal(head.weight, once)
