"""A certificate authority of the test's own and a server certificate it
signed for the loopback address (and "localhost"): TLS for redis-server and
rabbitmq-server that trusts nothing outside the test."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness import HarnessError

# Elliptic-curve keys: made in milliseconds, taken by OpenSSL and Erlang.
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def _openssl(*arguments: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *arguments], cwd=cwd, capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise HarnessError(f"openssl {arguments[0]} failed:\n{result.stderr}")


def make_certificates(directory: Path) -> Certificates:
    """Write a CA and a server certificate it signed into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", *NEW_KEY, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=osism-events-test-ca", cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", *NEW_KEY, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost", cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2",
        "-extfile", "server.ext", cwd=directory,
    )  # fmt: skip
    return Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "server.key"
    )
