"""Threads on a shared CPU: the same ``art-he train`` command on an idle machine and with one core kept busy by a
spinning process, with art-he's default threads, with ``--threads 1``, and with torch's own defaults (active
OpenMP waiting, what art-he did before ``art_he.threads``), in one run.

    python benchmarks/threads.py [--subset 1024] [--max-iter 7] [--repeats 2] [--json benchmarks/results/threads.json]

Each variant runs ``--repeats`` times, the variants interleaved; the figure is the training epoch's images/s from
``metrics.jsonl`` (start-up not included). The load average before each run is recorded: other jobs on the machine
change the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report

#: torch imported before art-he's CLI starts: OpenMP is loaded without the passive wait policy
TORCH_FIRST = "import sys, torch; from art_he.cli import main; sys.exit(main(sys.argv[1:]))"
VARIANTS = {
    "art-he default": ([sys.executable, "-m", "art_he"], []),
    "--threads 1": ([sys.executable, "-m", "art_he"], ["--threads", "1"]),
    "torch defaults (before)": ([sys.executable, "-c", TORCH_FIRST], []),
}


def run_once(prefix: list[str], extra: list[str], args, busy: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "MKL_"))}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(1.0 if busy else 0.0)
        load = os.getloadavg()
        with tempfile.TemporaryDirectory() as tmp:
            command = [*prefix, "train", "--subset", str(args.subset), "--max-iter", str(args.max_iter),
                       "--out", f"{tmp}/run", "--quiet", *extra]
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode:
                raise RuntimeError(done.stderr[-3000:])
            epoch = json.loads((Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return {"images_per_s": epoch["images_per_s"], "wall_s": round(wall, 1),
            "loadavg_before": [round(v, 2) for v in load]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=1024)
    p.add_argument("--max-iter", type=int, default=7)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from art_he.threads import usable_cores

    runs: dict[str, dict[str, list[dict]]] = {state: {name: [] for name in VARIANTS} for state in ("idle", "busy")}
    names = list(VARIANTS)
    for r in range(args.repeats):
        for state in ("idle", "busy"):
            for name in names[r % len(names):] + names[: r % len(names)]:
                result = run_once(*VARIANTS[name], args, busy=state == "busy")
                runs[state][name].append(result)
                print(state, name, result, flush=True)
    medians = {state: {name: statistics.median(r["images_per_s"] for r in results)
                       for name, results in variants.items()} for state, variants in runs.items()}
    lines = ["| images/s (median) | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    lines += [f"| {state} | " + " | ".join(f"{medians[state][n]:.1f}" for n in names) + " |" for state in medians]
    print("\n".join(lines))
    report("Threads on a shared CPU", {
        "command": f"art-he train --subset {args.subset} --max-iter {args.max_iter} [--threads 1]",
        "busy": "one other process spinning (python -c 'while True: pass')", "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "usable_cores": usable_cores(),
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()], "median_images_per_s": medians, "runs": runs,
    }, args.json)


if __name__ == "__main__":
    main()
