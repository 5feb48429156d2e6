"""What only a CUDA GPU can show: bf16 autocast and channels_last on CUDA, the CUDA-graph step against the eager
step, NCCL with one process, exact resume on CUDA, and every device string of ``load_run`` and the classifier.

Every test here is marked ``gpu`` and skipped, with the reason, where CUDA is absent; ``pytest -m gpu`` runs only
them. Bitwise comparisons run with deterministic algorithms (cuDNN's deterministic convolutions, cuBLAS with the
fixed workspace ``tests/conftest.py`` sets before CUDA starts); comparisons across different kernels (channels_last
against NCHW, compiled against eager) use a tolerance.
"""

from __future__ import annotations

import hashlib
import socket
import warnings

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.devices import DEVICE_ENV, parse_device
from art_he.errors import UserError
from art_he.models import build_model
from art_he.trainers import FRAMEWORKS, distributed

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU (torch.cuda.is_available() is False)")]
N, BATCH = 160, 64


@pytest.fixture
def deterministic():
    """Deterministic CUDA kernels for the duration of a test (``warn_only``: torch flags nll_loss although its
    one-dimensional reduction, the only one used here, does not depend on the order of atomics)."""
    previous, benchmark = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation.*")
        yield
    torch.use_deterministic_algorithms(previous)
    torch.backends.cudnn.benchmark = benchmark


def trainer_for(framework="pgd", head="he", device="cuda", **options):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head=head, width=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0), device=device)
    options = {"eps": 0.1, "seed": 0, "verbose": False, "precision": "fp32", **options}
    if framework in ("pgd", "alp", "trades"):
        options.setdefault("max_iter", 3)
    return FRAMEWORKS[framework](classifier, **options)


def digest(model: torch.nn.Module) -> str:
    return hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in model.state_dict().values())).hexdigest()


def fit(trainer, data, epochs=3, **kwargs):
    x, y = data[0][:N], data[1][:N]
    return trainer.fit(x, y, batch_size=BATCH, nb_epochs=epochs, validation_data=(x[:64], y[:64]), **kwargs)


def losses(history):
    return [(m["loss"], m["adv_acc"], m["val_adv_acc"]) for m in history]


def test_bf16_autocast_on_cuda(fmnist_train):
    trainer = trainer_for(precision="bf16")
    assert trainer.device.type == "cuda" and trainer.precision == "bf16"
    if torch.cuda.is_bf16_supported():
        assert trainer_for(precision="auto").precision == "bf16"
    x = torch.rand(4, 1, 28, 28, device=trainer.device)
    with trainer.autocast():
        features = trainer.model.features[0](x)
        cosines = trainer.forward(x)
    assert features.dtype == torch.bfloat16 and cosines.dtype == torch.float32  # the HE head computes in float32
    history = fit(trainer, fmnist_train, epochs=2)
    assert np.isfinite(history[-1]["loss"]) and history[-1]["val_adv_acc"] > 0


def test_channels_last_on_cuda_trains_as_nchw_does(fmnist_train, deterministic):
    last, first = trainer_for(channels_last=True), trainer_for(channels_last=False)
    conv = last.model.features[0].weight
    assert conv.is_cuda and conv.is_contiguous(memory_format=torch.channels_last)
    a, b = fit(last, fmnist_train, epochs=1), fit(first, fmnist_train, epochs=1)
    assert a[-1]["loss"] == pytest.approx(b[-1]["loss"], rel=1e-3)


@pytest.mark.parametrize("framework, head, precision", [("pgd", "he", "fp32"), ("pgd", "mhe", "bf16"),
                                                        ("trades", "plain", "fp32"), ("fast", "he", "bf16")])
@pytest.mark.parametrize("capture", ["cuda-graph", "fx"])
def test_the_captured_step_is_bitwise_the_eager_step_on_cuda(framework, head, precision, capture, fmnist_train,
                                                             deterministic):
    eager = trainer_for(framework, head, precision=precision)
    captured = trainer_for(framework, head, precision=precision, capture=capture)
    assert losses(fit(captured, fmnist_train)) == losses(fit(eager, fmnist_train))
    assert digest(captured.model) == digest(eager.model)


def test_the_compiled_model_trains_as_the_eager_one(fmnist_train):
    compiled, eager = trainer_for(compile=True), trainer_for()
    a, b = fit(compiled, fmnist_train, epochs=1), fit(eager, fmnist_train, epochs=1)
    assert a[-1]["loss"] == pytest.approx(b[-1]["loss"], rel=1e-3)


def test_nccl_with_one_process(fmnist_train, deterministic):
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alone = trainer_for()
    fit(alone, fmnist_train, epochs=1)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1,
                            device_id=torch.device("cuda", torch.cuda.current_device()))
    try:
        assert dist.get_backend() == "nccl"
        total = torch.ones(1, device="cuda")
        dist.all_reduce(total)
        assert total.item() == 1.0
        ctx = distributed.init_distributed("cuda")
        assert not ctx.active and ctx.device == parse_device("cuda")
        grouped = trainer_for()
        assert not grouped.dist.active  # one process: no DDP wrapper, the same training
        fit(grouped, fmnist_train, epochs=1)
        assert digest(grouped.model) == digest(alone.model)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("capture", ["off", "cuda-graph"])
def test_exact_resume_on_cuda(capture, fmnist_train, tmp_path, deterministic):
    straight = trainer_for(capture=capture)
    fit(straight, fmnist_train, epochs=3)
    fit(trainer_for(capture=capture), fmnist_train, epochs=2, checkpoint_dir=tmp_path)
    resumed = trainer_for(capture=capture)
    fit(resumed, fmnist_train, epochs=3, checkpoint_dir=tmp_path, resume=True)
    assert losses(resumed.history) == losses(straight.history)
    assert digest(resumed.model) == digest(straight.model)


def device_strings() -> list:
    last = max(torch.cuda.device_count() - 1, 0)
    return ["cuda", "gpu", "cuda:0", "gpu:0", "CUDA:0", torch.device("cuda", 0), f"cuda:{last}", "auto", None]


@pytest.mark.parametrize("name", device_strings(), ids=str)
def test_load_run_on_every_device_string(name, run_dir, monkeypatch):
    from art_he.runs import load_run

    monkeypatch.delenv(DEVICE_ENV)  # None and "auto": CUDA, as on a user's machine
    expected = parse_device(name)
    assert expected.type == "cuda"
    model, classifier, _ = load_run(run_dir, device=name)
    assert classifier.device == expected and {p.device for p in model.parameters()} == {expected}
    _, on_cpu, _ = load_run(run_dir, device="cpu")
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(classifier.predict(x), on_cpu.predict(x), atol=1e-4)


def test_a_gpu_that_is_not_there_is_a_one_line_error(run_dir):
    from art_he.runs import load_run

    count = torch.cuda.device_count()
    with pytest.raises(UserError, match=f"but {count} CUDA device") as error:
        load_run(run_dir, device=f"cuda:{count}")
    assert "\n" not in str(error.value)


def test_the_last_gpu_is_used_not_the_current_one(run_dir, fmnist_train):
    """``cuda:N`` means that GPU for the classifier, its clones and views, ART's preprocessing and the trainer (it
    used to mean the CPU for ``load_run`` and the current GPU for ART)."""
    from art_he.estimator import classifier_view
    from art_he.runs import load_run

    last = torch.device("cuda", torch.cuda.device_count() - 1)
    model, classifier, _ = load_run(run_dir, device=last)
    assert torch.cuda.current_device() == 0 and classifier.device == last
    for other in (classifier.clone_for_refitting(), classifier_view(classifier),
                  classifier_view(classifier, attack_loss="margin")):
        assert other.device == last and {p.device for p in other.model.parameters()} == {last}
    trainer = trainer_for(device=last, capture="cuda-graph")
    fit(trainer, fmnist_train, epochs=3)
    assert trainer.generator.device == last and {p.device for p in trainer.model.parameters()} == {last}


def test_art_he_eval_on_a_gpu(run_dir, capsys):
    from art_he.cli import main

    assert main(["eval", str(run_dir), "--attacks", "fgsm", "--n", "16", "--device", "cuda:0", "--quiet"]) == 0
