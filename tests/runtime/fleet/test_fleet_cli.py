"""`edgeloop keys` and `edgeloop agent` argument handling, called through their argparse registrations."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from runtime.fleet.cli import register_agent_command, register_keys_command
from runtime.security import load_keypair


def parse(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="edgeloop")
    sub = ap.add_subparsers()
    register_agent_command(sub)
    register_keys_command(sub)
    return ap.parse_args(list(argv))


def test_keys_writes_a_private_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("keys", "brain", "--dir", str(tmp_path / "k"))
    assert args.func(args) == 0
    secret = tmp_path / "k" / "brain.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    public, _ = load_keypair(secret)
    assert public.decode() in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["brain.key", "brain.key_secret"]


def test_keys_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("keys", "brain", "--dir", str(tmp_path))
    assert args.func(args) == 0
    first = (tmp_path / "brain.key").read_text()
    assert args.func(args) == 1
    assert "already exists" in capsys.readouterr().err
    forced = parse("keys", "brain", "--dir", str(tmp_path), "--force")
    assert forced.func(forced) == 0
    assert (tmp_path / "brain.key").read_text() != first


def test_keys_default_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_KEYS_DIR", str(tmp_path / "env"))
    args = parse("keys", "cam")
    assert args.func(args) == 0
    assert (tmp_path / "env" / "cam.key").exists()


def test_agent_without_broker_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EDGELOOP_BROKER_URL", raising=False)
    args = parse("agent", "--name", "cam")
    assert args.func(args) == 2
    assert "--broker mqtt://HOST:PORT" in capsys.readouterr().err


def test_agent_with_unreachable_broker_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("agent", "--broker", "mqtt://127.0.0.1:1", "--name", "cam", "--connect-timeout-s", "0.5")
    assert args.func(args) == 1
    assert "could not connect to the MQTT broker at mqtt://127.0.0.1:1" in capsys.readouterr().err
