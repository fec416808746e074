"""Shared fixtures: the project root, the shared data folder (skipped with a reason when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real recordings live in ../shared/data next to the project)")
    return SHARED_DATA


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """Small float64 problems run fastest (and most predictably on shared CPUs) on one torch thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def torch_one_thread_module() -> Iterator[None]:
    """`torch_one_thread` for a whole module, so module-scoped fixtures (pre-trained models) get it too."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
