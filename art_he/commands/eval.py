"""``art-he eval DIR``: evaluate a training run with a suite; Markdown on screen, JSON and CSV on disk.

The lead's ``art_he.cli`` wires the sub-command with :func:`add_eval_arguments` and :func:`run_eval`::

    art-he eval runs/he --suite quick --n 1000 --json eval.json --csv eval.csv
    art-he eval runs/he --suite transfer --substitute runs/plain
    art-he eval runs/he --suite corruptions --n 500 --data-dir data      # Fashion-MNIST-C generated locally
    art-he eval runs/he --attacks pgd20,spsa80 --eps 0.1
    art-he eval runs/cifar-he --suite robustbench --data-dir data     # RobustBench's own benchmark(), 10,000 images
    art-he eval --robustbench Pang2020Boosting --model-dir models --data-dir data   # a RobustBench zoo model

Exit codes: 0 done; 3 done but a sanity check warned and ``--strict`` was given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from art_he.argtypes import positive_int
from art_he.devices import DEVICE_HELP
from art_he.errors import UserError
from art_he.evaluation.catalog import known_attacks
from art_he.evaluation.corruptions import check_corruptions, check_severities
from art_he.evaluation.specs import SUITES, check_suite
from art_he.evaluation.suite import evaluate

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

EXIT_SANITY = 3
#: not an attack list: RobustBench's own ``benchmark`` on the model as RobustBench loads it (art_he.robustbench)
ROBUSTBENCH_SUITE = "robustbench"
DEFAULT_N = 1000


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` options to ``parser``."""
    parser.add_argument("run_dir", metavar="DIR", nargs="?",
                        help="training run directory (config.json + model.safetensors); or give --robustbench NAME")
    zoo = parser.add_argument_group("a RobustBench zoo model instead of a run "
                                    "(art_he.robustbench.zoo.load_robustbench)")
    zoo.add_argument("--robustbench", default=None, metavar="NAME", help="zoo entry, e.g. Pang2020Boosting")
    zoo.add_argument("--model-dir", default=None, metavar="D",
                     help="RobustBench's model_dir: the checkpoint is D/<dataset>/<threat-model>/NAME.pt (never "
                          "downloaded)")
    zoo.add_argument("--dataset", default=None, choices=("cifar10", "cifar100"),
                     help="the zoo's data set (default: cifar10)")
    zoo.add_argument("--threat-model", default="Linf", help="the zoo's threat model (default: Linf)")
    parser.add_argument("--suite", default="quick", choices=sorted([*SUITES, ROBUSTBENCH_SUITE]),
                        help="attack suite (default: quick); robustbench: RobustBench's benchmark() (AutoAttack "
                             "standard on its own data loading), written to DIR/robustbench/ for `art-he export`")
    parser.add_argument("--attacks", default=None,
                        help="comma-separated attacks replacing the suite's list and its eps sweep; known: "
                             f"{known_attacks()}")
    parser.add_argument("--n", type=positive_int, default=None,
                        help=f"number of test images (default: {DEFAULT_N}; --suite robustbench: the full 10,000)")
    parser.add_argument("--eps", type=float, default=None, help="Linf radius (default: the run's training eps)")
    parser.add_argument("--eps-step", type=float, default=None, help="attack step size (default: eps / 10)")
    parser.add_argument("--restarts", type=int, default=1, help="random starts of PGD-type attacks (default: 1)")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--substitute", default=None, metavar="DIR", help="substitute run for --suite transfer")
    parser.add_argument("--data-dir", default=None, help="data root (test sets; CIFAR-10-C etc.; corruption cache)")
    parser.add_argument("--verify-data", action=argparse.BooleanOptionalAction, default=None,
                        help="check CIFAR-10 files against the official md5 (default: as the run was trained; on)")
    parser.add_argument("--corruptions", default=None, help="comma-separated corruptions (default: all 15)")
    parser.add_argument("--severities", default=None, help="comma-separated severities (default: 1,2,3,4,5)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="cap every attack's iterations (smoke tests; shown in the table)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write the rows as CSV")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--strict", action="store_true", help=f"exit with {EXIT_SANITY} when a sanity check warns")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _validate(args: argparse.Namespace) -> None:
    if (args.run_dir is None) == (args.robustbench is None):
        raise UserError("give a run directory DIR or --robustbench NAME --model-dir D (one of them)")
    if args.robustbench and not args.model_dir:
        raise UserError("--robustbench NAME needs --model-dir D (RobustBench's model_dir holding the checkpoint)")
    if args.robustbench and args.suite == ROBUSTBENCH_SUITE:
        raise UserError("--suite robustbench benchmarks a run before `art-he export`; a zoo model has its "
                        "leaderboard entry already")
    if args.run_dir and (args.model_dir or args.dataset):
        raise UserError("--model-dir and --dataset go with --robustbench NAME; a run directory has its own data set")
    if args.suite == ROBUSTBENCH_SUITE:
        if args.attacks or args.substitute or args.corruptions or args.severities or args.max_steps:
            raise UserError("--suite robustbench runs RobustBench's standard AutoAttack; it takes --n, --eps, "
                            "--batch-size, --seed, --device and --data-dir only")
        return
    check_suite(args.suite)
    if args.n is not None and args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    if args.corruptions is not None:
        check_corruptions(args.corruptions)
    if args.severities is not None:
        check_severities(args.severities)
    if args.suite == "transfer" and not args.substitute:
        raise UserError("--suite transfer needs --substitute DIR (the run the attacks are crafted on)")


def run_eval(args: argparse.Namespace) -> int:
    """Run ``art-he eval`` with parsed ``args``; print the table, write JSON/CSV; return the exit code."""
    from art_he.data import dataset_info, load_dataset
    from art_he.runs import load_run

    _validate(args)
    if args.suite == ROBUSTBENCH_SUITE:
        return _run_robustbench(args)
    args.n = args.n or DEFAULT_N
    classifier, config, name, meta = _target(args)
    dataset = config["dataset"]
    substitute = load_run(args.substitute, device=args.device)[1] if args.substitute else None
    eps = args.eps if args.eps is not None else config.get("eps") or dataset_info(dataset).eps
    verify = args.verify_data if args.verify_data is not None else config.get("verify_data", True)
    x, y = load_dataset(dataset, train=False, data_dir=args.data_dir, image_size=config.get("image_size"), n=args.n,
                        verify=verify)
    report = evaluate(
        classifier, x, y, suite=args.suite, attacks=args.attacks, n=args.n,
        eps=None if args.suite == "corruptions" else eps, eps_step=args.eps_step, restarts=args.restarts,
        batch_size=args.batch_size, seed=args.seed, substitute=substitute, dataset=dataset, data_dir=args.data_dir,
        corruptions=args.corruptions, severities=args.severities, max_steps=args.max_steps,
        name=name, verbose=not args.quiet, meta={**meta, "substitute": args.substitute},
    )
    sys.stdout.write(report.to_markdown())
    if args.json:
        print(f"wrote {report.to_json(args.json)}")
    if args.csv:
        print(f"wrote {report.to_csv(args.csv)}")
    return EXIT_SANITY if args.strict and report.warnings else 0


def _target(args: argparse.Namespace) -> tuple[PyTorchClassifier, dict[str, Any], str, dict[str, Any]]:
    """``(classifier, config, name, meta)`` of what is evaluated: a run folder or a RobustBench zoo entry."""
    if args.robustbench:
        from art_he.robustbench.zoo import zoo_classifier_for_eval

        classifier, meta = zoo_classifier_for_eval(args.robustbench, args.model_dir, args.device,
                                                   dataset=args.dataset or "cifar10",
                                                   threat_model=args.threat_model)
        return classifier, {"dataset": meta["dataset"]}, args.robustbench, meta
    from art_he.runs import load_run

    _, classifier, config = load_run(args.run_dir, device=args.device)
    meta = {"run": str(args.run_dir), "model": config.get("model"), "framework": config.get("framework")}
    return classifier, config, Path(args.run_dir).name, meta


def _run_robustbench(args: argparse.Namespace) -> int:
    from art_he.data.layout import data_root
    from art_he.robustbench.benchmark import FULL_TEST_SET, benchmark_run, report_paths

    result = benchmark_run(args.run_dir, data_dir=data_root(args.data_dir), n=args.n or FULL_TEST_SET, eps=args.eps,
                           batch_size=args.batch_size, device=args.device, seed=args.seed)
    sys.stdout.write(result.to_markdown())
    print(f"wrote {report_paths(args.run_dir)[0]}")
    if args.json:
        Path(args.json).write_text(report_paths(args.run_dir)[0].read_text())
        print(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m art_he.commands.eval DIR ...``)."""
    parser = argparse.ArgumentParser(prog="art-he eval", description=__doc__.splitlines()[0], allow_abbrev=False)
    add_eval_arguments(parser)
    return run_eval(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
