"""The sandbox against a corpus of hostile programs, batched with correct ones.

Every hostile program solves the toy problem `f(x) = x + 1` only if its attack worked (it read a
secret, reached the network, changed a file it must not touch), so "not passed" is the proof of
containment; each must also land in the expected outcome class, and the correct candidates
batched alongside must still pass. Runs in a few seconds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tasks.verifiers.problems import TestSuite as Suite
from tasks.verifiers.sandbox import (
    ISOLATION_LEVELS,
    UID_BASE,
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


def _hostile(canary: Path, secret_file: Path, port: int) -> dict[str, tuple[str, set[str]]]:
    """name -> (program, outcomes it may be classified as)."""
    return {
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


@ROOT_ONLY
def test_hostile_programs_are_contained_and_classified(tmp_path, listener, monkeypatch):
    port, accepted = listener
    canary = tmp_path / "canary.txt"
    canary.write_text("intact")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    monkeypatch.setenv("BB_TEST_SECRET", SECRET)
    corpus = _hostile(canary, secret_file, port)
    names = list(corpus)
    jobs = [Job(CORRECT, "f", INPUTS)]
    for name in names:
        jobs += [Job(corpus[name][0], "f", INPUTS), Job(CORRECT, "f", INPUTS)]
    environment = dict(os.environ)

    with Sandbox(Limits(timeout_s=1.5, memory_mb=192), workers=2) as sandbox:
        executions = sandbox.run_many(jobs)
        followed_by = sandbox.run(Job(CORRECT, "f", INPUTS))

    verdicts = [judge(SUITE, execution) for execution in executions]
    assert all(v.outcome == "passed" for v in verdicts[0::2]), [(v, e.detail) for v, e in zip(verdicts[0::2], executions[0::2]) if v.outcome != "passed"]
    assert judge(SUITE, followed_by).outcome == "passed"
    for name, verdict, execution in zip(names, verdicts[1::2], executions[1::2], strict=True):
        expected = corpus[name][1]
        assert verdict.outcome in expected, f"{name}: {verdict} {execution.detail}"
        if name != "escaping child process":
            assert not verdict.strong and not verdict.weak, f"{name} got a pass"
        assert len(execution.output) <= Limits().output_bytes
    assert canary.read_text() == "intact"
    assert not Path("/usr/bb-sandbox-escape").exists()
    assert accepted == []
    assert dict(os.environ) == environment
    assert _processes_of_sandbox_uids() == []


def _processes_of_sandbox_uids() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
                if UID_BASE <= uid < UID_BASE + 64 and _alive(int(name)):
                    found.append(int(name))
            except FileNotFoundError:
                continue
    return found


@ROOT_ONLY
def test_candidate_sees_an_empty_tmp_and_no_harness_directories(tmp_path):
    (tmp_path / "visible.txt").write_text("x")
    probe = (
        "import os\ndef f(x):\n"
        "    return [os.getuid() != 0, os.listdir('/tmp'), os.path.exists('/work'),"
        f" os.path.exists({str(tmp_path)!r}), os.listdir('/work')]\n"
    )
    with Sandbox(Limits(timeout_s=5), workers=1) as sandbox:
        execution = sandbox.run(Job(probe, "f", (encode_value([0]),)))
    assert execution.status == "finished", execution
    assert execution.results[0][0] == "ok"
    assert parse_value(execution.results[0][1]) == [True, ["work"], True, False, []]


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
    pid = parse_value(execution.results[0][1])
    assert pid != os.getpid()
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


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
        assert sandbox.isolation == ISOLATION_LEVELS[0]


def test_output_is_capped_and_the_answers_still_count():
    program = "def f(x):\n    print('start')\n    print('x' * 100000)\n    return x + 1\n"
    with Sandbox(Limits(timeout_s=5, output_bytes=1000), workers=1) as sandbox:
        execution = sandbox.run(Job(program, "f", INPUTS))
    assert len(execution.output.encode()) == 1000
    assert execution.output.startswith("start\nxxx")
    assert judge(SUITE, execution).outcome == "passed"
