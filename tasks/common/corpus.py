"""Pretraining corpora: where the text comes from, and its fixed train/validation split.

- `python-docstrings` (smoke profile, offline): every docstring of at least 8 words in the Python
  standard library's own source files (modules, classes, functions), read with `ast` (nothing is
  imported), files in sorted order, test directories excluded. It is on every machine that runs
  budgetbench, so it needs no network and no shared data. It depends on the Python version; the
  run records the corpus's SHA-256 and size, so differing corpora are visible.
- `wikitext-2-raw`, `wikitext-103-raw`: loaded with `datasets.load_dataset` from the hub
  (`Salesforce/wikitext`), or offline from a mirror directory `DATA_DIR/<name>/{train,valid}.txt`
  through the same library (`load_dataset("text", ...)`). WikiText articles are split at their
  top-level headings (` = Title = `) into documents.

- `pile-readymade` (cramming's final data): the filtered Pile, already tokenized into sequences of
  128 tokens by cramming's own 32,768-entry WordPiece, streamed with `datasets` from the hub
  (`JonasGeiping/the_pile_WordPiecex32768_2efdb9d060d1ae95faf952ec1a50f020`, `input_ids`, its
  tokenizer in `tokenizer/tokenizer.json`), or offline from a mirror of that repository,
  `DATA_DIR/pile-readymade/` (its parquet files and `tokenizer/tokenizer.json`, as
  `huggingface-cli download --repo-type dataset ... --local-dir` lays them out). It has one
  split: its first `eval_sequences` rows are held out, training streams the rows after them in
  the corpus's order, in one pass (a second pass starts over if a run outlasts it).

WikiText keeps its official train/valid split. For the docstrings, validation documents are
chosen by a hash of their text (1 in `VALIDATION_EVERY`), so the split does not depend on order.
Either way the held-out set is the same for every method and seed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.base import InputError

VALIDATION_EVERY = 20
HUB_CORPORA = {
    "wikitext-2-raw": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
    "wikitext-103-raw": ("Salesforce/wikitext", "wikitext-103-raw-v1"),
}
READYMADE = "pile-readymade"
READYMADE_HUB = "JonasGeiping/the_pile_WordPiecex32768_2efdb9d060d1ae95faf952ec1a50f020"
CORPORA = ("python-docstrings", *HUB_CORPORA, READYMADE)
_EXCLUDED_DIRECTORIES = {"test", "tests", "idle_test", "site-packages", "lib2to3"}
_HEADING = re.compile(r"^ = [^=].* = $")


@dataclass(frozen=True)
class Corpus:
    name: str
    train: list[str]
    validation: list[str]
    source: str

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for document in (*self.train, "\0", *self.validation):
            digest.update(document.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    @property
    def characters(self) -> int:
        return sum(map(len, self.train)) + sum(map(len, self.validation))


def check_mirror(corpus: str, data_dir: Path | None, also: Iterable[Path] = ()) -> None:
    """Before a run, with a data mirror: every file `corpus` is read from there (WikiText's train
    and valid splits, pile-readymade's tokenizer), and the `also` files the task reads besides,
    must be present; raises ValueError naming the first missing one. Without a mirror there is
    nothing to check (the hub is asked at run time); the offline docstrings need no file."""
    if data_dir is None:
        return
    needed = []
    if corpus in HUB_CORPORA:
        needed += [data_dir / corpus / f"{split}.txt" for split in ("train", "valid")]
    if corpus == READYMADE:
        needed.append(data_dir / READYMADE / "tokenizer" / "tokenizer.json")
    needed += also
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(f"the data mirror lacks {missing[0]}{more}")


def load_corpus(
    name: str, data_dir: Path | None, cache_dir: Path, max_characters: int | None
) -> Corpus:
    """The named corpus, split, and capped to its first `max_characters` of training text."""
    if name == "python-docstrings":
        source = f"Python {sys.version.split()[0]} standard library docstrings"
        train, validation = [], []
        for document in _python_docstrings(cache_dir):
            digest = int(hashlib.sha256(document.encode()).hexdigest(), 16)
            (validation if digest % VALIDATION_EVERY == 0 else train).append(document)
    elif name in HUB_CORPORA:
        train, validation, source = _wikitext(name, data_dir)
    else:
        raise InputError(f"unknown corpus {name!r} (known: {', '.join(CORPORA)})")
    if max_characters is not None:
        train = _cap(train, max_characters)
    return Corpus(name, train, validation, source)


def _cap(documents: list[str], max_characters: int) -> list[str]:
    kept, total = [], 0
    for document in documents:
        if total >= max_characters:
            break
        kept.append(document)
        total += len(document)
    return kept


def _python_docstrings(cache_dir: Path) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    cache = cache_dir / "corpora" / f"python-docstrings-{sys.version.split()[0]}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    documents = []
    files = sorted(root.rglob("*.py"))
    for path in files:
        if _EXCLUDED_DIRECTORIES.intersection(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(node)
                if docstring and len(docstring.split()) >= 8:
                    documents.append(docstring)
    if not documents:
        raise InputError(f"no docstrings found under {root}: is the Python source installed?")
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(".tmp")
    temporary.write_text(json.dumps(documents))
    temporary.replace(cache)
    return documents


def _wikitext(name: str, data_dir: Path | None) -> tuple[list[str], list[str], str]:
    import datasets

    datasets.disable_progress_bars()
    if data_dir is not None:
        directory = data_dir / name
        files = {split: directory / f"{split}.txt" for split in ("train", "valid")}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise InputError(f"corpus {name!r}: missing {', '.join(missing)} in the data mirror")
        dataset = datasets.load_dataset("text", data_files={k: str(v) for k, v in files.items()})
        train, validation = dataset["train"], dataset["valid"]
        source = f"mirror {directory}"
    else:
        path, config = HUB_CORPORA[name]
        try:
            dataset = datasets.load_dataset(path, config)
            train, validation = dataset["train"], dataset["validation"]
        except Exception as exc:  # offline, or the hub is unreachable: say how to fix it
            raise InputError(
                f"corpus {name!r}: could not load {path}/{config} from the hub"
                f" ({type(exc).__name__}); on an offline machine pass --data-dir with a mirror"
            ) from exc
        source = f"hub {path}/{config}"
    return _split_articles(train["text"]), _split_articles(validation["text"]), source


def _split_articles(lines: list[str]) -> list[str]:
    """WikiText lines into articles, cut at each top-level heading."""
    articles: list[str] = []
    current: list[str] = []
    for line in lines:
        if _HEADING.match(line.rstrip("\n")) and current:
            articles.append(" ".join(current))
            current = []
        text = line.strip()
        if text:
            current.append(text)
    if current:
        articles.append(" ".join(current))
    return articles


@dataclass(frozen=True)
class SequenceStream:
    """A pre-tokenized corpus read as a stream of equal-length rows (never all in memory)."""

    dataset: Any
    """A `datasets.IterableDataset` with an `input_ids` column."""
    skip: int
    """Rows at the start that are held out, never trained on."""
    source: str

    def held_out(self, count: int) -> list[list[int]]:
        return [row["input_ids"] for row in self.dataset.take(min(count, self.skip))]

    def batches(self, size: int) -> Iterator[list[list[int]]]:
        """Training rows `size` at a time, in the corpus's order; the last partial batch is
        dropped."""
        rows: list[list[int]] = []
        for row in self.dataset.skip(self.skip):
            rows.append(row["input_ids"])
            if len(rows) == size:
                yield rows
                rows = []


def load_readymade(data_dir: Path | None, held_out: int) -> tuple[Any, SequenceStream]:
    """Cramming's `pile-readymade`: its tokenizer and a stream of its sequences, from a mirror
    (`data_dir/pile-readymade`) or the hub."""
    import datasets
    from tokenizers import Tokenizer

    datasets.disable_progress_bars()
    if data_dir is not None:
        directory = data_dir / READYMADE
        tokenizer_file = directory / "tokenizer" / "tokenizer.json"
        files = sorted(str(path) for path in directory.rglob("*.parquet"))
        if not tokenizer_file.is_file() or not files:
            raise InputError(
                f"corpus {READYMADE!r}: the mirror {directory} needs tokenizer/tokenizer.json and"
                " the dataset's parquet files"
            )
        dataset = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
        source = f"mirror {directory}"
    else:
        try:
            from huggingface_hub import hf_hub_download

            tokenizer_file = Path(
                hf_hub_download(READYMADE_HUB, "tokenizer/tokenizer.json", repo_type="dataset")
            )
            dataset = datasets.load_dataset(READYMADE_HUB, split="train", streaming=True)
        except Exception as exc:  # offline, or the hub is unreachable: say how to fix it
            raise InputError(
                f"corpus {READYMADE!r}: could not reach {READYMADE_HUB} on the hub"
                f" ({type(exc).__name__}); on an offline machine pass --data-dir with a mirror"
            ) from exc
        source = f"hub {READYMADE_HUB}"
    if "input_ids" not in (dataset.column_names or ["input_ids"]):
        raise InputError(f"corpus {READYMADE!r}: {source} has no input_ids column")
    return Tokenizer.from_file(str(tokenizer_file)), SequenceStream(dataset, held_out, source)
