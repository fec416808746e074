"""Fixtures for control-plane tests: the embedded amqtt broker and a real mosquitto with passwords and ACLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from control_helpers import FLEET, USERS, BrokerUnderTest
from mosquitto_broker import Mosquitto, mosquitto_skip_reason, start_mosquitto

from runtime.fleet.broker import EmbeddedBroker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh mosquitto per test (~0.1 s), so retained messages never leak between tests."""
    reason = mosquitto_skip_reason()
    if reason:
        pytest.skip(reason)
    m = start_mosquitto(tmp_path / "mosquitto", USERS, FLEET)
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
async def amqtt_broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as b:
        yield b


@pytest.fixture(params=["amqtt", "mosquitto"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerUnderTest]:
    if request.param == "mosquitto":
        m = request.getfixturevalue("mosquitto")
        yield BrokerUnderTest("mosquitto", m.url, m)
        return
    async with EmbeddedBroker() as b:
        yield BrokerUnderTest("amqtt", b.url)
