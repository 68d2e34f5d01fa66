"""The sandbox against a corpus of hostile programs, batched with correct ones.

Every hostile program solves the toy problem `f(x) = x + 1` only if its attack worked (it read a
secret, reached the network, changed a file it must not touch), so "not passed" is the proof of
containment; each must also land in the expected outcome class, and the correct candidates
batched alongside must still pass. The host-side secrets (an answer key, a database, a command
line, a Unix socket) live outside the directories the old deny-list sandbox hid, as a data
mirror or store may. Runs in about half a minute.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest
from conftest import run_cli

from tasks.verifiers._child import NAMESPACED
from tasks.verifiers.problems import TestSuite as Suite
from tasks.verifiers.sandbox import (
    DETAIL_CHARS,
    FULL_LEVEL,
    Job,
    Limits,
    Sandbox,
    _alive,
    encode_value,
    parse_value,
)
from tasks.verifiers.verdicts import judge

SECRET = "bb-secret-7f3a"
INPUTS = tuple(encode_value([x]) for x in (1, 2, 41))
# The toy problem's tests: all three inputs strong, the first two weak.
SUITE = Suite(
    "toy/0",
    "f",
    INPUTS,
    (*map(encode_value, (2, 3, 42)),),
    (encode_value(2), encode_value(3)),
    0.0,
    0.001,
)
CORRECT = "def f(x):\n    return x + 1\n"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, uid drop)")


def _hostile(
    canary: Path, secret_file: Path, port: int, host: dict[str, str]
) -> dict[str, tuple[str, set[str]]]:
    """name -> (program, outcomes it may be classified as)."""
    return {
        "answer key read from a data mirror": (_reads_secret(host["answer_key"]), {"failed"}),
        "results database read": (_reads_secret(host["database"]), {"failed"}),
        "host command lines in /proc": (
            "import glob\ndef f(x):\n    found = ''\n"
            "    for path in glob.glob('/proc/*/cmdline'):\n"
            "        try:\n            found += open(path, errors='replace').read()\n"
            "        except OSError:\n            pass\n"
            f"    return x + 1 if {SECRET!r} in found else 0\n",
            {"failed"},
        ),
        "write to /run/lock": (
            f"def f(x):\n    try:\n        open({host['run_lock']!r}, 'w').write('x')\n"
            "        return x + 1\n    except OSError:\n        return 0\n",
            {"failed"},
        ),
        "Unix socket on the host": (
            "import socket\ndef f(x):\n    try:\n"
            "        s = socket.socket(socket.AF_UNIX)\n"
            f"        s.connect({host['unix_socket']!r})\n        return x + 1\n"
            "    except OSError:\n        return 0\n",
            {"failed"},
        ),
        "new user namespace": (
            "import ctypes\ndef f(x):\n"
            "    return x + 1 if ctypes.CDLL(None).unshare(0x10000000) == 0 else 0\n",
            {"failed"},
        ),
        "ptrace and the kernel keyring": (
            "import ctypes\ndef f(x):\n    libc = ctypes.CDLL(None)\n"
            "    traced = libc.syscall(101, 0, 0, 0, 0) == 0\n"  # ptrace(PTRACE_TRACEME)
            "    keyring = libc.syscall(250, 0, -3, 1, 0) >= 0\n"  # keyctl(GET_KEYRING_ID)
            "    return x + 1 if traced or keyring else 0\n",
            {"failed"},
        ),
        "x32 system call around the filter": (
            "import ctypes\ndef f(x):\n"
            "    done = ctypes.CDLL(None).syscall(0x40000000 + 272, 0x10000000) == 0\n"
            "    return x + 1 if done else 0\n",
            {"failed", "error"},
        ),
        "mount over its own /tmp": (
            "import ctypes\ndef f(x):\n    libc = ctypes.CDLL(None)\n"
            "    return x + 1 if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0 else 0\n",
            {"failed"},
        ),
        "infinite loop": ("def f(x):\n    while True:\n        pass\n", {"timeout"}),
        "fork bomb": (
            "import os\ndef f(x):\n    while True:\n        try:\n            os.fork()\n"
            "        except OSError:\n            pass\n",
            {"timeout", "error"},
        ),
        "memory bomb, one block": ("def f(x):\n    return len(bytearray(1 << 34))\n", {"failed"}),
        "memory bomb, growing": (
            "def f(x):\n    hoard = []\n    while True:\n        hoard.append(' ' * (1 << 24))\n",
            {"failed", "error", "timeout"},  # slow page zeroing may reach the deadline first
        ),
        "write and delete a harness file": (
            f"import os\ndef f(x):\n    try:\n        open({str(canary)!r}, 'w').write('owned')\n"
            f"        os.remove({str(canary)!r})\n        return x + 1\n"
            "    except OSError:\n        return 0\n",
            {"failed"},
        ),
        "write outside its directory": (
            "def f(x):\n    try:\n        open('/usr/bb-sandbox-escape', 'w').write('x')\n"
            "        return x + 1\n    except OSError:\n        return 0\n",
            {"failed"},
        ),
        "read harness environment and files": (
            "import os, glob\ndef f(x):\n    found = ''\n"
            "    found += str(dict(os.environ))\n"
            "    for path in glob.glob('/proc/*/environ'):\n"
            "        try:\n            found += open(path, errors='replace').read()\n"
            "        except OSError:\n            pass\n"
            f"    try:\n        found += open({str(secret_file)!r}).read()\n"
            "    except OSError:\n        pass\n"
            f"    return x + 1 if {SECRET!r} in found else 0\n",
            {"failed"},
        ),
        "network connection": (
            "import socket\ndef f(x):\n    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=0.5).close()\n"
            "        return x + 1\n    except OSError:\n        return 0\n",
            {"failed"},
        ),
        "os._exit(0) before the tests": (
            "import os\nos._exit(0)\ndef f(x):\n    return 0\n",
            {"error"},
        ),
        "sys.exit(0) before the tests": (
            "import sys\nsys.exit(0)\ndef f(x):\n    return 0\n",
            {"error"},
        ),
        "os._exit(0) inside the function": (
            "import os\ndef f(x):\n    os._exit(0)\n",
            {"error"},
        ),
        "monkey-patched builtins and asserts": (
            "import builtins, json\nbuiltins.AssertionError = type('Fake', (Exception,), {})\n"
            "builtins.repr = lambda value: '42'\njson.dumps = lambda *a, **k: '[\"done\", \"\"]'\n"
            "def f(x):\n    return 0\n",
            {"failed", "error"},
        ),
        "always-equal object": (
            "class Equal:\n    def __eq__(self, other):\n        return True\n"
            "def f(x):\n    return Equal()\n",
            {"failed"},
        ),
        "int subclass that equals everything": (
            "class Int(int):\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = int.__hash__\ndef f(x):\n    return Int(0)\n",
            {"failed"},
        ),
        "frame tricks forging results": (
            "import sys\ndef f(x):\n    frame = sys._getframe(1)\n"
            "    while frame and 'write' not in frame.f_locals:\n        frame = frame.f_back\n"
            "    write = frame.f_locals['write']\n"
            '    for _ in range(3):\n        write(\'["ok", "J0"]\\n\')\n'
            '    write(\'["done", ""]\\n\')\n    return 0\n',
            {"failed"},
        ),
        "huge output": (
            "def f(x):\n    while True:\n        print('x' * 1000000)\n",
            {"timeout"},
        ),
        "ignores SIGTERM": (
            "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "def f(x):\n    while True:\n        pass\n",
            {"timeout"},
        ),
        "ctypes segfault": (
            "import ctypes\ndef f(x):\n    return ctypes.string_at(0)\n",
            {"error"},
        ),
        "escaping child process": (
            "import os, time\ndef f(x):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        time.sleep(600)\n    return x + 1\n",
            {"passed"},  # it answers correctly; the point is that its child is killed
        ),
    }


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def _reads_secret(path: str) -> str:
    return (
        f"def f(x):\n    try:\n        found = open({path!r}, 'rb').read()\n"
        "    except OSError:\n        return 0\n"
        f"    return x + 1 if {SECRET.encode()!r} in found else 0\n"
    )


@pytest.fixture
def host_secrets():
    """Secrets on the host outside the old sandbox's hidden directories: an answer key and a
    database in a world-readable directory, a process whose command line holds a password, a
    world-writable Unix socket in /run, and a name in /run/lock a program must not create."""
    tag = uuid.uuid4().hex[:8]
    directory = Path(f"/var/lib/bb-sandbox-test-{tag}")
    directory.mkdir(mode=0o755)
    (directory / "HumanEvalPlus.jsonl").write_text(f'{{"canonical_solution": "{SECRET}"}}\n')
    (directory / "results.db").write_bytes(b"SQLite format 3\0" + SECRET.encode())
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [
        sys.executable,
        "-c",
        "import time; time.sleep(120)",
        f"--db=postgresql://u:{SECRET}@h",
    ]
    process = subprocess.Popen(command)
    server = socket.socket(socket.AF_UNIX)
    socket_path = f"/run/bb-sandbox-test-{tag}.sock"
    server.bind(socket_path)
    os.chmod(socket_path, 0o777)
    server.listen()
    run_lock = f"/run/lock/bb-sandbox-test-{tag}"
    yield {
        "answer_key": str(directory / "HumanEvalPlus.jsonl"),
        "database": str(directory / "results.db"),
        "unix_socket": socket_path,
        "run_lock": run_lock,
    }
    process.kill()
    process.wait()
    server.close()
    os.unlink(socket_path)
    shutil.rmtree(directory)
    Path(run_lock).unlink(missing_ok=True)


@ROOT_ONLY
def test_hostile_programs_are_contained_and_classified(
    tmp_path, listener, host_secrets, monkeypatch
):
    port, accepted = listener
    canary = tmp_path / "canary.txt"
    canary.write_text("intact")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    monkeypatch.setenv("BB_TEST_SECRET", SECRET)
    corpus = _hostile(canary, secret_file, port, host_secrets)
    names = list(corpus)
    jobs = [Job(CORRECT, "f", INPUTS)]
    for name in names:
        jobs += [Job(corpus[name][0], "f", INPUTS), Job(CORRECT, "f", INPUTS)]
    environment = dict(os.environ)

    with Sandbox(Limits(timeout_s=1.5, memory_mb=192), workers=2) as sandbox:
        uids = sandbox.uids
        executions = sandbox.run_many(jobs)
        followed_by = sandbox.run(Job(CORRECT, "f", INPUTS))

    verdicts = [judge(SUITE, execution) for execution in executions]
    escaped = []  # every attack that was not contained, not only the first
    for name, verdict, execution in zip(names, verdicts[1::2], executions[1::2], strict=True):
        contained = name == "escaping child process" or not (verdict.strong or verdict.weak)
        if verdict.outcome not in corpus[name][1] or not contained:
            escaped.append(f"{name}: {verdict.outcome} {execution.detail}")
        assert len(execution.output) <= Limits().output_bytes
    assert escaped == [], "\n".join(escaped)
    failed = [
        e for v, e in zip(verdicts[0::2], executions[0::2], strict=True) if v.outcome != "passed"
    ]
    assert not failed, f"a correct neighbour failed: {failed}"
    assert judge(SUITE, followed_by).outcome == "passed"
    assert canary.read_text() == "intact"
    assert not Path("/usr/bb-sandbox-escape").exists()
    assert accepted == []
    assert dict(os.environ) == environment
    assert not Path(host_secrets["run_lock"]).exists()
    assert _processes_of(uids) == []


def _processes_of(uids: list[int]) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid in uids and _alive(int(name)):
                    found.append(int(name))
            except FileNotFoundError:
                continue
    return found


@ROOT_ONLY
def test_candidate_sees_an_empty_tmp_and_no_harness_directories(tmp_path):
    (tmp_path / "visible.txt").write_text("x")
    """The allow-list root: the interpreter's files, shared libraries, two devices, its own
    empty /tmp (the working directory) and a /proc holding only its own process."""
    probe = (
        "import os\ndef f(x):\n"
        "    return [os.getuid() != 0, os.getcwd(), os.listdir('/tmp'), sorted(os.listdir('/')),"
        " sorted(os.listdir('/dev')), [p for p in os.listdir('/proc') if p.isdigit()],"
        f" [os.path.exists(p) for p in ('/work', '/etc', '/run', '/var', {str(tmp_path)!r})]]\n"
    )
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        execution = sandbox.run(Job(probe, "f", (encode_value([0]),)))
    assert execution.status == "finished", execution
    assert execution.results[0][0] == "ok"
    root, cwd, tmp, top, dev, pids, hidden = parse_value(execution.results[0][1])
    assert (root, cwd, tmp, dev, pids, hidden) == (
        True,
        "/tmp",
        [],
        ["null", "urandom"],
        ["1"],
        [False] * 5,
    )
    assert set(top) <= {"dev", "lib", "lib64", "proc", "tmp", "usr", "root", "opt"}, top


def test_results_come_back_as_values_not_verdicts():
    """A wrong answer, an exception and an unserializable value are failures; the sandbox
    reports values and the harness judges."""
    program = (
        "def f(x):\n    if x == 1:\n        return 2\n    if x == 2:\n        raise ValueError\n"
        "    return object()\n"
    )
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        execution = sandbox.run(Job(program, "f", INPUTS))
    assert execution.status == "finished"
    assert execution.results[0] == ("ok", encode_value(2))
    assert execution.results[1] == ("raised", "ValueError")
    assert execution.results[2][0] == "raised" and "unserializable" in execution.results[2][1]
    verdict = judge(SUITE, execution)
    assert (verdict.weak, verdict.strong, verdict.outcome) == (False, False, "failed")


def test_sandbox_interpreter_is_not_the_harness_process():
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        program = "import os\ndef f():\n    return os.getpid()\n"
        execution = sandbox.run(Job(program, "f", (encode_value([]),)))
        namespaced = sandbox.level & NAMESPACED
    pid = parse_value(execution.results[0][1])
    assert pid == 1 if namespaced else pid != os.getpid()  # pid 1 of its own pid namespace


@pytest.mark.parametrize(
    "value",
    [0, -3, 2**80, 1.5, -0.0, float("inf"), "é\n'\"", b"\x00", None, True, 1 + 2j, [1, [2.5, "x"]],
     (1,), (), {1, 2}, set(), frozenset({3}), {"a": [1]}, {1: (2, 3)}, [float("nan")]],
)  # fmt: skip
def test_values_survive_encoding_with_their_types(value):
    text = encode_value(value)
    back = parse_value(text)
    assert type(back) is (set if type(value) is frozenset else type(value))
    assert repr(back) == repr(set(value) if type(value) is frozenset else value)


def test_objects_of_other_types_are_not_encoded():
    class Lying(int):
        def __eq__(self, other):
            return True

    for value in (Lying(1), [Lying(1)], object(), {"k": object()}):
        with pytest.raises(TypeError):
            encode_value(value)


@ROOT_ONLY
def test_sandbox_reports_full_isolation_as_root():
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        assert sandbox.isolation == "not started"
        sandbox.run(Job(CORRECT, "f", INPUTS))
        assert sandbox.level == FULL_LEVEL, sandbox.isolation
        assert sandbox.isolation.startswith("allow-list root (bwrap) + per-program")
        assert " + cgroup v" in sandbox.isolation


def test_output_is_capped_and_the_answers_still_count():
    program = "def f(x):\n    print('start')\n    print('x' * 100000)\n    return x + 1\n"
    with Sandbox(Limits(timeout_s=5, output_bytes=1000), workers=1) as sandbox:
        execution = sandbox.run(Job(program, "f", INPUTS))
    assert len(execution.output.encode()) == 1000
    assert execution.output.startswith("start\nxxx")
    assert judge(SUITE, execution).outcome == "passed"


@ROOT_ONLY
def test_nothing_outlives_a_program_or_reaches_the_next_one():
    """SysV shared memory and files left in any writable place are gone for the next program
    of the same slot, and no IPC object is left on the host."""
    key = 0xBB000000 + os.getpid() % 0xFFFF
    places = ["/work", "/dev/shm", "/var/tmp", "/root", "/home", "/mnt", "/srv", "/run/lock",
              "/tmp", "/", "/usr/lib"]  # fmt: skip
    writer = (
        "import ctypes, os\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\n"
        f"segment = libc.shmget({key}, 4096, 0o1666)\n"
        "if segment >= 0:\n    ctypes.memmove(libc.shmat(segment, None, 0), b'marker', 6)\n"
        f"for place in {places!r}:\n    try:\n"
        "        open(os.path.join(place, 'bb-marker'), 'w').write('marker')\n"
        "    except OSError:\n        pass\n"
        "def f(x):\n    return x + 1\n"
    )
    reader = (
        "import ctypes, os\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\n"
        "def found():\n"
        f"    segment = libc.shmget({key}, 0, 0)\n"
        "    if segment >= 0 and ctypes.string_at(libc.shmat(segment, None, 0), 6) == b'marker':\n"
        "        return True\n"
        f"    return any(os.path.exists(os.path.join(p, 'bb-marker')) for p in {places!r})\n"
        "def f(x):\n    return x + 1 if found() else 0\n"
    )
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        wrote = sandbox.run(Job(writer, "f", INPUTS))
        read = sandbox.run(Job(reader, "f", INPUTS))
    libc = ctypes.CDLL(None)
    leaked = libc.shmget(key, 0, 0)
    if leaked >= 0:
        libc.shmctl(leaked, 0, None)  # IPC_RMID: leave the host clean
    assert judge(SUITE, wrote).outcome == "passed"
    assert judge(SUITE, read).outcome == "failed", read
    assert leaked < 0, "a SysV shared-memory segment outlived the program"


@ROOT_ONLY
def test_memory_limit_covers_all_of_a_programs_processes():
    """Four children of 120 MB each (every one under the 384 MB limit, 480 MB together) held
    at once: a per-process limit lets that through, the slot's control group does not. The
    group's OOM killer may take a child that had already filled its block while the fourth
    fills its own, so the program checks that all four are still alive after the fourth (it
    used not to: about 1 run in 5 read 'passed' with the limit working, oom_kill 1)."""
    cgroup = Path("/sys/fs/cgroup")
    if not ((cgroup / "cgroup.controllers").exists() or (cgroup / "memory").is_dir()):
        pytest.skip("no control groups here: limits are per process")
    program = (
        "import os, select, time\n"
        "def attack():\n    read, write = os.pipe()\n    for _ in range(4):\n"
        "        if os.fork() == 0:\n            block = bytearray(120 << 20)\n"
        "            for i in range(0, len(block), 4096):\n                block[i] = 1\n"
        "            os.write(write, b'1')\n            time.sleep(60)\n            os._exit(0)\n"
        "    got = b''\n    while len(got) < 4:  # all four filled, or one was killed\n"
        "        if select.select([read], [], [], 0.1)[0]:\n            got += os.read(read, 4)\n"
        "        elif os.waitpid(-1, os.WNOHANG)[0]:\n            return False\n"
        "    time.sleep(0.5)  # the OOM killer may take a child that had already written\n"
        "    return os.waitpid(-1, os.WNOHANG)[0] == 0  # all four alive at once\n"
        "HELD = attack()\ndef f(x):\n    return x + 1 if HELD else 0\n"
    )
    with Sandbox(Limits(timeout_s=60, memory_mb=384), workers=1) as sandbox:
        execution = sandbox.run(Job(program, "f", INPUTS))
    verdict = judge(SUITE, execution)
    assert verdict.outcome in ("failed", "error"), (verdict, execution.detail)


def test_result_and_error_bombs_cost_the_harness_little():
    """A 2.6 MB literal result line, an 8 MB error detail and a 100 KB exception name: each is
    skipped or cut as it streams; the harness thread spends a few ms and a few MB on them."""
    bombs = {
        "result line": "def f(x):\n    return [(i,) for i in range(250_000)]\n",
        "error detail": "raise type('E' * 8_000_000, (Exception,), {})()\ndef f(x):\n    pass\n",
        "exception name": "def f(x):\n    raise type('E' * 100_000, (Exception,), {})()\n",
    }
    with Sandbox(Limits(timeout_s=10), workers=1) as sandbox:
        sandbox.run(Job(CORRECT, "f", INPUTS))  # the zygote is up before measuring
        costs = {}
        for name, program in bombs.items():
            tracemalloc.start()
            cpu = time.thread_time()
            execution = sandbox.run(Job(program, "f", INPUTS))
            verdict = judge(SUITE, execution)
            costs[name] = (time.thread_time() - cpu, tracemalloc.get_traced_memory()[1] >> 20)
            tracemalloc.stop()
            assert verdict.outcome in ("failed", "error"), name
            stored = [execution.detail, verdict.detail]
            stored += [payload for kind, payload in execution.results if kind != "ok"]
            costs[name] += (max(map(len, stored)),)
    too_costly = {n: c for n, c in costs.items() if c[0] > 0.5 or c[1] >= 8 or c[2] > DETAIL_CHARS}
    assert too_costly == {}, "(CPU s, peak MB, longest stored detail)"


CONCURRENT_RUN = """
import json, sys
from tasks.verifiers.sandbox import Job, Limits, Sandbox, encode_value
inputs = tuple(encode_value([x]) for x in (1, 2, 41))
programs = [
    "import time\\ndef f(x):\\n    time.sleep(0.05)\\n    return x + 1\\n",
    "def f(x):\\n    return x\\n",
    "def f(x):\\n    raise ValueError\\n",
    "import os, time\\ndef f(x):\\n    if os.fork() == 0:\\n"
    "        time.sleep(5)\\n    return x + 1\\n",
]
with Sandbox(Limits(timeout_s=5), workers=2) as sandbox:
    print(json.dumps(sandbox.uids), flush=True)
    executions = sandbox.run_many([Job(programs[i % 4], "f", inputs) for i in range(40)])
print(json.dumps([[e.status, e.results, e.detail] for e in executions]))
"""


@ROOT_ONLY
def test_two_concurrent_sandboxes_give_the_single_run_verdicts():
    """Two sandboxes in two processes at once: disjoint uids, and each gets exactly what one
    run alone gets (the old sandbox's cleanup killed the other run's programs)."""
    command = [sys.executable, "-c", CONCURRENT_RUN]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    alone = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    expected = json.loads(alone.stdout.splitlines()[1])
    assert sum(status == "finished" for status, _, _ in expected) == 40
    runs = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0].splitlines() for run in runs]
    for output in outputs:
        assert json.loads(output[1]) == expected
    uids = [set(json.loads(output[0])) for output in outputs]
    assert uids[0].isdisjoint(uids[1])
    with Sandbox(Limits(), workers=2) as first, Sandbox(Limits(), workers=2) as second:
        assert set(first.uids).isdisjoint(second.uids)


@ROOT_ONLY
def test_the_isolation_level_is_recorded_and_shown(sqlite_url, tmp_path):
    environment = {**os.environ, "BUDGETBENCH_CACHE_DIR": str(tmp_path / "cache")}
    run = ["run", "verifiers", "--profile", "smoke", "--db", sqlite_url, "--json"]
    for setting in ("problems=2", "samples_per_problem=2", "permutations=10"):
        run += ["--set", setting]
    outcome = run_cli(*run, check=True, env=environment)
    run_id = json.loads(outcome.stdout)[0]["run_id"]
    shown = run_cli("show", run_id, "--db", sqlite_url, check=True, env=environment).stdout
    assert "sandbox" in shown and "allow-list root (bwrap)" in shown, shown


def test_recorded_inputs_and_values_are_not_cut_only_details_are():
    """Detail truncation applies to exception names and errors, never to recorded inputs or
    returned values (a 2,000-item list is a legitimate input and result)."""
    long_list = list(range(2000))
    test = f"def check(candidate):\n    assert candidate({long_list!r}) == {long_list!r}\n"
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        recorded = sandbox.run(Job("def f(x):\n    return x\n", "f", mode="record", test=test))
        ran = sandbox.run(Job("def f(x):\n    return x\n", "f", recorded.results[0][1:]))
    assert recorded.status == "finished", recorded
    assert parse_value(recorded.results[0][1]) == [long_list]
    assert parse_value(ran.results[0][1]) == long_list


@ROOT_ONLY
def test_pool_executor_runs_give_the_serial_runs_measurements(tmp_path):
    """Two verifiers runs at once in two pool workers (two sandboxes on one host) measure
    exactly what the same seeds measure one after the other."""
    environment = {**os.environ, "BUDGETBENCH_CACHE_DIR": str(tmp_path / "cache")}
    settings = ["problems=6", "samples_per_problem=4", "permutations=10"]
    base = ["run", "verifiers", "--profile", "smoke", "--seeds", "2", "--json"]
    base += [arg for setting in settings for arg in ("--set", setting)]
    measured = []
    for executor in (["--executor", "local"], ["--executor", "pool", "--workers", "2"]):
        database = f"sqlite:///{tmp_path / (executor[1] + '.db')}"
        outcome = run_cli(*base, *executor, "--db", database, check=True, env=environment)
        runs = sorted(json.loads(outcome.stdout), key=lambda run: run["seed"])
        for run in runs:
            run["measurements"].pop("programs_per_s")
        measured.append([(run["seed"], run["measurements"]) for run in runs])
    serial, pooled = measured
    assert pooled == serial
    assert all(m["share_error"] == 0 for _, m in serial)


def test_a_dead_zygote_is_replaced():
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        assert judge(SUITE, sandbox.run(Job(CORRECT, "f", INPUTS))).outcome == "passed"
        zygote = sandbox._slots[0].zygote
        zygote.process.kill()
        zygote.process.wait()
        assert judge(SUITE, sandbox.run(Job(CORRECT, "f", INPUTS))).outcome == "passed"


HARNESS_KILLED_MIDWAY = """
from tasks.verifiers.sandbox import Job, Limits, Sandbox, encode_value
with Sandbox(Limits(timeout_s=600), workers=1) as sandbox:
    print(sandbox.uids[0], flush=True)
    program = "import time\\ndef f(x):\\n    time.sleep(600)\\n"
    sandbox.run(Job(program, "f", (encode_value([1]),)))
"""


@ROOT_ONLY
def test_programs_die_with_a_killed_harness():
    """SIGKILL to the harness mid-job leaves no program running (parent-death signals chain
    from bubblewrap to the zygote, the leader and the program)."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-c", HARNESS_KILLED_MIDWAY]
    harness = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
    assert harness.stdout is not None
    uid = int(harness.stdout.readline())
    deadline = time.monotonic() + 30
    while not _processes_of([uid]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_of([uid]), "the program never started"
    time.sleep(0.5)
    assert _processes_of([uid]), "the program did not keep running"
    harness.kill()
    harness.wait()
    deadline = time.monotonic() + 5
    while _processes_of([uid]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_of([uid]) == []
