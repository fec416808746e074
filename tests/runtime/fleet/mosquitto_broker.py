"""Start Debian's mosquitto on an ephemeral loopback port with a password file and per-agent ACLs (for tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Mosquitto", "mosquitto_skip_reason", "start_mosquitto", "acl_text"]


def mosquitto_skip_reason() -> str | None:
    """None when mosquitto and mosquitto_passwd are installed, else why the tests are skipped."""
    missing = [b for b in ("mosquitto", "mosquitto_passwd") if shutil.which(b) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed (run .ci/install-mosquitto.sh: apt-get install mosquitto)"
        )
    return None


def acl_text(fleet: str, admins: Iterable[str] = ("admin",)) -> str:
    """Each user may write only under its own agent subtree and read the whole fleet [SCIENCE 5.1].

    `admins` (an operator account, used by tests to play an outsider) may read and write anything.
    """
    lines = [f"pattern readwrite edgeloop/{fleet}/agents/%u/#", f"pattern read edgeloop/{fleet}/#"]
    for a in admins:
        lines += [f"user {a}", "topic readwrite #"]
    return "\n".join(lines) + "\n"


@dataclass
class Mosquitto:
    """A running mosquitto: `url`, `creds(user)` for FleetClient kwargs, `stop()`."""

    url: str
    port: int
    fleet: str
    passwords: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    kind: str = field(default="mosquitto")

    def creds(self, user: str) -> dict[str, str]:
        return {"username": user, "password": self.passwords[user]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)  # polling a port that is not open yet; bounded by the deadline
    return False


def start_mosquitto(workdir: Path, users: Iterable[str], fleet: str, timeout_s: float = 5.0) -> Mosquitto:
    """Write passwd/acl/conf into `workdir` (0700) and start mosquitto; retries a port race twice."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    passwords = {u: f"{u}-pw-{time.monotonic_ns() % 100000}" for u in users}
    passwd, acl, conf, log = (workdir / n for n in ("passwd", "acl", "mosquitto.conf", "mosquitto.log"))
    passwd.unlink(missing_ok=True)
    for i, (user, pw) in enumerate(passwords.items()):
        args = ["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd), user, pw]
        subprocess.run(args, check=True, capture_output=True, timeout=10)
    passwd.chmod(0o600)
    acl.write_text(acl_text(fleet))
    acl.chmod(0o600)
    for _ in range(3):
        port = _free_port()
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            f"acl_file {acl}\n"
            "persistence false\n"
            "set_tcp_nodelay true\n"  # commands are tiny: do not let Nagle hold them ~40 ms
            "user root\n"  # only matters when run as root: keep access to our 0700 workdir
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"log_dest file {log}\n"
        )
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        if _wait_listening(port, proc, timeout_s):
            return Mosquitto(f"mqtt://127.0.0.1:{port}", port, fleet, passwords, proc, log)
        proc.kill()
        proc.wait(2)
    raise RuntimeError(
        f"mosquitto did not start; its log:\n{log.read_text(errors='replace') if log.exists() else ''}"
    )
