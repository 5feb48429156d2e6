"""Fashion-MNIST through torchvision, found offline where it already lies on disk.

Where the four IDX files (``train-images-idx3-ubyte[.gz]`` etc.) are looked for: given a ``data_dir``, only
there (itself, or torchvision's ``<root>/FashionMNIST/raw`` layout); otherwise ``$ART_HE_DATA`` (the same
way), the cache, then ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

Workaround: Debian recompressed the ``.gz`` files, so their md5 differs from torchvision's and
``FashionMNIST(download=True)`` refuses them; we gunzip them into a torchvision ``raw`` folder under the
cache and load with ``download=False``. Without files we try torchvision's download into the data root
(:func:`~art_he.data.layout.data_root`).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torchvision.datasets import FashionMNIST

from art_he.data.layout import cache_dir, data_root
from art_he.errors import MissingFileError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MISSING = (
    "Fashion-MNIST not found (looked in: {where}) and it could not be downloaded ({error}). "
    "Install it offline with `apt-get install dataset-fashion-mnist` (Debian) or put the four IDX files "
    "in --data-dir / $ART_HE_DATA."
)


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where the files are looked for: only under ``data_dir`` when it is given (never another copy)."""
    if data_dir is not None:
        root = Path(data_dir)
        return [root, root / "FashionMNIST" / "raw", root / "fashion-mnist"]
    env = os.environ.get("ART_HE_DATA")
    dirs = candidate_dirs(env) if env else []
    return dirs + [cache_dir() / "FashionMNIST" / "raw", DEBIAN_DIR]


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def locate(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path] | None:
    """The first folder holding all four IDX files (plain or ``.gz``), as ``{stem: path}``."""
    for folder in candidate_dirs(data_dir):
        found = {stem: _find(folder, stem) for stem in FILES}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def _torchvision_root(files: dict[str, Path]) -> Path:
    """A root whose ``FashionMNIST/raw`` holds the uncompressed files (reusing the folder when it already does)."""
    folder = next(iter(files.values())).parent
    if folder.name == "raw" and folder.parent.name == "FashionMNIST" and all(p.suffix != ".gz" for p in files.values()):
        return folder.parent.parent
    root = cache_dir()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem, path in files.items():
        target = raw / stem
        if target.is_file() and target.stat().st_size > 0:
            continue
        tmp = target.with_suffix(".tmp")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(target)
    return root


def load_fashion_mnist(train: bool = True, data_dir: str | os.PathLike[str] | None = None,
                       ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(x, y)``: float32 images (N, 1, 28, 28) in [0, 1] and int64 labels; 60,000 train or 10,000 test."""
    files = locate(data_dir)
    if files is not None:
        dataset = FashionMNIST(str(_torchvision_root(files)), train=train, download=False)
    else:
        root = data_root(data_dir)
        try:
            dataset = FashionMNIST(str(root), train=train, download=True)
        except Exception as error:  # noqa: BLE001 - any download failure ends in the same advice
            where = ", ".join(str(d) for d in candidate_dirs(data_dir))
            raise MissingFileError(MISSING.format(where=where, error=f"{type(error).__name__}: {error}")) from None
    x = dataset.data.unsqueeze(1).to(torch.float32).div_(255.0)
    return x.numpy(), dataset.targets.to(torch.int64).numpy()
