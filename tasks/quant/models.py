"""The model under test: any Hugging Face causal LM, or the smoke profile's own small one.

Every model is loaded through the same calls, `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained`, from a local directory: a path, `DATA_DIR/<name>` in the data
mirror, or the Hugging Face cache. Nothing is downloaded: a hub name found in none of them is an
input error before the run starts.

`SMOKE_MODEL` names the smoke profile's model: a small Llama-architecture causal LM trained here,
offline, on the smoke corpus's training split with the cramming task's WordPiece tokenizer, for a
fixed number of steps (about a minute on a 2-core CPU). It is saved with `save_pretrained` under
the cache directory, keyed by its recipe (corpus hash and every setting), and then loaded back
like any other model, so the smoke path exercises the real loading code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.base import InputError

SMOKE_MODEL = "smoke-lm"


@dataclass(frozen=True)
class SmokeRecipe:
    """How the smoke model is made; its hash names the cached checkpoint."""

    corpus_sha256: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    seq_len: int
    batch: int
    steps: int
    learning_rate: float
    seed: int = 0

    @property
    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def locate_model(name: str, data_dir: Path | None) -> Path | None:
    """The local directory holding model `name`, or None when there is none on this machine."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if data_dir is not None and (data_dir / name / "config.json").is_file():
        return data_dir / name
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not a valid repo id, or not in the cache
        return None


def require_model(name: str, data_dir: Path | None) -> Path:
    directory = locate_model(name, data_dir)
    if directory is None:
        where = f", not under the data mirror {data_dir}" if data_dir is not None else ""
        raise InputError(
            f"model {name!r} is not a local directory{where} and not in the Hugging Face cache"
            " (budgetbench does not download models: fetch it first or pass a local path)"
        )
    if not (directory / "config.json").is_file():
        raise InputError(f"model directory {directory} has no config.json")
    return directory


def load_model(directory: Path, device: str):
    """The model in float32 on `device`, in eval mode (GPT-2-style `Conv1D` projections turned
    into `nn.Linear`, see `tasks.quant.formats.linear_projections`), and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tasks.quant.formats import linear_projections

    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, local_files_only=True
        )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"could not load a causal LM from {directory}: {first}") from exc
    return linear_projections(model).to(device).eval(), tokenizer


def require_quantizable(directory: Path) -> None:
    """Refuse, before anything runs, a model with no linear layer to quantize. The model is
    built from its config on the meta device (no weights are read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tasks.quant.formats import linear_projections, quantizable_linears

    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"could not build a causal LM from {directory}: {first}") from exc
    if not quantizable_linears(linear_projections(model)):
        raise InputError(
            f"model {directory} ({type(model).__name__}) has no linear layer to quantize"
            " (only nn.Linear and GPT-2-style Conv1D projections are quantized)"
        )


def model_digest(directory: Path) -> str:
    """SHA-256 over every file of a model directory (names and bytes): names cached results."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def train_smoke_model(
    recipe: SmokeRecipe, train_documents: list[str], cache_dir: Path, track=None
) -> Path:
    """Train (once) and save the smoke model; returns its directory."""
    directory = cache_dir / "quant-models" / f"smoke-lm-{recipe.key}"
    if (directory / "config.json").is_file():
        return directory
    import torch
    from tokenizers import decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tasks.common.tokenization import pack_sequences, train_tokenizer

    words = train_tokenizer(train_documents, recipe.vocab_size, recipe.corpus_sha256, cache_dir)
    words.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[CLS]",
        eos_token="[SEP]",
    )
    sequences = pack_sequences(
        words, train_documents, recipe.seq_len, cache_dir, f"quant-{recipe.corpus_sha256}"
    ).long()
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=recipe.seq_len * 4,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.learning_rate, total_steps=recipe.steps, pct_start=0.1
    )
    model.train()
    steps = range(recipe.steps)
    for _ in track(steps, "training the smoke model", recipe.steps) if track else steps:
        rows = torch.randint(0, sequences.shape[0], (recipe.batch,), generator=generator)
        batch = sequences[rows]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    temporary = directory.with_name(f"{directory.name}.tmp-{time.time_ns()}")
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    (temporary / "budgetbench_recipe.json").write_text(json.dumps(asdict(recipe), indent=1))
    try:
        temporary.rename(directory)
    except OSError:  # another run saved it first
        shutil.rmtree(temporary, ignore_errors=True)
    return directory
