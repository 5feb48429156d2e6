"""DDP scaling on CPU (gloo): the same PGD-AT run through ``torchrun -m art_he train`` with 1 and 2 processes
(one thread each), and one process with 2 threads for reference. The global batch is the same in all runs.
    python benchmarks/ddp_scaling.py [--subset 4096] [--epochs 2] [--batch-size 128] [--json FILE]
On a GPU machine use ``--nproc 1,2,4,8`` (one process per GPU; NCCL is picked automatically).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import report


def run(nproc: int, threads: int, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
           str(29500 + nproc + 10 * threads), "-m", "art_he", "train", "--dataset", "fashion-mnist",
           "--subset", str(args.subset), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--framework", args.framework, "--head", args.head, "--width", str(args.width), "--max-iter",
           str(args.max_iter), "--precision", "fp32", "--schedule", "constant", "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]  # the last epoch: warm caches, no start-up
    result = {"processes": nproc, "threads_per_process": threads, "epoch_s": last["time_s"],
              "images_per_s": last["images_per_s"], "loss": last["loss"], "adv_acc": last["adv_acc"]}
    print(result, flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--subset", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--framework", default="pgd")
    p.add_argument("--head", default="he")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--max-iter", type=int, default=7)
    p.add_argument("--nproc", default="1,2", help="process counts, one thread each")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (int(v) for v in args.nproc.split(",")):
            results.append(run(nproc, 1, args, Path(tmp) / f"p{nproc}"))
        results.append(run(1, 2, args, Path(tmp) / "t2"))
    base = results[0]["images_per_s"]
    report("DDP scaling (CPU, gloo)", {
        "subset": args.subset, "global_batch": args.batch_size, "framework": args.framework, "head": args.head,
        "pgd_steps": args.max_iter, "cpu_cores": os.cpu_count(), "runs": results,
        "speedup_over_1_process": [round(r["images_per_s"] / base, 2) for r in results],
    }, args.json)


if __name__ == "__main__":
    main()
