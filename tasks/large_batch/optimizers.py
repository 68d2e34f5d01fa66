"""LAMB, NVLAMB and LARS written out as their papers define them (torch.optim.Optimizer).

Small and readable on purpose: each `step` is the paper's update line by line, so a test can
check one step against the formula by hand (tests/test_large_batch.py). Library versions differ
in ways that matter at large batch: pytorch_optimizer 4.1's `Lamb` multiplies by lr/(1-β1^t)
*after* the trust ratio (a first step of 10·lr·|w|) and clamps |w| at 10; its 3.x versions
invert clipping on one path. Per-tensor ("layer-wise") quantities are over each parameter tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def _trust_ratio(weight_norm: torch.Tensor, update_norm: torch.Tensor) -> torch.Tensor:
    """|w| / |update|, or 1 where either norm is 0 (the authors' released code does the same, so a
    zero-initialised tensor still moves)."""
    ratio = weight_norm / update_norm
    return torch.where((weight_norm > 0) & (update_norm > 0), ratio, torch.ones_like(ratio))


class Lamb(torch.optim.Optimizer):
    """LAMB, You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes" (ICLR; arXiv 1904.00962 v5), Algorithm 2. For each tensor x of a layer, step t:

        m_t = β1 m_{t-1} + (1-β1) g_t            v_t = β2 v_{t-1} + (1-β2) g_t²
        m̂_t = m_t / (1-β1^t)                     v̂_t = v_t / (1-β2^t)
        r_t = m̂_t / (√v̂_t + ε)
        x_{t+1} = x_t - η_t · φ(|x_t|) / |r_t + λ x_t| · (r_t + λ x_t)

    with φ(z) = min(max(z, γ_l), γ_u) (Section 3; the defaults γ_l = 0, γ_u = ∞ make φ the
    identity, as in the authors' released code) and the trust ratio taken as 1 where |x| or the
    update is 0. λ (`weight_decay`) is inside the trust ratio, not decoupled after it. So every
    tensor moves by exactly η·φ(|x|) per step, whatever the bias correction.

    `grad_pre_normalization` (None in the paper) gives **NVLAMB**, NVIDIA's variant (the
    "Pretraining BERT with Layer-wise Adaptive Learning Rates" post; apex FusedLAMB): before
    the moments, every gradient is multiplied by min(1, c / |g|), |g| the global norm over all
    tensors of the optimizer, c the given value (1.0 in NVIDIA's recipe). Bias correction of both
    moments, as here, is NVLAMB's too (the paper's first version had none).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        phi_bounds: tuple[float, float] = (0.0, math.inf),
        grad_pre_normalization: float | None = None,
    ) -> None:
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError("betas must be in [0, 1)")
        if grad_pre_normalization is not None and not grad_pre_normalization > 0:
            raise ValueError("grad_pre_normalization must be positive or None")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "phi_bounds": phi_bounds}  # fmt: skip
        super().__init__(params, defaults)
        self.grad_pre_normalization = grad_pre_normalization

    def _gradient_scale(self) -> float:
        """NVLAMB's min(1, c / |g|) over all gradients of the optimizer (1 for the paper's LAMB)."""
        if self.grad_pre_normalization is None:
            return 1.0
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return 1.0
        norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        return min(1.0, self.grad_pre_normalization / norm) if norm > 0 else 1.0

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        scale = self._gradient_scale()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            low, high = group["phi_bounds"]
            for x in group["params"]:
                if x.grad is None:
                    continue
                g = x.grad * scale
                state = self.state[x]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(x)
                    state["v"] = torch.zeros_like(x)
                state["step"] += 1
                t = state["step"]
                m, v = state["m"], state["v"]
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = m / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                update = m_hat / (v_hat.sqrt() + group["eps"]) + group["weight_decay"] * x
                phi = x.norm().clamp(min=low, max=high)
                x.sub_(group["lr"] * _trust_ratio(phi, update.norm()) * update)
        return loss


class Lars(torch.optim.Optimizer):
    """LARS, You, Gitman and Ginsburg 2017, "Large Batch Training of Convolutional Networks"
    (arXiv 1708.03888), Algorithm 1. For each tensor w of layer l, step t, global rate γ_t:

        λ^l = η · |w^l| / (|∇L(w^l)| + β |w^l|)          (local LR, eq. 6)
        v = m v + γ_t · λ^l · (∇L(w^l) + β w^l)
        w^l = w^l - v

    η the trust coefficient, β the weight decay, m the momentum (heavy ball); λ^l is 1 where |w|
    or |∇L| is 0. A group with `adapt=False` takes plain momentum SGD with the same β
    (λ^l = 1): the usual exclusion of norms and biases, which the paper's algorithm does not
    spell out.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        adapt: bool = True,
    ) -> None:
        if not lr >= 0 or not 0 <= momentum < 1 or not weight_decay >= 0:
            raise ValueError("lr and weight_decay must be non-negative, momentum in [0, 1)")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                    "trust_coefficient": trust_coefficient, "adapt": adapt}  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            decay = group["weight_decay"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                local = torch.ones((), dtype=w.dtype, device=w.device)
                if group["adapt"]:
                    weight_norm, grad_norm = w.norm(), w.grad.norm()
                    ratio = (
                        group["trust_coefficient"] * weight_norm / (grad_norm + decay * weight_norm)
                    )
                    local = torch.where((weight_norm > 0) & (grad_norm > 0), ratio, local)
                state = self.state[w]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(w)
                velocity = state["velocity"]
                velocity.mul_(group["momentum"]).add_(group["lr"] * local * (w.grad + decay * w))
                w.sub_(velocity)
        return loss
