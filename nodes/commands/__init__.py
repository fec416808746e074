"""Science CLI subcommands (train, eval, quantize, hw, convert…), registered through the `edgeloop.commands` entry point.

Each value names a function `register(subparsers) -> None` that adds one argparse subcommand and sets
`func=handler` where `handler(args) -> int` returns the exit code.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

COMMANDS: dict[str, str] = {
    "hw": "nodes.commands.hw:register",
    "convert": "nodes.commands.convert:register",
    "train": "nodes.commands.train:register",
    "quantize": "nodes.commands.quantize:register",
    "eval": "nodes.commands.eval:register",
}
