"""Sealing a submission off: its kernel runs inside a bubblewrap sandbox.

nbgrader runs student code as the user who grades, with that user's files and network. Here the grading
kernel of each submission starts inside `bwrap` (bubblewrap, a maintained sandbox from the Linux
distributions) with:
- read-only: the Python installation and its packages, the course package itself (only its own folder, not
  the repository around it, so the master notebooks stay out of reach), and the data cache;
- writable: one scratch folder per submission, emptied afterwards (it is the kernel's home and working
  folder, and holds the kernel's connection sockets);
- nothing else: not the course folder (gradebook, config, source/, other submissions), not /home or /root,
  not the instructor's environment variables;
- no network (a fresh network namespace), its own process namespace (when the kernel stops, every process
  it started dies with it, detached or not), no capabilities, and resource limits (memory, file size, open
  files, core dumps) set before the sandbox starts.

The kernel talks to the grader over Unix sockets in the scratch folder (ZeroMQ's ipc transport), since
TCP on localhost is unreachable from a separate network namespace.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .layout import ROOT

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
                "bubblewrap`), or pass --unsandboxed to grade with your own rights anyway (see the instructor "
                "guide: a submission can then read and change everything you can)")
# Environment variables passed into the sandbox (everything else, tokens and keys included, stays outside).
KEPT_ENV_PREFIXES = ("TEXTIMG_", "OMP_", "MKL_", "OPENBLAS_", "LC_")
KEPT_ENV = ("LANG", "TZ", "PATH")
# Read-only system files a Python process may look for (those that exist are bound).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group", "localtime",
             "fonts", "mime.types")

# Applied to the sandboxed kernel with setrlimit before bwrap starts (children inherit them).
# The kernel's own start-up messages go to a log file in the scratch folder instead of the grader's terminal.
LIMITS_SNIPPET = """\
import json, os, resource, sys
for name, value in json.loads(sys.argv[1]).items():
    resource.setrlimit(getattr(resource, name), (value, value))
log = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(log, 1)
os.dup2(log, 2)
os.execvp(sys.argv[3], sys.argv[3:])
"""


@dataclass
class Limits:
    """Resource limits of one grading kernel (see docs/INSTRUCTOR.md)."""
    memory_bytes: int = 8 * 2**30      # address space: a runaway allocation fails instead of swapping
    file_bytes: int = 2**30            # largest file the kernel may write
    open_files: int = 1024
    tmp_bytes: int = 256 * 2**20       # size of the sandbox's own /tmp (kept in memory)

    def rlimits(self) -> dict:
        return {"RLIMIT_AS": self.memory_bytes, "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_NOFILE": self.open_files, "RLIMIT_CORE": 0}


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def sandbox_problem() -> str | None:
    """None when bubblewrap is installed and can create the namespaces the grader needs; else why not."""
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    probe = [bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--proc",
             "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap does not run ({e})"
    if done.returncode != 0:
        return (f"bwrap cannot create namespaces here ({done.stderr.strip() or done.returncode}); unprivileged user "
                f"namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1)")
    return None


def _package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _python_paths() -> list:
    """Folders the kernel's Python needs: installation prefixes and the standard library and site folders.
    A folder on sys.path outside these (a checkout, PYTHONPATH) is not bound: it may hold master notebooks."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    prefixes.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(prefixes)


def data_cache() -> Path | None:
    """The course's data cache, as textimg_lessons.config.data_dir() finds it (read-only in the sandbox)."""
    env = os.environ.get("TEXTIMG_DATA", "").strip()
    path = Path(env).expanduser() if env else ROOT / "data" / "cache"
    return path.resolve() if path.is_dir() else None


@dataclass
class Sandbox:
    """The sandbox of one submission: its scratch folder and the command that starts a kernel inside it."""
    scratch: Path
    limits: Limits = field(default_factory=Limits)
    env: dict = field(default_factory=dict)

    @classmethod
    def create(cls, limits: Limits | None = None, env: dict | None = None) -> "Sandbox":
        scratch = Path(tempfile.mkdtemp(prefix="textimg-grading-")).resolve()
        return cls(scratch, limits or Limits(), dict(env or {}))

    def remove(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith(KEPT_ENV_PREFIXES)}
        env.update(self.env)
        home = str(self.scratch / "home")
        env.update(HOME=home, MPLCONFIGDIR=str(self.scratch / "home" / ".matplotlib"), TMPDIR="/tmp",
                   PYTHONNOUSERSITE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
        package_parent = _package_dir().parent
        if not any(package_parent == p or p in package_parent.parents for p in _python_paths()):
            env["PYTHONPATH"] = str(package_parent)  # the package runs from a checkout: only its folder is bound
        else:
            env.pop("PYTHONPATH", None)
        cache = data_cache()
        if cache is not None:
            env["TEXTIMG_DATA"] = str(cache)
        return env

    def bwrap_args(self) -> list:
        args = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--clearenv"]
        for name, value in sorted(self._environment().items()):
            args += ["--setenv", name, value]
        # the private /tmp first: the course, its Python or the scratch folder may live under the real /tmp
        # (a clone in /tmp, pytest's folders), and a tmpfs mounted after their binds would hide them
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/") / link
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), str(target)]
            elif target.is_dir():
                args += ["--ro-bind", str(target), str(target)]
        for name in ETC_FILES:
            if (Path("/etc") / name).exists():
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for path in _python_paths():
            if path not in (Path("/"), Path("/usr")):  # a Python installed at / would otherwise expose everything
                args += ["--ro-bind", str(path), str(path)]
        package = _package_dir()
        args += ["--ro-bind", str(package), str(package)]
        cache = data_cache()
        if cache is not None:
            args += ["--ro-bind", str(cache), str(cache)]
        (self.scratch / "home").mkdir(parents=True, exist_ok=True)
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--bind", str(self.scratch), str(self.scratch), "--remount-ro", "/",
                 "--chdir", str(self.scratch / "home")]
        return args

    def wrap(self, cmd: list) -> list:
        """`cmd` (a kernel's command line) run inside this sandbox, with the resource limits applied."""
        return [sys.executable, "-c", LIMITS_SNIPPET, json.dumps(self.limits.rlimits()),
                str(self.scratch / "kernel.log"), *self.bwrap_args(), "--", *cmd]


# The sandbox of the submission being graded in this process (autograde grades one at a time per process).
_current: Sandbox | None = None


def set_current(box: Sandbox | None) -> None:
    global _current
    _current = box


def current() -> Sandbox | None:
    return _current


def kernel_manager_class():
    """The jupyter_client kernel manager the grader and `check` use: the kernel listens on Unix sockets in a
    private folder (no TCP port, so no "Kernel is running over TCP without encryption" warning either),
    and starts inside the current sandbox when autograde has set one up."""
    import atexit
    from jupyter_client.manager import AsyncKernelManager

    class GradingKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            box = current()
            if box is not None:
                folder = box.scratch
            else:
                folder = Path(tempfile.mkdtemp(prefix="textimg-kernel-"))
                atexit.register(shutil.rmtree, folder, True)
            self.transport = "ipc"
            self.ip = str(folder / "kernel")
            self.connection_file = str(folder / "kernel.json")

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if current() is None:
                return cmd
            # A signal would reach bwrap, not the kernel inside it: interrupt with a message instead (the kernel
            # then signals itself), so a cell that runs past its timeout is interrupted, not killed.
            self.kernel_spec.interrupt_mode = "message"
            return current().wrap(cmd)

    return GradingKernelManager
