"""The built-in node catalogue: graph names → `module:Class`, registered through the `edgeloop.nodes` entry point."""

from __future__ import annotations

__all__ = ["CATALOG"]

CATALOG: dict[str, str] = {
    # runtime basics
    "signal.sine": "nodes.signal:SineSensor",
    "source.counter": "nodes.signal:CounterSource",
    "transform.lowpass": "nodes.transform:LowPass",
    "transform.relay": "nodes.transform:Relay",
    "actuator.console": "nodes.actuator:ConsoleActuator",
    "sink.counter": "nodes.sink:CounterSink",
}
