"""Transport security: CURVE key pairs and ZAP allow-lists for tcp between hosts, 0700 dirs for ipc.

CURVE costs 3x at 100 B and 7.5x at 1 MB [SCIENCE 5.2 [M]], so edgeloop uses it across hosts
only; on one host it uses `ipc://` sockets in a directory only the owner can enter. Without ZAP
anyone who knows the server's public key may connect [SCIENCE 5.2, pyzmq howto/curve]; with
`configure_curve_server` only clients whose public key file is in the allow-list directory get
through, and an unknown peer's handshake fails (`zmq.EVENT_HANDSHAKE_FAILED_AUTH` on a monitor).

Key files are pyzmq's ZPL certificates: `NAME.key` (public, give it to peers) and
`NAME.key_secret` (mode 0600, never leaves the host).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .errors import GraphError, TransportError

__all__ = [
    "ZAP_DOMAIN",
    "KEYS_DIR_ENV",
    "default_keys_dir",
    "check_keys",
    "generate_keypair",
    "load_keypair",
    "load_public_key",
    "CurveServerAuth",
    "configure_curve_server",
    "configure_curve_client",
    "secure_ipc_dir",
    "ipc_endpoint",
]

ZAP_DOMAIN = "edgeloop"
KEYS_DIR_ENV = "EDGELOOP_KEYS_DIR"
_IPC_PATH_MAX = 107  # sun_path is 108 bytes on Linux, including the NUL


def default_keys_dir() -> Path:
    """`$EDGELOOP_KEYS_DIR`, else `$XDG_CONFIG_HOME/edgeloop/keys` (default `~/.config/edgeloop/keys`)."""
    if os.environ.get(KEYS_DIR_ENV):
        return Path(os.environ[KEYS_DIR_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "edgeloop" / "keys"


def check_keys(keys_dir: Path, own: list[str], peers: list[str]) -> None:
    """Before anything starts: the secret keys used here and every peer's public key must be in `keys_dir`."""
    missing = [keys_dir / f"{n}.key_secret" for n in own if not (keys_dir / f"{n}.key_secret").is_file()]
    missing += [keys_dir / f"{n}.key" for n in [*own, *peers] if not (keys_dir / f"{n}.key").is_file()]
    if missing:
        make = " && ".join(
            f"edgeloop keys {n} --dir {keys_dir}" for n in own if not (keys_dir / f"{n}.key_secret").is_file()
        )
        raise GraphError(
            "agents on other hosts talk over CURVE-encrypted tcp, and key files are missing: "
            + ", ".join(map(str, missing))
            + ". "
            + (f"Make this host's pairs: {make}; " if make else "")
            + "copy every public NAME.key (never a .key_secret) to every host's key directory "
            f"(here: {keys_dir}, set with --keys or ${KEYS_DIR_ENV})"
        )


def generate_keypair(
    directory: str | os.PathLike[str], name: str, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write `NAME.key` (0644) and `NAME.key_secret` (0600) into `directory` (made 0700 if new).

    The pair is created inside a private temporary directory and moved into place, so the secret
    is never readable by others, not even for an instant. Returns (public_path, secret_path).
    """
    if not name or "/" in name or name.startswith("."):
        raise GraphError(f"key name {name!r} is not valid: use a plain file name such as 'brain'")
    d = Path(directory).expanduser()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    public, secret = d / f"{name}.key", d / f"{name}.key_secret"
    if not overwrite and (public.exists() or secret.exists()):
        raise GraphError(
            f"key pair {name!r} already exists in {d}; pass overwrite=True (--force) to replace it"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".keygen-", dir=d))  # mkdtemp makes it 0700
    try:
        pub_tmp, sec_tmp = zmq.auth.create_certificates(tmp, name)
        os.chmod(sec_tmp, 0o600)
        os.chmod(pub_tmp, 0o644)
        os.replace(sec_tmp, secret)
        os.replace(pub_tmp, public)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return public, secret


def load_keypair(secret_file: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """Return (public_key, secret_key) from a `.key_secret` file; refuses files others can read."""
    path = Path(secret_file)
    try:
        mode = path.stat().st_mode
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot load CURVE key pair from {path}: {exc}") from exc
    if secret is None:
        raise TransportError(f"{path} holds only a public key; pass the .key_secret file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TransportError(
            f"secret key {path} is readable by others (mode {oct(mode & 0o777)}); run chmod 600 {path}"
        )
    return public, secret


def load_public_key(public_file: str | os.PathLike[str]) -> bytes:
    """Return the public key from a `.key` (or `.key_secret`) file."""
    try:
        return zmq.auth.load_certificate(public_file)[0]
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot load CURVE public key from {public_file}: {exc}") from exc


@dataclass(eq=False)
class _ContextAuth:
    auth: ThreadAuthenticator
    sockets: set[int] = field(default_factory=set)


# One ZAP handler per context (it binds inproc://zeromq.zap.01), shared by that context's servers.
_AUTHS: WeakKeyDictionary[zmq.Context[zmq.Socket[bytes]], _ContextAuth] = WeakKeyDictionary()


class CurveServerAuth:
    """Handle returned by `configure_curve_server`: `reload()` after editing the allow-list, `close()` to end."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], socket_id: int, allowed_dir: Path) -> None:
        self._context = context
        self._socket_id = socket_id
        self.allowed_dir = allowed_dir

    def reload(self) -> int:
        """Re-read the allow-list directory (keys added or revoked); returns how many keys it holds."""
        entry = _AUTHS.get(self._context)
        if entry is None:
            raise TransportError("CURVE server auth is closed")
        entry.auth.configure_curve(domain=ZAP_DOMAIN, location=str(self.allowed_dir))
        return len(entry.auth.certs.get(ZAP_DOMAIN, {}))

    def close(self) -> None:
        """Stop the ZAP handler once the last CURVE server socket of this context is done.

        Close the server socket (and local clients) first: a handshake still waiting for a ZAP
        answer when the handler stops keeps `Context.term()` waiting.
        """
        entry = _AUTHS.get(self._context)
        if entry is None:
            return
        entry.sockets.discard(self._socket_id)
        if not entry.sockets:
            entry.auth.stop()
            del _AUTHS[self._context]


def configure_curve_server(
    socket: zmq.Socket[Any],
    server_secret_file: str | os.PathLike[str],
    allowed_clients_dir: str | os.PathLike[str],
) -> CurveServerAuth:
    """Make `socket` (not yet bound) a CURVE server that admits only keys in `allowed_clients_dir`.

    The ZAP handler is a `ThreadAuthenticator` (its own thread), so handshakes are answered while
    the socket's event loop is busy. pyzmq's `AsyncioAuthenticator` left ZAP requests unanswered (the
    handshake stalls, nothing is delivered) once an earlier authenticator in the same process had
    stopped: 5 of 6 repeated set-ups failed, 0 of 6 with the thread [M, pyzmq 27.3]. Every `*.key`
    file in the directory is allowed.
    """
    allowed = Path(allowed_clients_dir)
    keys = sorted(allowed.glob("*.key")) if allowed.is_dir() else []
    if not keys:
        raise TransportError(
            f"CURVE allow-list {allowed} has no client public keys (*.key); copy each client's "
            "NAME.key there (made by `edgeloop keys NAME`)"
        )
    public, secret = load_keypair(server_secret_file)
    ctx = socket.context
    entry = _AUTHS.get(ctx)
    if entry is None:
        # A plain (sync) shadow of the same libzmq context: the ZAP socket must be in that context.
        auth = ThreadAuthenticator(zmq.Context.shadow(ctx.underlying))
        auth.start()
        entry = _ContextAuth(auth)
        _AUTHS[ctx] = entry
    entry.sockets.add(id(socket))
    handle = CurveServerAuth(ctx, id(socket), allowed)
    handle.reload()
    socket.zap_domain = ZAP_DOMAIN.encode()
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return handle


def configure_curve_client(
    socket: zmq.Socket[Any],
    client_secret_file: str | os.PathLike[str],
    server_public_file: str | os.PathLike[str],
) -> None:
    """Make `socket` (not yet connected) a CURVE client of the server whose public key file is given."""
    public, secret = load_keypair(client_secret_file)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = load_public_key(server_public_file)


def secure_ipc_dir(base: str | os.PathLike[str] | None = None, prefix: str = "edgeloop-") -> Path:
    """Create a fresh 0700 directory for `ipc://` sockets (only this user can connect to them)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(d, 0o700)  # mkdtemp already does; explicit because the guarantee is the point
    return d


def ipc_endpoint(directory: str | os.PathLike[str], name: str) -> str:
    """`ipc://DIR/NAME.sock`, checked against the 107-byte Unix socket path limit."""
    path = os.fspath(Path(directory) / f"{name}.sock")
    if len(path.encode()) > _IPC_PATH_MAX:
        raise TransportError(
            f"ipc path {path!r} is {len(path.encode())} bytes, over the {_IPC_PATH_MAX}-byte Unix socket "
            "limit; use a shorter base directory (e.g. /tmp)"
        )
    return f"ipc://{path}"
