"""Encoder checkpoints: every cramming run saves one, and `--set checkpoint=PATH` evaluates one.

Format (`FORMAT`): one file written with `torch.save` holding the `EncoderConfig` fields, the
pretraining model's state dict (encoder and MLM head) and the WordPiece tokenizer as JSON, so the
file alone is enough to fine-tune the encoder again. It is read back with
`torch.load(weights_only=True)`, which unpickles tensors and plain containers only, so a crafted
file cannot run code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from tokenizers import Tokenizer

from harness.errors import InputError
from tasks.cramming.model import EncoderConfig, MaskedLanguageModel

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
    """The model and tokenizer saved by `save_checkpoint`; a one-line `InputError` otherwise."""
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
