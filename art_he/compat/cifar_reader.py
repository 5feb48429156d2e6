"""torchvision's CIFAR-10/100 reader, made to accept local copies that are not byte-identical to the release.

``verify=True`` is torchvision's reader unchanged (md5 checks, download when asked). ``verify=False`` checks no md5:
the ``required`` files (default: every file of the release) only have to exist, and the meta file is read as it is,
or skipped (no class names) where it is absent and not required. That reads re-packed, recompressed or subsampled
copies in the same pickle format; point it only at copies you trust (the batches are pickles).

It overrides two private methods of ``torchvision.datasets.CIFAR10`` (``_check_integrity``, ``_load_meta``);
``tests/test_robustbench_compat.py`` checks that torchvision still has them.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Sequence
from pathlib import Path


@functools.cache
def local_cifar_class(dataset: str = "cifar10") -> type:
    """A ``CIFAR10`` / ``CIFAR100`` subclass taking ``verify`` and ``required`` (see the module docstring)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if dataset == "cifar10" else CIFAR100

    class LocalCIFAR(base):
        def __init__(self, *args, verify: bool = True, required: Sequence[str] | None = None, **kwargs) -> None:
            self.verify = verify
            self.required = required
            super().__init__(*args, **kwargs)

        def _check_integrity(self) -> bool:
            if self.verify:
                return super()._check_integrity()
            release = [name for name, _ in self.train_list + self.test_list] + [self.meta["filename"]]
            folder = Path(self.root, self.base_folder)
            return all((folder / name).is_file() for name in (release if self.required is None else self.required))

        def _load_meta(self) -> None:
            if self.verify:
                return super()._load_meta()
            path = Path(self.root, self.base_folder, self.meta["filename"])
            if not path.is_file():  # allowed only when not required: the images do not need the class names
                self.classes, self.class_to_idx = [], {}
                return
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    LocalCIFAR.__name__ = LocalCIFAR.__qualname__ = f"Local{base.__name__}"
    return LocalCIFAR
