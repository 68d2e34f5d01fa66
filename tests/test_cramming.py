"""Task `cramming`: data preparation, masking, the training loop's rules, and bad methods."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, cli_json, run_cli

from harness.errors import InputError
from tasks.common.corpus import load_corpus
from tasks.common.masking import IGNORE, mask_tokens
from tasks.common.tokenization import SPECIAL_TOKENS, pack_sequences, train_tokenizer

# A quick profile: the smoke corpus and model, seconds of budget, no downstream scoring.
QUICK = ("--set", "budget_s=4", "--set", "eval_points=2", "--set", "downstream=none",
         "--set", "eval_sequences=32")  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> dict[str, str]:
    """One cache for the module, so the corpus and tokenizer are prepared once."""
    return {"BUDGETBENCH_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


def run_cramming(tmp_path: Path, cache: dict[str, str], *args: str):
    db = str(tmp_path / "s.db")
    return run_cli("run", "cramming", "--db", db, *QUICK, *args, env=cache), db


def test_masking_follows_the_80_10_10_rule_and_spares_special_tokens():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (512, 128))
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    special = torch.arange(5)
    corrupted, labels = mask_tokens(ids, 0.25, 4, special, 1000, generator)
    chosen = labels != IGNORE
    assert chosen.float().mean().item() == pytest.approx(0.25 * 126 / 128, abs=0.005)
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert torch.equal(labels[chosen], ids[chosen])
    masked = (corrupted[chosen] == 4).float().mean().item()
    unchanged = (corrupted[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.01)
    assert unchanged == pytest.approx(0.1 + 0.1 / 995, abs=0.01)  # kept, or replaced by itself
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def _mirror(root: Path) -> Path:
    directory = root / "wikitext-2-raw"
    directory.mkdir(parents=True)
    article = " = {title} = \n \n {text} \n"
    (directory / "train.txt").write_text(
        "".join(
            article.format(title=f"Title {i}", text=f"Article number {i} is about topic {i}. " * 20)
            for i in range(30)
        )
    )
    (directory / "valid.txt").write_text(
        article.format(title="Held out", text="Validation text here. " * 20)
    )
    return root


def test_wikitext_loads_offline_from_a_mirror_through_datasets(tmp_path):
    corpus = load_corpus("wikitext-2-raw", _mirror(tmp_path / "mirror"), tmp_path / "cache", None)
    assert len(corpus.train) == 30 and len(corpus.validation) == 1
    assert corpus.train[3].startswith("= Title 3 = Article number 3")
    assert corpus.source.startswith("mirror ")
    capped = load_corpus("wikitext-2-raw", tmp_path / "mirror", tmp_path / "cache", 1000)
    assert len(capped.train) < 30 and capped.validation == corpus.validation


def test_a_missing_mirror_file_or_unknown_corpus_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"missing .*train\.txt"):
        load_corpus("wikitext-103-raw", tmp_path, tmp_path / "cache", None)
    with pytest.raises(InputError, match="unknown corpus 'c4'"):
        load_corpus("c4", None, tmp_path / "cache", None)


def test_tokenizer_and_sequences_are_cached_and_packed(tmp_path):
    corpus = load_corpus("wikitext-2-raw", _mirror(tmp_path / "mirror"), tmp_path / "cache", None)
    tokenizer = train_tokenizer(corpus.train, 300, corpus.sha256, tmp_path / "cache")
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    again = train_tokenizer(corpus.train, 300, corpus.sha256, tmp_path / "cache")
    assert again.to_str() == tokenizer.to_str()
    packed = pack_sequences(tokenizer, corpus.train, 32, tmp_path / "cache", "k")
    assert packed.shape[1] == 32 and (packed[:, 0] == 2).all() and (packed[:, -1] == 3).all()
    assert torch.equal(pack_sequences(tokenizer, corpus.train, 32, tmp_path / "cache", "k"), packed)


def test_a_quick_run_stores_the_loss_curve_and_respects_the_budget(tmp_path, cache):
    result, db = run_cramming(tmp_path, cache, "--method", "crammed-bert-tiny")
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    scalars = {m["name"]: m["value"] for m in detail["measurements"]}
    # How far a few seconds get depends on the machine's load; the rules do not.
    final, initial = scalars["final_mlm_loss"], scalars["initial_mlm_loss"]
    assert detail["gate_passed"] is (final < math.log(4096) and final <= initial - 0.25)
    assert 0 <= scalars["budget_used_s"] - 4.0 <= scalars["longest_step_s"]
    assert scalars["tokens_per_s"] > 0 and scalars["mfu"] > 0 and scalars["steps"] >= 1
    heldout = [p for p in detail["curve_points"] if p["metric"] == "heldout_mlm_loss"]
    curve = [p["x"] for p in heldout]
    assert 2 <= len(curve) <= 3 and curve == sorted(set(curve))
    assert curve[0] == 0.0 and heldout[0]["value"] == initial  # untrained, before the clock
    assert curve[-1] == pytest.approx(scalars["budget_used_s"])
    assert heldout[-1]["value"] == final  # the end state, evaluated once
    notes = detail["provenance"]["task_notes"]
    assert notes["corpus"]["name"] == "python-docstrings" and len(notes["corpus"]["sha256"]) == 64
    assert notes["micro_batch"]["sequences"] == 16  # the smoke profile's: the tiny model is cheap
    assert scalars["micro_batch_steps"] >= scalars["steps"] >= 1


METHOD = """
import torch
from tasks.common.model import EncoderConfig
HYPERPARAMETERS = {{"mask_rate": {mask_rate}}}

def model_config(vocab_size, max_seq_len, budget_s, run):
    {model_config}

def configure_optimizer(model, run):
    {configure_optimizer}
    return torch.optim.AdamW(model.parameters(), lr=1e-3)

def learning_rate(progress, step, run):
    {learning_rate}

def batch_size(progress, run):
    return 16
"""
SMALL = (
    "return EncoderConfig(vocab_size, max_seq_len, hidden_size=64, num_layers=1, num_heads=2,"
    " intermediate_size=128)"
)


def method_file(
    tmp_path: Path,
    mask_rate=0.15,
    model_config=SMALL,
    configure_optimizer="pass",
    learning_rate="return 1.0",
) -> str:
    path = tmp_path / "method.py"
    text = METHOD.format(
        mask_rate=mask_rate,
        model_config=model_config,
        configure_optimizer=configure_optimizer,
        learning_rate=learning_rate,
    )
    path.write_text(text)
    return str(path)


def test_a_non_encoder_model_is_rejected_before_anything_runs(tmp_path, cache):
    method = method_file(tmp_path, model_config="return {'layers': 2, 'decoder': True}")
    result, db = run_cramming(tmp_path, cache, "--method", method)
    assert_one_line_error(result, 2, "must return tasks.common.model.EncoderConfig")
    assert not Path(db).exists()


def test_a_mask_rate_outside_the_rules_is_rejected(tmp_path, cache):
    result, _ = run_cramming(tmp_path, cache, "--method", method_file(tmp_path, mask_rate=0.9))
    assert_one_line_error(result, 2, "mask_rate'] must be between 0.1 and 0.4")


def test_changing_the_weights_before_training_is_rejected_as_pretrained(tmp_path, cache):
    loads = "model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})"
    result, db = run_cramming(
        tmp_path, cache, "--method", method_file(tmp_path, configure_optimizer=loads)
    )
    assert result.returncode == 1
    (run,) = cli_json("runs", "--db", db)
    assert run["status"] == "failed" and "PretrainedWeights" in run["error"]


def test_divergence_fails_the_run_and_keeps_the_partial_curve(tmp_path, cache):
    method = method_file(tmp_path, learning_rate="return 1.0 if progress < 0.3 else float('nan')")
    result, db = run_cramming(tmp_path, cache, "--method", method, "--set", "eval_points=4")
    assert result.returncode == 1
    (run,) = cli_json("runs", "--db", db)
    assert run["status"] == "failed" and run["error"].startswith("Diverged: ")
    assert "loss became nan" in run["error"]
    detail = cli_json("show", run["id"], "--db", db)
    points = [p for p in detail["curve_points"] if p["metric"] == "heldout_mlm_loss"]
    assert 1 <= len(points) < 4 and all(math.isfinite(p["value"]) for p in points)


def test_the_gate_asks_for_a_quarter_nat_below_the_untrained_model():
    from harness.spec import load_spec, resolve_config
    from tasks.cramming import CrammingTask

    smoke = resolve_config(CrammingTask, load_spec("cramming"), "smoke").config  # ln 4096 = 8.318
    gate = CrammingTask().quality_gate
    assert gate({"final_mlm_loss": 7.5, "initial_mlm_loss": 8.26}, smoke).passed
    # below a uniform guess, as an untrained pre-norm model already is, but barely trained
    missed = gate({"final_mlm_loss": 7.7, "initial_mlm_loss": 7.857}, smoke)
    assert not missed.passed and "0.25 nats below the untrained model's 7.857" in missed.reason
    assert not gate({"final_mlm_loss": 8.4, "initial_mlm_loss": 9.0}, smoke).passed  # uniform
    assert not gate({"final_mlm_loss": 7.5}, smoke).passed


def test_capped_or_partial_glue_is_named_as_such():
    from harness.spec import load_spec, resolve_config
    from tasks.cramming import GLUE_TASKS, CrammingTask

    spec = load_spec("cramming")
    full = resolve_config(CrammingTask, spec, "full").config
    assert set(full.glue_tasks) == set(GLUE_TASKS) and not full.glue_is_capped
    assert resolve_config(CrammingTask, spec, "standard").config.glue_is_capped
    assert resolve_config(
        CrammingTask, spec, "full", {"glue_max_dev_examples": 10}
    ).config.glue_is_capped


def test_a_method_data_order_is_used_and_checked():
    from types import SimpleNamespace

    from tasks.base import MethodRun
    from tasks.cramming.training import epoch_order

    train = torch.zeros(6, 4, dtype=torch.int32)
    generator = torch.Generator().manual_seed(0)
    run = MethodRun({}, 0, "cpu")
    shuffled = epoch_order(SimpleNamespace(), run, train, 0, generator)
    assert sorted(shuffled.tolist()) == list(range(6))
    assert epoch_order(SimpleNamespace(), run, train, 0, generator, shuffle=False).tolist() == list(
        range(6)
    )
    curriculum = SimpleNamespace(
        data_order=lambda sequences, epoch, g, run: [5, 4, 3] if epoch else [0, 1]
    )
    assert epoch_order(curriculum, run, train, 0, generator).tolist() == [0, 1]
    assert epoch_order(curriculum, run, train, 1, generator).tolist() == [5, 4, 3]
    with pytest.raises(ValueError, match="indices into the 6 training sequences"):
        epoch_order(SimpleNamespace(data_order=lambda s, e, g, r: [6]), run, train, 0, generator)


@pytest.mark.parametrize("background", [True, False])
def test_the_batch_builder_gives_the_same_seeded_batches_on_a_thread_or_inline(background):
    """The thread (accelerators) and the inline builder (CPUs) give the same batches for a seed,
    static shapes with the same label count per row, and raise a method's bad data_order from
    next() in the training loop."""
    from types import SimpleNamespace

    from tasks.base import MethodRun
    from tasks.common.masking import Vocabulary
    from tasks.cramming.training import BatchBuilder

    train = torch.randint(5, 100, (40, 16), dtype=torch.int32)
    vocabulary = Vocabulary(size=100, mask_id=4, special_ids=torch.arange(5))
    run = MethodRun({}, 0, "cpu")

    def batches(background: bool, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        builder = BatchBuilder(
            SimpleNamespace(), run, train, vocabulary, 8, 0.25, seed, True, False, background
        )
        try:
            return [builder.next() for _ in range(12)]  # more than an epoch of 5 micro-batches
        finally:
            builder.close()

    got, other = batches(background, 0), batches(not background, 0)
    for (inputs, labels), (inputs_other, labels_other) in zip(got, other, strict=True):
        assert inputs.shape == labels.shape == (8, 16)
        assert torch.equal(inputs, inputs_other) and torch.equal(labels, labels_other)
        assert ((labels != IGNORE).sum(dim=1) == 4).all()
    assert not torch.equal(got[0][0], batches(background, 1)[0][0])

    bad = SimpleNamespace(data_order=lambda sequences, epoch, generator, run: [99])
    builder = BatchBuilder(bad, run, train, vocabulary, 1, 0.25, 0, True, False, background)
    with pytest.raises(ValueError, match="indices into the 40 training sequences"):
        builder.next()
    builder.close()


def test_unknown_filter_and_frequency_sort():
    from types import SimpleNamespace

    from tasks.cramming.workload import _prepare_training_sequences

    train = torch.tensor(
        [[2, 1, 1, 3], [2, 7, 8, 3], [2, 5, 5, 3], [2, 5, 1, 3]], dtype=torch.int32
    )
    kept = _prepare_training_sequences(
        train, SimpleNamespace(filter_max_unknown=0.25, sort_by_token_frequency=False), unknown_id=1
    )
    assert kept.tolist() == [[2, 7, 8, 3], [2, 5, 5, 3], [2, 5, 1, 3]]
    ordered = _prepare_training_sequences(
        kept, SimpleNamespace(filter_max_unknown=1.0, sort_by_token_frequency=True), unknown_id=1
    )
    assert ordered.tolist()[0] == [2, 5, 5, 3] and ordered.tolist()[-1] == [2, 7, 8, 3]


def test_a_mirror_missing_the_profiles_data_is_rejected_before_anything_runs(tmp_path, cache):
    mirror = tmp_path / "mirror"
    (mirror / "glue" / "RTE").mkdir(parents=True)
    (mirror / "glue" / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    db = tmp_path / "s.db"
    result = run_cli("run", "cramming", "--profile", "smoke-glue", "--data-dir", str(mirror),
                     "--db", str(db), env=cache)  # fmt: skip
    assert_one_line_error(result, 2, f"the data mirror lacks {mirror / 'glue' / 'RTE' / 'dev.tsv'}")
    assert not db.exists()


def test_a_run_saves_its_encoder_and_checkpoint_evaluates_it_again(tmp_path, cache):
    result, db = run_cramming(tmp_path, cache, "--method", "crammed-bert-tiny")
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    (artifact,) = [a for a in detail["artifacts"] if a["name"] == "encoder"]
    path = artifact["uri"].removeprefix("file://")
    trained = {m["name"]: m["value"] for m in detail["measurements"]}

    again = tmp_path / "again.db"
    result = run_cli("run", "cramming", "--db", str(again), *QUICK, "--set", f"checkpoint={path}",
                     "--method", "crammed-bert-tiny", env=cache)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (rerun,) = cli_json("runs", "--db", str(again))
    evaluated = cli_json("show", rerun["id"], "--db", str(again))
    scalars = {m["name"]: m["value"] for m in evaluated["measurements"]}
    # the same weights, held-out sequences and fixed masking: the same loss
    assert scalars["final_mlm_loss"] == pytest.approx(trained["final_mlm_loss"], rel=1e-5)
    # the gate's baseline: the same architecture untrained, initialised as the run's own was
    assert scalars["initial_mlm_loss"] == pytest.approx(trained["initial_mlm_loss"], rel=1e-5)
    assert "steps" not in scalars and scalars["parameters"] > 0
    assert evaluated["provenance"]["task_notes"]["checkpoint"]["sha256"] == artifact["sha256"]

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"junk")
    result = run_cli("run", "cramming", "--db", str(tmp_path / "b.db"), *QUICK,
                     "--set", f"checkpoint={broken}", env=cache)  # fmt: skip
    assert_one_line_error(result, 2, f"checkpoint {broken}: unreadable")


def _readymade_mirror(root: Path, tmp_path: Path) -> Path:
    """A small stand-in for pile-readymade laid out as its hub repository: parquet rows of
    `input_ids` (32 tokens here) and tokenizer/tokenizer.json."""
    import datasets

    corpus = load_corpus("wikitext-2-raw", _mirror(tmp_path / "text"), tmp_path / "cache", None)
    tokenizer = train_tokenizer(corpus.train, 300, corpus.sha256, tmp_path / "cache")
    rows = pack_sequences(tokenizer, corpus.train * 4, 32, tmp_path / "cache", "readymade")
    directory = root / "pile-readymade"
    (directory / "tokenizer").mkdir(parents=True)
    tokenizer.save(str(directory / "tokenizer" / "tokenizer.json"))
    (directory / "data").mkdir()
    dataset = datasets.Dataset.from_dict({"input_ids": rows.tolist()})
    dataset.to_parquet(str(directory / "data" / "train-00000-of-00001.parquet"))
    return root


def test_pile_readymade_streams_from_a_mirror_with_its_own_tokenizer(tmp_path, cache):
    mirror = _readymade_mirror(tmp_path / "mirror", tmp_path)
    db = str(tmp_path / "s.db")
    result = run_cli("run", "cramming", "--method", "crammed-bert-tiny", "--db", db, *QUICK,
                     "--set", "corpus=pile-readymade", "--set", "seq_len=32",
                     "--set", "eval_sequences=8", "--data-dir", str(mirror), env=cache)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    notes = detail["provenance"]["task_notes"]
    assert notes["corpus"]["source"] == f"mirror {mirror / 'pile-readymade'}"
    assert notes["sequences"] == {"train": "streamed", "validation": 8}
    scalars = {m["name"]: m["value"] for m in detail["measurements"]}
    assert scalars["steps"] >= 1 and math.isfinite(scalars["final_mlm_loss"])

    empty = tmp_path / "empty"
    (empty / "pile-readymade").mkdir(parents=True)
    result = run_cli("run", "cramming", "--db", db, *QUICK, "--set", "corpus=pile-readymade",
                     "--data-dir", str(empty), env=cache)  # fmt: skip
    tokenizer_file = empty / "pile-readymade" / "tokenizer" / "tokenizer.json"
    assert_one_line_error(result, 2, f"the data mirror lacks {tokenizer_file}")
