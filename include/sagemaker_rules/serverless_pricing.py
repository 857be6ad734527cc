"""Serverless Inference's on-demand compute price, shared by the emulator's cost figures and the plugins.

AWS bills a serverless variant by the memory it is configured with and the time its requests run:
us-east-1 lists $0.0000200 per second for 1024 MB, growing linearly with the memory size (2048 MB:
$0.0000400, ... 6144 MB: $0.0001200), i.e. $0.00002 per GB-second. As the author knew it in 2024;
NOT fetched live (this workplace has no network): re-check the pricing page before quoting a figure.
Data processing ($ per GB in and out) is left out: it is the same for every hosting option.
"""

from __future__ import annotations

PRICE_PER_GB_SECOND_USD = 0.00002
SOURCE = "AWS 'Amazon SageMaker AI pricing', Serverless Inference tab, us-east-1, as known in 2024 (not fetched live)"


def serverless_cost_per_inference(memory_size_mb: int, duration_seconds: float) -> float:
    """What one request of ``duration_seconds`` costs on a variant of ``memory_size_mb`` (USD)."""
    return PRICE_PER_GB_SECOND_USD * (memory_size_mb / 1024) * duration_seconds
