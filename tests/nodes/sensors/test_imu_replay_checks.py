"""`imu.replay` on accelerometer-only recordings and on a rate that differs from the one expected."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from models.io import save_model
from models.mlp import MLP
from nodes.builtin.imu import ImuReplay
from nodes.sensors.imu import ACTIVITIES, ImuRecording, SyntheticImu, write_imu_csv
from runtime.errors import RecordingError
from runtime.testing import NodeHarness


def _csv(tmp_path: Path, rate_hz: float, *, gyro: bool = True, name: str = "imu.csv") -> Path:
    rec = SyntheticImu([("walking", 2)], subject_seed=0, rate_hz=rate_hz).recording()
    if not gyro:
        rec = ImuRecording(rec.t_s, rec.accel, np.full_like(rec.gyro, np.nan), rec.labels, rec.label_names)
    path = tmp_path / name
    write_imu_csv(path, rec)
    return path


def _model(tmp_path: Path, *, rate_hz: float = 50.0, channels: int = 6) -> Path:
    path = tmp_path / "har.pt"
    meta = {"label_names": list(ACTIVITIES), "rate_hz": rate_hz, "har_input": {"mean": [0.0] * channels}}
    save_model(MLP([channels, len(ACTIVITIES)]), path, meta)
    return path


async def test_accelerometer_only_replays_with_nan_gyro(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _csv(tmp_path, 50, gyro=False)
    assert path.read_text().startswith("t_s,ax,ay,az,label\n")
    with caplog.at_level(logging.WARNING):
        async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0}) as h:
            await h.run_source(timeout_s=60)
    samples = np.stack(h.payloads("sample"))
    assert samples.shape == (100, 6) and np.isnan(samples[:, 3:]).all() and np.isfinite(samples[:, :3]).all()
    assert h.ctx.counters["no_gyro"] == 1
    warned = [r.getMessage() for r in caplog.records if "gyroscope" in r.getMessage()]
    assert len(warned) == 1 and "'gx' (rad/s)" in warned[0] and str(path) in warned[0]


async def test_accelerometer_only_meets_a_six_channel_model(tmp_path: Path) -> None:
    path, model = _csv(tmp_path, 50, gyro=False), _model(tmp_path)
    with pytest.raises(
        RecordingError,
        match=r"imu\.csv has no gyroscope columns 'gx' \(rad/s\), 'gy' \(rad/s\), 'gz' \(rad/s\), "
        r"but the model .*har\.pt \(param label_names\) takes 6 channels",
    ):
        async with NodeHarness(ImuReplay, {"path": str(path), "label_names": str(model)}):
            pass
    async with NodeHarness(
        ImuReplay, {"path": str(path), "label_names": str(_model(tmp_path, channels=3))}
    ) as h:
        assert h.ctx.counters["no_gyro"] == 1  # a 3-channel model takes it


@pytest.mark.parametrize(("rate_hz", "warnings"), [(None, 0), (51.0, 0), (25.0, 1), (60.0, 1)])
async def test_rate_hz_far_from_the_recorded_rate_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, rate_hz: float | None, warnings: int
) -> None:
    path = _csv(tmp_path, 50)
    with caplog.at_level(logging.WARNING):
        async with NodeHarness(ImuReplay, {"path": str(path), "speed": 0, "rate_hz": rate_hz}) as h:
            await h.run_source(timeout_s=60)
    warned = [r.getMessage() for r in caplog.records if "Hz" in r.getMessage()]
    assert len(warned) == warnings and h.ctx.counters["rate_mismatch"] == warnings
    if warnings:
        assert f"recorded at 50 Hz but rate_hz is {rate_hz:g} Hz" in warned[0]


async def test_replay_rate_far_from_the_model_rate_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, model = _csv(tmp_path, 25), _model(tmp_path, rate_hz=50.0)
    with caplog.at_level(logging.WARNING):
        async with NodeHarness(ImuReplay, {"path": str(path), "label_names": str(model)}) as h:
            pass
    warned = [r.getMessage() for r in caplog.records if "Hz" in r.getMessage()]
    assert len(warned) == 1 and h.ctx.counters["rate_mismatch"] == 1
    assert "replays at 25 Hz but the model" in warned[0] and "trained at 50 Hz: set rate_hz: 50" in warned[0]
    caplog.clear()
    async with NodeHarness(ImuReplay, {"path": str(path), "label_names": str(model), "rate_hz": 50}) as h:
        pass
    assert h.ctx.counters["rate_mismatch"] == 1  # resampled up from 25 Hz: named, the model rate is met
    assert "replays at" not in caplog.text
