"""One torch thread for the recommender tests: their tensors are tiny, and on a shared
2-core machine OpenMP threads waiting on each other cost 10-100x the arithmetic."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
