"""The captured training step (``capture="fx"``, the CPU stand-in of ``"cuda-graph"``) is bitwise the eager step:
every framework and head, the HE head's projection recorded even when an eager forward had just projected,
batches of another shape, validation between epochs, resume, the divergence watch; the step reads no tensor on
the host; combinations the capture does not support are one-line errors. The CUDA-graph path itself is tested
in ``tests/test_gpu.py``."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from art_he import HEPyTorchClassifier
from art_he.errors import TrainingDiverged, UserError
from art_he.models import build_model
from art_he.trainers import FRAMEWORKS
from art_he.trainers.capture import WARMUP

#: 160 images in batches of 64: two full batches and one of 32 per epoch. With validation after every epoch,
#: the full shape is recorded at the first batch of epoch 2, right after validation projected W (so the recording
#: must project by itself), and the 32-image shape at the end of epoch 3 (WARMUP = 2 eager steps per shape)
N, BATCH, EPOCHS = 160, 64, 3


def trainer_for(framework: str, head: str, capture: str, precision: str = "fp32", **kwargs):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head=head, width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0), device="cpu")
    options = {"eps": 0.1, "seed": 0, "verbose": False, "precision": precision, "capture": capture, **kwargs}
    if framework in ("pgd", "alp", "trades"):
        options["max_iter"] = 2
    return FRAMEWORKS[framework](classifier, **options)


def digest(model: torch.nn.Module) -> str:
    return hashlib.sha256(b"".join(v.detach().numpy().tobytes() for v in model.state_dict().values())).hexdigest()


def run(framework, head, capture, data, precision="fp32", **fit):
    x, y = data
    trainer = trainer_for(framework, head, capture, precision)
    history = trainer.fit(x[:N], y[:N], batch_size=BATCH, nb_epochs=EPOCHS, validation_data=(x[:64], y[:64]), **fit)
    return trainer, [{k: v for k, v in m.items() if k not in ("time_s", "images_per_s")} for m in history]


@pytest.mark.parametrize("framework, head, precision", [
    ("pgd", "he", "fp32"), ("pgd", "plain", "fp32"), ("pgd", "mhe", "fp32"), ("trades", "he", "fp32"),
    ("alp", "mhe", "fp32"), ("fast", "he", "fp32"), ("pgd", "he", "bf16"),
])
def test_the_captured_step_is_bitwise_the_eager_step(framework, head, precision, fmnist_train):
    eager, eager_history = run(framework, head, "off", fmnist_train, precision)
    captured, captured_history = run(framework, head, "fx", fmnist_train, precision)
    assert captured_history == eager_history
    assert digest(captured.model) == digest(eager.model)
    assert captured._captured is None  # the recordings are dropped when fit returns


def test_recordings_are_made_once_per_batch_shape_after_the_warm_up(fmnist_train, monkeypatch):
    from art_he.trainers import capture

    made = []
    original = capture._FxGraph.__init__
    monkeypatch.setattr(capture._FxGraph, "__init__", lambda self, owner, x, *a: (made.append(len(x)),
                                                                                   original(self, owner, x, *a))[1])
    run("pgd", "he", "fx", fmnist_train)
    assert made == [BATCH, N - 2 * BATCH] and WARMUP == 2


def test_a_captured_run_resumes_exactly(fmnist_train, tmp_path):
    x, y = fmnist_train[0][:N], fmnist_train[1][:N]
    straight = trainer_for("pgd", "he", "off")
    straight.fit(x, y, batch_size=BATCH, nb_epochs=3)
    first = trainer_for("pgd", "he", "fx")
    first.fit(x, y, batch_size=BATCH, nb_epochs=2, checkpoint_dir=tmp_path)
    resumed = trainer_for("pgd", "he", "fx")
    resumed.fit(x, y, batch_size=BATCH, nb_epochs=3, checkpoint_dir=tmp_path, resume=True)
    assert digest(resumed.model) == digest(straight.model)
    assert [m["loss"] for m in resumed.history] == [m["loss"] for m in straight.history]


def test_a_divergence_inside_a_replayed_step_stops_at_its_batch(fmnist_train):
    trainer = trainer_for("pgd", "he", "fx")
    step, calls = trainer.step, []

    def poisoned_step():  # the 4th update (a replay: batches 1-2 warm up, 3 is recorded) makes a weight infinite
        step()
        calls.append(1)
        if len(calls) == 4:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("inf")

    trainer.step = poisoned_step
    x, y = fmnist_train[0][:320], fmnist_train[1][:320]
    with pytest.raises(TrainingDiverged, match="epoch 1, batch 4: parameter features.0.weight is not finite"):
        trainer.fit(x, y, batch_size=BATCH, nb_epochs=1)


class HostReads(TorchDispatchMode):
    """Counts the operations that copy a tensor's value to the host (``.item()``, ``bool(t)``, ``.tolist()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("head", ["plain", "he", "mhe"])
def test_a_training_step_reads_no_tensor_on_the_host(framework, head, fmnist_train):
    trainer = trainer_for(framework, head, "off")
    x = torch.from_numpy(fmnist_train[0][:32])
    y = torch.from_numpy(fmnist_train[1][:32]).long()
    trainer.train_batch(x, y)  # the first step creates the momentum buffers
    with HostReads() as mode:
        stats = trainer.train_batch(x, y)
    assert mode.reads == [] and stats.shape == (4,)


@pytest.mark.parametrize("options, needle", [
    ({"capture": "graph"}, "unknown capture 'graph'"),
    ({"capture": "fx", "compile": "eager"}, "does not go with compile"),
    ({"capture": "fx", "precision": "fp16"}, "does not go with fp16"),
    ({"capture": "cuda-graph"}, "capture='cuda-graph' needs a CUDA device, the classifier is on cpu"),
])
def test_unsupported_captures_are_one_line_errors(options, needle):
    with pytest.raises(UserError, match=needle) as error:
        trainer_for("pgd", "he", **{"capture": "off", **options})
    assert "\n" not in str(error.value)


def test_free_at_refuses_a_capture():
    with pytest.raises(UserError, match="does not go with FreeATTrainer"):
        trainer_for("free", "he", "fx")


def test_art_he_train_takes_capture_and_device(fmnist_train):
    from art_he.config import TrainConfig
    from art_he.runs import train_run

    base = dict(subset=160, width=4, epochs=2, max_iter=1, batch_size=64, precision="fp32", device="cpu")
    _, eager = train_run(TrainConfig(**base), verbose=False)
    classifier, captured = train_run(TrainConfig(**base, capture="fx"), verbose=False)
    assert [m["loss"] for m in captured] == [m["loss"] for m in eager]
    assert classifier.device == torch.device("cpu") and np.isfinite(captured[-1]["loss"])
