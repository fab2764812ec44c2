"""The ``theorydl`` command.

    theorydl validate                 # check params.yaml; exit 2 naming the bad key
    theorydl data census              # one experiment's data stage
    theorydl train census [--rerun failed|none|all]
    theorydl search width             # an experiment's search stage (Optuna learning rates)
    theorydl analyze census
    theorydl report
    theorydl claims --markdown -o docs/results.md --readme README.md   # the results page
    theorydl status [census]          # every study (or one): trials cached, to run, verdicts
    theorydl plan [ib census]         # per study: trials asked, cached, to run, forecast
    theorydl profile test             # merge profiles/test.yaml into params.yaml
    theorydl profile paper --only ib census   # only those sections of profiles/paper.yaml
    theorydl store compact [census]   # merge the trial cache's small files (all experiments)

Every command validates the whole params file first, so a typo anywhere stops it
before any compute or any write.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from theorydl.params import load_params
from theorydl.spine.config import ConfigError

__all__ = ["main"]

log = logging.getLogger("theorydl")


def _parser() -> argparse.ArgumentParser:
    from theorydl.spine import registry
    from theorydl.spine.provenance import package_version

    studies = registry.names()
    summary, _, examples = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        prog="theorydl", description="theorydl: sweeps that re-measure the claims of "
        "deep-learning-theory papers, as DVC stages over Ray.",
        epilog="examples:\n" + examples.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"theorydl {package_version('theorydl') or 'unknown'}")
    # -p and -q are accepted before or after the subcommand: the subcommands' copies
    # default to SUPPRESS, so they only set what is given there.
    parser.add_argument("-p", "--params", default="params.yaml", help="params file")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-p", "--params", default=argparse.SUPPRESS, help="params file")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="warnings only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    def study(p: argparse.ArgumentParser, **kw) -> None:
        p.add_argument("experiment", choices=studies, metavar="STUDY",
                       help=f"one of: {', '.join(studies)}", **kw)

    validate = command("validate", "validate the params file (exit 2 naming a bad key)")
    validate.add_argument("--stamp", help="when valid, write this file (the DVC stage "
                          "`validate`, whose output every other stage depends on)")
    study(command("data", "run a study's data stage (downloads, generated data sets)"))
    study(command("search", "run a study's search stage (Optuna learning rates)"))
    study(command("analyze", "run a study's analyze stage: metrics, verdicts, figures"))
    status = command("status", "what the trial cache holds for the current params: one "
                               "study in detail, or a table of every study with its "
                               "verdicts")
    study(status, nargs="?")
    status.add_argument("--json", action="store_true", help="print JSON")
    train = command("train", "run a study's missing trials and write its train table")
    study(train)
    train.add_argument("--rerun", choices=["failed", "none", "all"],
                       help="override run.rerun for this call")
    plan = command("plan", "per study: trials asked, cached and to run, and a forecast "
                           "of the train stage's wall time")
    plan.add_argument("experiments", nargs="*", metavar="STUDY",
                      help=f"default: every study ({', '.join(studies)})")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    claims = command("claims", "every declared claim with its verdict, scale and "
                               "provenance (the results page)")
    claims.add_argument("--markdown", action="store_true",
                        help="the results page in Markdown (default: JSON)")
    claims.add_argument("-o", "--output", help="write to this file (atomically) instead "
                                               "of printing")
    claims.add_argument("--readme", help="also update the claim counts block of this file")
    claims.add_argument("--no-forecast", action="store_true",
                        help="skip the paper-profile forecasts of unchecked claims")
    command("report", "write the HTML report")
    store = command("store", "maintain the trial cache (run.store)")
    store_sub = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    compact = store_sub.add_parser(
        "compact", help="merge small part files into large ones, keeping every attempt "
                        "(safe while drivers append)")
    compact.add_argument("experiments", nargs="*", metavar="STUDY",
                         help="default: every study")
    profile = command("profile", "merge profiles/NAME.yaml into the params file")
    profile.add_argument("name", help="a profile in profiles/, e.g. test or paper")
    profile.add_argument("--only", nargs="+", metavar="SECTION",
                         help="merge only these sections of the profile (e.g. studies); "
                              "the rest of the params file is left as it is")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2) argparse printed
        return exc.code if isinstance(exc.code, int) else 2
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
            if name is not None:
                print_metrics(stages.status(params, name))
            else:
                table = [stages.overview(params, n) for n in registry.names()]
                print(json.dumps(table, indent=2) if args.json else status_table(table))
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


def _aligned(rows: list[tuple[str, ...]], left: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def status_table(overviews: list[dict]) -> str:
    """Every study's trials and verdicts as an aligned table, notes below."""
    head = ("study", "asked", "cached", "failed", "to run", "reproduced", "not reproduced",
            "not checkable")
    rows, notes = [head], []
    for o in overviews:
        v = o.get("verdicts") or {}
        rows.append((o["study"], *(str(o.get(k, "-")) for k in ("asked", "cached", "failed",
                                                                 "to_run")),
                     *(str(v[k]) if v else "-" for k in ("reproduced", "not reproduced",
                                                           "not checkable at this scale"))))
        if o.get("why"):
            notes.append(f"{o['study']}: {o['why']}")
    return "\n".join(_aligned(rows, {0}) + ([""] + notes if notes else []))


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
    return "\n".join(_aligned(rows, {0, 5, 6, 7}) + ([""] + notes if notes else []))


def print_metrics(metrics: dict) -> None:
    import json

    print(json.dumps(metrics, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
