"""The loss each framework minimises and the objective its inner attack maximises, against hand computations
on a fixed batch (TRADES KL direction and reduction, ALP pairing, where the HE margin goes), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.config import TrainConfig
from art_he.models import build_model
from art_he.trainers import FRAMEWORKS, ALPTrainer, FastATTrainer, FreeATTrainer, PGDATTrainer, TRADESTrainer

HEADS = ("plain", "he", "mhe")


def make_trainer(cls, head: str, **kwargs):
    torch.manual_seed(0)
    model = build_model("small-cnn-nobn", in_channels=1, head=head, width=4, hidden=16).double()
    if head == "plain":  # untrained logits are nearly constant; spread them so that the terms differ clearly
        with torch.no_grad():
            model.linear.weight.mul_(30)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    return cls(classifier, **{"precision": "fp32", "seed": 0, "verbose": False, **kwargs})


@pytest.fixture(scope="module")
def batch(fmnist_train):
    x, y = fmnist_train
    x = torch.as_tensor(x[:16], dtype=torch.float64)
    y = torch.as_tensor(y[:16])
    gen = torch.Generator().manual_seed(1)
    x_adv = (x + 0.3 * (2 * torch.rand(x.shape, generator=gen, dtype=torch.float64) - 1)).clamp(0, 1)
    return x, x_adv, y


# -- hand formulas, written out independently of art_he.losses --------------------------------------------------


def head_params(trainer):
    o = trainer.objective
    return o.hypersphere, o.scale, o.margin, o.variant


def hand_logits(trainer, out: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Plain: the logits; HE: s*(cos - m*1_y); m-HE: s*(-arccos(cos) - m*1_y); margin only when y is given."""
    hyper, s, m, variant = head_params(trainer)
    if not hyper:
        return out
    base = -torch.arccos(out.clamp(-1 + 1e-6, 1 - 1e-6)) if variant == "mhe" else out
    logits = s * base.clone()
    if y is not None:
        for i, label in enumerate(y.tolist()):
            logits[i, label] -= s * m
    return logits


def hand_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    total = 0.0
    for i, label in enumerate(y.tolist()):
        row = logits[i]
        total = total + (torch.log(torch.exp(row - row.max()).sum()) + row.max() - row[label])
    return total / len(y)


def hand_kl(nat_logits: torch.Tensor, adv_logits: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_i sum_j p_ij log(p_ij / q_ij), p = softmax(nat), q = softmax(adv)."""
    p, q = torch.softmax(nat_logits, 1), torch.softmax(adv_logits, 1)
    return (p * (p.log() - q.log())).sum() / len(p)


@torch.no_grad()
def outputs(trainer, x):
    trainer.model.train()
    return trainer.model(x)


# -- training losses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_trades_loss_is_margin_ce_on_natural_plus_beta_kl_nat_to_adv(batch, head):
    x, x_adv, y = batch
    trainer = make_trainer(TRADESTrainer, head, beta=6.0)
    trainer.model.train()
    loss, out_nat, out_adv = trainer.compute_loss(x, x_adv, y)
    o_nat, o_adv = outputs(trainer, x), outputs(trainer, x_adv)
    ce_nat = hand_ce(hand_logits(trainer, o_nat, y), y)
    kl = hand_kl(hand_logits(trainer, o_nat, None), hand_logits(trainer, o_adv, None))
    assert abs(float((loss - (ce_nat + 6.0 * kl)).detach())) < 1e-10

    def far(value):  # a candidate formula that the loss does not follow (the match above is 1e-10)
        return abs(float((loss - value).detach())) > 1e-7

    # KL direction: KL(nat || adv), not KL(adv || nat); batchmean reduction, not sum
    assert far(ce_nat + 6.0 * hand_kl(hand_logits(trainer, o_adv, None), hand_logits(trainer, o_nat, None)))
    assert far(ce_nat + 6.0 * kl * len(y))
    if head != "plain":  # the margin is on the natural CE only, not inside the KL, and it is there
        assert far(ce_nat + 6.0 * hand_kl(hand_logits(trainer, o_nat, y), hand_logits(trainer, o_adv, y)))
        assert far(hand_ce(hand_logits(trainer, o_nat, None), y) + 6.0 * kl)
    assert torch.equal(out_nat, o_nat) and torch.equal(out_adv, o_adv)


def _hand_pairing(nat, adv, kind: str) -> float:
    """The pairing term by hand: per-sample L2 distances averaged over rows, or squares averaged over entries."""
    if kind == "l2":
        return sum(math.sqrt(float(((a - b) ** 2).sum())) for a, b in zip(nat, adv)) / len(nat)
    return float(sum(float(((a - b) ** 2).sum()) for a, b in zip(nat, adv))) / nat.numel()


@pytest.mark.parametrize("pairing", ["mse", "l2"])
@pytest.mark.parametrize("head", HEADS)
def test_alp_loss_is_weighted_margin_ce_plus_pairing_of_raw_outputs(batch, head, pairing):
    x, x_adv, y = batch
    trainer = make_trainer(ALPTrainer, head, alpha=0.3, pairing_weight=0.7, pairing=pairing)
    trainer.model.train()
    loss, out_nat, out_adv = trainer.compute_loss(x, x_adv, y)
    o_nat, o_adv = outputs(trainer, x), outputs(trainer, x_adv)
    ce_nat = hand_ce(hand_logits(trainer, o_nat, y), y)
    ce_adv = hand_ce(hand_logits(trainer, o_adv, y), y)
    pairing_term = _hand_pairing(o_nat, o_adv, pairing)
    assert loss.item() == pytest.approx(float(0.3 * ce_nat + 0.7 * ce_adv) + 0.7 * pairing_term, abs=1e-10)
    other = _hand_pairing(o_nat, o_adv, "l2" if pairing == "mse" else "mse")
    assert loss.item() != pytest.approx(float(0.3 * ce_nat + 0.7 * ce_adv) + 0.7 * other, abs=1e-6)
    if head != "plain":  # pairing on cosines (W~^T(z~ - z~*)), not on the scaled logits
        scaled = _hand_pairing(hand_logits(trainer, o_nat, None), hand_logits(trainer, o_adv, None), pairing)
        assert loss.item() != pytest.approx(float(0.3 * ce_nat + 0.7 * ce_adv) + 0.7 * scaled, abs=1e-6)
    assert torch.allclose(out_nat, o_nat) and torch.allclose(out_adv, o_adv)


@pytest.mark.parametrize("cls", [PGDATTrainer, FastATTrainer])
@pytest.mark.parametrize("head", HEADS)
def test_pgd_and_fast_train_on_margin_ce_of_the_adversarial_batch(batch, head, cls):
    x, x_adv, y = batch
    trainer = make_trainer(cls, head)
    trainer.model.train()
    loss, clean, out_adv = trainer.compute_loss(x, x_adv, y)
    assert clean is None
    assert torch.allclose(loss, hand_ce(hand_logits(trainer, outputs(trainer, x_adv), y), y), atol=1e-10)


@pytest.mark.parametrize("head", HEADS)
def test_free_replay_minimises_margin_ce_at_x_plus_carried_delta(batch, head):
    x, _, y = batch
    trainer = make_trainer(FreeATTrainer, head, eps=0.1, replays=1)
    expected = hand_ce(hand_logits(trainer, outputs(trainer, x), y), y)  # delta starts at 0
    stats = trainer.train_batch(x, y)
    assert stats[0].item() / len(y) == pytest.approx(expected.item(), abs=1e-10)


# -- inner attacks -----------------------------------------------------------------------------------------------


def one_step(trainer, x, target, loss_fn, start, eps, step):
    """x1 = Proj_{x, eps}(x0 + step * sign(grad loss(f(x0)))), the model in eval mode."""
    trainer.model.eval()
    x0 = start.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(trainer.model(x0), target), x0)
    return torch.min(torch.max(x0.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)


@pytest.mark.parametrize("head", HEADS)
def test_trades_attack_ascends_kl_from_a_gaussian_start(batch, head):
    x, _, y = batch
    trainer = make_trainer(TRADESTrainer, head, eps=0.1, eps_step=0.03, max_iter=1)
    state = trainer.generator.get_state()
    x_adv = trainer.perturb(x, y)
    noise = torch.randn(x.shape, generator=torch.Generator().set_state(state), dtype=x.dtype)
    start = torch.min(torch.max(x + 0.001 * noise, x - 0.1), x + 0.1).clamp(0, 1)
    trainer.model.eval()
    with torch.no_grad():
        nat = hand_logits(trainer, trainer.model(x), None)
    expected = one_step(trainer, x, nat, lambda out, t: hand_kl(t, hand_logits(trainer, out, None)), start, 0.1, 0.03)
    assert torch.allclose(x_adv, expected, atol=1e-12)
    ce_step = one_step(trainer, x, y, lambda out, t: hand_ce(hand_logits(trainer, out, None), t), start, 0.1, 0.03)
    assert not torch.allclose(x_adv, ce_step)  # ART's TRADES would take this one
    assert (x_adv - x).abs().max() <= 0.1 + 1e-12


@pytest.mark.parametrize("cls", [PGDATTrainer, ALPTrainer])
@pytest.mark.parametrize("head", HEADS)
def test_pgd_and_alp_attack_ascends_margin_free_ce(batch, head, cls):
    x, _, y = batch
    trainer = make_trainer(cls, head, eps=0.1, eps_step=0.03, max_iter=1, num_random_init=0)
    x_adv = trainer.perturb(x, y)
    expected = one_step(trainer, x, y, lambda out, t: hand_ce(hand_logits(trainer, out, None), t), x, 0.1, 0.03)
    assert torch.allclose(x_adv, expected, atol=1e-12)


@pytest.mark.parametrize("head", HEADS)
def test_fast_attack_is_one_fgsm_step_of_1_25_eps_from_a_uniform_start(batch, head):
    x, _, y = batch
    trainer = make_trainer(FastATTrainer, head, eps=0.1)
    assert trainer.eps_step == pytest.approx(0.125)
    state = trainer.generator.get_state()
    x_adv = trainer.perturb(x, y)
    noise = torch.rand(x.shape, generator=torch.Generator().set_state(state), dtype=x.dtype)
    start = (x + 0.1 * (2 * noise - 1)).clamp(0, 1)
    expected = one_step(trainer, x, y, lambda out, t: hand_ce(hand_logits(trainer, out, None), t), start, 0.1, 0.125)
    assert torch.allclose(x_adv, expected, atol=1e-12)


# -- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, error",
    [
        (TRADESTrainer, {"beta": -1.0}, ValueError),
        (TRADESTrainer, {"beta": "6"}, TypeError),
        (ALPTrainer, {"alpha": 1.5}, ValueError),
        (ALPTrainer, {"alpha": -0.1}, ValueError),
        (ALPTrainer, {"pairing_weight": -0.5}, ValueError),
        (FreeATTrainer, {"replays": 0}, ValueError),
        (FreeATTrainer, {"replays": 2.5}, TypeError),
        (FreeATTrainer, {"eps": -0.1}, ValueError),
        (FastATTrainer, {"eps_step": float("nan")}, ValueError),
        (FastATTrainer, {"guard_drop": 1.5}, ValueError),
        (FastATTrainer, {"guard_every": 0}, ValueError),
        (PGDATTrainer, {"max_iter": 0}, ValueError),
        (PGDATTrainer, {"num_random_init": 2}, ValueError),
        (PGDATTrainer, {"precision": "fp8"}, ValueError),
        (PGDATTrainer, {"compile": 1}, TypeError),
        (PGDATTrainer, {"seed": -1}, ValueError),
    ],
)
def test_bad_options_raise(cls, kwargs, error):
    with pytest.raises(error):
        make_trainer(cls, "he", **kwargs)


def test_bad_fit_arguments_raise(fmnist_train, tmp_path):
    x, y = fmnist_train
    trainer = make_trainer(PGDATTrainer, "plain", max_iter=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(x[:8], y[:8], batch_size=4, nb_epochs=1, resume=True)
    with pytest.raises(TypeError, match="unexpected"):
        trainer.fit(x[:8], y[:8], batch_size=4, nb_epochs=1, epochs=3)
    with pytest.raises(ValueError, match="nb_epochs"):
        trainer.fit(x[:8], y[:8], batch_size=4, nb_epochs=0)
    with pytest.raises(ValueError, match="scheduler_step"):
        trainer.fit(x[:8], y[:8], batch_size=4, nb_epochs=1, scheduler_step="sometimes")
    with pytest.raises(ValueError):
        trainer.fit(np.full_like(x[:8], np.nan), y[:8], batch_size=4, nb_epochs=1)
    other = make_trainer(ALPTrainer, "plain", max_iter=1)
    other.fit(x[:8], y[:8], batch_size=4, nb_epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="ALPTrainer"):
        trainer.fit(x[:8], y[:8], batch_size=4, nb_epochs=2, checkpoint_dir=tmp_path, resume=True)


def test_registry_names_and_cli_keyword_names():
    import inspect

    from art.defences.trainer import Trainer

    from art_he.trainers import ATTrainer

    assert FRAMEWORKS == {"pgd": PGDATTrainer, "alp": ALPTrainer, "trades": TRADESTrainer, "free": FreeATTrainer,
                          "fast": FastATTrainer}
    assert {"precision", "channels_last", "compile", "sync_batchnorm", "seed"} <= set(
        inspect.signature(ATTrainer.__init__).parameters)
    own = {"pgd": {"eps", "eps_step", "max_iter", "num_random_init"},
           "alp": {"eps", "eps_step", "max_iter", "num_random_init", "alpha", "pairing_weight"},
           "trades": {"eps", "eps_step", "max_iter", "num_random_init", "beta"},
           "free": {"eps", "eps_step", "replays"}, "fast": {"eps", "eps_step"}}
    for name, cls in FRAMEWORKS.items():
        assert issubclass(cls, Trainer) and issubclass(cls, ATTrainer)
        assert own[name] | {"precision", "compile", "seed"} <= set(cls.option_defaults()), name
    assert "beta" not in PGDATTrainer.option_defaults() and "replays" not in TRADESTrainer.option_defaults()


def test_config_options_reach_the_trainer_base_class():
    """--precision/--compile/--no-channels-last/--seed live on ATTrainer, below the frameworks' **kwargs."""
    cfg = TrainConfig(framework="trades", precision="fp32", channels_last=False, compile=True, seed=3, beta=2.0,
                      eps=0.1).resolved()
    kwargs = cfg.trainer_kwargs()
    assert kwargs["precision"] == "fp32" and kwargs["channels_last"] is False and kwargs["compile"] is True
    assert kwargs["seed"] == 3 and kwargs["beta"] == 2.0 and kwargs["eps"] == 0.1 and "alpha" not in kwargs
    with pytest.raises(ValueError, match="--alpha does not apply to --framework trades"):
        TrainConfig(framework="trades", alpha=0.7).resolved()
    trainer = make_trainer(TRADESTrainer, "plain", **{**kwargs, "compile": False, "verbose": False})
    assert trainer.channels_last is False and trainer.beta == 2.0 and trainer.eps == 0.1
