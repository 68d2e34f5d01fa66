"""Task `quant`: the token-level statistics, second-half scoring, lm-eval offline, and whole runs
on a tiny `save_pretrained` model (a real quantized method, a broken one, an unsupported one)."""

from __future__ import annotations

import html
import math
import sqlite3
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, run_cli
from quant_tiny import (
    LM_EVAL_MIRROR,
    WORDS,
    lm_eval_rows,
    run_quant,
    scalars,
    tiny_model,
    tiny_tokenizer,
    write_lm_eval_mirror,
    write_mirror,
)

from harness.store.records import RunRecord
from tasks.quant.compare import compare_logits, scored_slice, summarize
from tasks.quant.data import choice_items
from tasks.quant.downstream import SYNTHETIC, evaluate, flip_rate, write_tasks


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny Llama causal LM and its tokenizer, saved with save_pretrained."""
    directory = tmp_path_factory.mktemp("tiny-lm")
    tokenizer = tiny_tokenizer()
    tiny_model(len(tokenizer)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_second_half_scoring_uses_the_logits_llama_cpp_scores():
    assert scored_slice(8) == slice(4, 7)  # llama.cpp: logits first=4..6 predict tokens 5..7
    assert scored_slice(512) == slice(256, 511)  # 255 tokens a window at llama.cpp's default
    tokens = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]])
    reference = torch.zeros(1, 8, 4)
    quantized = torch.zeros(1, 8, 4)
    quantized[0, :4] = torch.tensor([100.0, 0, 0, 0])  # first half: ignored however wrong
    stats = compare_logits(reference, quantized, tokens)
    assert stats.kl.numel() == 3 and float(stats.kl.abs().max()) < 1e-12


def test_kl_ppl_and_probability_changes_match_hand_computed_values():
    # Two scored tokens (context 6: logits 3 and 4 predict tokens 4 and 5), vocabulary of 2.
    tokens = torch.tensor([[0, 0, 0, 0, 0, 1]])
    reference = torch.zeros(1, 6, 2)  # p = (0.5, 0.5) everywhere
    quantized = torch.zeros(1, 6, 2)
    quantized[0, 3] = torch.tensor([math.log(3.0), 0.0])  # q = (0.75, 0.25): true token 0
    quantized[0, 4] = torch.tensor([0.0, math.log(3.0)])  # q = (0.25, 0.75): true token 1
    summary = summarize([compare_logits(reference, quantized, tokens)])
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert summary["scored_tokens"] == 2
    assert summary["kl_mean"] == pytest.approx(kl) and summary["kl_max"] == pytest.approx(kl)
    assert summary["kl_mean_se"] == 0.0  # llama.cpp gives no error for 10 tokens or fewer
    assert summary["ppl_reference"] == pytest.approx(2.0)
    assert summary["ppl"] == pytest.approx(1 / 0.75)
    assert summary["ln_ppl_ratio"] == pytest.approx(math.log(0.5 / 0.75))
    assert summary["delta_p_mean"] == pytest.approx(25.0)
    assert summary["delta_p_rms"] == pytest.approx(25.0)
    assert summary["same_top1"] == pytest.approx(50.0)  # the reference's argmax is a tie: 0


def test_non_finite_or_misshapen_logits_are_refused():
    tokens = torch.zeros(1, 8, dtype=torch.long)
    broken = torch.zeros(1, 8, 4)
    broken[0, 5, 0] = float("nan")
    with pytest.raises(FloatingPointError):
        compare_logits(torch.zeros(1, 8, 4), broken, tokens)
    with pytest.raises(ValueError, match="shape"):
        compare_logits(torch.zeros(1, 8, 4), torch.zeros(1, 8, 5), tokens)


def test_lm_eval_scores_choice_items_offline_and_flips_count_changed_answers(tmp_path):
    documents = [" ".join(WORDS[(i * 7 + j) % 60] for j in range(12)) for i in range(10)]
    items = choice_items(documents, 8, 4, 6, 3)
    assert [item.label for item in items[:5]] == [0, 1, 2, 3, 0]
    assert all(item.choices[item.label] == " ".join(d.split()[6:9]) for item, d in
               zip(items, documents, strict=False))  # fmt: skip
    task_dir = write_tasks([SYNTHETIC], items, None, tmp_path)
    tokenizer = tiny_tokenizer()
    (result,) = evaluate(
        tiny_model(len(tokenizer)), tokenizer, task_dir, [SYNTHETIC], 4, 3
    ).values()
    assert len(result.correct) == 8 and len(result.predictions) == 8  # `limit` spares its items
    assert result.accuracy == pytest.approx(100 * sum(result.correct) / 8)
    assert all(c == (p == i.label) for c, p, i in zip(result.correct, result.predictions, items,
                                                       strict=True))  # fmt: skip
    assert flip_rate([True, False, True, True], [True, True, False, True]) == 50.0


def _expected_label(task: str, row: dict) -> int:
    """The true choice of a mirror row, read from the dataset's own schema."""
    if task == "arc_easy":
        return row["choices"]["label"].index(row["answerKey"])
    if task == "winogrande":
        return int(row["answer"]) - 1
    return int(row["label"])


def test_lm_eval_runs_its_own_task_configs_offline_from_a_mirror_in_the_hubs_layout(tmp_path):
    write_lm_eval_mirror(tmp_path / "mirror", documents=6)
    tasks = list(LM_EVAL_MIRROR)
    task_dir = write_tasks(tasks, [], tmp_path / "mirror", tmp_path / "tasks")
    assert (
        str(tmp_path / "mirror" / "Rowan" / "hellaswag")
        in (task_dir / "hellaswag.yaml").read_text()
    )
    tokenizer = tiny_tokenizer()
    results = evaluate(tiny_model(len(tokenizer)), tokenizer, task_dir, tasks, 4, limit=5)
    for task in tasks:
        result = results[task]
        assert len(result.correct) == 5, task  # lm-eval's limit: the first 5 of 6 documents
        assert len(set(result.doc_hashes)) == 5
        assert result.accuracy == pytest.approx(100 * sum(result.correct) / 5)
        assert (result.accuracy_norm is None) == (task == "winogrande")  # acc_norm where defined
        # lm-eval read the labels from the mirror's rows: correct exactly where the argmax is it
        labels = [_expected_label(task, row) for row in lm_eval_rows(task, 5)]
        assert result.correct == [p == label for p, label in zip(result.predictions, labels,
                                                                  strict=True)], task  # fmt: skip


def test_a_downstream_dataset_missing_from_the_mirror_is_a_one_line_error_before_the_run(
    tmp_path,
):
    (tmp_path / "mirror").mkdir()
    result = run_cli("run", "quant", "--method", "fp32", "--set", 'downstream=["piqa"]',
                     "--data-dir", str(tmp_path / "mirror"),
                     "--db", f"sqlite:///{tmp_path / 's.db'}")  # fmt: skip
    assert_one_line_error(result, 2, f"lm-eval task piqa: the data mirror lacks {tmp_path}")
    if (tmp_path / "s.db").exists():
        with sqlite3.connect(tmp_path / "s.db") as connection:
            assert connection.execute("SELECT count(*) FROM runs").fetchone() == (0,)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """WikiText-2 raw and lm-eval's downstream datasets, tiny, in one data mirror."""
    return write_lm_eval_mirror(write_mirror(tmp_path_factory.mktemp("mirror")))


def _run(tiny_dir: Path, mirror: Path, tmp_path: Path, method: str, monkeypatch) -> RunRecord:
    return run_quant(tiny_dir, mirror, tmp_path, method, monkeypatch)


def test_a_saved_model_runs_fp32_and_bnb_nf4_and_stores_all_measurements(
    tiny_dir, mirror, tmp_path, monkeypatch
):
    outcome = _run(tiny_dir, mirror, tmp_path, "fp32", monkeypatch)
    assert outcome.status == "succeeded", outcome.error
    fp32 = scalars(outcome)
    assert fp32["kl_mean"] == pytest.approx(0.0, abs=1e-9) and fp32["same_top1"] == 100.0
    assert fp32["quality_retained"] == pytest.approx(100.0) and fp32["choice_flip_rate"] == 0.0
    assert "layer_kl_max" not in fp32  # nothing to quantize layer by layer
    # Same seeds, same model: no departure; other seeds (the floor): some.
    assert fp32["sampling_departure_max"] == 0.0 and fp32["sampling_floor_max"] > 0
    assert fp32["sampling_beyond_floor"] == pytest.approx(-fp32["sampling_floor_max"])
    assert fp32["sampling_significant_cells"] == 0 and "sampling_band_low" not in fp32

    outcome = _run(tiny_dir, mirror, tmp_path, "bnb-nf4", monkeypatch)
    assert outcome.status == "succeeded", outcome.error
    nf4 = scalars(outcome)
    assert nf4["kl_mean"] > 0 and nf4["kl_max"] >= nf4["kl_p99"] >= nf4["kl_median"] >= 0
    assert nf4["ppl_reference"] == pytest.approx(fp32["ppl_reference"], rel=1e-6)
    assert 4.0 < nf4["measured_bits_per_weight"] < 5.0 and nf4["weight_mib"] < fp32["weight_mib"]
    assert nf4["layers_probed"] == 7 and nf4["layer_kl_max"] > 0
    for name in ("decode_tokens_per_s", "prefill_tokens_per_s", "sampling_departure_max",
                 "choice_accuracy", "ln_ppl_ratio_se", "peak_memory_mib"):  # fmt: skip
        assert name in nf4
    assert nf4["sampling_floor_max"] == pytest.approx(fp32["sampling_floor_max"])  # cached
    assert nf4["sampling_beyond_floor"] == pytest.approx(
        nf4["sampling_departure_max"] - nf4["sampling_floor_max"]
    )
    low, high = nf4["sampling_beyond_floor_low"], nf4["sampling_beyond_floor_high"]
    assert low <= high
    with sqlite3.connect(tmp_path / "s.db") as connection:
        curve = connection.execute(
            "SELECT x FROM curve_points WHERE run_id = ? AND metric = 'sampling_nll' ORDER BY x",
            (outcome.run_id,),
        ).fetchall()
        artifacts = connection.execute(
            "SELECT name FROM artifacts WHERE run_id = ? ORDER BY name", (outcome.run_id,)
        ).fetchall()
    assert [x for (x,) in curve] == [0.0, 0.8]
    assert [name for (name,) in artifacts] == [
        "layer-sensitivity.json",
        "layer-sensitivity.svg",
        "sampling-departure.svg",
        "sampling-grid.json",
        "sampling-sensitivity.svg",
    ]


def _method(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "method.py"
    path.write_text(
        f"BITS_PER_WEIGHT = 4.0\n\n\ndef quantize(model, calibration, modules, run):\n{body}"
    )
    return path


def test_a_method_that_makes_nan_logits_fails_its_run_with_a_one_line_reason(
    tiny_dir, mirror, tmp_path, monkeypatch
):
    body = "    import torch\n    model.lm_head.weight.data.fill_(float('nan'))\n    return model\n"
    outcome = _run(tiny_dir, mirror, tmp_path, str(_method(tmp_path, body)), monkeypatch)
    assert outcome.status == "failed"
    assert outcome.error.splitlines()[0] == (
        "BrokenModel: the quantized model returned non-finite logits (NaN or inf)"
    )


def test_a_format_the_device_does_not_support_fails_its_run(
    tiny_dir, mirror, tmp_path, monkeypatch
):
    # torchao's tinygemm int4 layout has no CPU kernel: torchao 0.18 asks for its optional mslk
    # kernels, or (on other layers) skips the module, which the task's format helper reports.
    body = ("    from torchao.quantization import Int4WeightOnlyConfig\n"
            "    from tasks.quant.formats import torchao\n"
            "    return torchao(model, modules, Int4WeightOnlyConfig())\n")  # fmt: skip
    outcome = _run(tiny_dir, mirror, tmp_path, str(_method(tmp_path, body)), monkeypatch)
    assert outcome.status == "failed"
    reason = outcome.error.splitlines()[0]
    assert reason.startswith(("ImportError: Requires mslk", "Unsupported: torchao Int4")), reason


def test_a_model_that_is_nowhere_local_is_a_one_line_input_error(tmp_path):
    result = run_cli("run", "quant", "--method", "fp32", "--set", "model=nobody/no-such-model",
                     "--db", f"sqlite:///{tmp_path / 's.db'}")  # fmt: skip
    assert_one_line_error(result, 2, "not in the Hugging Face cache")


def test_speed_times_each_decode_step_and_counts_tied_weights_once():
    from tasks.quant.speed import measure_speed, state_bytes

    model = tiny_model(63)
    model.lm_head.weight = model.model.embed_tokens.weight  # tie them
    parameters = sum(p.numel() for p in model.parameters())  # counts the shared tensor once
    assert state_bytes(model) == 4 * parameters
    result = measure_speed(model, torch.randint(3, 63, (1, 8)), decode_tokens=4, repeats=2)
    assert 0 < result.decode_tokens_per_s < 1e6 and 0 < result.prefill_tokens_per_s < 1e7
    assert len(result.ttft_samples) == 2 and result.time_to_first_token_s > 0


def test_the_reference_is_fp32_and_named_so_bf16_is_measured_not_zero(
    tiny_dir, mirror, tmp_path, monkeypatch
):
    outcome = _run(tiny_dir, mirror, tmp_path, "bf16", monkeypatch)
    assert outcome.status == "succeeded", outcome.error
    bf16 = scalars(outcome)
    assert bf16["kl_mean"] > 0 and bf16["measured_bits_per_weight"] == 16.0
    shown = run_cli("show", outcome.run_id, "--json", "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert '"reference": "fp32: the same model in torch.float32"' in shown.stdout


def test_real_lm_eval_tasks_give_accuracy_and_flips_against_the_reference_per_task(
    tiny_dir, mirror, tmp_path, monkeypatch
):
    tasks = 'downstream=["hellaswag", "winogrande"]'
    outcome = run_quant(tiny_dir, mirror, tmp_path, "fp32", monkeypatch, [tasks, "choice_items=5"])
    assert outcome.status == "succeeded", outcome.error
    fp32 = scalars(outcome)
    for task in ("hellaswag", "winogrande"):
        assert fp32[f"downstream_{task}_flip_rate"] == 0.0
        assert fp32[f"downstream_{task}_accuracy"] == fp32[f"downstream_{task}_accuracy_reference"]
    assert "downstream_synthetic_choice_accuracy" not in fp32

    outcome = run_quant(
        tiny_dir, mirror, tmp_path, "bnb-fp4", monkeypatch, [tasks, "choice_items=5"]
    )
    assert outcome.status == "succeeded", outcome.error
    fp4 = scalars(outcome)
    pooled = []
    for task in ("hellaswag", "winogrande"):
        mine, theirs = (
            fp4[f"downstream_{task}_accuracy"],
            fp4[f"downstream_{task}_accuracy_reference"],
        )
        assert theirs == fp32[f"downstream_{task}_accuracy"]  # the same reference answers
        assert abs(mine - theirs) <= fp4[f"downstream_{task}_flip_rate"] + 1e-9
        pooled.append(mine)
    assert fp4["choice_accuracy"] == pytest.approx(sum(pooled) / 2)  # 5 documents each
    assert (
        "downstream_hellaswag_accuracy_norm" in fp4
        and "downstream_winogrande_accuracy_norm" not in fp4
    )
    shown = run_cli("show", outcome.run_id, "--db", f"sqlite:///{tmp_path / 's.db'}").stdout
    assert "====== Downstream (lm-eval, zero-shot; flips against the reference) ======" in shown
    row = next(line for line in shown.splitlines() if line.startswith("hellaswag "))
    assert f"flips {fp4['downstream_hellaswag_flip_rate']:7.3f}%" in row and "acc_norm" in row

    # The site's run page prints the same llama.cpp-style table and downstream rows.
    from harness.publish.links import run_path
    from harness.publish.site import build_site
    from harness.store import open_store

    build_site(open_store(f"sqlite:///{tmp_path / 's.db'}"), tmp_path / "site")
    page = (tmp_path / "site" / run_path(outcome.run_id)).read_text()
    table = page.split('<pre class="task-report">', 1)[1].split("</pre>", 1)[0]
    assert "====== KL divergence statistics ======" in table
    assert f"Mean    KLD: {fp4['kl_mean']:10.6f} ± {fp4['kl_mean_se']:10.6f}" in table
    assert f"Same top p: {fp4['same_top1']:6.3f}%" in table
    assert row in html.unescape(table)
