"""``art-he``: quickstart, train, recipes, eval, reproduce, export, leaderboard, plot, data (also ``python -m art_he``
and ``torchrun -m art_he``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from art_he import __version__
from art_he.argtypes import positive_int
from art_he.errors import PREEMPTED_EXIT, Preempted, UserError


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from art_he.config import add_config_arguments

    p.add_argument("--recipe", default=None, help="start from a named preset of the paper (`art-he recipes`); "
                                                  "other flags override its values")
    add_config_arguments(p)
    p.add_argument("--out", default=None, help="run directory to write (refused if it holds a run already)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint (the last complete epoch, or the batch "
                            f"where SIGTERM or SIGUSR1 stopped it, exit status {PREEMPTED_EXIT}) with the "
                            "configuration in its config.json (flags given change it where a resumed run may change)")
    again.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--print-config", action="store_true",
                   help="print the fully resolved configuration (what config.json records) as JSON and exit")
    p.add_argument("--quiet", action="store_true")


def _train(args: argparse.Namespace) -> int:
    from art_he.config import TrainConfig, config_from_arguments
    from art_he.recipes import get_recipe
    from art_he.runs import CONFIG_FILE, is_main_process, read_config, train_run

    if args.recipe:
        base = get_recipe(args.recipe).config()
    elif args.resume and args.out and (Path(args.out) / CONFIG_FILE).is_file():  # the run's own configuration
        base = TrainConfig.from_record(read_config(args.out))
    else:
        base = None
    cfg = config_from_arguments(args, base)
    if args.print_config:
        print(cfg.resolved().to_json())
        return 0
    if args.out is None:
        raise UserError("--out DIR is required (the run directory to write)")
    _, history = train_run(cfg, args.out, resume=args.resume, overwrite=args.overwrite, verbose=not args.quiet)
    if history and not args.quiet and is_main_process():  # one line per launch, not one per torchrun rank
        print(json.dumps(history[-1], allow_nan=False))
    return 0


def _add_recipes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="every recipe with its values and their sources, as JSON")
    p.add_argument("--frameworks", action="store_true",
                   help="list the training frameworks instead (--framework NAME), with the options each takes")


def _frameworks(as_json: bool) -> int:
    from art_he.config import option_flag
    from art_he.trainers import FRAMEWORKS

    listing: dict[str, dict[str, Any]] = {name: {"label": cls.label, "schedule": cls.default_schedule,
                      "options": {k: cls.option_defaults()[k] for k in cls.options}}
               for name, cls in FRAMEWORKS.items()}
    if as_json:
        print(json.dumps(listing, indent=2, allow_nan=False))
        return 0
    width = max(map(len, listing))
    for name, entry in listing.items():
        options = " ".join(option_flag(k, v) for k, v in entry["options"].items())
        print(f"{name:<{width}}  {entry['label']}, {entry['schedule']} LR; {options or 'no options of its own'}")
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from art_he.recipes import RECIPES

    if args.frameworks:
        return _frameworks(args.json)
    if args.json:
        print(json.dumps({name: {"summary": r.summary, "values": {k: v for k, (v, _) in r.values.items()},
                                 "sources": r.sources()} for name, r in RECIPES.items()}, indent=2, allow_nan=False))
        return 0
    width = max(map(len, RECIPES))
    for name, recipe in RECIPES.items():
        print(f"{name:<{width}}  {recipe.summary}")
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from art_he.quickstart import CLOSING, QuickstartConfig, run_quickstart

    cfg = QuickstartConfig(epochs=args.epochs, subset=args.subset, n=args.n, seed=args.seed, out=args.out,
                           data_dir=args.data_dir, verbose=not args.quiet)
    table, results = run_quickstart(cfg)
    print(table)
    print()
    print(CLOSING)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, allow_nan=False)
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


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("fashion-as-cifar10",),
                   help="fashion-as-cifar10: Fashion-MNIST in CIFAR-10's on-disk format (28x28 padded to 32x32, grey "
                        "in 3 channels), to try the CIFAR-10 commands offline")
    p.add_argument("out", metavar="OUT", help="data root to write OUT/cifar-10-batches-py into; then pass "
                                              "--data-dir OUT --no-verify-data")
    p.add_argument("--n-train", type=positive_int, default=None, help="training images (default: all 60,000)")
    p.add_argument("--n-test", type=positive_int, default=None, help="test images (default: all 10,000)")
    p.add_argument("--data-dir", default=None, help="where Fashion-MNIST is (default: the usual places)")


def _data(args: argparse.Namespace) -> int:
    from art_he.data.convert import fashion_as_cifar10

    folder, n_train, n_test = fashion_as_cifar10(args.out, n_train=args.n_train, n_test=args.n_test,
                                                 data_dir=args.data_dir)
    print(f"wrote {folder}: {n_train:,} training and {n_test:,} test images of Fashion-MNIST in CIFAR-10's format; "
          f"use them with --dataset cifar10 --data-dir {args.out} --no-verify-data")
    return 0


def _add_export_arguments(p: argparse.ArgumentParser) -> None:
    from art_he.robustbench.export import PAPER

    p.add_argument("run_dir", metavar="RUN",
                   help="a CIFAR-10 run benchmarked with `art-he eval RUN --suite robustbench`")
    p.add_argument("--robustbench", required=True, metavar="OUT", help="folder to write the submission to")
    p.add_argument("--name", required=True, help="the model's name in RobustBench's zoo, e.g. Pang2020Boosting")
    p.add_argument("--title", default=PAPER["title"], help="paper title (default: the HE paper's)")
    p.add_argument("--paper-url", default=PAPER["url"], help=f"paper link (default: {PAPER['url']})")
    p.add_argument("--authors", default=PAPER["authors"], help="comma-separated authors (default: the HE paper's)")
    p.add_argument("--venue", default=PAPER["venue"], help=f"venue and year (default: {PAPER['venue']})")
    p.add_argument("--footnote", default=None, help="the leaderboard's footnote for the entry")
    p.add_argument("--overwrite", action="store_true", help="replace OUT when it is not empty")


def _export(args: argparse.Namespace) -> int:
    from art_he.robustbench.export import Paper, export_run

    paper = Paper(args.title, args.paper_url, args.authors, args.venue, args.footnote)
    files = export_run(args.run_dir, args.robustbench, args.name, paper, overwrite=args.overwrite)
    for path in files.values():
        if path.exists():
            print(f"wrote {path}")
    print(f"checked: robustbench.utils.load_model({args.name!r}) loads it strictly and its outputs equal the run's")
    return 0




def _lazy(reference: str) -> Callable[..., Any]:
    """``"module:function"`` as a function that imports its module only when called."""
    module, function = reference.split(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        from importlib import import_module

        return getattr(import_module(module), function)(*args, **kwargs)

    return call


#: sub-command -> (help, adds its arguments, runs it); arguments are only built for the command being run, so
#: that ``art-he --help`` answers without importing torch
COMMANDS = {
    "quickstart": ("PGD-AT vs PGD-AT+HE on Fashion-MNIST, table of results", _add_quickstart_arguments, _quickstart),
    "train": ("adversarially train one model", _add_train_arguments, _train),
    "recipes": ("list the paper's training recipes", _add_recipes_arguments, _recipes),
    "eval": ("evaluate a run directory with an attack suite", _lazy("art_he.commands.eval:add_eval_arguments"),
             _lazy("art_he.commands.eval:run_eval")),
    "export": ("write a RobustBench submission of a run (model file, model card, issue text, AutoAttack log)",
               _add_export_arguments, _export),
    "reproduce": ("train and evaluate every row of one of the paper's tables and compare them with its numbers",
                  _lazy("art_he.reproduce:add_reproduce_arguments"),
                  _lazy("art_he.reproduce:run_reproduce")),
    "leaderboard": ("rank model cards (ours, RobustBench's model_info) as RobustBench's leaderboard does; "
                    "Markdown table, --html page", _lazy("art_he.robustbench.leaderboard:add_leaderboard_arguments"),
                    _lazy("art_he.robustbench.leaderboard:run_leaderboard")),
    "plot": ("figures of runs and reports: curves, eps, attacks, corruptions, diagnostics (.png or .svg)",
             _lazy("art_he.commands.plot:add_plot_arguments"), _lazy("art_he.commands.plot:run_plot")),
    "data": ("prepare data sets: Fashion-MNIST in CIFAR-10's format for offline trials", _add_data_arguments, _data),
}
#: the commands that compute with torch, and so take --threads
COMPUTING = ("quickstart", "train", "eval", "export", "reproduce", "plot")


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``art-he`` parser; only the sub-commands in ``commands`` get their arguments (default: all).
    Options are never abbreviated: ``--epoch`` is an error, not ``--epochs``."""
    parser = argparse.ArgumentParser(prog="art-he", description="Hypersphere embedding for ART: train and evaluate.",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, allow_abbrev=False)
        if commands is None or name in commands:
            add_arguments(p)
            if name in COMPUTING:
                p.add_argument("--threads", type=positive_int, default=None,
                               help="CPU threads (default: $OMP_NUM_THREADS, else one per usable core; on a machine "
                                    "other jobs also use, try 1)")
        p.set_defaults(func=run, parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from art_he.logs import show_logs
    from art_he.threads import prefer_passive_wait, set_threads

    prefer_passive_wait()  # before anything imports torch: OpenMP reads it once
    show_logs()  # the library's log records (epoch lines, resuming) as plain lines on stdout
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args, unknown = build_parser([command] if command in COMMANDS else []).parse_known_args(argv)
    if unknown:  # the command's usage, not the top level's
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command in COMPUTING:
            set_threads(args.threads)
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"art-he {args.command}: error: {' '.join(str(error).split())}", file=sys.stderr)  # one line
        return 2
    except Preempted as stop:  # SIGTERM or SIGUSR1: the checkpoint is written, --resume continues
        print(f"art-he {args.command}: {' '.join(str(stop).split())}", file=sys.stderr)
        return PREEMPTED_EXIT
    except BrokenPipeError:  # `art-he recipes | head`: the reader left; no traceback, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the flush at exit cannot fail too
        return 141
    except KeyboardInterrupt:
        print(f"art-he {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
