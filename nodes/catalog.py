"""The built-in node catalogue: graph names → `module:Class`, registered through the `edgeloop.nodes` entry point."""

from __future__ import annotations

__all__ = ["CATALOG"]

CATALOG: dict[str, str] = {
    # runtime basics
    "signal.sine": "nodes.builtin.signal:SineSensor",
    "source.counter": "nodes.builtin.signal:CounterSource",
    "transform.lowpass": "nodes.builtin.transform:LowPass",
    "transform.relay": "nodes.builtin.transform:Relay",
    "actuator.console": "nodes.builtin.actuator:ConsoleActuator",
    "sink.counter": "nodes.builtin.sink:CounterSink",
    # record / replay (MCAP)
    "record.mcap": "nodes.builtin.recording:McapRecorder",
    "replay.mcap": "nodes.builtin.recording:McapReplay",
    # MQTT bridge (control-plane helper)
    "mqtt.publish": "nodes.builtin.mqtt:MqttPublish",
    "mqtt.subscribe": "nodes.builtin.mqtt:MqttSubscribe",
    # sensors and representations (event cameras, wearable IMU)
    "event_camera.replay": "nodes.builtin.event_camera:EventCameraReplay",
    "event_camera.synthetic": "nodes.builtin.event_camera:SyntheticEventCameraSource",
    "imu.replay": "nodes.builtin.imu:ImuReplay",
    "imu.synthetic": "nodes.builtin.imu:SyntheticImuSource",
    "imu.rate_controller": "nodes.builtin.imu:ImuRateController",
    "window": "nodes.builtin.window:Window",
    "repr.event_frame": "nodes.builtin.representation:EventFrame",
    "repr.voxel_grid": "nodes.builtin.representation:VoxelGrid",
    "repr.time_surface": "nodes.builtin.representation:TimeSurfaceNode",
    "repr.event_tokens": "nodes.builtin.representation:EventTokens",
    # swarm demo (examples/swarm): camera over a shared world, detector, controller, mover, recorder
    "swarm.camera": "nodes.builtin.swarm:SwarmCamera",
    "swarm.detector": "nodes.builtin.swarm:SwarmDetector",
    "swarm.controller": "nodes.builtin.swarm:SwarmController",
    "swarm.mover": "nodes.builtin.swarm:SwarmMover",
    "swarm.recorder": "nodes.builtin.swarm:SwarmRecorder",
    # on-device adaptation (DFA / BP on emulated RRAM) and its report
    "adapt.dfa": "nodes.builtin.adapt:DfaAdapter",
    "adapt.bp": "nodes.builtin.adapt:BpAdapter",
    "adapt.none": "nodes.builtin.adapt:FrozenClassifier",
    "adapt.report": "nodes.builtin.adapt:AdaptReport",
    # inference (models/: spiking networks on a hardware backend; ONNX Runtime sessions)
    "snn.classifier": "nodes.builtin.inference:SnnClassifier",
    "onnx.infer": "nodes.builtin.inference:OnnxInfer",
    # evaluation: live accuracy of a classifier against the sensor's labels (+ chip cost per inference)
    "eval.accuracy": "nodes.builtin.accuracy:AccuracySink",
}
