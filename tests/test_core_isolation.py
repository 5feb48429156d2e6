"""The HE core changes nothing of other libraries: ``import art_he``, training a model and evaluating it (``art-he
train``, ``art-he eval --suite quick``, locally corrupted images) import no RobustBench, AutoAttack or
imagecorruptions module, alias none, and leave a user's own RobustBench tables and imagecorruptions as they were.
Each case runs in a fresh interpreter, so that nothing another test imported counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: top-level modules the core must neither import nor alias
FOREIGN = ("robustbench", "autoattack", "imagecorruptions", "pkg_resources")

TRAIN_AND_EVALUATE = """
    from art_he.cli import main

    run = {run!r}
    assert main(["train", "--dataset", "fashion-mnist", "--subset", "128", "--width", "4", "--epochs", "1",
                 "--max-iter", "1", "--batch-size", "64", "--head", "he", "--out", run, "--quiet"]) == 0
    assert main(["eval", run, "--suite", "quick", "--n", "8", "--max-steps", "2", "--quiet"]) == 0
    import numpy as np
    from art_he.evaluation import corrupt_images, evaluate_corruptions
    from art_he.runs import load_run

    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    for corruption in ("fog", "glass_blur", "frost"):  # the three that need art_he's fixes to imagecorruptions
        assert corrupt_images(x, corruption, 2).shape == x.shape
    _, classifier, _ = load_run(run, device="cpu")
    rows = evaluate_corruptions(classifier, dataset="fashion-mnist", x=x, y=np.array([0, 1]), corruptions=["fog"],
                                severities=[1], cache=False)
    assert rows[-1].attack == "mca"
"""


def run_python(blocks: list[str], *path_first: Path) -> dict:
    """Run the code ``blocks`` (each dedented) in a fresh interpreter; return the JSON of its last line."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path_first), str(ROOT), env.get("PYTHONPATH", "")])
    code = "\n".join(textwrap.dedent(block) for block in blocks)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_and_evaluating_import_no_foreign_module(tmp_path):
    result = run_python(["""
        import json, sys
        import art_he
    """, TRAIN_AND_EVALUATE.format(run=str(tmp_path / "run")), f"""
        foreign = sorted(m for m in sys.modules if m.split(".")[0] in {FOREIGN!r})
        print(json.dumps({{"foreign": foreign, "art_he": sorted(m for m in sys.modules if m.startswith("art_he."))}}))
    """])
    assert result["foreign"] == []
    assert [m for m in result["art_he"] if m.startswith("art_he.robustbench")] == []
    assert "art_he.evaluation.imagecorruptions" in result["art_he"]  # the corruptions did run


def test_a_users_robustbench_and_imagecorruptions_stay_as_they_were(tmp_path):
    """The user imports RobustBench (with fra31's ``autoattack``, here a stand-in with its two names) and
    imagecorruptions themselves; after art_he trained and evaluated, every table entry and module global is the
    object it was, and ``autoattack`` is still theirs."""
    fake = tmp_path / "site" / "autoattack"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("MARK = 'fra31'\nclass AutoAttack:\n    pass\n")
    (fake / "state.py").write_text("class EvaluationState:\n    pass\n")
    result = run_python([f"""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import robustbench, robustbench.data, robustbench.eval, robustbench.utils
        import imagecorruptions, imagecorruptions.corruptions as ic

        def snapshot():
            flat = {{}}
            def walk(prefix, table):
                for key, value in table.items():
                    if isinstance(value, dict):
                        walk(f"{{prefix}}[{{key}}]", value)
                    else:
                        flat[f"{{prefix}}[{{key}}]"] = id(value)
            walk("corruption", robustbench.data.CORRUPTION_DATASET_LOADERS)
            walk("clean", robustbench.data._clean_dataset_loaders)
            walk("zoo", robustbench.utils.all_models)
            walk("imagecorruptions", {{k: v for k, v in vars(ic).items() if not k.startswith("__")}})
            walk("modules", {{m: sys.modules[m] for m in sys.modules if m.split(".")[0] in {FOREIGN!r}}})
            return flat

        before = snapshot()
        import art_he
    """, TRAIN_AND_EVALUATE.format(run=str(tmp_path / "run")), """
        after = snapshot()
        import autoattack
        print(json.dumps({"entries": len(before), "changed": sorted(k for k in before if after.get(k) != before[k]),
                          "added": sorted(set(after) - set(before)), "autoattack": autoattack.MARK}))
    """], tmp_path / "site")
    assert result["entries"] > 100  # the snapshot saw the tables
    assert result["changed"] == [] and result["added"] == []
    assert result["autoattack"] == "fra31"
