"""The ``theorydl`` command.

    theorydl validate                 # check params.yaml; exit 2 naming the bad key
    theorydl data census              # one experiment's data stage
    theorydl train census [--rerun failed|none|all]
    theorydl search width             # an experiment's search stage (Optuna learning rates)
    theorydl analyze census
    theorydl report
    theorydl claims --markdown -o docs/results.md --readme README.md   # the results page
    theorydl status census            # what the trial cache holds for the current params
    theorydl plan [ib census]         # per study: trials asked, cached, to run, forecast
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
    plan = sub.add_parser("plan", help="per study: trials asked, cached and to run, and "
                                       "a forecast of the train stage's wall time")
    plan.add_argument("experiments", nargs="*", help="default: every study")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    claims = sub.add_parser("claims", help="every declared claim with its verdict, scale "
                                           "and provenance (the results page)")
    claims.add_argument("--markdown", action="store_true",
                        help="the results page in Markdown (default: JSON)")
    claims.add_argument("-o", "--output", help="write to this file (atomically) instead "
                                               "of printing")
    claims.add_argument("--readme", help="also update the claim counts block of this file")
    claims.add_argument("--no-forecast", action="store_true",
                        help="skip the paper-profile forecasts of unchecked claims")
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
        elif args.command == "plan":
            for exp in args.experiments:
                registry.get(exp)
            forecasts = [stages.plan(params, n) for n in args.experiments or registry.names()]
            if args.json:
                print_metrics({f.study: f.as_dict() for f in forecasts})
            else:
                print(plan_table(forecasts))
        elif args.command == "claims":
            print(claims_page(args, params))
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


def claims_page(args, params) -> str:
    """The ``claims`` command: the page's text, written to ``args.output`` when given
    (then the line that says so is returned)."""
    import json
    import subprocess
    from datetime import datetime, timezone
    from pathlib import Path

    import yaml

    from theorydl import stages
    from theorydl.params import load_params, parse_params
    from theorydl.report.results import (
        collect,
        counts,
        results_markdown,
        update_counts_block,
    )
    from theorydl.spine.config import read_yaml
    from theorydl.spine.provenance import git_state
    from theorydl.spine.store.store import write_text_atomic

    params_path = Path(args.params)
    profiles = {p.stem: read_yaml(p) for p in sorted(Path("profiles").glob("*.yaml"))}
    default = None
    try:
        text = subprocess.run(["git", "show", f"HEAD:{params_path.name}"],
                              cwd=params_path.resolve().parent, capture_output=True,
                              text=True, check=True, timeout=30).stdout
        default = parse_params(yaml.safe_load(text), "params.yaml at HEAD")
    except (OSError, subprocess.SubprocessError, ConfigError):
        pass

    def paper_plan(study):
        return stages.plan(load_params(params_path, {study: profiles["paper"][study]}), study)

    results = collect(params, profiles, default,
                      None if args.no_forecast else paper_plan)
    if args.markdown:
        sha, dirty = git_state()
        when = datetime.now(timezone.utc)
        text = results_markdown(results, f" on {when:%Y-%m-%d} at commit `{(sha or '?')[:10]}`"
                                         f"{' (with uncommitted changes)' if dirty else ''}")
    else:
        text = json.dumps([{"study": r.study, "claim": c.id, "profile": r.profile,
                            **(e or {"verdict": "not run"})}
                           for r in results for c, e in r.claims], indent=2, default=str)
    if args.readme:
        readme = Path(args.readme)
        write_text_atomic(readme, update_counts_block(readme.read_text(), counts(results)))
    if args.output:
        write_text_atomic(Path(args.output), text if text.endswith("\n") else text + "\n")
        return f"{args.output}: {counts(results)['total']} claims"
    return text


def plan_table(forecasts) -> str:
    """The forecasts as an aligned text table, reasons for unknowns below it."""
    from theorydl.spine.forecast import format_seconds

    head = ("study", "asked", "cached", "to run", "units", "forecast wall", "compute", "on")
    rows = [head]
    notes = []
    for f in forecasts:
        where = f"{f.slots} x {f.device}" if f.slots else f.device
        rows.append((f.study, str(f.asked), str(f.cached), str(f.to_run), str(f.units),
                     format_seconds(f.wall_s), format_seconds(f.compute_s), where))
        if f.why:
            notes.append(f"{f.study}: {f.why}")
        elif f.to_run:
            notes.append(f"{f.study}: timed on {f.basis} stored units")
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i in (0, 5, 6, 7) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    return "\n".join(lines + ([""] + notes if notes else []))


def print_metrics(metrics: dict) -> None:
    import json

    print(json.dumps(metrics, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
