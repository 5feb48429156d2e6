"""Common corruptions (Hendrycks & Dietterich, 2019): accuracy per corruption and severity, and mCA.

Two sources:

* CIFAR-10-C, CIFAR-100-C and ImageNet-C from a local directory, read the way RobustBench's loaders read them
  (CIFAR-10-C: severity s is rows (s-1)N to sN of ``<corruption>.npy``; ImageNet-C: the 5,000 images RobustBench
  lists, resized to 224x224); a missing file raises ``MissingDataError`` (a ``FileNotFoundError`` and a
  ``ValueError``) naming the layout.
* any other test set (Fashion-MNIST, synthetic) corrupted locally with imagecorruptions' functions
  (:mod:`art_he.evaluation.imagecorruptions`), held in memory or written once in the CIFAR-10-C layout
  (``<root>/<corruption>.npy`` uint8 (5N, H, W, C), severity s in rows (s-1)N to sN, ``labels.npy`` (5N,)) and
  read back from there. imagecorruptions needs images of at least 32x32 pixels: smaller ones are edge-padded to 32
  and cropped back; grey images are corrupted as RGB and averaged back to one channel.

mCA is the mean accuracy over corruptions and severities (the paper's Table 5); Table 11 is the full grid.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from art_he.data.layout import MissingDataError, check_cifar_c, data_root
from art_he.data.npy_check import check_npy
from art_he.errors import UserError
from art_he.evaluation.imagecorruptions import corrupt
from art_he.evaluation.report import Row
from art_he.rng import global_seed
from art_he.upstream import resource_filename

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")
SEVERITIES = (1, 2, 3, 4, 5)
BENCHMARK_DIRS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C", "imagenet": "ImageNet-C"}
LOCAL_DIRS = {"fashion-mnist": "Fashion-MNIST-C", "synthetic": "Synthetic-C"}
MIN_SIZE = 32


def check_corruptions(corruptions: str | Iterable[str] | None) -> tuple[str, ...]:
    if corruptions is None:
        return CORRUPTIONS
    if isinstance(corruptions, str):
        corruptions = [c.strip() for c in corruptions.split(",") if c.strip()]
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown or not corruptions:
        raise UserError(f"unknown corruptions {unknown or corruptions}; choose from {', '.join(CORRUPTIONS)}")
    return tuple(dict.fromkeys(corruptions))


def check_severities(severities: str | Iterable[int | str] | None) -> tuple[int, ...]:
    if severities is None:
        return SEVERITIES
    if isinstance(severities, str):
        severities = [s.strip() for s in severities.split(",") if s.strip()]
    try:
        out = tuple(sorted({int(s) for s in severities}))
    except (TypeError, ValueError):
        raise UserError(f"severities must be integers in 1..5, got {severities!r}") from None
    if not out or out[0] < 1 or out[-1] > 5:
        raise UserError(f"severities must be integers in 1..5, got {severities!r}")
    return out


# -- generating corrupted sets -----------------------------------------------------------------------------------


def _to_uint8_hwc(img: np.ndarray) -> npt.NDArray[np.uint8]:
    hwc: npt.NDArray[np.uint8] = np.clip(np.round(img.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
    return hwc


def _corrupt_one(img: np.ndarray, corruption: str, severity: int) -> np.ndarray:
    """One (C, H, W) float image in [0, 1] -> corrupted (H, W, C) uint8."""
    hwc = _to_uint8_hwc(img)
    h, w, c = hwc.shape
    pad_h, pad_w = max(0, MIN_SIZE - h), max(0, MIN_SIZE - w)
    top, left = pad_h // 2, pad_w // 2
    if pad_h or pad_w:
        hwc = np.pad(hwc, ((top, pad_h - top), (left, pad_w - left), (0, 0)), mode="edge")
    out = corrupt(hwc[..., 0] if c == 1 else hwc, corruption, severity)
    if out.ndim == 2:
        out = out[..., None]
    out = out[top : top + h, left : left + w]
    if c == 1 and out.shape[-1] == 3:
        out = np.round(out.astype(np.float32).mean(-1, keepdims=True))
    clipped: npt.NDArray[np.uint8] = np.clip(out, 0, 255).astype(np.uint8)
    return clipped


def corrupt_images(x: np.ndarray, corruption: str, severity: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """``x`` (N, C, H, W) in [0, 1] corrupted with imagecorruptions; float32 (N, C, H, W) in [0, 1].

    imagecorruptions draws from numpy's global generator: it is seeded per (corruption, severity) and restored.
    """
    check_corruptions([corruption])
    check_severities([severity])
    with global_seed(seed * 1009 + CORRUPTIONS.index(corruption) * 7 + severity):
        out = np.stack([_corrupt_one(img, corruption, severity) for img in x])
    images: npt.NDArray[np.float32] = out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return images


def write_corrupted_set(x: np.ndarray, y: npt.ArrayLike, root: str | os.PathLike[str],
                        corruptions: str | Iterable[str] | None = None, seed: int = 0) -> Path:
    """Write ``x`` corrupted at all five severities in the CIFAR-10-C layout under ``root``; return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for corruption in check_corruptions(corruptions):
        blocks = [corrupt_images(x, corruption, s, seed) for s in SEVERITIES]
        arr = np.concatenate([_to_uint8_nhwc(b) for b in blocks])
        np.save(root / f"{corruption}.npy", arr)
    np.save(root / "labels.npy", np.tile(np.asarray(y, dtype=np.int64), len(SEVERITIES)))
    return root


def _to_uint8_nhwc(x: np.ndarray) -> npt.NDArray[np.uint8]:
    nhwc: npt.NDArray[np.uint8] = np.clip(np.round(x.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)
    return nhwc


def read_corrupted_set(root: str | os.PathLike[str], corruption: str, severity: int,
                       n: int | None = None) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Read ``(x, y)`` of one corruption and severity from a CIFAR-10-C-layout folder of any size."""
    root = Path(root)
    files = [root / "labels.npy", root / f"{corruption}.npy"]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise MissingDataError(f"missing {', '.join(missing)}; expected layout: {root}/<corruption>.npy "
                                f"(uint8 (5N, H, W, C), severity s in rows (s-1)N:sN) and {root}/labels.npy (5N,)")
    layout = f"{root}/<corruption>.npy uint8 (5N, H, W, C) and {root}/labels.npy (5N,) integers"
    check_npy(files[0], "iu", (None,), layout)
    check_npy(files[1], "u", (None, None, None, None), layout)
    labels = np.load(files[0])
    images = np.load(files[1], mmap_mode="r")
    if len(images) != len(labels) or len(labels) % len(SEVERITIES):
        raise UserError(f"{files[1]} has {len(images)} rows and labels.npy {len(labels)}: expected 5N each")
    per = len(labels) // len(SEVERITIES)
    take = per if n is None else min(n, per)
    block = np.asarray(images[(severity - 1) * per : (severity - 1) * per + take])
    x = block.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return x, labels[(severity - 1) * per : (severity - 1) * per + take].astype(np.int64)


# -- the benchmark sets ------------------------------------------------------------------------------------------

#: RobustBench's list of the ImageNet-C images it evaluates (5,000 validation images, ``<wnid>/<image>.JPEG``)
IMAGENET_C_IDS = ("robustbench.loaders", "helper_files/imagenet_test_image_ids.txt")


def imagenet_c_layout(data_dir: str | os.PathLike[str]) -> str:
    return (f"{Path(data_dir) / 'ImageNet-C'}/<corruption>/<severity>/<wnid>/<image>.JPEG with the 5,000 validation "
            "images listed in robustbench/helper_files/imagenet_test_image_ids.txt")


def read_imagenet_c(folder: Path, n: int, transform: Callable[[Any], torch.Tensor] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` of RobustBench's 5,000 ImageNet-C images in ``folder`` (``<wnid>/<image>``, classes in the
    sorted order of the ``<wnid>`` folders), as RobustBench's ``load_imagenetc`` reads them: RGB, ``transform``
    (default: resized to 224x224, RobustBench's ``Res224``)."""
    from PIL import Image
    from torchvision import transforms

    try:
        ids = Path(resource_filename(*IMAGENET_C_IDS)).read_text().split()
    except (ModuleNotFoundError, OSError):
        raise UserError("ImageNet-C is read in RobustBench's selection of 5,000 images, listed in its "
                        "helper_files/imagenet_test_image_ids.txt: pip install 'art-he[robustbench]'") from None
    transform = transform or transforms.Compose([transforms.Resize([224, 224]), transforms.ToTensor()])
    classes = sorted(d.name for d in os.scandir(folder) if d.is_dir())
    index = {wnid: i for i, wnid in enumerate(classes)}
    images, labels = [], []
    for name in ids[:n]:
        with open(folder / name, "rb") as f:
            images.append(transform(Image.open(f).convert("RGB")))
        labels.append(index[name.split("/")[0]])
    return torch.stack(images).numpy(), np.asarray(labels, dtype=np.int64)


def load_corrupted(dataset: str, corruption: str, severity: int, data_dir: str | os.PathLike[str] | None = None,
                   n: int | None = None, prepr: Callable[[Any], torch.Tensor] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` numpy arrays of CIFAR-10-C / CIFAR-100-C / ImageNet-C (the first ``n`` images, as RobustBench's
    loaders give them; ``prepr``: ImageNet-C's transform) or of a locally written set ``<data_dir>/<Name>-C`` for
    other data sets."""
    check_corruptions([corruption])
    check_severities([severity])
    root = data_root(data_dir)
    if dataset in ("cifar10", "cifar100"):
        return read_corrupted_set(check_cifar_c(dataset, root, [corruption]), corruption, severity, n)
    if dataset == "imagenet":
        folder = root / "ImageNet-C" / corruption / str(severity)
        if not folder.is_dir():
            raise MissingDataError(f"ImageNet-C folder missing: {folder}. Expected layout: {imagenet_c_layout(root)}")
        return read_imagenet_c(folder, 5000 if n is None else n, prepr)
    return read_corrupted_set(root / LOCAL_DIRS.get(dataset, f"{dataset}-C"), corruption, severity, n)


# -- evaluation ---------------------------------------------------------------------------------------------------


def _accuracy(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    return float((classifier.predict(x, batch_size=batch_size).argmax(1) == y).mean())


def _cached_local_set(dataset: str, x: np.ndarray, y: np.ndarray, data_dir: str | os.PathLike[str] | None,
                      corruptions: Sequence[str], seed: int) -> Path | None:
    """The folder of the locally generated set for the first ``len(x)`` test images, written if needed."""
    if data_dir is None:
        return None
    root = Path(data_dir) / LOCAL_DIRS.get(dataset, f"{dataset}-C")
    labels = root / "labels.npy"
    fresh = labels.is_file() and np.array_equal(np.load(labels), np.tile(y, len(SEVERITIES)))
    missing = [c for c in corruptions if not (root / f"{c}.npy").is_file()] if fresh else list(corruptions)
    if not fresh:  # generated for other images: drop the stale corruption files
        for name in CORRUPTIONS:
            (root / f"{name}.npy").unlink(missing_ok=True)
    if missing:
        write_corrupted_set(x, y, root, missing, seed)
    return root


def evaluate_corruptions(
    classifier: PyTorchClassifier,
    *,
    dataset: str,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    n: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    corruptions: str | Iterable[str] | None = None,
    severities: str | Iterable[int | str] | None = None,
    batch_size: int = 128,
    seed: int = 0,
    cache: bool = True,
) -> list[Row]:
    """Accuracy per (corruption, severity), per corruption (mean over severities) and mCA, as rows.

    For CIFAR-10/100 and ImageNet the corrupted sets are read from ``data_dir``; otherwise ``x, y`` (the clean
    test images) are corrupted locally, cached under ``data_dir`` when it is given and ``cache`` is true.
    """
    corruptions = check_corruptions(corruptions)
    severities = check_severities(severities)
    local = dataset not in BENCHMARK_DIRS
    if local and (x is None or y is None):
        raise UserError(f"{dataset}: no benchmark corruption set; pass the clean test images x, y to corrupt")
    root: Path | None = None
    if local:
        assert x is not None and y is not None  # checked above
        if n is not None:
            x, y = x[:n], y[:n]
        if cache:
            root = _cached_local_set(dataset, x, y, data_dir, corruptions, seed)
    rows: list[Row] = []
    for corruption in corruptions:
        for severity in severities:
            start = time.perf_counter()
            xc: np.ndarray
            yc: np.ndarray
            if not local:
                xc, yc = load_corrupted(dataset, corruption, severity, data_dir, n)
            elif root is not None:
                xc, yc = read_corrupted_set(root, corruption, severity, n)
            else:
                assert x is not None and y is not None  # checked above
                xc, yc = corrupt_images(x, corruption, severity, seed), y
            acc = _accuracy(classifier, xc, yc, batch_size)
            rows.append(Row(f"{corruption}@{severity}", f"{corruption} s{severity}", "corruption", acc, len(yc),
                            time.perf_counter() - start, settings={"source": "imagecorruptions" if local else
                                                                   BENCHMARK_DIRS[dataset]},
                            details={"corruption": corruption, "severity": severity}))
    for corruption in corruptions:
        cells = [r for r in rows if r.details["corruption"] == corruption and r.kind == "corruption"]
        rows.append(Row(corruption, corruption, "corruption-mean", float(np.mean([r.accuracy for r in cells])),
                        cells[0].n, sum(r.time_s for r in cells), details={"corruption": corruption}))
    cells = [r for r in rows if r.kind == "corruption"]
    rows.append(Row("mca", "mCA", "corruption-mean", float(np.mean([r.accuracy for r in cells])), cells[0].n,
                    sum(r.time_s for r in cells), details={"corruptions": len(corruptions),
                                                           "severities": list(severities)}))
    return rows
