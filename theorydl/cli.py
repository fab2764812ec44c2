"""The ``theorydl`` command.

    theorydl validate                 # check params.yaml; exit 2 naming the bad key
    theorydl data census              # one experiment's data stage
    theorydl train census [--rerun failed|none|all]
    theorydl search width             # an experiment's search stage (Optuna learning rates)
    theorydl analyze census
    theorydl report
    theorydl status census            # what the trial cache holds for the current params
    theorydl profile test             # merge profiles/test.yaml into params.yaml
    theorydl profile paper --only ib census   # only those sections of profiles/paper.yaml
    theorydl store compact [census]   # merge the trial cache's small files (all experiments)

Every command validates the whole params file first, so a typo anywhere stops it
before any compute or any write.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from theorydl.params import load_params
from theorydl.spine.config import ConfigError

__all__ = ["main"]

log = logging.getLogger("theorydl")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="theorydl", description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--params", default="params.yaml", help="params file")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="validate the params file")
    validate.add_argument("--stamp", help="when valid, write this file (the DVC stage "
                          "`validate`, whose output every other stage depends on)")
    for name in ("data", "analyze", "status", "search"):
        sub.add_parser(name).add_argument("experiment")
    train = sub.add_parser("train", help="run missing trials, write the train table")
    train.add_argument("experiment")
    train.add_argument("--rerun", choices=["failed", "none", "all"],
                       help="override run.rerun for this call")
    sub.add_parser("report", help="write the HTML report")
    store = sub.add_parser("store", help="maintain the trial cache (run.store)")
    store_sub = store.add_subparsers(dest="action", required=True)
    compact = store_sub.add_parser(
        "compact", help="merge small part files into large ones, keeping every attempt "
                        "(safe while drivers append)")
    compact.add_argument("experiments", nargs="*", help="default: every experiment")
    profile = sub.add_parser("profile", help="merge profiles/NAME.yaml into the params file")
    profile.add_argument("name", help="a profile in profiles/, e.g. test or paper")
    profile.add_argument("--only", nargs="+", metavar="SECTION",
                         help="merge only these sections of the profile (e.g. studies); "
                              "the rest of the params file is left as it is")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(name)s: %(message)s", stream=sys.stderr)
    from theorydl import stages
    from theorydl.spine import registry
    from theorydl.spine.experiment import StageError

    if args.command == "profile":
        from pathlib import Path

        from theorydl.params import apply_profile

        try:
            apply_profile(args.params, Path("profiles") / f"{args.name}.yaml", args.only)
        except ConfigError as exc:
            print(f"theorydl: error: {exc}", file=sys.stderr)
            return 2
        scope = f" (only {', '.join(args.only)})" if args.only else ""
        print(f"{args.params}: applied profile {args.name}{scope}")
        return 0
    try:
        overrides = {"run": {"rerun": args.rerun}} if getattr(args, "rerun", None) else None
        params = load_params(args.params, overrides)
        name = getattr(args, "experiment", None)
        if name is not None:
            registry.get(name)
        if args.command == "validate":
            if args.stamp:
                stages.write_params_stamp(args.stamp)
            print(f"{args.params}: ok ({', '.join(registry.names())})")
        elif args.command == "data":
            stages.data(params, name)
        elif args.command == "train":
            stages.train(params, name)
        elif args.command == "search":
            result = stages.search(params, name)
            print_metrics({k: v for k, v in result.items() if k == "best"})
        elif args.command == "analyze":
            print_metrics(stages.analyze(params, name))
        elif args.command == "report":
            print(stages.report(params))
        elif args.command == "status":
            print_metrics(stages.status(params, name))
        elif args.command == "store":
            for exp in args.experiments:
                registry.get(exp)
            print_metrics(compact_store(params.run.store, args.experiments or registry.names()))
    except (ConfigError, KeyError) as exc:
        print(f"theorydl: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"theorydl: error: {exc}", file=sys.stderr)
        return 1
    return 0


def compact_store(root: str, names: Sequence[str]) -> dict:
    """Compact each experiment's part files; what each compaction did, by experiment."""
    from dataclasses import asdict

    from theorydl.spine.store.store import Store

    store = Store(root)
    return {name: asdict(store.compact(name)) for name in names}


def print_metrics(metrics: dict) -> None:
    import json

    print(json.dumps(metrics, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
