"""``art-he eval RUN --suite robustbench``: RobustBench's own ``benchmark`` on the model as RobustBench will load it.

The run's model is converted into RobustBench's architecture (:func:`~art_he.robustbench.architectures.to_robustbench`,
the module ``load_model`` would build from an export) and handed to ``robustbench.eval.benchmark``: RobustBench's
data loading (the first ``n`` test images, 10,000 by default), clean accuracy and standard AutoAttack. The result
goes to ``RUN/robustbench/report.json`` with AutoAttack's log beside it; ``art-he export`` reads both.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from art_he.devices import parse_device
from art_he.errors import MissingFileError, UserError

FOLDER = "robustbench"
REPORT_FILE, LOG_FILE = "report.json", "autoattack.log"
#: the only leaderboard our architectures fit (BoostingWideResNet and its siblings have 10 classes)
DATASET, THREAT_MODEL = "cifar10", "Linf"
FULL_TEST_SET = 10_000
#: ``art-he export``'s record of which architecture builds each exported name (read by ``register``; not a card)
EXPORT_FILE = "art_he_export.json"


def eps_text(eps: float) -> str:
    """``eps`` the way model cards write it: ``8/255`` when it is k/255, else the decimal."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else str(Fraction(eps).limit_denominator(10_000))


@dataclass
class BenchmarkResult:
    """What ``robustbench.eval.benchmark`` measured (accuracies as fractions, as it returns them)."""

    dataset: str
    threat_model: str
    eps: float
    n_examples: int
    clean_acc: float
    autoattack_acc: float
    architecture: str
    robustbench_version: str
    time_s: float
    log: str = LOG_FILE

    @property
    def eps_text(self) -> str:
        return eps_text(self.eps)

    def to_markdown(self) -> str:
        return (f"| RobustBench benchmark | n | eps | clean | AutoAttack | time |\n|---|---|---|---|---|---|\n"
                f"| {self.architecture} | {self.n_examples} | {self.eps_text} | {100 * self.clean_acc:.2f} "
                f"| {100 * self.autoattack_acc:.2f} | {self.time_s:.1f} s |\n")


def report_paths(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    folder = Path(run_dir) / FOLDER
    return folder / REPORT_FILE, folder / LOG_FILE


def read_report(run_dir: str | os.PathLike[str]) -> BenchmarkResult:
    """The benchmark result of a run, or a one-line error saying how to make it."""
    path, _ = report_paths(run_dir)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: run `art-he eval {run_dir} --suite robustbench "
                               "--data-dir DIR` first")
    try:
        return BenchmarkResult(**json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise UserError(f"{path} is not a RobustBench benchmark report ({error})") from None


def benchmark_run(run_dir: str | os.PathLike[str], *, data_dir: str | os.PathLike[str], n: int = FULL_TEST_SET,
                  eps: float | None = None, batch_size: int = 128,
                  device: str | None = None, seed: int = 0) -> BenchmarkResult:
    """Benchmark the run in ``run_dir`` with RobustBench's own code and write ``RUN/robustbench/``."""
    from importlib.metadata import version

    from art_he.data.cifar_reader import local_cifar_class
    from art_he.data.layout import CLEAN_TEST_FILES, check_clean_cifar
    from art_he.rng import global_seed
    from art_he.robustbench.architectures import architecture_of, to_robustbench
    from art_he.robustbench.loaders import fixed_loaders
    from art_he.runs import load_run

    model, _, config = load_run(run_dir, device="cpu")
    if config["dataset"] != DATASET:
        raise UserError(f"--suite robustbench evaluates CIFAR-10 Linf models; {run_dir} was trained on "
                        f"{config['dataset']}")
    arch = architecture_of(model)
    check_clean_cifar(DATASET, data_dir)
    eps = float(config["eps"] if eps is None else eps)
    torch_device = parse_device(device)
    rb_model = to_robustbench(model.cpu())
    path, log = report_paths(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)  # AutoAttack appends to its log
    start = time.perf_counter()
    with fixed_loaders(local_data=True) as rb, global_seed(seed):
        clean, robust = rb.eval.benchmark(rb_model, n_examples=n, dataset=DATASET, threat_model=THREAT_MODEL,
                                          data_dir=str(data_dir), device=torch_device, batch_size=batch_size,
                                          eps=eps, log_path=str(log))
    elapsed = time.perf_counter() - start
    labels = local_cifar_class(DATASET)(root=str(data_dir), train=False, download=False, verify=False,
                                        required=[CLEAN_TEST_FILES[DATASET]]).targets  # counted, not converted
    n_used = min(n, len(labels))
    result = BenchmarkResult(DATASET, THREAT_MODEL, eps, n_used, float(clean), float(robust), arch.label,
                             version("robustbench"), elapsed)
    path.write_text(json.dumps(asdict(result), indent=2, allow_nan=False) + "\n")
    return result
