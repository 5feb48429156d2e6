"""RobustBench and the GitHub AutoAttack API in this environment (:mod:`art_he.robustbench`): the adapter and its
place as ``autoattack`` during RobustBench's import only, the loader fixes inside :func:`fixed_loaders` only (CIFAR-10-C
in the real ``.npy`` layout, clean CIFAR-10 batches), the corrupted sets as RobustBench reads them, ``benchmark()``,
and the guards that refuse when upstream changed shape."""

import ast
import importlib.util
import inspect
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from art_he import HEPyTorchClassifier, to_hypersphere, upstream
from art_he.data.layout import CLEAN_DIRS, MissingDataError
from art_he.evaluation import as_torch_module, load_corrupted
from art_he.evaluation import imagecorruptions as ic_copy
from art_he.robustbench.autoattack_api import AutoAttack, pyautoattack_problems
from art_he.robustbench.imports import import_robustbench, stand_in_pkg_resources
from art_he.robustbench.loaders import fixed_loaders
from art_he.upstream import UntestedUpstreamWarning, UpstreamChangedError

ROOT = Path(__file__).resolve().parents[1]
ROWS = 10000  # images per severity in CIFAR-10-C


def tiny_model(channels: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * 32 * 32, 32), nn.ReLU(), nn.Linear(32, 10))
    return to_hypersphere(model, scale=15.0, margin=0.2).eval()


def run_python(code: str, *path_first: Path) -> str:
    """Run ``code`` in a fresh interpreter with ``path_first`` ahead of ``PYTHONPATH``; return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path_first), str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def write_package(folder: Path, files: dict) -> Path:
    """A package ``autoattack`` under ``folder`` with ``files`` (name -> source)."""
    package = folder / "autoattack"
    package.mkdir(parents=True)
    for name, source in files.items():
        (package / name).write_text(textwrap.dedent(source))
    return folder


def test_import_robustbench_lends_the_adapter_for_the_import_only():
    """RobustBench binds the adapter as its ``AutoAttack``; afterwards ``import autoattack`` fails as it would
    without art_he (fra31's package is not installed), and no stand-in is left in ``sys.modules``."""
    out = run_python("""
        import sys
        from art_he.robustbench import import_robustbench
        robustbench = import_robustbench()
        from art_he.robustbench import autoattack_api
        from art_he.robustbench.autoattack_api.state import EvaluationState
        assert robustbench.eval.AutoAttack is autoattack_api.AutoAttack
        assert robustbench.eval.EvaluationState is EvaluationState
        assert [m for m in sys.modules if m.split(".")[0] == "autoattack"] == []
        try:
            import autoattack
        except ModuleNotFoundError:
            print("no autoattack")
    """)
    assert out == "no autoattack"


def test_import_robustbench_keeps_an_installed_autoattack(tmp_path):
    """fra31's package (here a stand-in with its two names) is used, not replaced."""
    fake = write_package(tmp_path, {"__init__.py": "MARK = 'fra31'\nclass AutoAttack:\n    pass\n",
                                    "state.py": "class EvaluationState:\n    pass\n"})
    out = run_python(f"""
        import sys
        from art_he.robustbench import import_robustbench
        rb = import_robustbench()
        import autoattack
        assert rb.eval.AutoAttack is autoattack.AutoAttack
        assert rb.eval.EvaluationState is sys.modules["autoattack.state"].EvaluationState
        assert sys.modules["autoattack.state"].__file__.startswith({str(fake)!r})
        print(autoattack.MARK)
    """, fake)
    assert out == "fra31"


@pytest.mark.parametrize("files", [{"__init__.py": 'ADAPTER = "art_he"\nraise RuntimeError("imported")\n'}, {}],
                         ids=["stale-adapter-copy", "bare-folder"])
def test_what_is_not_another_autoattack_is_shadowed(tmp_path, files):
    """An old top-level copy of the adapter (an older art_he's, e.g. through a stale editable install) and a bare
    folder named ``autoattack`` (a namespace package) are not someone else's ``autoattack``: neither is used."""
    stale = write_package(tmp_path, files)
    out = run_python("""
        from art_he.robustbench import import_robustbench
        rb = import_robustbench()
        from art_he.robustbench import autoattack_api
        assert rb.eval.AutoAttack is autoattack_api.AutoAttack
        print("ours")
    """, stale)
    assert out == "ours"


def test_the_distribution_has_no_top_level_autoattack():
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(where=str(ROOT), include=config["include"], exclude=config.get("exclude", ()))
    assert "art_he.robustbench.autoattack_api" in packages
    assert [p for p in packages if p.split(".")[0] != "art_he"] == []
    assert not (ROOT / "autoattack").exists()


def test_adapter_speaks_the_github_api(tmp_path):
    model = tiny_model()
    x, y = torch.rand(6, 3, 32, 32), torch.randint(0, 10, (6,))
    log = tmp_path / "aa.log"
    aa = AutoAttack(model, norm="Linf", eps=8 / 255, version="custom", attacks_to_run=["apgd-ce"], device="cpu",
                    log_path=str(log), seed=0)
    assert aa.attacks_to_run == ["apgd-ce"]
    aa.apgd.n_iter = 3  # attributes read and written through to pyautoattack
    assert aa._aa.apgd.n_iter == 3
    x_adv = aa.run_standard_evaluation(x, y, bs=4)
    assert isinstance(x_adv, torch.Tensor) and x_adv.shape == x.shape
    assert float((x_adv - x).abs().max()) <= 8 / 255 + 1e-6
    x_adv2, y_adv = aa.run_standard_evaluation(x, y, bs=4, return_labels=True)
    assert y_adv.shape == y.shape
    assert "robust accuracy" in log.read_text()
    with torch.no_grad():
        assert aa.clean_accuracy(x, y, bs=4) == pytest.approx(float((model(x).argmax(1) == y).float().mean()))
    state = tmp_path / "state.json"
    aa.run_standard_evaluation(x, y, bs=4, state_path=state)
    from art_he.robustbench.autoattack_api.state import EvaluationState

    assert EvaluationState.from_disk(state).robust_flags.shape == (6,)
    individual = aa.run_standard_evaluation_individual(x, y, bs=6)
    assert set(individual) == {"apgd-ce"} and individual["apgd-ce"].shape == x.shape


def test_adapter_rejects_what_github_autoattack_rejects():
    with pytest.raises(ValueError, match="attacks_to_run will be overridden"):
        AutoAttack(tiny_model(), version="standard", attacks_to_run=["apgd-ce"], device="cpu")
    with pytest.raises(ValueError, match="custom"):
        AutoAttack(tiny_model(), version="custom", device="cpu")
    aa = AutoAttack(tiny_model(), version="standard", device="cpu")
    assert aa.attacks_to_run == ["apgd-ce", "apgd-t", "fab-t", "square"]


def write_cifar10c(root: Path, corruptions, n_written: int = 8) -> dict:
    """CIFAR-10-C in its real layout, uint8 (50000, 32, 32, 3) per corruption, written sparsely (only the first
    ``n_written`` rows of each severity hold data), plus labels.npy (50000,)."""
    folder = root / "CIFAR-10-C"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.tile(rng.integers(0, 10, ROWS), 5).astype(np.uint8)
    np.save(folder / "labels.npy", labels)
    written = {}
    for corruption in corruptions:
        arr = np.lib.format.open_memmap(folder / f"{corruption}.npy", mode="w+", dtype=np.uint8,
                                        shape=(5 * ROWS, 32, 32, 3))
        for s in range(1, 6):
            block = rng.integers(0, 256, (n_written, 32, 32, 3), dtype=np.uint8)
            arr[(s - 1) * ROWS : (s - 1) * ROWS + n_written] = block
            written[(corruption, s)] = block
        arr.flush()
        del arr
    return {"labels": labels, "images": written}


@pytest.fixture(scope="module")
def cifar10c(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, write_cifar10c(root, ["fog", "gaussian_noise"])


def test_load_cifar10c_reads_the_real_layout_as_robustbench_does(cifar10c):
    root, written = cifar10c
    rb = import_robustbench()
    for corruption, severity in (("fog", 1), ("gaussian_noise", 4)):
        x, y = load_corrupted("cifar10", corruption, severity, root, n=8)
        expected = written["images"][(corruption, severity)].transpose(0, 3, 1, 2).astype(np.float32) / 255
        assert x.shape == (8, 3, 32, 32) and np.array_equal(x, expected)
        assert np.array_equal(y, written["labels"][:8])
        x_rb, y_rb = rb.data.load_cifar10c(8, severity, str(root), False, [corruption])
        assert x.dtype == x_rb.numpy().dtype and np.array_equal(x, x_rb.numpy())
        assert y.dtype == np.int64 and np.array_equal(y, y_rb.numpy())


def test_robustbench_corruption_loader_takes_prepr_inside_fixed_loaders(cifar10c):
    root, written = cifar10c
    rb = import_robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    table = rb.data.CORRUPTION_DATASET_LOADERS[BenchmarkDataset.cifar_10]
    with pytest.raises(TypeError):  # the upstream defect benchmark() runs into
        table[ThreatModel.corruptions](4, 2, str(root), False, ["fog"], prepr=None)
    with fixed_loaders():
        loader = table[ThreatModel.corruptions]
        assert loader.__wrapped__ is rb.data.load_cifar10c
        x, y = loader(4, 2, str(root), False, ["fog"], prepr=rb.data.PREPROCESSINGS["Res224"])
    assert table[ThreatModel.corruptions] is rb.data.load_cifar10c
    assert tuple(x.shape) == (4, 3, 32, 32)
    assert np.array_equal(x.numpy(), written["images"][("fog", 2)][:4].transpose(0, 3, 1, 2) / np.float32(255))


def loader_tables(rb) -> dict:
    """Every entry of RobustBench's loader tables and model zoo, by path: what the user's own calls see."""
    flat = {}

    def walk(prefix, table):
        for key, value in table.items():
            if isinstance(value, dict):
                walk(f"{prefix}[{getattr(key, 'value', key)}]", value)
            else:
                flat[f"{prefix}[{getattr(key, 'value', key)}]"] = value

    walk("CORRUPTION_DATASET_LOADERS", rb.data.CORRUPTION_DATASET_LOADERS)
    walk("_clean_dataset_loaders", rb.data._clean_dataset_loaders)
    walk("all_models", rb.utils.all_models)
    return flat


def test_fixed_loaders_give_the_users_tables_back(tmp_path):
    """Inside the block the clean CIFAR loaders read local batches without md5 checks; after it (also after an
    error) every entry is RobustBench's own again, so the user's later calls keep RobustBench's md5 checks."""
    rb = import_robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset

    before = loader_tables(rb)
    assert rb.data._clean_dataset_loaders[BenchmarkDataset.cifar_10] is rb.data.load_cifar10
    x, y = write_cifar10_test_batch(tmp_path, 6)
    with fixed_loaders(local_data=True):
        changed = {k for k, v in loader_tables(rb).items() if before[k] is not v}
        x_rb, y_rb = rb.data.load_clean_dataset(BenchmarkDataset.cifar_10, 6, str(tmp_path),
                                                 rb.data.PREPROCESSINGS[None])
    assert changed == {f"CORRUPTION_DATASET_LOADERS[{b}][corruptions]" for b in ("cifar10", "cifar100")} | {
        f"_clean_dataset_loaders[{b}]" for b in ("cifar10", "cifar100")}
    assert np.array_equal(x_rb.numpy(), x) and np.array_equal(y_rb.numpy(), y)
    assert loader_tables(rb) == before and all(loader_tables(rb)[k] is v for k, v in before.items())
    with pytest.raises(RuntimeError, match="inside"), fixed_loaders(local_data=False):
        raise RuntimeError("inside")
    assert all(loader_tables(rb)[k] is v for k, v in before.items())
    from art_he.robustbench import load_clean_cifar

    xs, _ = load_clean_cifar("cifar10", 4, tmp_path, rb.data.PREPROCESSINGS[None])
    assert np.array_equal(xs.numpy(), x[:4]) and all(loader_tables(rb)[k] is v for k, v in before.items())


def test_missing_corruption_files_name_the_layout(cifar10c, tmp_path):
    root, _ = cifar10c
    with pytest.raises(MissingDataError, match=r"CIFAR-10-C.*snow\.npy.*\(50000, 32, 32, 3\)"):
        load_corrupted("cifar10", "snow", 1, root, n=4)
    with pytest.raises(ValueError, match="labels.npy"):
        load_corrupted("cifar100", "fog", 1, tmp_path, n=4)
    with pytest.raises(FileNotFoundError, match="ImageNet-C.*<wnid>"):
        load_corrupted("imagenet", "fog", 1, tmp_path, n=4)


def test_imagenet_c_folders_load_as_robustbench_loads_them(tmp_path):
    robustbench = import_robustbench()
    ids = (Path(robustbench.__file__).parent / "helper_files" / "imagenet_test_image_ids.txt").read_text().split()
    severity_dir = tmp_path / "ImageNet-C" / "fog" / "3"
    for wnid in sorted({i.split("/")[0] for i in ids}):
        (severity_dir / wnid).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for rel in ids[:2]:
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(severity_dir / rel)
    x, y = load_corrupted("imagenet", "fog", 3, tmp_path, n=2)
    classes = sorted({i.split("/")[0] for i in ids})
    assert x.shape == (2, 3, 224, 224) and list(y) == [classes.index(i.split("/")[0]) for i in ids[:2]]
    x_rb, y_rb = robustbench.data.load_imagenetc(2, 3, str(tmp_path), False, ["fog"],
                                                 robustbench.data.PREPROCESSINGS["Res224"])
    assert np.array_equal(x, x_rb.numpy()) and np.array_equal(y, y_rb.numpy())


def write_cifar10_test_batch(root: Path, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": labels, "data": data}, f)
    return data.reshape(n, 3, 32, 32).astype(np.float32) / 255, np.array(labels)


def test_benchmark_runs_on_a_tiny_he_model(tmp_path):
    """``robustbench.eval.benchmark`` (standard AutoAttack through the adapter) on our model and 8 images."""
    rb = import_robustbench()
    before = loader_tables(rb)
    x, y = write_cifar10_test_batch(tmp_path, 8)
    model = tiny_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(25):  # fit the 8 images (not to saturation) so that there is something to attack
        opt.zero_grad()
        nn.functional.cross_entropy(15 * model(xt), yt).backward()
        opt.step()
    classifier = HEPyTorchClassifier(model.eval(), None, (3, 32, 32), 10, clip_values=(0.0, 1.0), device_type="cpu")
    module = as_torch_module(classifier)
    with fixed_loaders(local_data=True):
        clean, robust = rb.eval.benchmark(module, n_examples=8, dataset="cifar10", threat_model="Linf",
                                          eps=0.25, data_dir=str(tmp_path), device=torch.device("cpu"),
                                          batch_size=8, log_path=str(tmp_path / "aa.log"))
    assert all(loader_tables(rb)[k] is v for k, v in before.items())
    expected_clean = float((classifier.predict(x).argmax(1) == y).mean())
    assert clean == pytest.approx(expected_clean) and expected_clean >= 0.5
    assert 0.0 <= robust < clean
    assert "robust accuracy after APGD-CE" in (tmp_path / "aa.log").read_text()


def test_pkg_resources_stand_in_when_setuptools_lacks_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # what `import pkg_resources` sees with setuptools >= 82
    with stand_in_pkg_resources() as stood_in:
        import pkg_resources

        path = Path(pkg_resources.resource_filename("robustbench.loaders", "helper_files/imagenet_test_image_ids.txt"))
    assert stood_in and path.is_file()
    assert sys.modules["pkg_resources"] is None  # as before: the user's `import pkg_resources` still fails


# -- what the patches replace is still there: these fail when an upstream package changes shape -----------------


def names(func) -> list[str]:
    return list(inspect.signature(func).parameters)


def test_robustbench_still_has_the_loader_tables_we_fix():
    rb = import_robustbench()
    data, evaluation = rb.data, rb.eval
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    from art_he.evaluation.corruptions import CORRUPTIONS

    cifar = {BenchmarkDataset.cifar_10: data.load_cifar10c, BenchmarkDataset.cifar_100: data.load_cifar100c}
    assert evaluation.CORRUPTION_DATASET_LOADERS is data.CORRUPTION_DATASET_LOADERS  # patched in place
    assert evaluation.load_clean_dataset is data.load_clean_dataset
    for bench, upstream_loader in cifar.items():
        assert data.CORRUPTION_DATASET_LOADERS[bench][ThreatModel.corruptions] is upstream_loader
        assert names(upstream_loader) == ["n_examples", "severity", "data_dir", "shuffle", "corruptions", "_"]
        assert bench in data._clean_dataset_loaders
    for clean_loader in (data.load_cifar10, data.load_cifar100):  # the entries of _clean_dataset_loaders we replace
        assert names(clean_loader) == ["n_examples", "data_dir", "transforms_test"]
    assert "_clean_dataset_loaders[dataset](n_examples, data_dir, prepr)" in inspect.getsource(data.load_clean_dataset)
    assert "CORRUPTION_DATASET_LOADERS[dataset][threat_model](" in inspect.getsource(evaluation.corruptions_evaluation)
    assert names(data._load_dataset) == ["dataset", "n_examples"]
    assert set(data.CORRUPTIONS) == set(CORRUPTIONS)


def module_ast(package: str, *parts: str) -> list[ast.Module]:
    """The parsed sources of an installed package (all its .py files, or ``parts``), without importing it."""
    root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
    files = [root.joinpath(*parts)] if parts else sorted(root.rglob("*.py"))
    return [ast.parse(f.read_text(encoding="utf-8")) for f in files]


def test_imagecorruptions_still_has_the_globals_we_replace():
    import skimage.filters

    (tree,) = module_ast("imagecorruptions", "corruptions.py")
    imports = {(a.name, a.asname) for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    imports |= {(f"{n.module}.{a.name}", a.asname) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("numpy", "np") in imports and ("skimage.filters.gaussian", None) in imports
    uses_float_ = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "float_"
                   and isinstance(n.value, ast.Name) and n.value.id == "np"]
    multichannel = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id == "gaussian" and any(k.arg == "multichannel" for k in n.keywords)]
    assert uses_float_ and len(multichannel) == 3  # plasma_fractal; gaussian_blur and glass_blur (twice)
    functions = ic_copy.corruption_functions()
    assert functions["glass_blur"].__globals__["gaussian"].__wrapped__ is skimage.filters.gaussian
    assert "imagecorruptions.corruptions" not in sys.modules or sys.modules[
        "imagecorruptions.corruptions"].gaussian is skimage.filters.gaussian  # the installed module is not ours


def test_our_copy_of_imagecorruptions_corrupts_as_upstream_does():
    """Our copy's ``corrupt`` equals the installed ``imagecorruptions.corrupt`` (with the same fixes applied to
    the installed module for the comparison only, then taken back) pixel for pixel, colour and grey."""
    import imagecorruptions
    import imagecorruptions.corruptions as installed
    import skimage.filters

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (33, 34), dtype=np.uint8)]
    fixed = ic_copy.corruption_functions()
    saved = {name: getattr(installed, name) for name in ("np", "gaussian")}
    installed.np, installed.gaussian = fixed["fog"].__globals__["np"], fixed["glass_blur"].__globals__["gaussian"]
    try:
        for image in images:
            for corruption in ("fog", "glass_blur", "frost", "gaussian_noise"):
                np.random.seed(3)
                theirs = imagecorruptions.corrupt(image, severity=2, corruption_name=corruption)
                np.random.seed(3)
                assert np.array_equal(ic_copy.corrupt(image, corruption, 2), theirs), corruption
    finally:
        for name, value in saved.items():
            setattr(installed, name, value)
    assert installed.gaussian is skimage.filters.gaussian and installed.np is np


def test_pyautoattack_still_has_the_api_the_adapter_calls():
    import pyautoattack
    import pyautoattack.state

    def kinds(func):
        return {p.name: p.kind.name for p in inspect.signature(func).parameters.values()}

    cls = pyautoattack.AutoAttack
    assert kinds(cls.__init__) == {"self": "POSITIONAL_OR_KEYWORD", "model": "POSITIONAL_OR_KEYWORD",
                                   **dict.fromkeys(["attacks", "device", "eps", "norm", "seed", "version"],
                                                   "KEYWORD_ONLY")}
    run = kinds(cls.run_standard_evaluation)
    assert run["x_orig"] == run["y_orig"] == "POSITIONAL_ONLY"
    assert run["batch_size"] == run["state_path"] == "KEYWORD_ONLY"
    assert kinds(cls.run_standard_evaluation_individual)["batch_size"] == "KEYWORD_ONLY"
    assert names(cls.clean_accuracy) == ["self", "x_orig", "y_orig", "bs"]
    aa = cls(tiny_model(), device="cpu")
    from art_he.robustbench.autoattack_api import _FORWARDED

    assert [name for name in _FORWARDED if not hasattr(aa, name)] == []
    assert aa.logger.name == "auto-attack" and callable(aa._set_version)
    assert callable(pyautoattack.state.EvaluationState.from_disk)
    assert pyautoattack_problems() == []


def test_robustbench_and_imagecorruptions_use_only_resource_filename_from_pkg_resources():
    used = set()
    for tree in module_ast("robustbench") + module_ast("imagecorruptions"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "pkg_resources":
                used |= {a.name for a in node.names}
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "pkg_resources"):
                used.add(node.attr)
    assert used == {"resource_filename"}


def test_torchvision_cifar_still_has_what_the_local_reader_uses():
    from torchvision.datasets import CIFAR10, CIFAR100

    for cls, name in ((CIFAR10, "cifar10"), (CIFAR100, "cifar100")):
        assert cls.base_folder == CLEAN_DIRS[name] and {"filename", "key", "md5"} <= set(cls.meta)
        assert all(len(entry) == 2 for entry in cls.train_list + cls.test_list)
        assert names(cls._check_integrity) == ["self"] and names(cls.download) == ["self"]
        assert names(cls._load_meta) == ["self"]


# -- the guard: refuse when the shape changed, warn once on another version -----------------------------------------


@pytest.mark.parametrize("installed, requirement, expected", [
    ("1.1.1", "robustbench==1.1.1", True), ("1.1.1.post1", "robustbench==1.1.1", True),
    ("1.1.10", "robustbench==1.1.1", False), ("1.2.0", "robustbench==1.1.1", False),
    ("0.2.0", "pyautoattack>=0.2,<0.3", True), ("0.2.7", "pyautoattack>=0.2,<0.3", True),
    ("0.3.0", "pyautoattack>=0.2,<0.3", False), (None, "pyautoattack>=0.2,<0.3", False),
    ("81.0.0", "setuptools<82", True), ("82.0.0", "setuptools<82", False)])
def test_version_matching(installed, requirement, expected):
    assert upstream.satisfies(installed, requirement) is expected


def test_another_version_is_patched_with_one_warning(monkeypatch):
    monkeypatch.setattr(upstream, "_WARNED", set())
    monkeypatch.setattr(upstream, "installed_version", lambda dist: "1.2.0")
    expected = r"robustbench==1\.1\.1 and robustbench 1\.2\.0 is installed.*pip install 'robustbench==1\.1\.1'"
    with pytest.warns(UntestedUpstreamWarning, match=expected):
        upstream.guard("robustbench", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upstream.guard("robustbench", [])  # once per package and process


def test_fixes_refuse_when_upstream_changed_shape(monkeypatch, tmp_path):
    rb = import_robustbench()
    before = loader_tables(rb)
    monkeypatch.delattr(rb.data, "_clean_dataset_loaders")  # a RobustBench without the table the fix replaces
    with pytest.raises(UpstreamChangedError, match=r"robustbench .*_clean_dataset_loaders.*robustbench==1\.1\.1"):
        with fixed_loaders():
            pytest.fail("the block ran on a RobustBench of another shape")
    monkeypatch.undo()
    assert all(loader_tables(rb)[k] is v for k, v in before.items())

    moved = tmp_path / "imagecorruptions"  # an imagecorruptions whose corruptions.py no longer has `gaussian`
    moved.mkdir()
    source = (upstream.package_folder("imagecorruptions") / "corruptions.py").read_text()
    (moved / "corruptions.py").write_text(source.replace("from skimage.filters import gaussian\n", "\n"))
    monkeypatch.setattr(ic_copy, "package_folder", lambda name: moved)
    ic_copy.corruption_functions.cache_clear()
    try:
        with pytest.raises(UpstreamChangedError, match=r"imagecorruptions .*corruptions\.gaussian"):
            ic_copy.corruption_functions()
    finally:
        monkeypatch.undo()
        ic_copy.corruption_functions.cache_clear()

    class Positional:  # a constructor without the keyword-only arguments
        def __init__(self, model, norm="Linf", eps=0.3):
            pass

    problems = pyautoattack_problems(Positional)
    assert problems[0].startswith("AutoAttack(model, *,") and "AutoAttack._set_version" in problems
