"""A pretraining corpus made ready for masked-LM training, untimed: loaded (hub or mirror), its
WordPiece trained (or a checkpoint's reused) and packed into sequences, the held-out sequences
cut, the vocabulary read off the tokenizer. Cramming and large-batch both start here; what a task
does with the sequences (filters, orders, sweeps) is its own.
"""

from __future__ import annotations

import dataclasses

import torch
from tokenizers import Tokenizer

from tasks.base import InputError, RunContext
from tasks.common.corpus import READYMADE, SequenceStream, load_corpus, load_readymade
from tasks.common.masking import Vocabulary
from tasks.common.tokenization import SPECIAL_TOKENS, pack_sequences, train_tokenizer


@dataclasses.dataclass(frozen=True)
class PretrainingData:
    """The prepared corpus: tokenizer, packed training and held-out sequences, vocabulary."""

    tokenizer: Tokenizer
    validation_documents: list[str]
    train: torch.Tensor | SequenceStream
    """Packed sequences, or for `pile-readymade` a stream (other tasks use packed corpora)."""
    validation: torch.Tensor
    vocabulary: Vocabulary


def prepare_pretraining_data(
    ctx: RunContext, tokenizer: Tokenizer | None = None
) -> PretrainingData:
    """Load the profile's corpus, train (or reuse) its tokenizer and pack it into sequences;
    untimed. Reads `corpus`, `max_corpus_characters`, `vocab_size`, `seq_len` and
    `eval_sequences` from the profile, and notes the corpus and sequence counts in the run.
    A given `tokenizer` (a checkpoint's) is used instead of training one."""
    config = ctx.config
    if config.corpus == READYMADE:
        return _prepare_readymade(ctx, tokenizer)
    corpus = load_corpus(
        config.corpus, ctx.data_dir, ctx.cache_dir, config.max_corpus_characters or None
    )
    ctx.note("corpus", {"name": corpus.name, "source": corpus.source, "sha256": corpus.sha256,
                        "characters": corpus.characters, "train_documents": len(corpus.train),
                        "validation_documents": len(corpus.validation)})  # fmt: skip
    if tokenizer is None:
        tokenizer = train_tokenizer(corpus.train, config.vocab_size, corpus.sha256, ctx.cache_dir)
    train = pack_sequences(
        tokenizer, corpus.train, config.seq_len, ctx.cache_dir, f"{corpus.sha256}:train"
    )
    validation = pack_sequences(
        tokenizer, corpus.validation, config.seq_len, ctx.cache_dir, f"{corpus.sha256}:validation"
    )[: config.eval_sequences]
    return PretrainingData(tokenizer, corpus.validation, train, validation, _vocabulary(tokenizer))


def _vocabulary(tokenizer: Tokenizer) -> Vocabulary:
    ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    if None in ids:
        missing = SPECIAL_TOKENS[ids.index(None)]
        raise InputError(f"the tokenizer has no {missing} token")
    return Vocabulary(
        mask_id=tokenizer.token_to_id("[MASK]"),
        special_ids=torch.tensor(ids),
        size=tokenizer.get_vocab_size(),
    )


def _prepare_readymade(ctx: RunContext, tokenizer: Tokenizer | None) -> PretrainingData:
    """`pile-readymade`: its own tokenizer, held-out rows read now, training rows streamed."""
    config = ctx.config
    own, stream = load_readymade(ctx.data_dir, config.eval_sequences)
    if tokenizer is not None and tokenizer.to_str() != own.to_str():
        raise InputError(
            "pile-readymade is tokenized with its own WordPiece; this checkpoint's differs"
        )
    validation = torch.tensor(stream.held_out(config.eval_sequences), dtype=torch.int32)
    if validation.ndim != 2 or validation.shape[1] != config.seq_len:
        raise InputError(f"pile-readymade's sequences are not {config.seq_len} tokens long")
    ctx.note("corpus", {"name": READYMADE, "source": stream.source, "streamed": True})
    return PretrainingData(own, [], stream, validation, _vocabulary(own))
