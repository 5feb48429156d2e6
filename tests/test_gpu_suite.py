"""``benchmarks/gpu_suite.py --tiny``: every section of the GPU suite runs on the CPU at toy sizes and writes its one
table and its JSON (device, torch, date, rows, no errors) under names a GPU run never uses; its training rows
become a throughput table that ``art-he reproduce`` plans with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from art_he.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_suite")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SUITE), "--tiny", "--out", str(out), "--work", str(out / "work")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "gpu_suite_tiny.json").read_text()), done.stdout


def test_tiny_runs_every_section_and_writes_one_table(tiny):
    out, payload, printed = tiny
    assert not (out / "gpu_suite.json").exists()  # a CPU run never takes the GPU results' place
    meta = payload["meta"]
    assert meta["mode"] == "tiny" and meta["device"] == "cpu" and meta["torch"] and meta["date"][:2] == "20"
    assert meta["peak_tflops"] > 0 and len(meta["loadavg"]) == 3 and payload["errors"] == []
    rows = payload["rows"]
    sections = [r["section"] for r in rows]
    assert sections.count("train") == 2 * 7  # two models: fp32 plain, then bf16 and the captured path x 3 heads
    assert sections.count("art") == 3 and sections.count("table3") == 1 and sections.count("eval") == 2
    train = [r for r in rows if r["section"] == "train"]
    assert all(r["images_per_s"] > 0 and 0 < r["mfu"] for r in train)
    assert {r["path"] for r in train} == {"eager", "fx"}
    assert all(r["vs_plain"] > 0 for r in train if r["head"] != "plain")
    assert all(r["images_per_s"] > 0 and r["time_s"] > 0 for r in rows)
    table = (out / "gpu_suite_tiny.md").read_text()
    assert table in printed and table.count("\n| ") == len(rows) + 2  # the header, its rule, a line per row
    assert meta["device_name"] in table and meta["torch"] in table


def test_its_training_rows_make_the_plans_throughput_table(tiny, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_suite

    from art_he.reproduce import estimate

    table = gpu_suite.plan_table(tiny[1])
    assert table["gpu"] == tiny[1]["meta"]["device_name"] and len(table["rows"]) == 14
    monkeypatch.setattr(estimate, "measured_throughput", lambda: table)
    cfg = TrainConfig(dataset="cifar10", model="wrn-10-1", head="he", max_iter=1).resolved()
    speed = estimate.training_speed(cfg)
    row = next(r for r in table["rows"] if r["model"] == "wrn-10-1" and r["head"] == "he" and r["path"] == "eager"
               and r["precision"] == "bf16")
    assert speed.measured and estimate.images_per_second(cfg) == pytest.approx(row["images_per_s"])


def test_update_plan_takes_gpu_measurements_only(tmp_path):
    done = subprocess.run([sys.executable, str(SUITE), "--tiny", "--update-plan", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2 and "--update-plan takes GPU measurements only" in done.stderr
