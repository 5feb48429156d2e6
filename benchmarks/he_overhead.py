"""HE overhead per training step: HE/plain and m-HE/plain step time of PGD-AT on the quickstart's small CNN, PreAct
ResNet-18 and a WideResNet (issue 35's goal: <= 1.01 on every model; the paper reports +0.6 to +0.9 %).

Per model, three trainers (plain, HE, m-HE heads on the same body, same synthetic batch, same attack) are timed in
``--rounds`` rounds of ``--steps`` steps each, the order rotating every round; each round gives one HE/plain and one
m-HE/plain ratio of paired times (drift on a shared machine hits both sides of a pair alike), reported as the median
with a 95 % bootstrap interval. Where the time goes: ``head_us`` times the head and its losses alone, as one step
runs them (K attack passes, the clean pass, the update's pass with the weights' gradient) on features shaped like
the model's, many times over (small and steady, unlike whole steps on a shared machine); ``predicted`` is
``1 + (head_us(HE) - head_us(plain)) / step time(plain)``. ``--profile`` adds each head's step under the torch
profiler: the operators HE (m-HE) spends more self time in than plain.

    python benchmarks/he_overhead.py [--models small-cnn,preact-resnet18,wrn-16-4] [--batch 64] [--rounds 20]
        [--steps 1] [--max-iter 2] [--precision bf16] [--capture off] [--device cpu] [--profile] [--json FILE]

On a CPU use 1 thread (``OMP_NUM_THREADS=1``); the figures below and in ``results/he_overhead.json`` say which.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np
import torch
from _common import device_name, report, sync

from art_he import HEPyTorchClassifier
from art_he.models import build_model
from art_he.trainers import PGDATTrainer

HEADS = ("plain", "he", "mhe")
#: (input shape, eps, step, model keywords): the quickstart's setting for the small CNN, CIFAR's for the rest
SETTINGS = {"small-cnn": ((1, 28, 28), 0.1, 0.025, {"width": 16})}
CIFAR = ((3, 32, 32), 8 / 255, 2 / 255, {})


def trainers_for(model: str, args) -> tuple[dict[str, PGDATTrainer], torch.Tensor, torch.Tensor]:
    shape, eps, step, kwargs = SETTINGS.get(model, CIFAR)
    trainers = {}
    for head in HEADS:
        torch.manual_seed(0)
        net = build_model(model, in_channels=shape[0], head=head, **kwargs)
        classifier = HEPyTorchClassifier(net, None, shape, 10, torch.optim.SGD(net.parameters(), lr=0.01,
                                                                               momentum=0.9), clip_values=(0.0, 1.0),
                                         device=args.device)
        trainers[head] = PGDATTrainer(classifier, eps=eps, eps_step=step, max_iter=args.max_iter, seed=0,
                                      verbose=False, precision=args.precision, capture=args.capture)
    device = trainers["plain"].device
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand((args.batch, *shape), generator=gen, device=device)
    y = torch.randint(0, 10, (args.batch,), generator=gen, device=device)
    if trainers["plain"].channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return trainers, x, y


def paired_ratios(trainers, x, y, args) -> dict[str, list[float]]:
    device = trainers["plain"].device
    for trainer in trainers.values():
        for _ in range(3):  # past a captured step's warm-up and recording
            trainer.train_batch(x, y)
    times = {head: [] for head in HEADS}
    for r in range(args.rounds):
        for head in HEADS[r % 3:] + HEADS[: r % 3]:
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                trainers[head].train_batch(x, y)
            sync(device)
            times[head].append((time.perf_counter() - start) / args.steps)
    return times


def summary(times: dict[str, list[float]]) -> dict:
    rng = np.random.default_rng(0)
    out = {"median_step_s": {h: round(float(np.median(t)), 5) for h, t in times.items()}}
    for head in ("he", "mhe"):
        ratios = np.asarray(times[head]) / np.asarray(times["plain"])
        boot = np.median(rng.choice(ratios, (2000, len(ratios))), axis=1)
        out[f"{head}_over_plain"] = round(float(np.median(ratios)), 4)
        out[f"{head}_over_plain_ci95"] = [round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])]
    return out


def head_step(trainer: PGDATTrainer, layer: torch.nn.Module, z0: torch.Tensor, y: torch.Tensor, k: int) -> None:
    """What one step asks of the last layer and the losses: K attack passes, the clean pass, the update's pass."""
    objective = trainer.objective
    for _ in range(k):
        z = z0.clone().requires_grad_(True)
        with trainer.autocast():
            loss = objective.attack_loss(layer(z), y)
        torch.autograd.grad(loss, z)
    with torch.no_grad(), trainer.autocast():
        layer(z0).argmax(1)
    z = z0.clone().requires_grad_(True)
    with trainer.autocast():
        loss = objective.train_loss(layer(z), y)
    loss.backward()


def head_us(trainers, y, args, repeats: int = 200) -> dict[str, float]:
    """Microseconds per step of the last layer and the losses alone (see the module docstring), per head."""
    from art_he.heads import find_head

    out = {}
    for head, trainer in trainers.items():
        layer = find_head(trainer.model) or [m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)][-1]
        dtype = torch.bfloat16 if trainer.precision == "bf16" else torch.float32  # the body's output under autocast
        z0 = torch.randn(len(y), layer.in_features, device=trainer.device).to(dtype)
        times = []
        for i in range(repeats + 20):
            sync(trainer.device)
            start = time.perf_counter()
            head_step(trainer, layer, z0, y, args.max_iter)
            sync(trainer.device)
            if i >= 20:
                times.append(time.perf_counter() - start)
        out[head] = float(np.median(times)) * 1e6
    return out


def profile(trainers, x, y, top: int = 12) -> dict:
    """Self time (us) per operator of one step of each head, and the operators HE and m-HE spend more in."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.is_cuda else [])
    per_head = {}
    for head, trainer in trainers.items():
        totals: dict[str, float] = defaultdict(float)
        for _ in range(3):
            with torch_profile(activities=activities) as prof:
                trainer.train_batch(x, y)
                sync(x.device)
            for event in prof.key_averages():
                totals[event.key] += (event.self_device_time_total if x.is_cuda else event.self_cpu_time_total) / 3
        per_head[head] = totals
    out = {}
    for head in ("he", "mhe"):
        extra = {op: per_head[head].get(op, 0.0) - per_head["plain"].get(op, 0.0)
                 for op in set(per_head[head]) | set(per_head["plain"])}
        ranked = sorted(extra.items(), key=lambda kv: -kv[1])[:top]
        out[head] = {"total_us": round(sum(per_head[head].values()), 1),
                     "plain_total_us": round(sum(per_head["plain"].values()), 1),
                     "more_than_plain_us": {op: round(us, 1) for op, us in ranked}}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="small-cnn,preact-resnet18,wrn-16-4")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--max-iter", type=int, default=2)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--capture", default="off")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    results = {}
    for model in args.models.split(","):
        trainers, x, y = trainers_for(model, args)
        results[model] = summary(paired_ratios(trainers, x, y, args))
        cost = head_us(trainers, y, args)
        plain_s = results[model]["median_step_s"]["plain"]
        results[model]["head_us"] = {h: round(v, 1) for h, v in cost.items()}
        results[model]["predicted"] = {f"{h}_over_plain": round(1 + (cost[h] - cost["plain"]) / (plain_s * 1e6), 4)
                                       for h in ("he", "mhe")}
        if args.profile:
            results[model]["profile"] = profile(trainers, x, y)
        print(model, {k: v for k, v in results[model].items() if k != "profile"}, flush=True)
    report("HE overhead per PGD-AT step (paired, interleaved)", {
        "device": device_name(torch.device(args.device)), "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "batch": args.batch, "pgd_steps": args.max_iter,
        "precision": args.precision, "capture": args.capture, "rounds": args.rounds, "steps_per_round": args.steps,
        "loadavg": list(os.getloadavg()), "goal": "<= 1.01", "models": results,
    }, args.json)


if __name__ == "__main__":
    main()
