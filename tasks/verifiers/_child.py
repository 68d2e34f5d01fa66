"""The sandbox's side of a candidate run: a zygote that forks one confined child per program.

This file is executed, not imported, as `python -I -S -c <source> FD SETTINGS` by `sandbox.py`
(one zygote per worker slot). The zygote confines itself once (`confine_zygote`: as root, a new
network namespace with no interface up and a mount namespace with empty tmpfs over the
directories holding other people's files, the interpreter bound back read-only), preloads a few
standard-library modules, then serves jobs: for each it receives the job and two pipe ends
over a Unix socket, forks, reports the child's pid and, later, its exit status. The zygote
never runs candidate code. Each child, before it compiles the candidate:
1. starts a new session, points stdout/stderr at the output pipe and stdin at /dev/null;
2. `isolate`: its own mount namespace with a fresh size-limited tmpfs on /tmp (its working
   directory), resource limits, and the drop to its slot's unprivileged uid/gid;
3. runs the program, calls its entry point on each input and writes one JSON line per input to
   the result pipe: ["ok", "<repr of the value>"] or ["raised", "<exception type>"].

Nothing here decides a verdict: the harness compares the values outside this process. Only
values of exact builtin types (int, float, str, bool, None, bytes, complex and lists, tuples,
sets, dicts of them) are serialized, so an object with a lying `__eq__` cannot travel back.
`parse_value` (the inverse of `encode_value`) is imported by the harness as well.
"""

from __future__ import annotations

import ast
import json
import math

_ATOMS = (int, float, str, bool, type(None), bytes, complex)
# Standard-library modules generated code commonly imports, loaded once by the zygote.
PRELOADED = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "string",
             "random", "copy", "hashlib", "bisect", "statistics")  # fmt: skip
_NAMES = {"inf": math.inf, "nan": math.nan, "None": None, "True": True, "False": False}


def encode_value(value) -> str:
    """A value built only of exact builtin types as text: "J" + JSON when JSON holds it exactly
    (fast to read back), else "R" + a Python literal; raises TypeError for any other type."""
    if _json_exact(value, 0):
        return "J" + json.dumps(value, allow_nan=False)
    return "R" + _literal(value, 0)


def _json_exact(value, depth: int) -> bool:
    kind = type(value)
    if kind in (int, str, bool, type(None)):
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 50:
        return False
    if kind is list:
        return all(_json_exact(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def _literal(value, depth: int) -> str:
    if depth > 50:
        raise TypeError("nested too deeply")
    kind = type(value)
    if kind in _ATOMS:
        return repr(value)
    if kind is list or kind is tuple:
        inner = ", ".join(_literal(item, depth + 1) for item in value)
        if kind is tuple:
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    if kind is set or kind is frozenset:
        if not value:
            return "set()"
        return "{" + ", ".join(sorted(_literal(item, depth + 1) for item in value)) + "}"
    if kind is dict:
        items = (f"{_literal(k, depth + 1)}: {_literal(v, depth + 1)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot serialize a {kind.__name__}")


def parse_value(text: str):
    """Read back what `encode_value` wrote (the literal form: ast, plus inf, nan, set())."""
    if text.startswith("J"):
        return json.loads(text[1:])
    if text.startswith("R"):
        return _evaluate(ast.parse(text[1:], mode="eval").body)
    raise ValueError("unknown value encoding")


def _evaluate(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_evaluate(item) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_evaluate(item) for item in node.elts}
    if isinstance(node, ast.Dict):
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values, strict=True)}
    if _is_empty_set(node):
        return set()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        if type(operand) in (int, float, complex):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        left, right = _evaluate(node.left), _evaluate(node.right)  # complex literals: 1+2j
        if type(left) in (int, float) and type(right) is complex:
            return left + right if isinstance(node.op, ast.Add) else left - right
    raise ValueError(f"not a plain literal: {ast.dump(node)[:80]}")


def _is_empty_set(node) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("set", "frozenset")
        and not node.args
        and not node.keywords
    )


def confine_zygote(settings: dict) -> int:
    """Once per zygote, inherited by every child: as root, a new network namespace (no
    interface up: no network) and a mount namespace with empty tmpfs over the hidden
    directories (the interpreter's files bound back read-only). Without root: a user + network
    namespace if the kernel allows it. Returns the level reached (`sandbox.ISOLATION_LEVELS`):
    0 full, 1 root without namespaces, 2 unprivileged with a network namespace, 3 neither."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, clone_newnet, clone_newuser = 0x00020000, 0x40000000, 0x10000000
    if os.geteuid() != 0:
        return 2 if libc.unshare(clone_newuser | clone_newnet) == 0 else 3
    if libc.unshare(clone_newns | clone_newnet) != 0:
        return 1  # e.g. a container without CAP_SYS_ADMIN: uid drop and limits still apply
    _mount(libc, b"none", b"/", None, 0x4000 | 0x40000)  # MS_REC | MS_PRIVATE
    _hide_directories(libc, settings["hidden"], settings["keep"])
    return 0


def isolate(job: dict) -> None:
    """Confine this child before it reads candidate code: (as root) its own mount namespace
    with a fresh size-limited tmpfs on /tmp as its working directory, resource limits, then the
    drop to its slot's unprivileged uid/gid."""
    import ctypes
    import os
    import resource

    limits = job["limits"]
    privileged = os.geteuid() == 0
    if privileged and job["mount_namespace"]:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
        options = f"size={limits['tmpfs_bytes']},mode=1777".encode()
        _mount(libc, b"tmpfs", b"/tmp", b"tmpfs", 2 | 4, options)  # MS_NOSUID | MS_NODEV
        workdir = "/tmp/work"
        os.mkdir(workdir)
        os.chown(workdir, job["uid"], job["gid"])
    else:
        workdir = job["workdir"]  # made by the harness
    os.chdir(workdir)
    for name, value in (
        ("RLIMIT_CPU", limits["cpu_s"]),
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_FSIZE", limits["file_bytes"]),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    if privileged:
        os.setgroups([])
        os.setgid(job["gid"])
        os.setuid(job["uid"])


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    import ctypes

    if libc.mount(source, target, fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target!r} failed")


def _hide_directories(libc, hidden: list[str], keep: list[str]) -> None:
    """Lay an empty tmpfs over each hidden directory, then bind back the paths in `keep` (the
    interpreter's own files, when they live under a hidden directory such as /root)."""
    import os

    ms_bind, ms_rec, ms_rdonly, ms_remount, ms_nosuid, ms_nodev = 4096, 16384, 1, 32, 2, 4
    staged = []
    # The first hidden directory is /tmp: mount it first and stage the kept paths inside it.
    _mount(libc, b"tmpfs", b"/tmp", b"tmpfs", ms_nosuid | ms_nodev, b"size=1m,mode=1777")
    for index, path in enumerate(keep):
        stage = f"/tmp/.keep{index}"
        os.mkdir(stage)
        _mount(libc, path.encode(), stage.encode(), None, ms_bind | ms_rec)
        staged.append((stage, path))
    for path in hidden:
        if path != "/tmp" and os.path.isdir(path):
            _mount(libc, b"tmpfs", path.encode(), b"tmpfs", ms_nosuid | ms_nodev, b"size=1m")
    for stage, path in staged:
        os.makedirs(path, exist_ok=True)
        _mount(libc, stage.encode(), path.encode(), None, ms_bind | ms_rec)
        flags = ms_bind | ms_remount | ms_rdonly | ms_rec
        _mount(libc, b"none", path.encode(), None, flags)
        libc.umount2(stage.encode(), 2)  # MNT_DETACH
        os.rmdir(stage)


def run_job(job: dict, results) -> None:
    """Run the candidate on every input, writing one JSON line per input to `results`:
    [kind, payload, seconds the call took]. With `time_limits` (one per input, EvalPlus's
    max(floor, factor x the canonical solution's time)), a call that runs past its limit is
    interrupted (SIGALRM, as EvalPlus's `time_limit`) and reported as ["timeout", "", seconds].
    The child never sees expected outputs: the harness judges each line as it arrives and stops
    the job at the first failure (`Job.judge`)."""
    import json
    import signal
    import sys
    import time

    sys.set_int_max_str_digits(0)  # EvalPlus compares ints of any size (HumanEval/83, /139)
    write, encode, dumps, clock = results.write, encode_value, json.dumps, time.perf_counter
    inputs = [parse_value(text) for text in job["inputs"]]
    limits = job.get("time_limits") or [0.0] * len(inputs)

    class TimeLimit(BaseException):
        pass

    def alarm(_signum, _frame):
        raise TimeLimit

    signal.signal(signal.SIGALRM, alarm)
    namespace: dict = {"__name__": "__candidate__"}
    try:
        # dont_inherit: this file's `from __future__ import annotations` must not reach the
        # candidate (it would let `List` without an import pass, as it does not in EvalPlus).
        exec(compile(job["code"], "<candidate>", "exec", dont_inherit=True), namespace)
        function = namespace[job["entry_point"]]
        if job["mode"] == "record":  # the harness's own tests: log check()'s inputs
            exec(compile(job["test"], "<test>", "exec", dont_inherit=True), namespace)
            namespace["check"](_recorder(function, write, encode, dumps))
            write(dumps(["done", ""]) + "\n")
            return
    except BaseException as exc:
        write(dumps(["error", f"{type(exc).__name__} while loading"]) + "\n")
        return
    for arguments, limit in zip(inputs, limits, strict=True):
        started = clock()
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                value = function(*arguments)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except TimeLimit:
            write(dumps(["timeout", "", clock() - started]) + "\n")
            continue
        except BaseException as exc:
            write(dumps(["raised", type(exc).__name__, clock() - started]) + "\n")
            continue
        seconds = clock() - started
        try:
            # A large value (HumanEval/130's million-item lists, /83's million-digit ints)
            # travels as a digest; everything else as its encoding.
            text = digest_value(value) or encode(value)
            write(dumps(["ok", text, seconds]) + "\n")
        except (TypeError, ValueError, RecursionError) as exc:
            write(dumps(["raised", f"unserializable result: {exc}"[:200], seconds]) + "\n")
    write(dumps(["done", ""]) + "\n")


DIGEST_ABOVE = 1 << 18
BIG_INT_BITS = 1 << 14


def digest_value(value, force: bool = False) -> str | None:
    """ "H" + the SHA-256 of a form that equal values share under `==` (bools and integral
    floats as ints, ints over BIG_INT_BITS by a hash of their bytes, dict items and set members
    sorted), for a value too large to send whole (an estimated DIGEST_ABOVE characters, or an
    int over BIG_INT_BITS: printing one in decimal takes quadratic time) or when `force`d;
    None otherwise, or when the value holds a non-integral float (a tolerance may judge it)."""
    import hashlib

    if not force and _estimated_size(value, 0) <= DIGEST_ABOVE:
        return None
    try:
        text = repr(_normal_form(value, 0))
    except (TypeError, ValueError, RecursionError):
        return None
    return "H" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _estimated_size(value, depth: int) -> int:
    """About how many characters `encode_value` would write (an int over BIG_INT_BITS counts
    as more than DIGEST_ABOVE), without writing them."""
    kind = type(value)
    if kind is int:
        bits = value.bit_length()
        return DIGEST_ABOVE + 1 if bits > BIG_INT_BITS else bits // 3 + 2
    if kind in (str, bytes):
        return len(value) + 2
    if depth > 50:
        return 0
    if kind in (list, tuple, set, frozenset):
        return sum(_estimated_size(item, depth + 1) + 2 for item in value) + 2
    if kind is dict:
        return sum(
            _estimated_size(k, depth + 1) + _estimated_size(v, depth + 1) + 4
            for k, v in value.items()
        )
    return 24


def _normal_form(value, depth: int):
    import hashlib

    kind = type(value)
    if depth > 50:
        raise RecursionError
    if kind is int and value.bit_length() > BIG_INT_BITS:
        size = (value.bit_length() + 8) // 8
        return ("int", hashlib.sha256(value.to_bytes(size, "little", signed=True)).hexdigest())
    if kind is bool:
        return int(value)
    if kind is float:
        if not value.is_integer():
            raise ValueError("non-integral float")
        return int(value)
    if kind in (int, str, bytes, type(None)):
        return value
    if kind is list or kind is tuple:
        return kind(_normal_form(item, depth + 1) for item in value)
    if kind is set or kind is frozenset:
        return ("set", sorted(repr(_normal_form(item, depth + 1)) for item in value))
    if kind is dict:
        items = (
            (repr(_normal_form(k, depth + 1)), _normal_form(v, depth + 1)) for k, v in value.items()
        )
        return ("dict", sorted(items, key=lambda item: item[0]))
    raise TypeError(kind.__name__)


def serve(socket_fd: int, settings: dict) -> None:
    """The zygote loop: receive a job and two pipe ends (output, results), fork a fresh child
    for it, report the child's pid, wait for it, report its exit status. The zygote itself never
    runs candidate code; each child confines itself before it does."""
    import ctypes
    import json
    import os
    import socket
    import struct

    # Orphans of a candidate (a fork storm's children) are re-parented here and reaped below.
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    channel = socket.socket(fileno=socket_fd)
    level = confine_zygote(settings)
    for name in PRELOADED:  # forked children find them imported (a fresh copy each)
        try:
            __import__(name)
        except ImportError:
            continue
    channel.sendall(struct.pack("!q", level))  # ready
    while True:
        _reap_orphans()
        try:
            header, fds, _flags, _address = socket.recv_fds(channel, 8, 2)
        except OSError:
            return
        if len(header) < 8 or len(fds) != 2:
            return
        (length,) = struct.unpack("!Q", header)
        data = bytearray()
        while len(data) < length:
            chunk = channel.recv(min(1 << 20, length - len(data)))
            if not chunk:
                return
            data += chunk
        job = json.loads(data)
        job["mount_namespace"] = level == 0
        output_fd, result_fd = fds
        pid = os.fork()
        if pid == 0:
            _child_main(job, channel, output_fd, result_fd)
        os.close(output_fd)
        os.close(result_fd)
        channel.sendall(struct.pack("!q", pid))
        _, status = os.waitpid(pid, 0)
        channel.sendall(struct.pack("!q", os.waitstatus_to_exitcode(status)))


def _reap_orphans() -> None:
    import os

    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child_main(job: dict, channel, output_fd: int, result_fd: int) -> None:
    import os

    try:
        os.setsid()
        channel.close()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(null)
        os.close(output_fd)
        results = os.fdopen(result_fd, "w", buffering=1)
        isolate(job)
        run_job(job, results)
        results.flush()
    finally:
        os._exit(0)


def _recorder(function, write, encode, dumps):
    """A stand-in for `candidate` in a test's check(): logs each call's arguments, then answers
    with the canonical solution so the rest of the check runs as written."""

    def candidate(*arguments):
        write(dumps(["input", encode(list(arguments))]) + "\n")
        return function(*arguments)

    return candidate


if __name__ == "__main__":
    import json
    import sys

    serve(int(sys.argv[1]), json.loads(sys.argv[2]))
