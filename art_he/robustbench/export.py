"""``art-he export RUN --robustbench OUT --name NAME``: a RobustBench submission that RobustBench's own code loads.

Writes, for a CIFAR-10 Linf run benchmarked with ``art-he eval RUN --suite robustbench``::

    OUT/models/cifar10/Linf/NAME.pt          state dict of plain tensors in RobustBench's architecture
    OUT/model_info/cifar10/Linf/NAME.json    the model card (RobustBench's fields and types)
    OUT/SUBMISSION.md                        the text of the "[New Model] NAME" issue
    OUT/autoattack.log                       AutoAttack's log of the benchmark
    OUT/art_he_export.json                   which architecture class builds NAME (read by :func:`register`)

Before it returns, the export registers NAME in RobustBench's model zoo for the check only (:func:`registered`),
loads it back with ``robustbench.utils.load_model`` (strict) and checks that RobustBench's outputs equal ours to 1e-5 on
random inputs and that the predicted classes agree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from art_he.errors import MissingFileError, UserError
from art_he.robustbench.architectures import Architecture
from art_he.robustbench.benchmark import DATASET, EXPORT_FILE, FULL_TEST_SET, THREAT_MODEL, report_paths

if TYPE_CHECKING:
    from torch import nn

    from art_he.robustbench.benchmark import BenchmarkResult

_ABSENT = object()

#: the card's paper fields default to the HE paper; a submission of your own work gives its own
PAPER = {"title": "Boosting Adversarial Training with Hypersphere Embedding",
         "url": "https://arxiv.org/abs/2002.08619",
         "authors": "Tianyu Pang, Xiao Yang, Yinpeng Dong, Kun Xu, Jun Zhu, Hang Su",
         "venue": "NeurIPS 2020"}
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
TOLERANCE = 1e-5


@dataclass
class Paper:
    title: str = PAPER["title"]
    url: str = PAPER["url"]
    authors: str = PAPER["authors"]
    venue: str = PAPER["venue"]
    footnote: str | None = None


def check_name(name: str) -> str:
    """A model name RobustBench can hold: a file stem, without the ``module.``/``model.`` it strips from keys."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise UserError(f"--name {name!r} must be letters, digits, '_' or '-', starting with a letter "
                        "(RobustBench names look like Pang2020Boosting)")
    return name


def paths(out: str | os.PathLike[str], name: str) -> dict[str, Path]:
    out = Path(out)
    return {"weights": out / "models" / DATASET / THREAT_MODEL / f"{name}.pt",
            "card": out / "model_info" / DATASET / THREAT_MODEL / f"{name}.json",
            "submission": out / "SUBMISSION.md", "log": out / "autoattack.log", "export": out / EXPORT_FILE}


def model_card(paper: Paper, architecture: str, result: BenchmarkResult) -> dict[str, Any]:
    """RobustBench's model card: accuracies as percent strings with two decimals, ``eps`` as ``8/255``."""
    card: dict[str, Any] = {"link": paper.url, "name": paper.title, "authors": paper.authors, "additional_data": False,
            "number_forward_passes": 1, "dataset": DATASET, "venue": paper.venue, "architecture": architecture,
            "eps": result.eps_text, "clean_acc": f"{100 * result.clean_acc:.2f}",
            "reported": f"{100 * result.autoattack_acc:.2f}", "autoattack_acc": f"{100 * result.autoattack_acc:.2f}",
            "unreliable": False}
    if paper.footnote:
        card["footnote"] = paper.footnote
    return card


def submission_text(name: str, paper: Paper, arch: Architecture, result: BenchmarkResult,
                    config: dict[str, Any]) -> str:
    """The body of RobustBench's "[New Model]" issue, filled in."""
    partial = result.n_examples < FULL_TEST_SET
    call = f"{arch.cls}({', '.join(f'{k}={v}' for k, v in arch.kwargs)})"
    head = config.get("head_kwargs") or {}
    head_text = f"{config.get('head')} head" + (f" (s={head['scale']:g}, m={head['margin']:g})" if head else "")
    rows = [("Architecture", f"{arch.label}: RobustBench's `{call}`"),
            ("Threat model", THREAT_MODEL), ("eps", result.eps_text),
            ("Clean accuracy", f"{100 * result.clean_acc:.2f}%"),
            ("Robust accuracy (AutoAttack)", f"{100 * result.autoattack_acc:.2f}%"),
            ("Additional data", "no"),
            ("Evaluation method", f"AutoAttack standard through `robustbench.eval.benchmark` (robustbench "
                                  f"{result.robustbench_version}) on the first {result.n_examples} test images"),
            ("Training", f"art-he, framework {config.get('framework')}, {head_text}, epochs {config.get('epochs')}, "
                         f"model {config.get('model')}"),
            ("Checkpoint", f"upload `models/{DATASET}/{THREAT_MODEL}/{name}.pt` and give its link here"),
            ("Code", "give the training code's link here (trained and exported with art-he)"),
            ("Model zoo", f"yes: the architecture is in `robustbench/model_zoo` (`{arch.cls}`)"),
            ("Licence", "give the checkpoint's licence here")]
    lines = [f"Title: [New Model] {name}", "", "## Paper", "",
             f"- Title: {paper.title}", f"- URL: {paper.url}", f"- Authors: {paper.authors}",
             f"- Venue: {paper.venue}", "", f"## Model: {name}", "", "| field | value |", "| --- | --- |",
             *(f"| {k} | {v} |" for k, v in rows), ""]
    if partial:
        lines += [f"**Not ready to submit:** the benchmark used {result.n_examples} of the {FULL_TEST_SET} test "
                  "images; RobustBench evaluates the full test set (`art-he eval RUN --suite robustbench` without "
                  "`--n`).", ""]
    if paper.footnote:
        lines += [f"Footnote: {paper.footnote}", ""]
    lines += ["The AutoAttack log is `autoattack.log`; the model card is "
              f"`model_info/{DATASET}/{THREAT_MODEL}/{name}.json`.", ""]
    return "\n".join(lines)


def _zoo_entry(name: str, out: str | os.PathLike[str]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """``(zoo, name, entry)``: the RobustBench zoo table (``all_models[dataset][threat_model]``) that export ``name``
    of folder ``out`` belongs in, and the entry to put there."""
    from art_he.robustbench.imports import import_robustbench

    import_robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
    from robustbench.utils import all_models

    path = Path(out) / EXPORT_FILE
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: {out} is not an `art-he export` folder")
    entries = json.loads(path.read_text())
    if name not in entries:
        raise UserError(f"{out} holds no export named {name!r}; it holds {sorted(entries)}")
    entry = entries[name]
    arch = Architecture.from_json(entry["architecture"])
    zoo = all_models[BenchmarkDataset(entry["dataset"])][ThreatModel(entry["threat_model"])]
    return zoo, name, {"model": arch.factory(), "gdrive_id": "local"}  # any id: None is refused even with the file


def register(name: str, out: str | os.PathLike[str]) -> Path:
    """Add ``name`` from an export folder ``out`` to RobustBench's model zoo for the rest of this process (what it
    is asked for); return the ``model_dir`` to give ``robustbench.utils.load_model`` (which then loads the local
    file, offline). :func:`registered` adds it for a ``with`` block only."""
    zoo, name, entry = _zoo_entry(name, out)
    zoo[name] = entry
    return Path(out) / "models"


@contextmanager
def registered(name: str, out: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`register` inside the block; after it, RobustBench's zoo holds what it held before."""
    zoo, name, entry = _zoo_entry(name, out)
    before = zoo.get(name, _ABSENT)
    zoo[name] = entry
    try:
        yield Path(out) / "models"
    finally:
        if before is _ABSENT:
            zoo.pop(name, None)
        else:
            zoo[name] = before


def verify_export(name: str, out: str | os.PathLike[str], model: nn.Module, n: int = 8, seed: int = 0) -> float:
    """Load ``name`` through RobustBench's ``load_model`` (strict) and compare its outputs with ``model``'s on
    random inputs; returns the largest difference, or raises when it exceeds 1e-5 or a prediction differs."""
    import torch

    with registered(name, out) as model_dir:
        from robustbench.utils import load_model

        rb_model = load_model(name, model_dir=str(model_dir), dataset=DATASET, threat_model=THREAT_MODEL)
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    model = model.cpu().eval()
    with torch.no_grad():
        ours, theirs = model(x), rb_model.eval()(x)
    diff = float((ours - theirs).abs().max())
    if diff > TOLERANCE or not torch.equal(ours.argmax(1), theirs.argmax(1)):
        raise RuntimeError(f"RobustBench's {name} differs from the run's model: max |diff| {diff:.3g}")
    return diff


def export_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], name: str, paper: Paper | None = None,
               overwrite: bool = False) -> dict[str, Path]:
    """Write the submission of the run in ``run_dir`` to ``out`` (see the module docstring); returns the paths."""
    from art_he.robustbench.architectures import architecture_of
    from art_he.robustbench.benchmark import read_report
    from art_he.runs import load_run

    check_name(name)
    paper = paper or Paper()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UserError(f"{out} exists and is not empty; give --overwrite to replace it")
    model, _, config = load_run(run_dir, device="cpu")
    if config["dataset"] != DATASET:
        raise UserError(f"RobustBench's {THREAT_MODEL} leaderboard for our architectures is {DATASET}; {run_dir} "
                        f"was trained on {config['dataset']}")
    arch = architecture_of(model)
    result = read_report(run_dir)
    partial = out.with_name(out.name + ".partial")  # written and checked there, then moved to ``out``
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write(partial, name, paper, model, arch, result, config, run_dir)
        verify_export(name, partial, model)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return paths(out, name)


def _write(out: Path, name: str, paper: Paper, model: nn.Module, arch: Architecture, result: BenchmarkResult,
           config: dict[str, Any], run_dir: str | os.PathLike[str]) -> None:
    import torch

    from art_he.robustbench.architectures import to_robustbench_state_dict

    files = paths(out, name)
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_robustbench_state_dict(model), files["weights"])
    files["card"].write_text(json.dumps(model_card(paper, arch.label, result), indent=2, allow_nan=False) + "\n")
    files["submission"].write_text(submission_text(name, paper, arch, result, config))
    log = report_paths(run_dir)[1]
    if log.is_file():
        shutil.copyfile(log, files["log"])
    files["export"].write_text(json.dumps({name: {"dataset": DATASET, "threat_model": THREAT_MODEL,
                                                  "architecture": arch.to_json()}}, indent=2,
                                                 allow_nan=False) + "\n")
