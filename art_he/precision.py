"""Autocast precisions: the names, which of them the command line offers, and what ``"auto"`` resolves to."""

from __future__ import annotations

import torch

from art_he.validation import check_choice

#: every precision the trainers take: ``fp16`` is autocast with a ``GradScaler`` (GPUs without bf16)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: what ``art-he train --precision`` offers: all but fp16, which stays a Python option for GPUs without bf16
CLI_PRECISIONS = ("auto", "fp32", "bf16")
#: autocast dtype of each reduced precision
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA with bf16 support; a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where ``device`` has native bf16 (:func:`native_bf16`), else ``"fp32"``; others
    unchanged."""
    if check_choice("precision", precision, PRECISIONS) == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision
