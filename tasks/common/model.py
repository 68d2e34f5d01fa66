"""The encoder-only transformer cramming and large-batch train, built from an `EncoderConfig`.

Methods choose the architecture only through the config (size, norm placement and epsilon,
activation, biases, positions, tied embeddings, head transform, sparse prediction); the code is
the harness's. So a method
cannot make the model anything but an encoder trained from scratch: there is no option that loads
weights, and evaluation (held-out loss, fine-tuning) runs this code, never the method's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("post", "pre")
# "gated-gelu": ffn_in widens to 2·intermediate_size, the gate halves it back to intermediate_size.
# "gelu-glu": cramming's GELUglu, ffn_in widens to intermediate_size and the gate halves it to
# intermediate_size / 2 ("it actually turned out better not to scale it").
ACTIVATIONS = ("gelu", "gated-gelu", "gelu-glu")
POSITIONS = ("learned", "scaled-sinusoidal")


@dataclass(frozen=True)
class EncoderConfig:
    """A BERT-style encoder. `vocab_size` and `max_seq_len` are set by the task, not the method."""

    vocab_size: int
    max_seq_len: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    norm: str = "post"
    activation: str = "gelu"
    bias: bool = True
    positions: str = "learned"
    embedding_norm: bool = True
    tie_embeddings: bool = True
    sparse_prediction: bool = False
    dropout: float = 0.1
    norm_eps: float = 1e-5
    norm_bias: bool | None = None
    """LayerNorm shifts; None follows `bias` (cramming keeps them beside biasless linears)."""
    head_transform: bool = True
    """BERT's dense + GELU + LayerNorm before the vocabulary projection (cramming skips it)."""

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if min(self.hidden_size, self.num_layers, self.num_heads, self.intermediate_size) < 1:
            raise ValueError("sizes must be positive")
        if self.activation == "gelu-glu" and self.intermediate_size % 2:
            raise ValueError("gelu-glu halves intermediate_size, so it must be even")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if not 0.0 < self.norm_eps < 1.0:
            raise ValueError("norm_eps must be in (0, 1)")

    def layer_norm(self) -> nn.LayerNorm:
        bias = self.bias if self.norm_bias is None else self.norm_bias
        return nn.LayerNorm(self.hidden_size, eps=self.norm_eps, bias=bias)


class ScaledSinusoidalPositions(nn.Module):
    """Fixed sinusoids times one learned scale (cramming's `ScaledSinosoidal`)."""

    def __init__(self, hidden_size: int, max_seq_len: int) -> None:
        super().__init__()
        position = torch.arange(max_seq_len).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, hidden_size, 2) * (-math.log(10000.0) / hidden_size))
        table = torch.zeros(max_seq_len, hidden_size)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        self.register_buffer("table", table, persistent=False)
        self.scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(hidden_size)))

    def forward(self, seq_len: int) -> torch.Tensor:
        return self.table[:seq_len] * self.scale


class Block(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        hidden, inner, bias = config.hidden_size, config.intermediate_size, config.bias
        self.config = config
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=bias)
        self.attention_out = nn.Linear(hidden, hidden, bias=bias)
        widened = {"gated-gelu": 2 * inner}.get(config.activation, inner)
        narrowed = {"gelu-glu": inner // 2}.get(config.activation, inner)
        self.ffn_in = nn.Linear(hidden, widened, bias=bias)
        self.ffn_out = nn.Linear(narrowed, hidden, bias=bias)
        self.attention_norm = config.layer_norm()
        self.ffn_norm = config.layer_norm()
        self.dropout = nn.Dropout(config.dropout)

    def _attention(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, seq, hidden = x.shape
        heads = self.config.num_heads
        q, k, v = self.qkv(x).view(batch, seq, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
        dropout = self.config.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.dropout(self.attention_out(out.transpose(1, 2).reshape(batch, seq, hidden)))

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.ffn_in(x)
        if self.config.activation in ("gated-gelu", "gelu-glu"):
            value, gate = inner.chunk(2, dim=-1)
            inner = value * F.gelu(gate)
        else:
            inner = F.gelu(inner)
        return self.dropout(self.ffn_out(inner))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.config.norm == "pre":
            x = x + self._attention(self.attention_norm(x), mask)
            return x + self._ffn(self.ffn_norm(x))
        x = self.attention_norm(x + self._attention(x, mask))
        return self.ffn_norm(x + self._ffn(x))


class Encoder(nn.Module):
    """Token ids (batch, seq) and an optional padding mask (1 = token) to hidden states."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.positions == "learned":
            self.positions: nn.Module = nn.Embedding(config.max_seq_len, config.hidden_size)
        else:
            self.positions = ScaledSinusoidalPositions(config.hidden_size, config.max_seq_len)
        self.embedding_norm = config.layer_norm() if config.embedding_norm else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.final_norm = config.layer_norm() if config.norm == "pre" else nn.Identity()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        seq = input_ids.shape[1]
        if isinstance(self.positions, nn.Embedding):
            positions = self.positions(torch.arange(seq, device=input_ids.device))
        else:
            positions = self.positions(seq)
        x = self.dropout(self.embedding_norm(self.tokens(input_ids) + positions))
        mask = None
        if attention_mask is not None:  # (batch, seq) -> boolean (batch, 1, 1, seq): True = attend
            mask = attention_mask.bool()[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)


class MaskedLanguageModel(nn.Module):
    """Encoder plus BERT's prediction head. `labels` is -100 where no prediction is made."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.transform: nn.Module = nn.Identity()
        if config.head_transform:
            self.transform = nn.Sequential(
                nn.Linear(config.hidden_size, config.hidden_size, bias=config.bias),
                nn.GELU(),
                config.layer_norm(),
            )
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.bias)
        if config.tie_embeddings:
            self.decoder.weight = self.encoder.tokens.weight
        self.apply(_init_weights)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor, masked_per_sequence: int = 0
    ) -> torch.Tensor:
        """Mean cross-entropy over the positions with a label.

        `masked_per_sequence` > 0 promises exactly that many labels in every row (the training
        loop's exact-count masking): sparse prediction then gathers them with static shapes, so
        `torch.compile(fullgraph=True)` compiles one graph (cramming's `_forward_sparse`).
        """
        hidden = self.encoder(input_ids)
        if self.config.sparse_prediction and masked_per_sequence:
            chosen = (labels != -100).to(torch.int8)
            rows = torch.argsort(chosen, dim=1, stable=True)[:, -masked_per_sequence:]
            picked = hidden.gather(1, rows.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
            logits = self.decoder(self.transform(picked))
            return F.cross_entropy(logits.float().flatten(0, 1), labels.gather(1, rows).flatten())
        if self.config.sparse_prediction or not self.training:
            # Only the labelled positions reach the vocabulary head. For a dense-prediction model
            # in eval mode this is the same loss with a fraction of the work (the held-out
            # evaluation); in training a dense model keeps its full-sequence head, as BERT's.
            selected = labels != -100
            logits = self.decoder(self.transform(hidden[selected]))
            return F.cross_entropy(logits.float(), labels[selected])
        logits = self.decoder(self.transform(hidden))
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def non_embedding_parameters(model: nn.Module) -> int:
    """Parameters outside the token and position embeddings (the `N` of scaling laws)."""
    embeddings = {
        id(p) for name, p in model.named_parameters() if "tokens" in name or "positions" in name
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def training_flops_per_token(model: MaskedLanguageModel) -> float:
    """Training FLOPs per token: 6·N (forward and backward of the weights) plus 12·L·H·S for the
    attention scores (Kaplan et al. 2020; PaLM's MFU accounting). The vocabulary head is counted
    in N although sparse prediction runs it on the masked tokens only, so MFU is slightly
    overstated for sparse-prediction models and comparable across methods."""
    config = model.config
    attention = 12 * config.num_layers * config.hidden_size * config.max_seq_len
    return 6.0 * non_embedding_parameters(model) + attention
