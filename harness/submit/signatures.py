"""SSH signatures over verification reports, so the site can tell a maintainer's from an edit.

A SHA-256 anyone can recompute proves nothing about who wrote a file. A maintainer signs each
report with an SSH key (`budgetbench verify ... --report --sign KEY --signer NAME`, which runs
`ssh-keygen -Y sign`); the repository lists the maintainers' public keys in an allowed-signers
file (`results/allowed_signers`, ssh-keygen's ALLOWED SIGNERS format), and `signed_by` checks a
report against it with `ssh-keygen -Y verify`. The signature covers the report's canonical JSON
without its `signature` field, under the namespace `budgetbench-verification`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.spec import canonical_json

NAMESPACE = "budgetbench-verification"
ALLOWED_SIGNERS = "allowed_signers"
"""The allowed-signers file's name in a results directory."""
_TIMEOUT_S = 30


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise InputError("signing reports needs ssh-keygen (OpenSSH 8.1 or newer) on PATH")
    return found


def _signed_text(report: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in report.items() if k != "signature"}).encode()


@dataclass(frozen=True)
class Signer:
    """A private SSH key and the principal (a name or e-mail) it signs as."""

    key: Path
    principal: str

    def sign(self, report: dict[str, Any]) -> dict[str, Any]:
        """The report with a `signature` field added."""
        if not self.key.is_file():
            raise InputError(f"--sign {self.key}: no such key file")
        result = subprocess.run(
            [_ssh_keygen(), "-Y", "sign", "-q", "-f", str(self.key), "-n", NAMESPACE],
            input=_signed_text(report),
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines() or ["failed"]
            raise InputError(f"--sign {self.key}: ssh-keygen: {reason[-1]}")
        armored = result.stdout.decode()
        signature = {"principal": self.principal, "namespace": NAMESPACE, "armored": armored}
        return {**report, "signature": signature}


def signed_by(report: dict[str, Any], allowed_signers: Path) -> str | None:
    """The principal whose allowed key signed `report`, or None (unsigned, edited, unknown)."""
    signature = report.get("signature")
    if not isinstance(signature, dict) or not allowed_signers.is_file():
        return None
    principal, armored = signature.get("principal"), signature.get("armored")
    if not isinstance(principal, str) or not isinstance(armored, str) or not principal:
        return None
    with tempfile.TemporaryDirectory(prefix="budgetbench-signature-") as scratch:
        signature_file = Path(scratch) / "report.sig"
        signature_file.write_text(armored)
        result = subprocess.run(
            [
                _ssh_keygen(),
                "-Y",
                "verify",
                "-f",
                str(allowed_signers),
                "-I",
                principal,
                "-n",
                NAMESPACE,
                "-s",
                str(signature_file),
            ],
            input=_signed_text(report),
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
    return principal if result.returncode == 0 else None
