"""pad_sequences: right and left padding, masks, fixed lengths, float values."""

from __future__ import annotations

import numpy as np
import torch

from hub.data.padding import pad_sequences


def test_right_and_left_padding_with_masks():
    ids, mask = pad_sequences([[1, 2, 3], [4]], value=9)
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_sequences([[1, 2, 3], [4]], value=9, side="left")
    assert ids.tolist() == [[1, 2, 3], [9, 9, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_fixed_length_float_arrays_and_empty_rows():
    values, mask = pad_sequences([np.array([0.5, -1.0], dtype=np.float32), []], dtype=torch.float32, length=4)
    assert values.dtype == torch.float32 and values.tolist() == [[0.5, -1.0, 0.0, 0.0], [0.0] * 4]
    assert mask.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
