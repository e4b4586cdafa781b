"""Vision tests run tiny models: one torch thread beats two there (no parallel-region
overhead, no spinning threads on a shared machine). Restored after each module."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
