"""WordPiece tokenizer training and packing text into fixed-length sequences (both cached).

Neither is timed: cramming's rules put data preparation and tokenizer training outside the
budget. Both are cached under the cache directory, keyed by the corpus hash and the settings, so
the second run of a profile starts training at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(
    documents: list[str], vocab_size: int, corpus_sha256: str, cache_dir: Path
) -> Tokenizer:
    """A lower-cased BERT-style WordPiece tokenizer with `[PAD]` = 0 and no post-processor."""
    path = cache_dir / "tokenizers" / f"wordpiece-{corpus_sha256[:16]}-{vocab_size}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    tokenizer.save(str(temporary))
    temporary.replace(path)
    return tokenizer


def pack_sequences(
    tokenizer: Tokenizer, documents: list[str], seq_len: int, cache_dir: Path, cache_key: str
) -> torch.Tensor:
    """Documents as one token stream (`[SEP]` between them) cut into `[CLS] ... [SEP]` rows.

    Returns an int tensor (rows, seq_len); the tail that does not fill a row is dropped.
    """
    digest = hashlib.sha256(f"{cache_key}:{seq_len}:{tokenizer.to_str()}".encode()).hexdigest()[:16]
    path = cache_dir / "packed" / f"{digest}.pt"
    if path.is_file():
        return torch.load(path)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    stream: list[int] = []
    for encoding in tokenizer.encode_batch(documents, add_special_tokens=False):
        stream.extend(encoding.ids)
        stream.append(sep)
    body = seq_len - 2
    rows = len(stream) // body
    if rows == 0:
        raise ValueError(f"corpus too small for one sequence of {seq_len} tokens")
    content = torch.tensor(stream[: rows * body], dtype=torch.int32).view(rows, body)
    packed = torch.cat(
        [
            torch.full((rows, 1), cls, dtype=torch.int32),
            content,
            torch.full((rows, 1), sep, dtype=torch.int32),
        ],
        dim=1,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(packed, temporary)
    temporary.replace(path)
    return packed
