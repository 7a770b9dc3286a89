"""The `textimg-lessons` command. Each subcommand is registered by a light module that imports nothing heavy
(no torch, transformers or nbgrader) until the subcommand runs, so a bad argument is answered at once."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules that add subcommands through a `register(subparsers)` function, in help order.
COMMAND_MODULES = [
    "textimg_lessons.doctor",
    "textimg_lessons.bench.cli",
    "textimg_lessons.generate",
    "textimg_lessons.train_command",
    "textimg_lessons.grading.cli",
]
# Until the grading commands have their own light `grading.cli`, they come from the grading module itself,
# which imports nbgrader at once: it is loaded only when a grading command (or the full help) is asked for.
GRADING_FALLBACK = "textimg_lessons.grading"
INSTRUCTOR_HINT = "the grading commands need nbgrader: pip install 'textimg-lessons[instructor]'"


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)  # imports only the parent package, never `name` itself
    return spec is not None and spec.submodule_search_locations is not None


def _command_module(name: str) -> str | None:
    """The module to import for an entry of COMMAND_MODULES (None: not available in this version)."""
    parent, _, leaf = name.rpartition(".")
    if leaf == "cli" and parent == GRADING_FALLBACK and not _is_package(parent):
        return None  # the fallback is added by build_parser only when needed
    return name if importlib.util.find_spec(name) is not None else None


def build_parser(light_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser; light_only leaves out the heavy grading fallback (see GRADING_FALLBACK)."""
    parser = argparse.ArgumentParser(prog="textimg-lessons", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    missing = []
    for name in COMMAND_MODULES:
        module = _command_module(name)
        if module is None and name.startswith(GRADING_FALLBACK + ".") and not light_only:
            module = GRADING_FALLBACK if importlib.util.find_spec(GRADING_FALLBACK) is not None else None
        if module is None:
            continue
        try:
            importlib.import_module(module).register(sub)
        except ImportError as e:  # e.g. nbgrader missing on a plain install: the other commands still work
            missing.append(f"{module}: {e}")
    if missing and any("grading" in m for m in missing):
        parser.epilog = INSTRUCTOR_HINT
    parser.command_names = set(sub.choices)  # for main(): is the asked-for command already registered?
    return parser


def _first_command(argv) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _first_command(argv)
    parser = build_parser(light_only=True)
    if command not in parser.command_names:
        parser = build_parser()  # a grading command, an unknown word or the help: load every command
        if command and command not in parser.command_names and parser.epilog:
            print(f"textimg-lessons: {parser.epilog}", file=sys.stderr)
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
