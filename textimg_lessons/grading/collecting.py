"""`collect`: match the files of an LMS download to students and chapters, copy them into submitted/."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from .layout import course_folder, released_chapters, utc_stamp


MOODLE_RE = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_(?P<rest>.*)$")
CANVAS_RE = re.compile(r"^(?P<login>[A-Za-z][A-Za-z0-9.\-]*?)(?:_late)?_(?P<uid>\d+)_(?P<sub>\d+)_(?P<rest>.+)$",
                       re.IGNORECASE)
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def student_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9.\-]+", "_", name.strip().lower()).strip("_.-")
    return slug


def match_submission(relpath: str, chapters, chapter=None):
    """(student, chapter) for a file of an LMS download, or (None, reason). Patterns, first match wins:

    <student>/<chapter>/<chapter>.ipynb                       nbgrader layout
    <Full Name>_<id>_assignsubmission_file_<...chapter...>    Moodle  -> student "full_name_<id>"
    <login>[_late]_<userid>_<subid>_<...chapter...>           Canvas  -> student "<login>_<userid>"
    <student>_<chapter>[anything].ipynb (or - instead of _)   flat    -> student "<student>"
    <student>/<...chapter...>.ipynb                           folder per student (a Moodle folder name
                                                              "<Full Name>_<id>_assignsubmission_file_" too)
    With --chapter CH, a file whose name holds no chapter id belongs to CH: <student>.ipynb, or any name
    inside a Moodle folder "<Full Name>_<id>_assignsubmission_file_/".
    Container folders above these are ignored; the chapter id must appear in the name or the --chapter.
    """
    parts = [p for p in Path(relpath).parts if p not in ("", ".")]
    name = parts[-1]
    if not name.lower().endswith(".ipynb"):
        return None, "not a notebook (.ipynb)"
    stem = name[:-len(".ipynb")]
    ordered = sorted(chapters, key=len, reverse=True)

    def find_chapter(text):
        for ch in ordered:
            i = text.find(ch)
            if i >= 0:
                return ch, i
        return None, -1

    ch, i = find_chapter(stem)
    if ch is None and len(parts) >= 2 and parts[-2] in chapters:  # <student>/<chapter>/<anything>.ipynb
        ch, i = parts[-2], 0
    if ch is None:
        if chapter is None:
            return None, f"no chapter id ({', '.join(chapters)}) in the name"
        ch, i = chapter, len(stem)
    if chapter is not None and ch != chapter:
        return None, f"belongs to {ch}, but --chapter {chapter} was given"

    for folder in reversed(parts[:-1]):  # a Moodle folder names the student whatever the file is called
        m = MOODLE_RE.match(folder + ("" if folder.endswith("_") else "_"))
        if m:
            return student_slug(f"{m['name']}_{m['uid']}"), ch
    prefix = stem[:i]
    for regex, make in ((MOODLE_RE, lambda m: f"{m['name']}_{m['uid']}"),
                        (CANVAS_RE, lambda m: f"{m['login']}_{m['uid']}")):
        m = regex.match(stem)
        if m and (ch in m["rest"] or chapter is not None):
            return student_slug(make(m)), ch
    student = student_slug(prefix.rstrip(" _-"))
    if student:
        return student, ch
    folders = parts[:-1]
    if folders and folders[-1] == ch:  # nbgrader layout: the student is the folder above the chapter
        folders = folders[:-1]
    if folders:
        student = student_slug(folders[-1])
        if student:
            return student, ch
    return None, "no student name in the file name or its folder"


def _safe_extract(zip_path: Path, dest: Path) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                raise SystemExit(f"{zip_path}: refusing the entry {info.filename!r} (it points outside the archive)")
        zf.extractall(dest)


def collect(source, course, chapter=None, force=False, log=print) -> dict:
    """Import an LMS download (zip or folder) into submitted/<student>/<chapter>/<chapter>.ipynb.

    An existing, different submission is never replaced silently: without `force` it is kept and the new
    file is refused (reported, exit code 1); with `force` the old one is moved to
    backups/submitted/<student>/<chapter>/<UTC time>/ first. Returns a report dict."""
    course = course_folder(course)
    chapters = released_chapters(course)
    if chapter is not None and chapter not in chapters:
        raise SystemExit(f"--chapter {chapter}: not released in this course ({', '.join(chapters) or 'none'}).")
    source = Path(source)
    if not source.exists():
        raise SystemExit(f"{source} does not exist.")
    report = {"imported": [], "replaced": [], "unchanged": [], "refused": [], "unmatched": [], "duplicates": []}
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise SystemExit(f"{source} is neither a folder nor a zip file.")
            root = Path(tmp)
            _safe_extract(source, root)
        else:
            root = source
        chosen = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root)
            if any(part in ("__MACOSX", ".ipynb_checkpoints") for part in rel.parts) or rel.name in IGNORED_NAMES:
                continue
            student, ch = match_submission(str(rel), chapters, chapter)
            if student is None:
                report["unmatched"].append((str(rel), ch))
                continue
            if (student, ch) in chosen:  # sorted order: "x-1.ipynb" (a resubmission) comes after "x.ipynb"
                report["duplicates"].append((str(chosen[(student, ch)][0]), str(rel)))
            chosen[(student, ch)] = (rel, path)
        for (student, ch), (rel, path) in sorted(chosen.items()):
            dest_dir = course / "submitted" / student / ch
            dest = dest_dir / f"{ch}.ipynb"
            data = path.read_bytes()
            if dest.exists():
                if dest.read_bytes() == data:
                    report["unchanged"].append((str(rel), student, ch))
                    continue
                if not force:
                    report["refused"].append((str(rel), student, ch))
                    continue
                backup = course / "backups" / "submitted" / student / ch / utc_stamp()
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(dest_dir), str(backup))
                report["replaced"].append((str(rel), student, ch, str(backup.relative_to(course))))
            dest_dir.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            report["imported"].append((str(rel), student, ch))
    for rel, student, ch in report["imported"]:
        log(f"imported  {rel} -> submitted/{student}/{ch}/{ch}.ipynb")
    for rel, student, ch, backup in report["replaced"]:
        log(f"replaced  submitted/{student}/{ch} (old copy kept in {backup})")
    for rel, student, ch in report["unchanged"]:
        log(f"unchanged {rel} (same as submitted/{student}/{ch})")
    for old, new in report["duplicates"]:
        log(f"duplicate {old} superseded by {new} (same student and chapter; the later name wins)")
    for rel, student, ch in report["refused"]:
        log(f"REFUSED   {rel}: submitted/{student}/{ch} exists with different content; "
            f"rerun with --force to replace it (the old one is then kept under backups/)")
    for rel, reason in report["unmatched"]:
        log(f"UNMATCHED {rel}: {reason}")
    log(f"{len(report['imported'])} imported, {len(report['unchanged'])} unchanged, "
        f"{len(report['refused'])} refused, {len(report['unmatched'])} not matched")
    return report

