import gzip
import pickle

import numpy as np
import pytest

from art_he.data import dataset_info, load_dataset
from art_he.data import fashion_mnist as fm
from art_he.data.cifar10 import cifar10_dataset, load_cifar10
from tests.conftest import write_cifar10


def test_fashion_mnist_real_data_offline(fmnist_train, fmnist_test):
    x, y = load_dataset("fashion-mnist", train=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) == set(range(10))
    assert np.bincount(y).tolist() == [1000] * 10


def _write_idx(folder, n=20, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    magic = {3: np.array([0, 0, 8, 3], np.uint8).tobytes(), 1: np.array([0, 0, 8, 1], np.uint8).tobytes()}
    blobs = {
        "images": magic[3] + np.array([n, 28, 28], ">i4").tobytes() + images.tobytes(),
        "labels": magic[1] + np.array([n], ">i4").tobytes() + labels.tobytes(),
    }
    for split in ("train", "t10k"):
        for kind, ndim in (("images", 3), ("labels", 1)):
            name = f"{split}-{kind}-idx{ndim}-ubyte"
            data = blobs[kind]
            if compress:
                with gzip.open(folder / (name + ".gz"), "wb") as f:
                    f.write(data)
            else:
                (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("layout", ["flat-gz", "torchvision-raw"])
def test_fashion_mnist_found_in_data_dir(tmp_path, monkeypatch, layout):
    monkeypatch.setenv("ART_HE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "d" if layout == "flat-gz" else tmp_path / "d" / "FashionMNIST" / "raw"
    images, labels = _write_idx(folder, compress=layout == "flat-gz")
    x, y = fm.load_fashion_mnist(train=True, data_dir=tmp_path / "d")
    assert np.array_equal(y, labels) and np.allclose(x[:, 0] * 255, images)


def test_fashion_mnist_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("ART_HE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ART_HE_DATA", str(tmp_path / "env"))
    _, labels = _write_idx(tmp_path / "env", seed=3)
    assert np.array_equal(fm.load_fashion_mnist(train=False)[1], labels)


def test_fashion_mnist_missing_names_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("ART_HE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ART_HE_DATA", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nowhere")

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(fm, "FashionMNIST", offline)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fm.load_fashion_mnist(data_dir=tmp_path / "empty")


def test_one_data_root_rule(tmp_path, monkeypatch):
    """``data_dir``, else ``$ART_HE_DATA``, else the cache; ``load_dataset`` refuses a data_dir that is not there."""
    from art_he.data.layout import data_root

    monkeypatch.setenv("ART_HE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ART_HE_DATA", raising=False)
    assert data_root() == tmp_path / "cache"
    monkeypatch.setenv("ART_HE_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env" and data_root(tmp_path / "given") == tmp_path / "given"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")


def _write_cifar(root, n=10, seed=0):
    return write_cifar10(root, n, seed)


def test_cifar10_reads_real_pickle_format(tmp_path):
    batches = _write_cifar(tmp_path)
    x, y = load_cifar10(train=False, data_dir=tmp_path, verify=False)
    data, labels = batches["test_batch"]
    assert x.shape == (10, 3, 32, 32) and y.tolist() == labels
    assert np.allclose(x * 255, data.reshape(10, 3, 32, 32))
    x_train, _ = load_cifar10(train=True, data_dir=tmp_path, verify=False)
    assert len(x_train) == 50
    augmented = cifar10_dataset(train=True, data_dir=tmp_path, augment=True, verify=False)
    assert tuple(augmented[0][0].shape) == (3, 32, 32)


def test_cifar_reader_without_md5_needs_only_the_required_files(tmp_path):
    from art_he.data.cifar_reader import local_cifar_class

    batches = _write_cifar(tmp_path)
    reader = local_cifar_class("cifar10")
    assert reader(str(tmp_path), train=False, verify=False).classes == [f"c{i}" for i in range(10)]  # re-packed meta
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").unlink()
    with pytest.raises(RuntimeError, match="not found or corrupted"):  # by default every file of the release
        reader(str(tmp_path), train=False, verify=False)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    data = reader(str(tmp_path), train=False, verify=False, required=["test_batch"])
    assert data.classes == [] and data.targets == batches["test_batch"][1]


def test_cifar10_md5_check_refuses_foreign_files(tmp_path, monkeypatch):
    from art_he.errors import MissingFileError, UserError

    monkeypatch.setattr("torchvision.datasets.CIFAR10.download", lambda self: (_ for _ in ()).throw(OSError("off")))
    with pytest.raises(MissingFileError, match="cifar-10-batches-py.*OSError: off") as error:  # keeps the cause
        load_cifar10(train=False, data_dir=tmp_path)
    assert f"into {tmp_path}" in str(error.value) and "--data-dir" not in str(error.value)  # it was given
    assert "art-he data fashion-as-cifar10" in str(error.value)
    monkeypatch.setenv("ART_HE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ART_HE_DATA", raising=False)
    with pytest.raises(MissingFileError, match="pass --data-dir D"):
        load_cifar10(train=False)
    _write_cifar(tmp_path)
    with pytest.raises(UserError, match="cifar-10-batches-py.*verify=False"):  # a local copy is never replaced
        load_cifar10(train=False, data_dir=tmp_path)


def test_synthetic_and_unknown():
    x, y = load_dataset("synthetic")
    assert x.shape[1:] == dataset_info("synthetic").input_shape and x.min() >= 0 and x.max() <= 1
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("mnist-9000")


def _write_cifar100(root, n=8, seed=0):
    """CIFAR-100 as torchvision reads it: ``cifar-100-python/{train,test,meta}`` pickles with fine and coarse
    labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {}
    for name in ("train", "test"):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": fine, "coarse_labels": [y // 5 for y in fine]}, f)
        batches[name] = (data, fine)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)],
                     "coarse_label_names": [f"c{i}" for i in range(20)]}, f)
    return batches


def test_cifar100_reads_the_real_pickle_format_and_trains_one_step(tmp_path, capsys):
    from art_he.cli import main

    batches = _write_cifar100(tmp_path)
    x, y = load_dataset("cifar100", train=False, data_dir=tmp_path, verify=False)
    data, fine = batches["test"]
    assert x.shape == (8, 3, 32, 32) and y.tolist() == fine  # the fine labels
    assert np.array_equal((x * 255).round().astype(np.uint8).reshape(8, -1), data)
    assert dataset_info("cifar100").nb_classes == 100
    with pytest.raises(ValueError, match="cifar-100-python"):  # md5 check on: a foreign copy is refused
        load_dataset("cifar100", train=False, data_dir=tmp_path)
    assert main(["train", "--dataset", "cifar100", "--data-dir", str(tmp_path), "--no-verify-data", "--model",
                 "wrn-10-1", "--epochs", "1", "--batch-size", "8", "--max-iter", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_save_cifar10_writes_what_the_reader_reads_and_refuses_other_shapes(tmp_path):
    from art_he.data import save_cifar10
    from art_he.errors import UserError

    rng = np.random.default_rng(0)
    x, y = rng.random((10, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 10)
    save_cifar10(tmp_path, (x, y), (x[:4], y[:4]))
    x_read, y_read = load_cifar10(train=False, data_dir=tmp_path, verify=False)
    assert np.abs(x_read - x[:4]).max() <= 0.5 / 255 + 1e-6 and y_read.tolist() == y[:4].tolist()
    assert len(load_cifar10(train=True, data_dir=tmp_path, verify=False)[1]) == 10
    with pytest.raises(UserError, match=r"\(N, 3, 32, 32\)"):
        save_cifar10(tmp_path / "bad", (x[:, :1], y), (x[:4], y[:4]))


def test_fashion_mnist_as_cifar10_files(tmp_path, fmnist_test, capsys):
    from art_he.cli import main

    out = tmp_path / "data"
    assert main(["data", "fashion-as-cifar10", str(out), "--n-train", "20", "--n-test", "10"]) == 0
    assert "--dataset cifar10 --data-dir" in capsys.readouterr().out
    x, y = load_dataset("cifar10", train=False, data_dir=out, verify=False)
    grey = fmnist_test[0][:10, 0]
    assert x.shape == (10, 3, 32, 32) and y.tolist() == fmnist_test[1][:10].tolist()
    assert np.abs(x[:, :, 2:30, 2:30] - grey[:, None]).max() < 1e-6 and x[:, :, :2].max() == 0  # padded, exact
    assert len(load_dataset("cifar10", train=True, data_dir=out, verify=False)[1]) == 20
    with open(out / "cifar-10-batches-py" / "batches.meta", "rb") as f:
        assert pickle.load(f)["label_names"][0] == "T-shirt/top"
    assert main(["data", "fashion-as-cifar10", str(out)]) == 2  # never written over
