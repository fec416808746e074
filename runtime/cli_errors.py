"""Small helpers of the `edgeloop` command for what a user meets before or around a verb: the version,
the benchmark names in `bench --help`, and a closed stdout (`edgeloop info --json | head`)."""

from __future__ import annotations

import os
import sys

__all__ = ["version_text", "bench_names_text", "check_metrics_port", "silence_stdout"]


def version_text() -> str:
    """`edgeloop 0.3.0`, from the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"edgeloop {version('edgeloop')}"
    except PackageNotFoundError:
        return "edgeloop (version unknown: the package is not installed; `pip install -e .`)"


def bench_names_text() -> str:
    """The benchmarks registered under the `edgeloop.benches` entry point, for `bench --help`."""
    from .errors import GraphError
    from .registry import load_plugin_table

    try:
        names = sorted(load_plugin_table("edgeloop.benches"))
    except GraphError as exc:  # a broken plugin: say so in the help rather than fail it
        return f"benchmarks: unavailable ({exc})"
    return f"benchmarks: {', '.join(names) if names else 'none installed'}"


def check_metrics_port(port: int) -> None:
    """A TransportError before anything starts when `--metrics-port` cannot be served on 127.0.0.1
    (taken, or out of range); the exporter binds as this does (SO_REUSEADDR, as `http.server`)."""
    import socket

    from .errors import TransportError

    if not 1 <= port <= 65535:
        raise TransportError(f"--metrics-port {port}: not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError as exc:
            raise TransportError(
                f"--metrics-port {port}: 127.0.0.1:{port} is not free ({exc.strerror or exc}); "
                "choose another port, or stop what listens there"
            ) from None


def silence_stdout() -> None:
    """After a BrokenPipeError (the reader of stdout went away, e.g. `| head`): point stdout at
    /dev/null so that the interpreter's final flush does not fail again with a second message."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
