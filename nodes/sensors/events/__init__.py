"""Event-camera data without the runtime: the event dtype, AEDAT4 I/O, batching, the synthetic camera, representations."""

from __future__ import annotations

from .aedat_io import IMU_DTYPE, TRIGGER_DTYPE, AedatReader, AedatWriter, Segment, StreamInfo, write_aedat
from .arrays_io import EventArrayWriter, read_event_chunks, read_events, write_events
from .batching import Batch, EventBatcher
from .dtypes import EVENT_DTYPE, as_events, check_events, concat_records, empty_events, make_events
from .errors import RecordingFormatError
from .esim import DvsParams, DvsPixels
from .gestures import GESTURE_CLASSES, GestureSequence, HandGesture
from .representations import (
    TimeSurface,
    event_frame,
    event_frames,
    event_tokens,
    time_surface,
    time_surfaces,
    voxel_grid,
)
from .scenes import FunctionScene, MovingBars, Scene, Shapes, Target, Targets
from .sniff import sniff
from .synthetic import SCENES, SyntheticEventCamera, make_gesture_dataset, make_scene

__all__ = [
    "EVENT_DTYPE",
    "IMU_DTYPE",
    "TRIGGER_DTYPE",
    "as_events",
    "check_events",
    "empty_events",
    "make_events",
    "concat_records",
    "RecordingFormatError",
    "sniff",
    "AedatReader",
    "AedatWriter",
    "Segment",
    "StreamInfo",
    "write_aedat",
    "EventArrayWriter",
    "read_event_chunks",
    "read_events",
    "write_events",
    "Batch",
    "EventBatcher",
    "DvsParams",
    "DvsPixels",
    "SyntheticEventCamera",
    "make_gesture_dataset",
    "make_scene",
    "SCENES",
    "GESTURE_CLASSES",
    "GestureSequence",
    "HandGesture",
    "Scene",
    "FunctionScene",
    "MovingBars",
    "Shapes",
    "Target",
    "Targets",
    "event_frame",
    "event_frames",
    "voxel_grid",
    "time_surface",
    "time_surfaces",
    "TimeSurface",
    "event_tokens",
]
