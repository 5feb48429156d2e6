"""Fixes to RobustBench's data-loader tables (``robustbench.data``), written for robustbench 1.1.1, applied only
inside :func:`fixed_loaders` and taken back when it ends.

* ``CORRUPTION_DATASET_LOADERS[cifar_10 | cifar_100][corruptions]``: ``benchmark(threat_model="corruptions")``
  calls these loaders with ``prepr=``, which they do not accept (a ``TypeError``). They are wrapped to take it,
  and to raise :class:`~art_he.data.layout.MissingDataError` naming the expected layout instead of trying to
  download from Zenodo.
* ``_clean_dataset_loaders[cifar_10 | cifar_100]`` (with ``local_data=True``): the clean test sets are read from
  ``<data_dir>/cifar-10-batches-py`` (``cifar-100-python``) with torchvision's reader but without its md5 check or
  download, so ``benchmark`` runs offline and on small files in the real format.

``robustbench.eval`` holds the same dictionaries. :func:`shape_problems` checks that they are there, as in 1.1.1,
before anything is changed (see :mod:`art_he.upstream`). When the block ends, every entry is what it was before:
the user's own RobustBench calls afterwards see RobustBench's loaders (and their md5 checks).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch

from art_he.data.cifar_reader import local_cifar_class
from art_he.data.layout import CLEAN_TEST_FILES, check_cifar_c, check_clean_cifar
from art_he.robustbench.imports import import_robustbench
from art_he.upstream import binds, guard

DATASETS = ("cifar10", "cifar100")
Loader = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def load_clean_cifar(dataset: str, n_examples: int | None, data_dir: str | os.PathLike[str],
                     transform: Callable[[Any], torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean CIFAR test set ``(x, y)`` tensors through RobustBench's ``_load_dataset``, from local files only."""
    rb = import_robustbench()
    check_clean_cifar(dataset, data_dir)
    data = local_cifar_class(dataset)(root=str(data_dir), train=False, transform=transform, download=False,
                                      verify=False, required=[CLEAN_TEST_FILES[dataset]])
    return rb.data._load_dataset(data, n_examples)  # type: ignore[no-any-return]


def corruption_loader(dataset: str, upstream: Loader) -> Loader:
    """``upstream`` (``load_cifar10c`` / ``load_cifar100c``) accepting ``prepr`` and checking the files first."""

    def load(n_examples: int, severity: int = 5, data_dir: str | os.PathLike[str] = "./data", shuffle: bool = False,
             corruptions: list[str] | tuple[str, ...] | None = None, prepr: object = None,
             *args: object) -> tuple[torch.Tensor, torch.Tensor]:
        from robustbench.data import CORRUPTIONS

        corruptions = list(corruptions) if corruptions is not None else list(CORRUPTIONS)
        check_cifar_c(dataset, data_dir, corruptions)
        return upstream(n_examples, severity, str(data_dir), shuffle, corruptions)

    load.__wrapped__ = upstream  # type: ignore[attr-defined]
    load.__doc__ = f"RobustBench's {upstream.__name__}, accepting ``prepr`` and naming the layout of missing files."
    return load


def _clean_loader(dataset: str) -> Loader:
    def load(n_examples: int | None, data_dir: str | os.PathLike[str],
             prepr: Callable[[Any], torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        return load_clean_cifar(dataset, n_examples, data_dir, prepr)

    load.__doc__ = f"{dataset} test set from local pickle batches (art_he: no md5 check, no download)."
    return load


def shape_problems(rb_data: Any, rb_eval: Any, benches: dict[str, Any], corruptions_key: Any) -> list[str]:
    """What of robustbench 1.1.1's loader tables, as the fix uses them, is missing from ``rb_data``/``rb_eval``."""
    problems = []
    corrupt = getattr(rb_data, "CORRUPTION_DATASET_LOADERS", None)
    if not isinstance(corrupt, dict) or getattr(rb_eval, "CORRUPTION_DATASET_LOADERS", None) is not corrupt:
        problems.append("robustbench.data.CORRUPTION_DATASET_LOADERS (a dict that robustbench.eval shares)")
    else:
        for name, bench in benches.items():
            loader = cast("dict[Any, Any]", corrupt).get(bench, {}).get(corruptions_key)  # a dict: checked above
            if loader is None or not binds(loader, 1, 5, "./data", False, ["fog"]):
                problems.append(f"CORRUPTION_DATASET_LOADERS[{name}][corruptions](n_examples, severity, data_dir, "
                                "shuffle, corruptions)")
    clean = getattr(rb_data, "_clean_dataset_loaders", None)
    if not isinstance(clean, dict) or not all(binds(clean.get(b), 1, "./data", None) for b in benches.values()):
        problems.append("robustbench.data._clean_dataset_loaders[cifar10 | cifar100](n_examples, data_dir, prepr)")
    load_clean = getattr(rb_data, "load_clean_dataset", None)
    if getattr(rb_eval, "load_clean_dataset", None) is not load_clean or not binds(load_clean, None, 1, ".", None):
        problems.append("robustbench.data.load_clean_dataset(dataset, n_examples, data_dir, prepr), used by eval")
    if not binds(getattr(rb_data, "_load_dataset", None), None, 1):
        problems.append("robustbench.data._load_dataset(dataset, n_examples)")
    if not isinstance(getattr(rb_data, "CORRUPTIONS", None), tuple):
        problems.append("robustbench.data.CORRUPTIONS")
    return problems


@contextmanager
def fixed_loaders(local_data: bool = True) -> Iterator[Any]:
    """Inside: RobustBench's CIFAR loader tables with the fixes of the module docstring (``local_data``: the clean
    test sets too); yields ``robustbench``. After: every entry as it was."""
    rb = import_robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    benches = {"cifar10": BenchmarkDataset.cifar_10, "cifar100": BenchmarkDataset.cifar_100}
    guard("robustbench", shape_problems(rb.data, rb.eval, benches, ThreatModel.corruptions))
    corrupt, clean = rb.data.CORRUPTION_DATASET_LOADERS, rb.data._clean_dataset_loaders
    saved = [(corrupt[benches[name]], ThreatModel.corruptions) for name in DATASETS]
    saved += [(clean, benches[name]) for name in DATASETS] if local_data else []
    before = [(table, key, table[key]) for table, key in saved]
    try:
        for name in DATASETS:
            table = corrupt[benches[name]]
            table[ThreatModel.corruptions] = corruption_loader(name, table[ThreatModel.corruptions])
            if local_data:
                clean[benches[name]] = _clean_loader(name)
        yield rb
    finally:
        for table, key, value in before:
            table[key] = value
