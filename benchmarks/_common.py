"""Shared helpers of the benchmarks: a fixed small workload and interleaved timing."""

from __future__ import annotations

import copy
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from art_he import HEPyTorchClassifier
from art_he.models import build_model


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def fmnist(n: int) -> tuple[np.ndarray, np.ndarray]:
    from art_he.data import load_dataset

    x, y = load_dataset("fashion-mnist", train=True)
    return x[:n], y[:n]


def classifier_for(model: torch.nn.Module, device: str, lr: float = 0.05,
                   input_shape: tuple[int, ...] = (1, 28, 28)) -> HEPyTorchClassifier:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    return HEPyTorchClassifier(model, None, input_shape, 10, optimizer, clip_values=(0.0, 1.0), device=device)


def small_cnn(head: str, width: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("small-cnn", in_channels=1, head=head, width=width)


def clone(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(runs: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, alternating between them so drift hits all alike; the order rotates
    every repeat, so that no callable always runs right after the same other one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn = runs[name]
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, payload: dict, json_path: str | None) -> None:
    print(f"## {title}")
    print(json.dumps(payload, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(payload, f, indent=2)


#: heading of the hand-written part of a study's Markdown report, kept when the report is regenerated
NOTES = "## Interpretation"


def write_markdown(path: Path, text: str) -> str:
    """Write a study's generated Markdown to ``path``, keeping the hand-written section headed :data:`NOTES` of the
    file already there; returns what was written."""
    if path.is_file() and NOTES in path.read_text():
        old = path.read_text()
        text = text + "\n" + old[old.index(NOTES):]
    path.write_text(text)
    return text


def publish(out: Path, name: str, payload: dict, markdown: Callable[[dict], str],
            figure: Callable[[dict, Path], None]) -> str:
    """A study's results: ``OUT/NAME.json`` (the payload), ``.md`` (generated, hand-written notes kept) and
    ``.png``; prints and returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    text = write_markdown(out / f"{name}.md", markdown(payload))
    figure(payload, out / f"{name}.png")
    print(text)
    return text
