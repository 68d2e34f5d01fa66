"""Per-layer sensitivity: quantize one linear layer at a time with the method's own format and
measure how far the model moves from the reference (mean KL(reference || quantized) over the
scored tokens) and how much its loss rises (mean NLL increase, nats per token).

Each layer is quantized in a fresh copy of the full-precision model through the method's
`quantize(model, calibration, [name])`, so the format is exactly the one the full run uses.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tasks.quant.compare import compare_logits


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    block: int
    """Index of the transformer block (the first number in the name; -1 when there is none)."""
    kind: str
    """The module's own name, e.g. q_proj or dense_4h_to_h."""
    kl: float
    loss_increase: float


def block_and_kind(name: str) -> tuple[int, str]:
    numbers = re.findall(r"\.(\d+)\.", f".{name}.")
    return (int(numbers[0]) if numbers else -1), name.rsplit(".", 1)[-1]


def layers_to_probe(names: list[str], max_layers: int) -> list[str]:
    """All names, or `max_layers` of them spread evenly (0 = all)."""
    if max_layers <= 0 or len(names) <= max_layers:
        return list(names)
    step = len(names) / max_layers
    return [names[int(i * step)] for i in range(max_layers)]


@torch.no_grad()
def layer_sensitivity(
    base: torch.nn.Module,
    quantize: Callable,
    calibration: torch.Tensor,
    windows: torch.Tensor,
    reference_logits: torch.Tensor,
    names: list[str],
    track=None,
) -> list[LayerSensitivity]:
    """Sensitivity of each named layer, most sensitive first."""
    results = []
    for name in track(names, "per-layer sensitivity", len(names)) if track else names:
        model = quantize(copy.deepcopy(base), calibration, [name])
        logits = model(input_ids=windows).logits.float()
        stats = compare_logits(reference_logits, logits, windows)
        block, kind = block_and_kind(name)
        results.append(
            LayerSensitivity(
                name=name,
                block=block,
                kind=kind,
                kl=float(stats.kl.mean()),
                loss_increase=float((stats.nll_quantized - stats.nll_reference).mean()),
            )
        )
        del model
    return sorted(results, key=lambda layer: layer.kl, reverse=True)
