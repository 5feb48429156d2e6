"""``art-he``: quickstart, train, eval (``python -m art_he`` and ``torchrun -m art_he`` too)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection

from art_he.errors import UserError


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from art_he.data import DATASETS
    from art_he.models import MODELS
    from art_he.runs import SCHEDULES

    p.add_argument("--dataset", choices=sorted(DATASETS), default="fashion-mnist")
    p.add_argument("--framework", choices=["pgd", "alp", "trades", "free", "fast"], default="pgd")
    p.add_argument("--head", choices=["plain", "he", "mhe"], default="plain")
    p.add_argument("--model", choices=sorted(MODELS), default=None, help="default: the dataset's usual model")
    p.add_argument("--width", type=int, default=None, help="small-cnn width (channels of the first conv)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128, help="global batch size (over all DDP processes)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="LR schedule (default: cyclic for --framework fast, else multistep x0.1 at 75%% and 90%%)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images")
    p.add_argument("--val-n", type=int, default=0, help="validate on the first N test images after each epoch")
    p.add_argument("--scale", type=float, default=None, help="HE scale s (default 15)")
    p.add_argument("--margin", type=float, default=None, help="HE margin m (default 0.2 for he, 0.1 for mhe)")
    p.add_argument("--eps", type=float, default=None, help="Linf radius (default: 0.1 fashion-mnist, 8/255 cifar10)")
    p.add_argument("--eps-step", type=float, default=None)
    p.add_argument("--max-iter", type=int, default=None, help="PGD steps of the inner attack (default 10)")
    p.add_argument("--num-random-init", type=int, default=None)
    p.add_argument("--alpha", type=float, default=None, help="ALP: weight of the clean term (default 0.5)")
    p.add_argument("--pairing-weight", type=float, default=None, help="ALP: logit-pairing weight lambda")
    p.add_argument("--beta", type=float, default=None, help="TRADES: KL weight (default 6)")
    p.add_argument("--replays", type=int, default=None, help="FreeAT: minibatch replays m (default 4)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--sync-batchnorm", action="store_true", help="SyncBatchNorm under DDP")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", required=True, help="run directory to write (refused if it holds a run already)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--quiet", action="store_true")


def _train(args: argparse.Namespace) -> int:
    from art_he.runs import TrainConfig, train_run

    model_kwargs = {"width": args.width} if args.width is not None else {}
    schedule = args.schedule or ("cyclic" if args.framework == "fast" else "multistep")
    cfg = TrainConfig(
        dataset=args.dataset, framework=args.framework, head=args.head, model=args.model, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        schedule=schedule, seed=args.seed, subset=args.subset, val_n=args.val_n, scale=args.scale,
        margin=args.margin, model_kwargs=model_kwargs, eps=args.eps, eps_step=args.eps_step,
        max_iter=args.max_iter, num_random_init=args.num_random_init, alpha=args.alpha,
        pairing_weight=args.pairing_weight, beta=args.beta, replays=args.replays, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, sync_batchnorm=args.sync_batchnorm,
        data_dir=args.data_dir,
    )
    _, history = train_run(cfg, args.out, resume=args.resume, overwrite=args.overwrite, verbose=not args.quiet)
    if history and not args.quiet:
        print(json.dumps(history[-1]))
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from art_he.quickstart import QuickstartConfig, run_quickstart

    cfg = QuickstartConfig(epochs=args.epochs, subset=args.subset, n=args.n, seed=args.seed, out=args.out,
                           data_dir=args.data_dir, verbose=not args.quiet)
    table, results = run_quickstart(cfg)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def _add_quickstart_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--epochs", type=int, default=1)
    q.add_argument("--subset", type=int, default=None, help="train on the first N training images (default: all)")
    q.add_argument("--n", type=int, default=1000, help="test images to evaluate")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="runs/quickstart",
                   help="where the two runs are written, as OUT/plain and OUT/he (replaced on every quickstart)")
    q.add_argument("--data-dir", default=None)
    q.add_argument("--json", default=None, help="also write the results as JSON")
    q.add_argument("--quiet", action="store_true")


def _add_eval_arguments(e: argparse.ArgumentParser) -> None:
    from art_he.evaluation.cli import add_eval_arguments

    add_eval_arguments(e)


def _eval(args: argparse.Namespace) -> int:
    from art_he.evaluation.cli import run_eval

    return run_eval(args)


#: sub-command -> (help, adds its arguments, runs it); arguments are only built for the command being run, so
#: that ``art-he --help`` answers without importing torch
COMMANDS = {
    "quickstart": ("PGD-AT vs PGD-AT+HE on Fashion-MNIST, table of results", _add_quickstart_arguments, _quickstart),
    "train": ("adversarially train one model", _add_train_arguments, _train),
    "eval": ("evaluate a run directory with an attack suite", _add_eval_arguments, _eval),
}


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``art-he`` parser; only the sub-commands in ``commands`` get their arguments (default: all)."""
    parser = argparse.ArgumentParser(prog="art-he", description="Hypersphere embedding for ART: train and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if commands is None or name in commands:
            add_arguments(p)
        p.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser([command] if command in COMMANDS else []).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"art-he {args.command}: error: {' '.join(str(error).split())}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:
        print(f"art-he {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
