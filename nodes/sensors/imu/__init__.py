"""Wearable IMU data without the runtime: CSV recordings, resampling, a synthetic activity generator, windows."""

from __future__ import annotations

from .adaptive import RateConfig, RateController, adaptive_rate_experiment
from .csv_io import ACCEL_COLUMNS, COLUMNS, GYRO_COLUMNS, UNITS, iter_imu_csv, read_imu_csv, write_imu_csv
from .recording import (
    ACTIVITIES,
    SAMPLE_COLUMNS,
    ImuRecording,
    ImuStream,
    read_aedat_imu,
    resample,
    resample_count,
)
from .synthetic import ActivityModel, SyntheticImu, write_synthetic_dataset
from .windows import labelled_windows, make_windows, sliding_windows

__all__ = [
    "COLUMNS",
    "ACCEL_COLUMNS",
    "GYRO_COLUMNS",
    "UNITS",
    "SAMPLE_COLUMNS",
    "ImuRecording",
    "ImuStream",
    "iter_imu_csv",
    "read_imu_csv",
    "write_imu_csv",
    "resample",
    "resample_count",
    "read_aedat_imu",
    "ACTIVITIES",
    "ActivityModel",
    "SyntheticImu",
    "write_synthetic_dataset",
    "labelled_windows",
    "make_windows",
    "sliding_windows",
    "RateConfig",
    "RateController",
    "adaptive_rate_experiment",
]
