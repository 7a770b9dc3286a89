"""The grading subcommands of `textimg-lessons` (release, collect, autograde, export, feedback, check,
demo-submissions).

Importing this module imports neither nbgrader nor torch: a plain install (no extras, as on Colab) keeps a
working command line, and each handler imports what it needs when it runs. A command that needs nbgrader
says which extra to install when it is missing.
"""
from __future__ import annotations

import importlib.util

INSTRUCTOR_TOOLS = "this command needs the instructor tools: pip install 'textimg-lessons[instructor]'"


def nbgrader_installed() -> bool:
    return importlib.util.find_spec("nbgrader") is not None


def _needs_nbgrader() -> int | None:
    """2 (after saying what to install) when nbgrader is missing, else None."""
    if not nbgrader_installed():
        print(INSTRUCTOR_TOOLS)
        return 2
    return None


def _cmd_release(args):
    from .releasing import release
    release(args.course, args.chapters or None, args.notebooks, args.student_dir)
    return 0


def _cmd_collect(args):
    from .collecting import collect
    report = collect(args.source, args.course, args.chapter, args.force)
    return 1 if report["refused"] else 0


def _cmd_autograde(args):
    from .autograding import autograde
    from .nbgrader_setup import parse_env
    from .sandbox import Limits
    limits = Limits(memory_bytes=int(args.memory_gb * 2**30))
    results = autograde(args.course, args.timeout, args.chapter or None, args.student or None, parse_env(args.env),
                        jobs=args.jobs, unsandboxed=args.unsandboxed, limits=limits)
    failed = sum(r["status"] != "graded" for r in results.values())
    flagged = sum(bool(r["flags"]) for r in results.values())
    print(f"{len(results)} submissions: {len(results) - failed} graded, {failed} could not be graded, "
          f"{flagged} flagged (details in grading_flags.json and the CSV's flags column)")
    return 0


def _cmd_export(args):
    from .reports import export
    return export(args.course, args.csv, args.force)


def _cmd_feedback(args):
    from .reports import feedback
    feedback(args.course, args.out)
    return 0


def _cmd_check(args):
    from .check import check_notebook
    from .nbgrader_setup import parse_env
    return check_notebook(args.notebook, args.timeout, parse_env(args.env))


def _cmd_demo(args):
    from .demo import demo_submissions
    demo_submissions(args.out, args.notebooks, args.chapters or None, args.zip)
    return 0


def _cmd_throughput(args):
    from .throughput import main
    return main(args)


def _instructor(handler):
    """Run `handler` only when nbgrader is installed."""
    def run(args):
        missing = _needs_nbgrader()
        return missing if missing is not None else handler(args)
    return run


def register(subparsers) -> None:
    p = subparsers.add_parser("release", help="generate student versions in an nbgrader course folder",
                              description="Build or refresh the nbgrader course folder and generate the student "
                                          "versions (default: every chapter with graded cells). The gradebook and "
                                          "submissions are kept; the gradebook is also copied to backups/ first.")
    p.add_argument("chapters", nargs="*", metavar="CHAPTER", help="e.g. 01_backprop (default: all with exercises)")
    p.add_argument("--course", required=True, metavar="DIR", help="course folder (created if missing)")
    p.add_argument("--notebooks", metavar="DIR", help="master notebooks (default: the repository's notebooks/)")
    p.add_argument("--student-dir", metavar="DIR", help="also copy each student version here, with its Colab badge")
    p.set_defaults(func=_instructor(_cmd_release))

    p = subparsers.add_parser("collect", help="import an LMS download (zip or folder) into submitted/",
                              description="Copy an LMS download into submitted/<student>/<chapter>/. File names "
                                          "understood: nbgrader layout, Moodle, Canvas, <student>_<chapter>.ipynb, "
                                          "<student>/<chapter>.ipynb (see docs/INSTRUCTOR.md). An existing, "
                                          "different submission is replaced only with --force.")
    p.add_argument("source", metavar="ZIP_OR_DIR")
    p.add_argument("--course", required=True, metavar="DIR")
    p.add_argument("--chapter", metavar="CH", help="the chapter these files belong to when names lack it")
    p.add_argument("--force", action="store_true",
                   help="replace existing different submissions (old copies go to backups/submitted/)")
    p.set_defaults(func=_instructor(_cmd_collect))

    p = subparsers.add_parser("autograde", help="grade every submission with nbgrader, each on its own",
                              description="Grade every submission (or the chapters/students given), each in its "
                                          "own sandboxed kernel, and record flags in grading_flags.json.")
    p.add_argument("--course", required=True, metavar="DIR")
    p.add_argument("--timeout", type=int, metavar="S", help="seconds per cell (default: nbgrader_config.py, 60)")
    p.add_argument("--chapter", action="append", metavar="CH", help="only this chapter (repeatable)")
    p.add_argument("--student", action="append", metavar="ID", help="only this student (repeatable)")
    p.add_argument("--env", action="append", metavar="NAME=VALUE",
                   help="kernel environment; default TEXTIMG_FAST=1 TEXTIMG_OFFLINE=1 (e.g. --env TEXTIMG_FAST=0)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="submissions graded at once (default: one per CPU core)")
    p.add_argument("--memory-gb", type=float, default=8, metavar="GB",
                   help="memory limit of each grading kernel (default 8)")
    p.add_argument("--unsandboxed", action="store_true",
                   help="grade even though no sandbox (bubblewrap) is available: submissions then run with YOUR "
                        "rights and can read or change your files, the gradebook included")
    p.set_defaults(func=_instructor(_cmd_autograde))

    p = subparsers.add_parser("export", help="gradebook CSV: student, chapter, exercise, points, max_points, flags")
    p.add_argument("--course", required=True, metavar="DIR")
    p.add_argument("--csv", required=True, metavar="PATH")
    p.add_argument("--force", action="store_true", help="overwrite an existing different CSV")
    p.set_defaults(func=_instructor(_cmd_export))

    p = subparsers.add_parser("feedback", help="one HTML per student and chapter (no hidden tests)")
    p.add_argument("--course", required=True, metavar="DIR")
    p.add_argument("--out", metavar="DIR", help="default: <course>/feedback")
    p.set_defaults(func=_instructor(_cmd_feedback))

    p = subparsers.add_parser("check", help="student: run a notebook and list failing visible tests")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--timeout", type=int, default=600, metavar="S", help="seconds per cell (default 600)")
    p.add_argument("--env", action="append", metavar="NAME=VALUE",
                   help="kernel environment; default TEXTIMG_FAST=1 TEXTIMG_OFFLINE=1")
    p.set_defaults(func=_cmd_check)

    p = subparsers.add_parser("grading-throughput", help="measure autograde's submissions per minute (uses all CPUs)",
                              description="Grade N generated submissions of a chapter once per --jobs value and "
                                          "write the submissions per minute as JSON.")
    p.add_argument("--chapter", default="01_backprop", metavar="CH")
    p.add_argument("--submissions", type=int, default=50, metavar="N")
    p.add_argument("--jobs", type=int, action="append", metavar="N", help="repeatable (default: 1 and 2)")
    p.add_argument("--timeout", type=int, default=300, metavar="S", help="seconds per cell (default 300)")
    p.add_argument("--out", default="grading_throughput.json", metavar="PATH")
    p.set_defaults(func=_instructor(_cmd_throughput))

    p = subparsers.add_parser("demo-submissions", help="write demo submissions (correct/partial/wrong/broken)")
    p.add_argument("chapters", nargs="*", metavar="CHAPTER")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--notebooks", metavar="DIR", help="master notebooks (default: the repository's notebooks/)")
    p.add_argument("--zip", metavar="PATH", help="also write the files as one zip, as an LMS download")
    p.set_defaults(func=_instructor(_cmd_demo))
