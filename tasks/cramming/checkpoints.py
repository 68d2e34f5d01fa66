"""Encoder checkpoints: every cramming run saves one, and `--set checkpoint=PATH` evaluates one.

`checkpoint` may name (1) a file saved by a run, (2) a directory holding cramming's own published
checkpoint (`JonasGeiping/crammed-bert` as the hub stores it: config.json, model.safetensors or
pytorch_model.bin, tokenizer.json), or (3) `hf:OWNER/NAME` for that repository on the hub, so a
user with a GPU can check this harness's GLUE path against cramming's published numbers. Cramming's
weights are mapped onto the harness's encoder name by name (its fused query/key/value matrix is
laid out head by head and is reordered to query, key, value); a configuration this encoder cannot
express exactly is refused, never approximated.

Format of a run's file (`FORMAT`): one file written with `torch.save` holding the `EncoderConfig`
fields, the pretraining model's state dict (encoder and MLM head) and the WordPiece tokenizer as
JSON, so the file alone is enough to fine-tune the encoder again. It is read back with
`torch.load(weights_only=True)`, which unpickles tensors and plain containers only, so a crafted
file cannot run code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from tasks.base import InputError
from tasks.common.model import EncoderConfig, MaskedLanguageModel

FORMAT = "budgetbench-cramming-encoder/1"


def save_checkpoint(path: Path, model: MaskedLanguageModel, tokenizer: Tokenizer) -> None:
    """Write the model and tokenizer to `path` (atomically: a partial file never has its name)."""
    payload = {
        "format": FORMAT,
        "config": dataclasses.asdict(model.config),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "tokenizer": tokenizer.to_str(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def load_checkpoint(path: Path) -> tuple[MaskedLanguageModel, Tokenizer]:
    """The model and tokenizer of a checkpoint (see the module's docstring); a one-line
    `InputError` for anything else."""
    if str(path).startswith(HUB_PREFIX):
        return load_crammed_bert(_download(str(path).removeprefix(HUB_PREFIX)))
    if path.is_dir():
        return load_crammed_bert(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"checkpoint {path}: unreadable ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"checkpoint {path}: not a {FORMAT} file")
    try:
        config = EncoderConfig(**payload["config"])
        model = MaskedLanguageModel(config)
        model.load_state_dict(payload["state_dict"])
        tokenizer = Tokenizer.from_str(payload["tokenizer"])
    except Exception as error:  # missing keys, wrong shapes, a broken tokenizer
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: inconsistent contents ({detail})") from None
    if tokenizer.get_vocab_size() != config.vocab_size:
        raise InputError(
            f"checkpoint {path}: tokenizer has {tokenizer.get_vocab_size()} entries,"
            f" the model {config.vocab_size}"
        )
    return model, tokenizer


HUB_PREFIX = "hf:"
# What the harness's encoder can express of cramming's arch config (crammed-bert.yaml's values).
_REQUIRED = {
    "norm": "LayerNorm",
    "norm_scheme": "pre",
    "nonlin": "GELUglu",
    "use_bias": False,
    "final_norm": True,
    "skip_head_transform": True,
    "decoder_bias": False,
    "tie_weights": True,
    "embedding.pos_embedding": "scaled-sinusoidal",
    "embedding.normalization": True,
    "attention.type": "self-attention",
    "attention.qkv_bias": False,
    "attention.rotary_embedding": False,
    "attention.skip_output_projection": False,
    "attention.sequence_op": "torch-softmax",
}


def _download(repository: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repository))
    except Exception as error:  # offline, or no such repository
        raise InputError(
            f"checkpoint {HUB_PREFIX}{repository}: could not download it ({type(error).__name__});"
            " on an offline machine pass a directory holding the repository's files"
        ) from None


def load_crammed_bert(directory: Path) -> tuple[MaskedLanguageModel, Tokenizer]:
    """Cramming's published checkpoint from a directory laid out as its hub repository."""
    import json

    config_file, tokenizer_file = directory / "config.json", directory / "tokenizer.json"
    for needed in (config_file, tokenizer_file):
        if not needed.is_file():
            raise InputError(f"checkpoint {directory}: missing {needed.name}")
    try:
        arch = json.loads(config_file.read_text())["arch"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"checkpoint {directory}: config.json has no cramming 'arch'") from None
    for key, wanted in _REQUIRED.items():
        value: Any = arch
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != wanted:
            raise InputError(
                f"checkpoint {directory}: arch.{key} is {value!r}; this encoder supports {wanted!r}"
            )
    heads = arch["attention"]["num_attention_heads"]
    config = EncoderConfig(
        vocab_size=arch["embedding"]["vocab_size"],
        max_seq_len=arch["embedding"]["max_seq_length"],
        hidden_size=arch["hidden_size"],
        num_layers=arch["num_transformer_layers"],
        num_heads=heads,
        intermediate_size=arch["intermed_size"],
        norm="pre",
        activation="gelu-glu",
        bias=False,
        norm_bias=True,
        norm_eps=float(arch["norm_eps"]),
        positions="scaled-sinusoidal",
        head_transform=False,
        sparse_prediction=True,
        dropout=0.0,
    )
    weights = _read_weights(directory)
    model = MaskedLanguageModel(config)
    try:
        model.load_state_dict(_harness_names(weights, config), strict=True)
    except (KeyError, RuntimeError) as error:
        detail = str(error).strip().splitlines()[0]
        raise InputError(f"checkpoint {directory}: weights do not fit ({detail})") from None
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    return model, tokenizer


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    safetensors_file, pickle_file = directory / "model.safetensors", directory / "pytorch_model.bin"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_file))
    if pickle_file.is_file():
        return torch.load(pickle_file, map_location="cpu", weights_only=True)
    raise InputError(f"checkpoint {directory}: no model.safetensors or pytorch_model.bin")


def _harness_names(weights: dict[str, torch.Tensor], config: EncoderConfig) -> dict[str, Any]:
    """Cramming's `ScriptableLMForPreTraining` state dict under the harness's module names."""
    hidden, heads = config.hidden_size, config.num_heads
    renamed: dict[str, Any] = {
        "encoder.tokens.weight": weights["encoder.embedding.word_embedding.weight"],
        "encoder.positions.scale": weights["encoder.embedding.pos_embedding.scale_factor"].reshape(
            ()
        ),
        "encoder.embedding_norm.weight": weights["encoder.embedding.norm.weight"],
        "encoder.embedding_norm.bias": weights["encoder.embedding.norm.bias"],
        "encoder.final_norm.weight": weights["encoder.final_norm.weight"],
        "encoder.final_norm.bias": weights["encoder.final_norm.bias"],
        "decoder.weight": weights["encoder.embedding.word_embedding.weight"],  # tied
    }
    for i in range(config.num_layers):
        theirs, ours = f"encoder.layers.{i}.", f"encoder.blocks.{i}."
        fused = weights[theirs + "attn.self_attention.query_key_value.weight"]
        # rows are (head, q/k/v, dim) in cramming's layout, (q/k/v, head, dim) in the harness's
        qkv = (
            fused.view(heads, 3, hidden // heads, hidden)
            .transpose(0, 1)
            .reshape(3 * hidden, hidden)
        )
        renamed |= {
            ours + "qkv.weight": qkv,
            ours + "attention_out.weight": weights[theirs + "attn.dense.weight"],
            ours + "ffn_in.weight": weights[theirs + "ffn.dense_in.weight"],
            ours + "ffn_out.weight": weights[theirs + "ffn.dense_out.weight"],
        }
        for norm, mine in (("norm1", "attention_norm"), ("norm2", "ffn_norm")):
            for part in ("weight", "bias"):
                renamed[f"{ours}{mine}.{part}"] = weights[f"{theirs}{norm}.{part}"]
    return renamed
