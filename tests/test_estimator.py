import numpy as np
import pytest
import torch
from art.attacks.evasion import (
    CarliniLInfMethod,
    DeepFool,
    FastGradientMethod,
    MomentumIterativeMethod,
    ProjectedGradientDescent,
    SquareAttack,
    ZooAttack,
)
from art.defences.trainer import AdversarialTrainer
from art.estimators.classification import PyTorchClassifier

from art_he import HEAttackLoss, HEPyTorchClassifier
from art_he.estimator import classifier_view
from art_he.losses import Objective
from art_he.models import build_model

from .conftest import accuracy, make_classifier

EPS = 0.1
ATTACKS = {
    "fgsm": lambda c: FastGradientMethod(c, eps=EPS),
    "pgd": lambda c: ProjectedGradientDescent(c, eps=EPS, eps_step=0.025, max_iter=10, verbose=False),
    "mim": lambda c: MomentumIterativeMethod(c, eps=EPS, eps_step=0.025, max_iter=10, verbose=False),
    "deepfool": lambda c: DeepFool(c, max_iter=20, epsilon=0.02, nb_grads=10, verbose=False),
    "cw_linf": lambda c: CarliniLInfMethod(c, confidence=0.0, max_iter=5, learning_rate=0.01, verbose=False),
    "zoo": lambda c: ZooAttack(c, max_iter=5, nb_parallel=64, binary_search_steps=1, use_resize=False,
                               use_importance=False, verbose=False),
    "square": lambda c: SquareAttack(c, eps=EPS, max_iter=50, nb_restarts=1, verbose=False),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_art_attack_runs_and_does_not_raise_accuracy(name, trained_he_classifier, fmnist_test):
    x, y = fmnist_test
    # the fixture is trained: 0.74-0.76 on these 100 images over seeds 0-2 and 1-2 threads (a check on the 8
    # images C&W attacks would measure in steps of 1/8: 0.625-0.75 here, 0.5 on a CPU with native bf16)
    assert accuracy(trained_he_classifier, x[:100], y[:100]) > 0.6
    n = {"zoo": 12, "cw_linf": 8, "deepfool": 40}.get(name, 100)
    x, y = x[:n], y[:n]
    clean = accuracy(trained_he_classifier, x, y)
    x_adv = ATTACKS[name](trained_he_classifier).generate(x, y=y if name not in ("deepfool",) else None)
    assert x_adv.shape == x.shape and np.isfinite(x_adv).all()
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    robust = accuracy(trained_he_classifier, x_adv, y)
    assert robust <= clean
    if name in ("fgsm", "pgd", "mim", "deepfool"):
        assert robust < clean  # a standard-trained model is not robust at eps = 0.1
    if name in ("fgsm", "pgd", "mim", "square"):
        assert np.abs(x_adv - x).max() <= EPS + 1e-6


@pytest.mark.parametrize("kind", ["ce", "raw", "adaptive", "margin"])
def test_attack_loss_values(kind):
    torch.manual_seed(0)
    cos = torch.rand(6, 10) * 2 - 1
    y = torch.randint(0, 10, (6,))
    obj = Objective(True, 15.0, 0.2, "he")
    loss = HEAttackLoss(obj, kind)(cos, y)
    expected = {
        "ce": torch.nn.functional.cross_entropy(15 * cos, y),
        "raw": torch.nn.functional.cross_entropy(cos, y),
        "adaptive": obj.train_loss(cos, y),
    }
    if kind == "margin":
        other = cos.clone()
        other[torch.arange(6), y] = -2
        expected[kind] = (other.max(1).values - cos[torch.arange(6), y]).mean()
    assert torch.allclose(loss, expected[kind])


def test_loss_gradient_uses_selected_attack_loss(trained_he_classifier, fmnist_test):
    x, y = fmnist_test[0][:8], np.eye(10)[fmnist_test[1][:8]]  # ART's loss_gradient takes one-hot labels
    grads = {k: trained_he_classifier.with_attack_loss(k).loss_gradient(x, y) for k in ("ce", "raw", "margin")}
    assert all(np.isfinite(g).all() for g in grads.values())
    # CE(s*cos) and CE(cos) differ in their input gradients: the scale matters
    assert not np.allclose(grads["ce"], grads["raw"])


def test_predictions_are_cosines(trained_he_classifier, fmnist_test):
    out = trained_he_classifier.predict(fmnist_test[0][:16])
    assert out.shape == (16, 10) and np.abs(out).max() <= 1 + 1e-5


def test_clone_for_refitting_keeps_head_and_loss(trained_he_classifier):
    clf = trained_he_classifier.with_attack_loss("margin")
    clone = clf.clone_for_refitting()
    assert isinstance(clone, HEPyTorchClassifier)
    assert clone.attack_loss == "margin" and clone.objective == clf.objective
    assert clone.model is not clf.model
    assert not torch.equal(clone.model.linear.weight, clf.model.linear.weight)  # weights were reset


def test_fit_trains_on_margin_loss_and_art_adversarial_trainer_accepts_it(fmnist_train):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    clf = make_classifier(model)
    x, y = fmnist_train[0][:256], fmnist_train[1][:256]
    before = accuracy(clf, x, y)
    trainer = AdversarialTrainer(clf, FastGradientMethod(clf, eps=0.05), ratio=0.5)
    trainer.fit(x, y, nb_epochs=2, batch_size=64)
    assert accuracy(clf, x, y) > before
    assert clf.attack_loss == "ce"  # fit swapped the training loss in and back out


def test_plain_model_behaves_like_pytorch_classifier(fmnist_test):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="plain", width=4).eval()
    ours = make_classifier(model)
    art = PyTorchClassifier(model, torch.nn.CrossEntropyLoss(), (1, 28, 28), 10, clip_values=(0, 1),
                            device_type="cpu")
    x, y = fmnist_test[0][:8], np.eye(10)[fmnist_test[1][:8]]
    assert np.allclose(ours.predict(x), art.predict(x), atol=1e-6)
    assert np.allclose(ours.loss_gradient(x, y), art.loss_gradient(x, y), atol=1e-6)


def test_estimator_rejects_bad_input(trained_he_classifier):
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    with pytest.raises(ValueError, match="nb_classes"):
        HEPyTorchClassifier(model, None, (1, 28, 28), 5)
    with pytest.raises(ValueError, match="input_shape"):
        HEPyTorchClassifier(model)
    with pytest.raises(ValueError, match="attack_loss"):
        HEPyTorchClassifier(model, None, (1, 28, 28), 10, attack_loss="hinge")
    with pytest.raises(TypeError):
        HEPyTorchClassifier("model", None, (1, 28, 28), 10)
    with pytest.raises(ValueError, match="shape"):
        trained_he_classifier.predict(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        trained_he_classifier.predict(np.full((2, 1, 28, 28), np.nan, np.float32))
    with pytest.raises(ValueError, match="labels must be in"):
        trained_he_classifier.fit(np.zeros((2, 1, 28, 28), np.float32), np.array([0, 10]))
    with pytest.raises(ValueError, match="differ in length"):
        trained_he_classifier.fit(np.zeros((2, 1, 28, 28), np.float32), np.array([0]))


def test_every_view_keeps_the_defences_of_the_classifier(trained_he_classifier, fmnist_test):
    """A view attacks the model that is evaluated: preprocessing and postprocessing defences come along."""
    from art.defences.postprocessor import Rounded
    from art.defences.preprocessor import SpatialSmoothing

    from art_he.evaluation.views import FeatureTap, feature_classifier, logits_view, view

    x = fmnist_test[0][:100]
    # ART's SpatialSmoothingPyTorch needs kornia, which ART does not install; the numpy defence is as good here
    smoothing = SpatialSmoothing(window_size=5, channels_first=True, clip_values=(0.0, 1.0))
    rounding = Rounded(decimals=3)
    defended = classifier_view(trained_he_classifier, attack_loss="ce")
    defended.set_params(preprocessing_defences=[smoothing], postprocessing_defences=[rounding])
    outputs = defended.predict(x)
    predicted = outputs.argmax(1)
    assert (predicted != trained_he_classifier.predict(x).argmax(1)).any()  # the defence changes predictions
    # rounding cosines to 3 decimals can tie two classes; the logits view rounds s * cos, so it may break the tie
    tied = (outputs == outputs.max(1, keepdims=True)).sum(1) > 1
    with FeatureTap(defended.model) as tap:
        views = [defended.with_attack_loss("margin"), view(defended, "raw"), logits_view(defended),
                 feature_classifier(defended, tap)]
        for v in views:
            assert v.preprocessing_defences == [smoothing] and v.postprocessing_defences == [rounding]
            assert v.clip_values is not None and np.array_equal(v.clip_values, defended.clip_values)
            assert ((v.predict(x).argmax(1) == predicted) | tied).all(), type(v).__name__
