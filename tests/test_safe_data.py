"""CIFAR pickles are read without running code: hostile batches are refused with one line naming the file and the
global (a marker file their payload would write never appears, the data folder is unchanged), malformed batches
get one line naming the file and the problem, and genuine-format files load bit-identically to torchvision's
reader, with and without verification. No ``np.load`` / ``torch.load`` in the project may unpickle."""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from art_he.cli import main
from art_he.data import load_dataset
from art_he.errors import UserError
from tests.conftest import one_line_error, write_cifar10

ROOT = Path(__file__).resolve().parents[1]


class _Call:
    """Pickles as ``func(*args)``: what a hostile file asks the unpickler to run."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Nested:
    """A class of another module whose ``__setstate__`` writes the marker: pickle imports it and runs it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __setstate__(self, state):
        Path(state["marker"]).write_text("ran")


def payloads(marker: Path) -> dict[str, object]:
    """Objects whose unpickling writes ``marker``, each hidden somewhere in a batch dict."""
    return {
        "builtin": _Call(exec, f"open({str(marker)!r}, 'w').close()"),  # builtins.exec
        "other-module": _Call(os.system, f"touch {marker}"),  # posix.system
        "nested-object": [1, 2, {"deep": (Nested(str(marker)),)}],  # tests.test_safe_data.Nested.__setstate__
        "object-array": np.array([_Call(shutil.copy, __file__, str(marker))], dtype=object),  # inside an ndarray
    }


def hostile_batch(kind: str, marker: Path) -> dict:
    payload = payloads(marker)[kind]
    batch = {"batch_label": "training batch 1 of 5", "data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10}
    if kind == "object-array":
        batch["data"] = payload
    else:
        batch["labels"] = payload if kind == "nested-object" else batch["labels"]
        batch["filenames"] = payload
    return batch


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["builtin", "other-module", "nested-object", "object-array"])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_payloads_are_live_but_art_he_refuses_them(kind, protocol, tmp_path):
    control = tmp_path / "control"
    (tmp_path / "probe").write_bytes(pickle.dumps(hostile_batch(kind, control), protocol=protocol))
    with open(tmp_path / "probe", "rb") as f:  # the payload is real: a plain pickle.load runs it
        pickle.load(f)
    assert control.exists()

    marker = tmp_path / "MARKER"
    write_cifar10(tmp_path / "data")
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps(hostile_batch(kind, marker), protocol=protocol))
    before = checksums(tmp_path / "data")
    with pytest.raises(UserError, match=r"data_batch_3: refused to load: it asks for the Python global \S+\.\S+,") as e:
        load_dataset("cifar10", train=True, data_dir=tmp_path / "data", verify=False)
    assert "\n" not in str(e.value) and "nothing from the file was run" in str(e.value)
    assert not marker.exists() and checksums(tmp_path / "data") == before


def test_the_cli_refuses_a_hostile_batch_in_train_eval_and_with_verification(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "MARKER"
    data = tmp_path / "data"
    write_cifar10(data)
    (data / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(hostile_batch("other-module", marker)))
    before = checksums(data)
    out = tmp_path / "run"
    train = ["train", "--dataset", "cifar10", "--data-dir", str(data), "--model", "wrn-10-1", "--epochs", "1",
             "--batch-size", "8", "--max-iter", "1", "--quiet", "--out", str(out)]
    assert main([*train, "--no-verify-data"]) == 2
    one_line_error(capsys, "data_batch_1", "posix.system", "nothing from the file was run")
    assert not marker.exists() and checksums(data) == before and not any(out.glob("*"))

    # verification on: the md5 check refuses the foreign file before any of it is read
    assert main(train) == 2
    one_line_error(capsys, "cifar-10-batches-py", "differs from the official")
    # ... and were the md5 to pass, the verifying reader unpickles with the same allow-list
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path))
    assert main(train) == 2
    one_line_error(capsys, "data_batch_1", "posix.system")
    assert not marker.exists() and checksums(data) == before

    # evaluation (the test batch) and RobustBench's clean loader
    test_batch = data / "cifar-10-batches-py" / "test_batch"
    test_batch.write_bytes(pickle.dumps(hostile_batch("builtin", marker)))
    with pytest.raises(UserError, match="test_batch: refused.*builtins.exec"):
        load_dataset("cifar10", train=False, data_dir=data, verify=False)
    from art_he.robustbench import load_clean_cifar

    with pytest.raises(UserError, match="test_batch: refused.*builtins.exec"):
        load_clean_cifar("cifar10", 10, data, None)
    assert not marker.exists()


def test_cifar100_and_meta_files_are_read_safely(tmp_path):
    marker = tmp_path / "MARKER"
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((4, 3072), np.uint8), "fine_labels": [99, 0, 5, 7],
                         "coarse_labels": [19, 0, 1, 1]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": _Call(eval, f"open({str(marker)!r}, 'w')")}, f)
    with pytest.raises(UserError, match=r"cifar-100-python/meta: refused.*builtins\.eval"):
        load_dataset("cifar100", train=False, data_dir=tmp_path, verify=False)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)]}, f)
    with open(folder / "test", "wb") as f:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "fine_labels": [3, 100]}, f)
    with pytest.raises(UserError, match=r"cifar-100-python/test: label 100 in 'fine_labels' is out of range"):
        load_dataset("cifar100", train=False, data_dir=tmp_path, verify=False)
    assert not marker.exists()


def _rewrite(path: Path, **changes) -> None:
    with open(path, "rb") as f:
        batch = pickle.load(f)  # our own file, written by write_cifar10
    batch.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del batch[key]
    path.write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize("change, message", [
    ({"data": None}, "test_batch is not a CIFAR batch: it has no 'data' key"),
    ({"labels": None}, "test_batch is not a CIFAR batch: it has no 'labels' \\(CIFAR-10\\) or 'fine_labels'"),
    ({"data": np.zeros((10, 3071), np.uint8)}, r"test_batch: 'data' is uint8 \(10, 3071\); a CIFAR batch holds"),
    ({"data": np.zeros((10, 3072), np.float32)}, r"test_batch: 'data' is float32 \(10, 3072\)"),
    ({"labels": [0] * 9 + [10]}, r"test_batch: label 10 in 'labels' is out of range \(0 to 9\)"),
    ({"labels": [0] * 9 + [-1]}, r"test_batch: label -1 in 'labels' is out of range"),
    ({"labels": [0] * 9}, "test_batch: 9 'labels' for 10 images"),
    ({"labels": ["cat"] * 10}, "test_batch: 'labels' must be a list of integers, got a list holding a str"),
    ("truncated", r"test_batch is truncated or not a CIFAR pickle \((UnpicklingError|EOFError)"),
    ("list", "test_batch is not a CIFAR batch: it holds a list, not a dict"),
    ("text", r"test_batch is truncated or not a CIFAR pickle \(UnpicklingError"),
])
def test_malformed_batches_get_one_line_naming_the_file_and_the_problem(change, message, tmp_path, capsys):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    if change == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif change == "list":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif change == "text":
        path.write_text("these are not the images you are looking for\n")
    else:
        _rewrite(path, **change)
    before = checksums(tmp_path)
    with pytest.raises(UserError, match=message) as e:
        load_dataset("cifar10", train=False, data_dir=tmp_path, verify=False)
    assert "\n" not in str(e.value) and checksums(tmp_path) == before


class _Py2Pickler(pickle._Pickler):
    """Writes what the official release holds: a Python 2 protocol-2 pickle, byte strings as ``str`` opcodes and
    numpy 1's module names (``numpy.core.multiarray._reconstruct``)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    def save_global(self, obj, name=None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_release_format(root: Path, seed: int = 0) -> Path:
    """CIFAR-10 as the release writes it (see :class:`_Py2Pickler`), five training batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name: str, obj) -> None:
        with open(folder / name, "wb") as f:
            _Py2Pickler(f, protocol=2).dump(obj)

    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = 6 + i
        dump(name, {b"batch_label": f"batch {i}".encode(), b"labels": rng.integers(0, 10, n).tolist(),
                    b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    b"filenames": [f"img_{k}.png".encode() for k in range(n)]})
    dump("batches.meta", {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                           b"horse", b"ship", b"truck"], b"num_vis": 3072})
    return folder


def test_genuine_format_loads_bit_identically_with_and_without_verification(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    from art_he.data.cifar_reader import local_cifar_class

    folder = write_release_format(tmp_path)
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in (folder / "test_batch").read_bytes()
    reader = local_cifar_class("cifar10")
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path))
    for train in (True, False):
        reference = CIFAR10(str(tmp_path), train=train)  # torchvision's reader: plain pickle.load
        for verify in (True, False):
            ours = reader(str(tmp_path), train=train, verify=verify)
            assert ours.data.dtype == reference.data.dtype and ours.data.shape == reference.data.shape
            assert ours.data.tobytes() == reference.data.tobytes() and ours.targets == reference.targets
            assert ours.classes == reference.classes and ours.classes[9] == "truck"
    x, y = load_dataset("cifar10", train=True, data_dir=tmp_path, verify=True)
    assert x.shape == (6 + 7 + 8 + 9 + 10, 3, 32, 32) and y.dtype == np.int64
    # art_he's own writer (protocols 2 to 5, numpy scalars as labels) reads back too
    for protocol in (2, 4, 5):
        rows = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072).astype(np.uint8)
        path = folder / "test_batch"
        path.write_bytes(pickle.dumps({"data": rows, "labels": [np.int64(3), 4]}, protocol=protocol))
        x, y = load_dataset("cifar10", train=False, data_dir=tmp_path, verify=False)
        assert np.array_equal((x * 255).round().astype(np.uint8).reshape(2, -1), rows) and y.tolist() == [3, 4]


def test_malformed_cifar10c_files_get_one_line(tmp_path):
    from art_he.data.layout import check_cifar_c

    root = tmp_path / "CIFAR-10-C"
    root.mkdir()
    np.save(root / "labels.npy", np.zeros(10, np.int64))
    np.save(root / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    assert check_cifar_c("cifar10", tmp_path, ["fog"]) == root
    cases = [
        ("fog.npy", np.zeros((10, 32, 32, 3), np.float32), r"fog.npy holds float32 \(10, 32, 32, 3\); expected"),
        ("fog.npy", np.zeros((9, 32, 32, 3), np.uint8), r"fog.npy holds uint8 \(9, 32, 32, 3\)"),
        ("fog.npy", np.array([_Call(open, str(tmp_path / "MARKER"), "w")] * 10, dtype=object),
         "fog.npy holds Python objects"),
        ("labels.npy", np.full(10, 10, np.int64), r"labels.npy: label 10 is out of range \(0 to 9\)"),
    ]
    for name, array, message in cases:
        np.save(root / name, array, allow_pickle=True)  # the hostile file; art_he never loads such a one
        with pytest.raises(UserError, match=message):
            check_cifar_c("cifar10", tmp_path, ["fog"])
        np.save(root / "labels.npy", np.zeros(10, np.int64))
        np.save(root / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    data = (root / "fog.npy").read_bytes()
    (root / "fog.npy").write_bytes(data[:-100])
    with pytest.raises(UserError, match=r"fog.npy is truncated: 30,748 bytes of 30,848"):
        check_cifar_c("cifar10", tmp_path, ["fog"])
    # a locally corrupted set (Fashion-MNIST-C layout) read by art_he itself
    from art_he.evaluation.corruptions import read_corrupted_set

    local = tmp_path / "Fashion-MNIST-C"
    local.mkdir()
    np.save(local / "fog.npy", np.zeros((10, 28, 28, 1), np.uint8))
    np.save(local / "labels.npy", np.array([_Call(open, str(tmp_path / "MARKER"), "w")] * 10, dtype=object),
            allow_pickle=True)
    with pytest.raises(UserError, match="labels.npy holds Python objects"):
        read_corrupted_set(local, "fog", 1)
    assert not (tmp_path / "MARKER").exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), {k.arg: ast.unparse(k.value) for k in node.keywords}, node


def test_no_load_in_the_project_can_unpickle():
    """Every ``np.load`` keeps numpy's ``allow_pickle=False``, every ``torch.load`` says ``weights_only=True``,
    and nothing but :mod:`art_he.data.cifar_pickle` calls pickle's loaders."""
    problems = []
    sources = [path for folder in ("art_he", "benchmarks", "notebooks") for path in ROOT.glob(f"{folder}/**/*.py")]
    for path in sorted(sources):
        for func, keywords, node in _calls(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if func.endswith("np.load") or func == "numpy.load":
                if keywords.get("allow_pickle", "False") != "False":
                    problems.append(f"{where} np.load allow_pickle={keywords['allow_pickle']}")
            elif func == "torch.load" and keywords.get("weights_only") != "True":
                problems.append(f"{where} torch.load without weights_only=True")
            elif func in ("pickle.load", "pickle.loads", "pickle.Unpickler") and not path.name == "cifar_pickle.py":
                problems.append(f"{where} {func}")
    assert problems == []
