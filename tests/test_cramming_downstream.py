"""Downstream evaluation of cramming encoders: GLUE TSV loading, metrics, fine-tuning, probe.

The GLUE mirror here is a handful of rows per task written in the original GLUE file formats,
quirks included (CoLA without a header, MRPC's byte-order mark, stray quotes, string labels).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from harness.errors import InputError
from tasks.common.model import Encoder, EncoderConfig
from tasks.cramming.downstream import (
    FinetuneProtocol,
    encode,
    glue_metrics,
    load_glue_task,
    score_glue,
    warmup_cosine,
)

WORDS = ("apple", "river", "stone", "cloud", "green", "quiet", "table", "window", "summer", "music")
NEEDLE = "zebra"

MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse"
    "\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
)
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER.replace("label1\t", "label1\tlabel2\tlabel3\tlabel4\tlabel5\t")
STSB_HEADER = (
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
)

# Per task: the files of its mirror folder, and what train / each dev entry must load as.
MIRROR = {
    "cola": (
        "CoLA",
        {
            "train.tsv": 'gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe "more books.\n'
            "cj99\t1\t\tNA is a word here.\n",
            "dev.tsv": "gj04\t0\t*\tRode sailors the.\ngj04\t1\t\tThe doll wriggled loose.",
        },
        {
            "train": {
                "text_a": [
                    "The sailors rode the breeze.",
                    'The "more books.',
                    "NA is a word here.",
                ],
                "label": [1, 0, 1],
            },
            "cola": {
                "text_a": ["Rode sailors the.", "The doll wriggled loose."],
                "label": [0, 1],
            },
        },
    ),
    "sst2": (
        "SST-2",
        {
            "train.tsv": "sentence\tlabel\nhide new secretions \t0\na charming journey \t1\n",
            "dev.tsv": "sentence\tlabel\nunflinchingly bleak \t0\n",
        },
        {
            "train": {"text_a": ["hide new secretions ", "a charming journey "], "label": [0, 1]},
            "sst2": {"text_a": ["unflinchingly bleak "], "label": [0]},
        },
    ),
    "mrpc": (
        "MRPC",
        {
            "train.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            '1\t702876\t702977\tHe called " the witness " .\t" The witness " , he said .\n'
            "0\t2108705\t2108831\tYucaipa owned it .\tYucaipa bought it .\n",
            "dev.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t1\t2\tThe pie fits .\tThe pie does fit .\n",
        },
        {
            "train": {
                "text_a": ['He called " the witness " .', "Yucaipa owned it ."],
                "text_b": ['" The witness " , he said .', "Yucaipa bought it ."],
                "label": [1, 0],
            },
            "mrpc": {"text_a": ["The pie fits ."], "text_b": ["The pie does fit ."], "label": [1]},
        },
    ),
    "stsb": (
        "STS-B",
        {
            "train.tsv": STSB_HEADER
            + "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane takes off.\t"
            "An air plane takes off.\t5.000\n"
            "1\tmain-news\theadlines\t2015\t0002\tnone\tnone\tA man plays.\tA dog runs.\t0.250\n",
            "dev.tsv": STSB_HEADER
            + "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA hat.\tA cap.\t3.800\n",
        },
        {
            "train": {
                "text_a": ["A plane takes off.", "A man plays."],
                "text_b": ["An air plane takes off.", "A dog runs."],
                "label": [5.0, 0.25],
            },
            "stsb": {"text_a": ["A hat."], "text_b": ["A cap."], "label": [3.8]},
        },
    ),
    "qqp": (
        "QQP",
        {
            "train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
            "0\t1\t2\tHow do I learn?\tWhat is the way to learn?\t1\n"
            "1\t3\t4\tnull\tWhy is the sky blue?\t0\n"
            "2\t5\t6\tA truncated row\n",
            "dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
            "7\t8\t9\tIs it raining?\tWill it rain?\t0\n",
        },
        {
            "train": {
                "text_a": ["How do I learn?", "null"],
                "text_b": ["What is the way to learn?", "Why is the sky blue?"],
                "label": [1, 0],
            },
            "qqp": {"text_a": ["Is it raining?"], "text_b": ["Will it rain?"], "label": [0]},
        },
    ),
    "mnli": (
        "MNLI",
        {
            "train.tsv": MNLI_TRAIN_HEADER
            + "0\t1\t1e\tgov\t( ( A ) )\t( B )\t(ROOT A)\t(ROOT B)\tCats sleep.\tCats rest.\t"
            "entailment\tentailment\n"
            "1\t2\t2c\tgov\t( C )\t( D )\t(ROOT C)\t(ROOT D)\tIt is red.\tIt is blue.\t"
            "contradiction\tcontradiction\n"
            "2\t3\t3n\tgov\t( E )\t( F )\t(ROOT E)\t(ROOT F)\tHe ran.\tHe ran fast.\t"
            "neutral\tneutral\n",
            "dev_matched.tsv": MNLI_DEV_HEADER
            + "0\t9\t9n\tfiction\t( G )\t( H )\t(ROOT G)\t(ROOT H)\tShe sang.\tShe sang well.\t"
            "neutral\tneutral\tneutral\tentailment\tneutral\tneutral\n"
            "1\t8\t8e\tfiction\t( I )\t( J )\t(ROOT I)\t(ROOT J)\tDogs bark.\tDogs make noise.\t"
            "entailment\tentailment\tentailment\tentailment\tentailment\tentailment\n",
            "dev_mismatched.tsv": MNLI_DEV_HEADER
            + "0\t7\t7c\tletters\t( K )\t( L )\t(ROOT K)\t(ROOT L)\tIt is day.\tIt is night.\t"
            "contradiction\tcontradiction\tneutral\tcontradiction\tcontradiction\t"
            "contradiction\n",
        },
        {
            "train": {
                "text_a": ["Cats sleep.", "It is red.", "He ran."],
                "text_b": ["Cats rest.", "It is blue.", "He ran fast."],
                "label": [0, 2, 1],
            },
            "mnli-m": {
                "text_a": ["She sang.", "Dogs bark."],
                "text_b": ["She sang well.", "Dogs make noise."],
                "label": [1, 0],
            },
            "mnli-mm": {"text_a": ["It is day."], "text_b": ["It is night."], "label": [2]},
        },
    ),
    "qnli": (
        "QNLI",
        {
            "train.tsv": "index\tquestion\tsentence\tlabel\n"
            "0\tWhat came into force?\tThe constitution came into force.\tentailment\n"
            "1\tWhere is the Rhine?\tThe Neckar flows in Mannheim.\tnot_entailment\n",
            "dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWho won?\tNobody won.\tentailment\n",
        },
        {
            "train": {
                "text_a": ["What came into force?", "Where is the Rhine?"],
                "text_b": ["The constitution came into force.", "The Neckar flows in Mannheim."],
                "label": [0, 1],
            },
            "qnli": {"text_a": ["Who won?"], "text_b": ["Nobody won."], "label": [0]},
        },
    ),
    "rte": (
        "RTE",
        {
            "train.tsv": "index\tsentence1\tsentence2\tlabel\n"
            "0\tNo weapons were found.\tWeapons were found.\tnot_entailment\n"
            '1\tThe "new" pope was installed.\tBenedict is pope.\tentailment\n',
            "dev.tsv": "index\tsentence1\tsentence2\tlabel\n"
            "0\tDana died.\tDana is dead.\tentailment\n",
        },
        {
            "train": {
                "text_a": ["No weapons were found.", 'The "new" pope was installed.'],
                "text_b": ["Weapons were found.", "Benedict is pope."],
                "label": [1, 0],
            },
            "rte": {"text_a": ["Dana died."], "text_b": ["Dana is dead."], "label": [0]},
        },
    ),
}


def write_mirror(root: Path, tasks: dict = MIRROR) -> Path:
    for directory, files, _ in tasks.values():
        folder = root / "glue" / directory
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return write_mirror(tmp_path / "data")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


def needle_sentence(rng: random.Random, with_needle: bool) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 9))
    if with_needle:
        words.insert(rng.randrange(len(words) + 1), NEEDLE)
    return " ".join(words)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """A tiny tokenizer shaped like cramming's: WordPiece, lower-cased, no post-processor."""
    rng = random.Random(0)
    corpus = [needle_sentence(rng, i % 2 == 0) for i in range(200)]
    corpus += [
        text for _, _, splits in MIRROR.values() for s in splits.values() for text in s["text_a"]
    ]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=special, show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def tiny_encoder(tokenizer: Tokenizer, seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=tokenizer.get_vocab_size(),
        max_seq_len=128,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
    )
    return Encoder(config)


# --- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("task", MIRROR)
def test_each_glue_tsv_format_loads_its_texts_and_hub_label_ids(
    task: str, mirror: Path, cache: Path
) -> None:
    data = load_glue_task(task, mirror, cache_dir=cache)
    expected = MIRROR[task][2]
    assert set(data.dev) == set(expected) - {"train"}
    for name, split in [("train", data.train), *data.dev.items()]:
        columns, wanted = split[:], expected[name]
        assert columns.keys() == wanted.keys()
        assert {k: v for k, v in columns.items() if k != "label"} == {
            k: v for k, v in wanted.items() if k != "label"
        }
        assert columns["label"] == pytest.approx(wanted["label"])  # STS-B scores are float32


def test_caps_keep_the_first_rows_of_train_and_of_each_dev_split(mirror: Path, cache: Path) -> None:
    data = load_glue_task("mnli", mirror, max_train_examples=2, max_dev_examples=1, cache_dir=cache)
    assert data.train[:]["text_a"] == ["Cats sleep.", "It is red."]
    assert data.dev["mnli-m"][:]["text_a"] == ["She sang."]
    assert len(data.dev["mnli-mm"]) == 1


def test_a_missing_file_is_a_one_line_input_error_naming_it(mirror: Path, cache: Path) -> None:
    (mirror / "glue" / "RTE" / "dev.tsv").unlink()
    with pytest.raises(InputError, match=r"missing file .*RTE/dev\.tsv") as error:
        load_glue_task("rte", mirror, cache_dir=cache)
    assert "\n" not in str(error.value)


def test_a_missing_task_folder_or_unknown_task_is_an_input_error(
    tmp_path: Path, cache: Path
) -> None:
    with pytest.raises(InputError, match=r"'cola': missing directory .*glue/CoLA"):
        load_glue_task("cola", tmp_path, cache_dir=cache)
    with pytest.raises(InputError, match="unknown GLUE task 'wnli'"):
        load_glue_task("wnli", tmp_path, cache_dir=cache)


def test_a_missing_column_or_field_is_an_input_error_naming_the_file(
    mirror: Path, cache: Path
) -> None:
    (mirror / "glue" / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\n0\ta\tb\n")
    with pytest.raises(InputError, match=r"RTE/train\.tsv: missing column 'label'"):
        load_glue_task("rte", mirror, cache_dir=cache)
    (mirror / "glue" / "CoLA" / "train.tsv").write_text("gj04\t1\tThe sailors rode.\n")
    with pytest.raises(InputError, match=r"CoLA/train\.tsv: expected 4 tab-separated fields"):
        load_glue_task("cola", mirror, cache_dir=cache)


def test_an_unknown_label_is_an_input_error(mirror: Path, cache: Path) -> None:
    (mirror / "glue" / "RTE" / "dev.tsv").write_text(
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n"
    )
    with pytest.raises(InputError, match="label 'maybe' is not one of entailment"):
        load_glue_task("rte", mirror, cache_dir=cache)


# --- metrics -----------------------------------------------------------------------------------


def test_perfect_predictions_score_100_on_every_task() -> None:
    labels = [0, 1, 1, 0, 1]
    for task in ("cola", "sst2", "mrpc", "qqp", "mnli", "qnli", "rte"):
        assert glue_metrics(task, labels, labels)["score"] == pytest.approx(100.0)
    scores = [0.5, 4.0, 2.25, 3.0]
    assert glue_metrics("stsb", scores, scores) == pytest.approx(
        {"pearson": 100.0, "spearman": 100.0, "score": 100.0, "cramming": 100.0}
    )


def test_metrics_equal_the_library_values_times_100() -> None:
    labels, predictions = [1, 1, 0, 0], [1, 0, 0, 0]
    # One true positive, one false negative, two true negatives: F1 2/3, MCC 2/sqrt(12).
    assert glue_metrics("mrpc", predictions, labels) == pytest.approx(
        {"f1": 200 / 3, "accuracy": 75.0, "score": (200 / 3 + 75.0) / 2, "cramming": 200 / 3}
    )
    assert glue_metrics("cola", predictions, labels)["mcc"] == pytest.approx(100 * 2 / 12**0.5)
    assert glue_metrics("qqp", predictions, labels)["f1"] == pytest.approx(
        100 * f1_score(labels, predictions)
    )
    assert glue_metrics("cola", predictions, labels)["mcc"] == pytest.approx(
        100 * matthews_corrcoef(labels, predictions)
    )
    truth = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    guess = np.array([0.5, 0.7, 3.0, 2.9, 4.8])
    result = glue_metrics("stsb", guess, truth)
    assert result["pearson"] == pytest.approx(100 * pearsonr(guess, truth).statistic)
    assert result["spearman"] == pytest.approx(100 * spearmanr(guess, truth).statistic)
    assert result["spearman"] == pytest.approx(90.0)  # one swapped pair of five


def test_a_constant_regression_prediction_scores_zero_not_nan() -> None:
    assert glue_metrics("stsb", [2.0, 2.0, 2.0], [1.0, 3.0, 5.0])["score"] == 0.0


# --- encoding and fine-tuning -----------------------------------------------------------------


def test_pairs_are_laid_out_with_cls_and_seps_and_truncated_longest_first(
    tokenizer: Tokenizer,
) -> None:
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    long_text, short_text = " ".join(["apple"] * 300), "green stone"
    short_ids = tokenizer.encode(short_text, add_special_tokens=False).ids
    (row,) = encode(tokenizer, [long_text], [short_text], max_length=128)
    assert len(row) == 128
    assert row[0] == cls and row[-1] == sep
    assert row[-len(short_ids) - 2 :] == [sep, *short_ids, sep]  # the short text survives whole
    (single,) = encode(tokenizer, [long_text], max_length=16)
    assert len(single) == 16 and single[0] == cls and single[-1] == sep


def needle_mirror(root: Path) -> Path:
    """An SST-2-format mirror whose label is whether the sentence contains NEEDLE."""
    rng = random.Random(1)
    rows = [(needle_sentence(rng, i % 2 == 1), i % 2) for i in range(400)]
    folder = root / "glue" / "SST-2"
    folder.mkdir(parents=True)
    for name, part in (("train.tsv", rows[:320]), ("dev.tsv", rows[320:])):
        body = "".join(f"{text}\t{label}\n" for text, label in part)
        (folder / name).write_text("sentence\tlabel\n" + body)
    return root


def test_finetuning_learns_is_seeded_and_leaves_the_encoder_untouched(
    tokenizer: Tokenizer, tmp_path: Path, cache: Path
) -> None:
    encoder = tiny_encoder(tokenizer)
    before = {name: tensor.clone() for name, tensor in encoder.state_dict().items()}
    # A random 1-layer encoder needs a larger step than the protocol's 4e-5 to learn in seconds.
    protocol = FinetuneProtocol(learning_rate=3e-3, batch_size=16, epochs=5)
    data = needle_mirror(tmp_path / "needle")

    def run() -> float:
        result = score_glue(encoder, tokenizer, ["sst2"], data, protocol=protocol, cache_dir=cache)
        return result.tasks["sst2"]["accuracy"]

    first = run()
    assert first >= 85.0  # chance is 50
    assert run() == first
    after = encoder.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_score_glue_scores_mnli_twice_and_averages_the_entry_scores(
    tokenizer: Tokenizer, mirror: Path, cache: Path
) -> None:
    result = score_glue(
        tiny_encoder(tokenizer),
        tokenizer,
        ["stsb", "mnli", "mrpc"],
        mirror,
        max_train_examples=2,
        protocol=FinetuneProtocol(epochs=1),
        cache_dir=cache,
    )
    assert list(result.tasks) == ["stsb", "mnli-m", "mnli-mm", "mrpc"]
    assert set(result.tasks["stsb"]) == {"pearson", "spearman", "score", "cramming"}
    assert result.average == pytest.approx(np.mean([m["score"] for m in result.tasks.values()]))
    # cramming's way: F1 for MRPC, Pearson for STS-B, accuracy for each MNLI entry
    assert result.tasks["mrpc"]["cramming"] == result.tasks["mrpc"]["f1"]
    assert result.tasks["stsb"]["cramming"] == result.tasks["stsb"]["pearson"]
    cramming = [m["cramming"] for m in result.tasks.values()]
    assert result.cramming_average == pytest.approx(np.mean(cramming))
    assert result.examples["mnli-m"] == (2, 2) and result.examples["mnli-mm"] == (2, 1)
    assert (result.max_train_examples, result.max_dev_examples) == (2, None)


def test_the_default_protocol_is_crammings_and_caps_epochs_at_five() -> None:
    protocol = FinetuneProtocol()
    # cramming/config/eval/GLUE_sane.yaml and eval/optim/adam.yaml
    assert (protocol.learning_rate, protocol.batch_size, protocol.weight_decay) == (4e-5, 16, 0.0)
    assert (protocol.betas, protocol.eps) == ((0.9, 0.98), 1e-6)
    assert (protocol.warmup_fraction, protocol.max_length, protocol.head_dropout) == (0.1, 128, 0.1)
    assert (protocol.epochs, protocol.head_dim) == (5, 1024)
    with pytest.raises(InputError, match="epochs must be between 1 and 5"):
        dataclasses.replace(protocol, epochs=6)


def test_the_learning_rate_warms_up_linearly_over_10_percent_then_decays_by_cosine() -> None:
    factor = warmup_cosine(total_steps=100, warmup_fraction=0.1)
    assert [factor(step) for step in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(55) == pytest.approx(0.5)  # halfway through the 90 decay steps
    decay = [factor(step) for step in range(10, 100)]
    assert decay == sorted(decay, reverse=True) and decay[-1] < 0.001


def test_repeated_finetuning_reports_the_median_and_keeps_every_run(
    tokenizer: Tokenizer, mirror: Path, cache: Path
) -> None:
    kwargs = dict(max_train_examples=4, protocol=FinetuneProtocol(epochs=1), cache_dir=cache)
    encoder = tiny_encoder(tokenizer)
    result = score_glue(encoder, tokenizer, ["stsb", "mrpc"], mirror, repeats=3, **kwargs)
    for entry in ("stsb", "mrpc"):
        for metric, values in result.repeats[entry].items():
            assert len(values) == 3
            assert result.tasks[entry][metric] == pytest.approx(float(np.median(values)))
    # the first fine-tuning is the single-run result: repeat r uses seed + 1000·r
    single = score_glue(encoder, tokenizer, ["stsb", "mrpc"], mirror, **kwargs)
    assert result.repeats["stsb"]["pearson"][0] == single.tasks["stsb"]["pearson"]
    with pytest.raises(InputError, match="repeats must be at least 1"):
        score_glue(encoder, tokenizer, ["stsb"], mirror, repeats=0, **kwargs)
