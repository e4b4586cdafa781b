"""Model FLOPs utilisation: the model's FLOPs per token against the device's peak.

A model reports its training cost by a method ``flops_per_token(seq_len) -> float``
(forward + backward, the 6N + 12·L·C·T convention of the PaLM paper's appendix B);
the peak comes from ``TrainingArguments.peak_tflops`` or the GPU's name.
"""

from __future__ import annotations

from torch import nn

# dense bf16 tensor-core peak (no sparsity), TFLOP/s; the first matching substring wins
PEAK_TFLOPS = (("h200", 989.0), ("gh200", 989.0), ("h100 pcie", 756.0), ("h100 nvl", 835.0), ("h100", 989.0),
               ("h800", 989.0), ("b200", 2250.0), ("a100", 312.0), ("a800", 312.0), ("l40s", 362.0),
               ("l40", 181.0), ("l4", 121.0), ("a10g", 70.0), ("a10", 125.0), ("rtx 4090", 165.0),
               ("rtx 3090", 71.0), ("v100", 125.0), ("t4", 65.0))


def peak_tflops(gpu_name: str | None) -> float | None:
    """The dense bf16 peak of a GPU by its name (None when unknown, e.g. a CPU)."""
    if not gpu_name:
        return None
    name = gpu_name.lower()
    for key, value in PEAK_TFLOPS:
        if key in name:
            return value
    return None


def transformer_flops_per_token(matmul_params: int, num_layers: int, hidden_size: int, seq_len: int) -> float:
    """6·N (weights, forward + backward) + 12·L·C·T (attention scores and mixing)."""
    return 6.0 * matmul_params + 12.0 * num_layers * hidden_size * seq_len


def model_flops_per_token(model: nn.Module, seq_len: int) -> float | None:
    """The model's own estimate, if it offers one."""
    method = getattr(model, "flops_per_token", None)
    return float(method(seq_len)) if callable(method) else None
