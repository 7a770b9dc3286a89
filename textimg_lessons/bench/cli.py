"""The `bench` subcommand; imports no torch until a chapter runs."""
from __future__ import annotations


def register(sub) -> None:
    from . import CHAPTERS
    p = sub.add_parser("bench", help="measure a chapter's headline metrics and wall time; write JSON")
    p.add_argument("chapter", choices=list(CHAPTERS), help="which chapter's recipe to run")
    p.add_argument("--fast", action="store_true", help="fast mode (tiny data and epochs), as in the tests")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the report to PATH")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .report import measure, write_json
    report = measure(args.chapter, args.fast)
    if args.json_path:
        write_json(report, args.json_path)
    print(report.summary())
    return 0
