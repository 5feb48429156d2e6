"""Fixes to RobustBench's data-loader tables (``robustbench.data``), written for robustbench 1.1.1.

* ``CORRUPTION_DATASET_LOADERS[cifar_10 | cifar_100][corruptions]``: ``benchmark(threat_model="corruptions")``
  calls these loaders with ``prepr=``, which they do not accept (a ``TypeError``). They are wrapped to take it,
  and to raise :class:`~art_he.compat.layout.MissingDataError` naming the expected layout instead of trying to
  download from Zenodo.
* ``_clean_dataset_loaders[cifar_10 | cifar_100]`` (with ``local_data=True``): the clean test sets are read from
  ``<data_dir>/cifar-10-batches-py`` (``cifar-100-python``) with torchvision's reader but without its md5 check or
  download, so ``benchmark`` runs offline and on small files in the real format.

Both tables are changed in place; ``robustbench.eval`` holds the same dictionaries.
"""

from __future__ import annotations

from art_he.compat.cifar_reader import local_cifar_class
from art_he.compat.layout import check_cifar_c, check_clean_cifar

DATASETS = ("cifar10", "cifar100")


def load_clean_cifar(dataset: str, n_examples, data_dir, transform):
    """Clean CIFAR test set ``(x, y)`` tensors through RobustBench's ``_load_dataset``, from local files only."""
    from art_he.compat.enable import enable_robustbench

    enable_robustbench()
    from robustbench.data import _load_dataset

    check_clean_cifar(dataset, data_dir)
    data = local_cifar_class(dataset)(root=str(data_dir), train=False, transform=transform, download=False)
    return _load_dataset(data, n_examples)


def corruption_loader(dataset: str, upstream):
    """``upstream`` (``load_cifar10c`` / ``load_cifar100c``) accepting ``prepr`` and checking the files first."""

    def load(n_examples, severity=5, data_dir="./data", shuffle=False, corruptions=None, prepr=None, *args):
        from robustbench.data import CORRUPTIONS

        corruptions = list(corruptions) if corruptions is not None else list(CORRUPTIONS)
        check_cifar_c(dataset, data_dir, corruptions)
        return upstream(n_examples, severity, str(data_dir), shuffle, corruptions)

    load.__wrapped__ = upstream
    load.__doc__ = f"RobustBench's {upstream.__name__}, accepting ``prepr`` and naming the layout of missing files."
    return load


def _clean_loader(dataset: str):
    def load(n_examples, data_dir, prepr):
        return load_clean_cifar(dataset, n_examples, data_dir, prepr)

    load.__doc__ = f"{dataset} test set from local pickle batches (art_he: no md5 check, no download)."
    return load


def patch_loaders(rb_data, local_data: bool = True) -> None:
    """Replace the CIFAR entries of ``rb_data``'s loader tables (``rb_data`` is ``robustbench.data``)."""
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    benches = {"cifar10": BenchmarkDataset.cifar_10, "cifar100": BenchmarkDataset.cifar_100}
    for name in DATASETS:
        table = rb_data.CORRUPTION_DATASET_LOADERS[benches[name]]
        table[ThreatModel.corruptions] = corruption_loader(name, table[ThreatModel.corruptions])
        if local_data:
            rb_data._clean_dataset_loaders[benches[name]] = _clean_loader(name)
