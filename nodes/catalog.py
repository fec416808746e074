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
    # record / replay (MCAP)
    "record.mcap": "nodes.recorder:McapRecorder",
    "replay.mcap": "nodes.replay:McapReplay",
    # MQTT bridge (control-plane helper)
    "mqtt.publish": "nodes.mqtt_bridge:MqttPublish",
    "mqtt.subscribe": "nodes.mqtt_bridge:MqttSubscribe",
    # sensors and representations (event cameras, wearable IMU)
    "event_camera.replay": "nodes.event_camera:EventCameraReplay",
    "event_camera.synthetic": "nodes.event_camera:SyntheticEventCameraSource",
    "imu.replay": "nodes.imu_nodes:ImuReplay",
    "imu.synthetic": "nodes.imu_nodes:SyntheticImuSource",
    "imu.rate_controller": "nodes.imu_nodes:ImuRateController",
    "window": "nodes.window:Window",
    "repr.event_frame": "nodes.representation:EventFrame",
    "repr.voxel_grid": "nodes.representation:VoxelGrid",
    "repr.time_surface": "nodes.representation:TimeSurfaceNode",
    "repr.event_tokens": "nodes.representation:EventTokens",
    # swarm demo (examples/swarm): camera over a shared world, detector, controller, mover, recorder
    "swarm.camera": "nodes.swarm_nodes:SwarmCamera",
    "swarm.detector": "nodes.swarm_nodes:SwarmDetector",
    "swarm.controller": "nodes.swarm_nodes:SwarmController",
    "swarm.mover": "nodes.swarm_nodes:SwarmMover",
    "swarm.recorder": "nodes.swarm_nodes:SwarmRecorder",
    # on-device adaptation (DFA / BP on emulated RRAM) and its report
    "adapt.dfa": "nodes.adapt:DfaAdapter",
    "adapt.bp": "nodes.adapt:BpAdapter",
    "adapt.none": "nodes.adapt:FrozenClassifier",
    "adapt.report": "nodes.adapt_report:AdaptReport",
    # inference (models/: spiking networks on a hardware backend; ONNX Runtime sessions)
    "snn.classifier": "nodes.snn_classifier:SnnClassifier",
    "onnx.infer": "nodes.onnx_infer:OnnxInfer",
}
