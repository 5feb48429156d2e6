"""torchvision's CIFAR-10/100 reader for local test batches: no md5 check, no download, optional meta file.

It overrides two private methods of ``torchvision.datasets.CIFAR10`` (``_check_integrity``, ``_load_meta``);
``tests/test_robustbench_compat.py`` checks that torchvision still has them.
"""

from __future__ import annotations

from pathlib import Path

from art_he.compat.layout import CLEAN_TEST_FILES


def local_cifar_class(dataset: str) -> type:
    """A ``CIFAR10`` / ``CIFAR100`` subclass that only needs the test batch to exist."""
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if dataset == "cifar10" else CIFAR100

    class LocalCIFAR(base):
        """torchvision's reader without md5 checks or download: the test batch only has to exist."""

        def _check_integrity(self) -> bool:
            return (Path(self.root) / self.base_folder / CLEAN_TEST_FILES[dataset]).is_file()

        def _load_meta(self) -> None:  # class names are not needed for evaluation; the meta file is optional
            if (Path(self.root) / self.base_folder / self.meta["filename"]).is_file():
                super()._load_meta()
            else:
                self.classes, self.class_to_idx = [], {}

    return LocalCIFAR
