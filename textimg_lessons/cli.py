"""The `textimg-lessons` command. Each subcommand lives in the module that implements it."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules that add subcommands through a `register(subparsers)` function, in help order.
COMMAND_MODULES = [
    "textimg_lessons.doctor",
    "textimg_lessons.bench",
    "textimg_lessons.generate",
    "textimg_lessons.grading",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textimg-lessons", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
