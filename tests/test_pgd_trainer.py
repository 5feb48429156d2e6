import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.defences.trainer import Trainer

from art_he.models import build_model
from art_he.trainers import PGDATTrainer

from .conftest import accuracy, make_classifier

EPS = 0.1


def _pgd20_accuracy(classifier, x, y):
    np.random.seed(0)
    attack = ProjectedGradientDescent(classifier, eps=EPS, eps_step=EPS / 8, max_iter=20, verbose=False)
    return accuracy(classifier, attack.generate(x, y=y), y)


@pytest.fixture(scope="module")
def standard_and_he(fmnist_train, fmnist_test):
    """A standard-trained and a PGD-AT+HE-trained small CNN, same data, seed and epochs."""
    x, y = fmnist_train[0][:3000], fmnist_train[1][:3000]
    torch.manual_seed(0)
    standard = make_classifier(build_model("small-cnn", in_channels=1, head="plain", width=8))
    standard.fit(x, y, batch_size=64, nb_epochs=2, verbose=False)
    torch.manual_seed(0)
    he = make_classifier(build_model("small-cnn", in_channels=1, head="he", width=8))
    history = PGDATTrainer(he, eps=EPS, eps_step=0.025, max_iter=5, seed=0, precision="fp32", verbose=False).fit(
        x, y, batch_size=64, nb_epochs=2, validation_data=(fmnist_test[0][:100], fmnist_test[1][:100]))
    return standard, he, history


def test_pgd_at_he_is_far_more_robust_than_standard_training(standard_and_he, fmnist_test):
    standard, he, _ = standard_and_he
    x, y = fmnist_test[0][:300], fmnist_test[1][:300]
    assert accuracy(he, x, y) > 0.6
    robust_standard, robust_he = _pgd20_accuracy(standard, x, y), _pgd20_accuracy(he, x, y)
    assert robust_he > robust_standard + 0.25, (robust_he, robust_standard)


def test_history_has_progress_metrics_and_validation(standard_and_he):
    history = standard_and_he[2]
    assert [m["epoch"] for m in history] == [1, 2]
    for m in history:
        for key in ("loss", "clean_acc", "adv_acc", "images_per_s", "time_s", "lr", "val_clean_acc", "val_adv_acc"):
            assert key in m and np.isfinite(m[key])
        assert m["val_adv_acc"] <= m["val_clean_acc"]
    assert history[1]["loss"] < history[0]["loss"]


def test_is_an_art_trainer_and_keeps_art_parameter_names(fmnist_train):
    clf = make_classifier(build_model("small-cnn", in_channels=1, head="he", width=4))
    trainer = PGDATTrainer(clf, eps=0.1, eps_step=0.02, max_iter=3, num_random_init=0)
    assert isinstance(trainer, Trainer) and trainer.get_classifier() is clf
    assert (trainer.eps, trainer.eps_step, trainer.max_iter, trainer.num_random_init) == (0.1, 0.02, 3, 0)


def test_eval_mode_while_attacking_train_mode_for_update(fmnist_train):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    clf = make_classifier(model)
    seen = []
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.register_forward_hook(lambda mod, inp, out: seen.append((mod.training, torch.is_grad_enabled(),
                                                                inp[0].requires_grad)))
    PGDATTrainer(clf, eps=0.1, eps_step=0.05, max_iter=2, verbose=False, precision="fp32").fit(
        fmnist_train[0][:32], fmnist_train[1][:32], batch_size=32, nb_epochs=1)
    attack_passes = [s for s in seen if not s[0]]
    update_passes = [s for s in seen if s[0]]
    assert len(update_passes) == 1 and len(attack_passes) == 3  # 2 attack steps + 1 clean no-grad forward
    assert all(not training for training, _, _ in attack_passes)


@pytest.mark.parametrize("make_scheduler, steps", [
    (lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), 2),
    (lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=4), 4),  # per batch: 2 x 2
    (lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1 + e)), 2),
])
def test_any_torch_scheduler_works(make_scheduler, steps, fmnist_train):
    clf = make_classifier(build_model("small-cnn", in_channels=1, width=4))
    scheduler = make_scheduler(clf.optimizer)
    start_lr = clf.optimizer.param_groups[0]["lr"]
    history = PGDATTrainer(clf, eps=0.1, eps_step=0.05, max_iter=1, verbose=False).fit(
        fmnist_train[0][:128], fmnist_train[1][:128], batch_size=64, nb_epochs=2, scheduler=scheduler)
    lrs = [start_lr, *(m["lr"] for m in history), clf.optimizer.param_groups[0]["lr"]]
    assert scheduler.last_epoch == steps  # stepped once per epoch; OneCycle once per batch
    assert len(set(lrs)) > 1  # the LR changed within the run


def test_dataloader_path_with_augmentation(fmnist_train):
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.from_numpy(fmnist_train[0][:256])
    y = torch.from_numpy(fmnist_train[1][:256])

    class Flip(TensorDataset):
        def __getitem__(self, i):
            xi, yi = super().__getitem__(i)
            return (xi.flip(-1) if torch.rand(()) < 0.5 else xi), yi

    loader = DataLoader(Flip(x, y), batch_size=64, shuffle=True)
    clf = make_classifier(build_model("small-cnn", in_channels=1, head="mhe", width=4))
    history = PGDATTrainer(clf, eps=0.1, eps_step=0.05, max_iter=2, verbose=False).fit_loader(loader, nb_epochs=1)
    assert history[0]["images_per_s"] > 0 and np.isfinite(history[0]["loss"])


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps"),
    ({"max_iter": 0}, "max_iter"),
    ({"eps_step": -1.0}, "eps_step"),
    ({"num_random_init": -1}, "num_random_init"),
    ({"precision": "fp8"}, "precision"),
])
def test_trainer_rejects_bad_settings(kwargs, match):
    clf = make_classifier(build_model("small-cnn", in_channels=1, width=4))
    with pytest.raises(ValueError, match=match):
        PGDATTrainer(clf, **kwargs)


def test_trainer_rejects_bad_data():
    trainer = PGDATTrainer(make_classifier(build_model("small-cnn", in_channels=1, width=4)), verbose=False)
    x = np.random.rand(8, 1, 28, 28).astype(np.float32)
    y = np.arange(8) % 10
    cases = [
        ((np.random.rand(8, 28, 28).astype(np.float32), y), "shape"),
        ((x, y[:5]), "differ in length"),
        ((x, y + 5), "labels must be in"),
        ((np.where(np.arange(8)[:, None, None, None] == 3, np.nan, x), y), "NaN"),
        ((x, -y - 1), "labels must be in"),
    ]
    for (xb, yb), match in cases:
        with pytest.raises(ValueError, match=match):
            trainer.fit(xb, yb, nb_epochs=1)
    with pytest.raises(ValueError, match="nb_epochs"):
        trainer.fit(x, y, nb_epochs=0)
    with pytest.raises(TypeError):
        trainer.fit(list(x), y)
    with pytest.raises(TypeError, match="PyTorchClassifier"):
        PGDATTrainer("not a classifier")
