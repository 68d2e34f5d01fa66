"""Task `cramming`: the reference recipes against cramming's configuration, exact-count masking,
static-shape sparse prediction and encoder checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import InputError
from tasks.base import MethodRun
from tasks.common.masking import IGNORE, mask_exact, masked_per_sequence
from tasks.common.model import EncoderConfig, MaskedLanguageModel, non_embedding_parameters
from tasks.common.model import training_flops_per_token as flops_per_token
from tasks.cramming import recipes, training
from tasks.cramming.checkpoints import load_checkpoint, save_checkpoint
from tasks.cramming.methods import bert_original, crammed_bert, crammed_bert_tiny

VOCAB, SEQ = 32768, 128  # pile-readymade's WordPiece and cramming's sequence length


def run_of(method) -> MethodRun:
    """The `run` the harness passes a method's functions, with its declared hyperparameters."""
    return MethodRun(method.HYPERPARAMETERS, seed=0, device="cpu")


def full_size(method) -> MaskedLanguageModel:
    with torch.device("meta"):  # shapes only: no memory, no time
        return MaskedLanguageModel(method.model_config(VOCAB, SEQ, 86400.0, run_of(method)))


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_crammed_bert_has_the_parameters_and_flops_of_crammings_config():
    # cramming/config/arch/crammed-bert.yaml: 16 layers, hidden 768, intermed 3072 with GELUglu
    # (dense_in 768->3072, the GLU halves it, dense_out 1536->768), qkv_bias and use_bias False,
    # LayerNorm (weight and bias), final_norm, skip_head_transform, tied decoder without bias.
    layer = (
        768 * 3 * 768  # query_key_value
        + 768 * 768  # attention output
        + 768 * 3072  # dense_in
        + 1536 * 768  # dense_out
        + 2 * 2 * 768  # norm1, norm2
    )
    assert layer == 5_901_312
    blocks = 16 * layer  # 94,420,992: the "94.4 M"
    embeddings = VOCAB * 768 + 1 + 2 * 768  # word embedding, sinusoid scale, embedding norm
    final_norm = 2 * 768
    model = full_size(crammed_bert)
    assert count(model) == blocks + embeddings + final_norm == 119_589_889
    assert count(model.encoder.blocks) == blocks == 94_420_992
    n = blocks + 2 * 768 + final_norm  # non-embedding: everything but word and position embedding
    assert non_embedding_parameters(model) == n == 94_424_064
    # 6N + 12·L·H·S (see training_flops_per_token)
    assert flops_per_token(model) == 6 * n + 12 * 16 * 768 * SEQ == 585_418_752
    block = model.encoder.blocks[0]
    assert (block.ffn_in.out_features, block.ffn_out.in_features) == (3072, 1536)
    assert block.attention_norm.eps == 1e-12 and isinstance(model.transform, torch.nn.Identity)
    assert model.decoder.weight is model.encoder.tokens.weight and model.decoder.bias is None


def test_bert_original_has_bert_bases_parameter_count():
    # cramming/config/arch/v1/bert-original.yaml: BERT-base with biases, post-norm, learned
    # positions (128 here, cramming instantiates 512), head transform, decoder bias.
    layer = 768 * 2304 + 2304 + 768 * 768 + 768 + 768 * 3072 + 3072 + 3072 * 768 + 768 + 4 * 768
    head = 768 * 768 + 768 + 2 * 768 + VOCAB
    embeddings = VOCAB * 768 + SEQ * 768 + 2 * 768
    model = full_size(bert_original)
    assert count(model) == 12 * layer + head + embeddings == 110_945_024
    assert model.encoder.blocks[0].attention_norm.eps == 1e-12


def test_the_same_model_at_every_budget():
    for method in (crammed_bert, bert_original):
        configs = {
            method.model_config(VOCAB, SEQ, budget, run_of(method))
            for budget in (60.0, 3600.0, 86400.0)
        }
        assert len(configs) == 1


def test_bert_o4_schedules():
    hp = crammed_bert.HYPERPARAMETERS
    # budget-triangle2: 25 % of the peak, the peak at 75 % of the budget, 0 at the end
    assert [
        crammed_bert.learning_rate(p, 0, run_of(crammed_bert))
        for p in (0.0, 0.375, 0.75, 0.875, 1.0)
    ] == (pytest.approx([0.25, 0.625, 1.0, 0.5, 0.0]))
    # the batch reaches 8192 at 60 % of the budget and stays there
    assert (
        crammed_bert.batch_size(0.0, run_of(crammed_bert)) == 1
        and crammed_bert.batch_size(0.3, run_of(crammed_bert)) == 4097
    )
    assert (
        crammed_bert.batch_size(0.6, run_of(crammed_bert))
        == crammed_bert.batch_size(1.0, run_of(crammed_bert))
        == hp["batch_size"]
        == 8192
    )
    # BERT's 1 M-step schedule: 10,000 warm-up steps, then linear decay
    assert bert_original.learning_rate(0.5, 4_999, run_of(bert_original)) == pytest.approx(0.5)
    assert bert_original.learning_rate(0.5, 505_000, run_of(bert_original)) == pytest.approx(0.5)
    assert bert_original.batch_size(0.5, run_of(bert_original)) == 512


def crammings_ramp(elapsed: float, optimizer_steps: int, micro_batch: int) -> int:
    """cramming/backend/torch_default.py (TorchEngine), transcribed for train=bert-o4
    (batch_size 8192, batch_size_ramp 0.6, steps 900,000) with the budget as 1: the engine starts
    at one micro-batch (`current_batch_size = effective_mbs` when the ramp is on); after each
    optimizer step `schedule_batch_size` sets int(fake_step * batch_size_step // mbs + 1) * mbs,
    capped at 8192, from the elapsed fraction of the budget."""
    if optimizer_steps == 0:
        return micro_batch
    steps, target, ramp = 900_000, 8192, 0.6
    fake_step = int(elapsed * steps)
    batch_size_step = target / (steps * ramp)
    return min(int(fake_step * batch_size_step // micro_batch + 1) * micro_batch, target)


def test_the_full_size_first_step_is_one_micro_batch_as_crammings_ramp_gives():
    model = full_size(crammed_bert)
    # The micro-batch is an implementation setting (cramming's impl.microbatch_size): the
    # profile's on a GPU, on a CPU capped at 1.5e11 FLOPs, i.e. 2 sequences of 128 tokens at
    # 585,418,752 FLOPs per token (74.9 GFLOPs a sequence).
    cpu = training.device_micro_batch(16, model, SEQ, torch.device("cpu"))
    gpu = training.device_micro_batch(128, model, SEQ, torch.device("cuda"))
    assert (cpu, gpu) == (2, 128)
    tiny = MaskedLanguageModel(
        crammed_bert_tiny.model_config(4096, SEQ, 60.0, run_of(crammed_bert_tiny))
    )
    assert training.device_micro_batch(16, tiny, SEQ, torch.device("cpu")) == 16
    for micro_batch in (cpu, gpu):
        # The first step, however much of the budget the set-up took: one micro-batch.
        for spent in (0.0, 0.2, 0.9):
            micro_batches, rate = training.step_schedule(
                crammed_bert, run_of(crammed_bert), spent, 0, micro_batch
            )
            assert micro_batches * micro_batch == crammings_ramp(spent, 0, micro_batch)
            assert micro_batches == 1 and rate == 0.25  # budget-triangle2 starts at 25 %
        # Later steps follow the ramp, rounded up to whole micro-batches as cramming rounds.
        for spent in (0.001, 0.1, 0.25, 0.3, 0.59, 0.6, 0.9):
            micro_batches, _ = training.step_schedule(
                crammed_bert, run_of(crammed_bert), spent, 3, micro_batch
            )
            assert micro_batches * micro_batch == crammings_ramp(spent, 3, micro_batch)
    # Why a short CPU budget completes one optimizer step: the second, begun after a quarter of
    # the budget, accumulates 3,414 sequences (8192 x 0.25 / 0.6, rounded up to the micro-batch).
    assert training.step_schedule(crammed_bert, run_of(crammed_bert), 0.25, 1, cpu)[0] * cpu == 3414


def test_optimizers_exempt_biases_and_norms_from_weight_decay():
    model = MaskedLanguageModel(bert_original.model_config(64, 16, 60.0, run_of(bert_original)))
    optimizer = bert_original.configure_optimizer(model, run_of(bert_original))
    assert type(optimizer) is torch.optim.Adam  # cramming's adam_classic: L2, not AdamW
    decayed, exempt = (group["params"] for group in optimizer.param_groups)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert all(any(p is q for q in exempt) for norm in norms for p in norm.parameters())
    assert not any(p is model.decoder.bias for p in decayed)
    assert type(crammed_bert.configure_optimizer(model, run_of(crammed_bert))) is torch.optim.AdamW


def test_exact_masking_corrupts_the_same_count_in_every_row_and_spares_special_tokens():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 128))
    ids[:, 0], ids[:, -1], ids[:, 50] = 2, 3, 3  # [CLS] ... [SEP] ... [SEP]
    corrupted, labels = mask_exact(ids, 0.25, 4, torch.arange(5), 1000, generator)
    chosen = labels != IGNORE
    assert masked_per_sequence(0.25, 128) == 32 and (chosen.sum(dim=1) == 32).all()
    assert not chosen[:, [0, 50, 127]].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert ((corrupted == 4) & chosen).sum(dim=1).eq(round(0.8 * 32)).all()  # 26 [MASK] a row
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def test_static_sparse_prediction_gives_the_dynamic_loss():
    torch.manual_seed(0)
    model = MaskedLanguageModel(EncoderConfig(
        300, 32, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
        sparse_prediction=True, activation="gelu-glu", head_transform=False, dropout=0.0,
    ))  # fmt: skip
    ids = torch.randint(5, 300, (4, 32))
    inputs, labels = mask_exact(ids, 0.25, 4, torch.arange(5), 300, torch.Generator())
    dynamic = model(inputs, labels)
    static = model(inputs, labels, masked_per_sequence(0.25, 32))
    assert static.item() == pytest.approx(dynamic.item(), rel=1e-5)


def test_recipe_helpers_follow_crammings_formulas():
    assert recipes.budget_triangle(0.0, 0.25, 0.25) == 0.25
    assert recipes.ramped_batch(0.0, 8192, 0.6) == 1
    assert recipes.warmup_linear_decay(0, 100, 10_000) == pytest.approx(0.01)
    assert recipes.warmup_linear_decay(10_000, 100, 10_000) == 0.0


def test_a_checkpoint_round_trips_and_a_bad_one_is_an_input_error(tmp_path):
    from tokenizers import Tokenizer, models

    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(40)}, unk_token="t1"))
    model = MaskedLanguageModel(
        EncoderConfig(40, 16, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    )
    path = tmp_path / "encoder.pt"
    save_checkpoint(path, model, tokenizer)
    loaded, loaded_tokenizer = load_checkpoint(path)
    assert loaded.config == model.config and loaded_tokenizer.to_str() == tokenizer.to_str()
    pairs = zip(loaded.state_dict().values(), model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt: unreadable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"other\.pt: not a budgetbench-cramming-encoder/1 file"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(InputError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    assert math.isfinite(
        loaded(torch.randint(5, 40, (2, 16)), torch.randint(5, 40, (2, 16))).item()
    )


def test_the_training_step_traces_as_one_graph_for_torch_compile():
    """Static shapes and the exact label count let dynamo capture the whole forward with no
    graph break, as `torch.compile(fullgraph=True)` requires (traced, not compiled: no GPU)."""
    import torch._dynamo

    config = EncoderConfig(
        300, 32, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
        sparse_prediction=True, activation="gelu-glu", head_transform=False, dropout=0.0,
        norm="pre", bias=False, positions="scaled-sinusoidal",
    )  # fmt: skip
    model = MaskedLanguageModel(config)
    inputs, labels = mask_exact(
        torch.randint(5, 300, (4, 32)), 0.25, 4, torch.arange(5), 300, torch.Generator()
    )
    explanation = torch._dynamo.explain(model)(inputs, labels, masked_per_sequence(0.25, 32))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def _cramming_checkpoint(directory, tokenizer, hidden=16, heads=2, layers=2, inner=32, vocab=40):
    """A small checkpoint in the layout of cramming's hub repository JonasGeiping/crammed-bert:
    config.json with its `arch`, model.safetensors under ScriptableLMForPreTraining's names,
    tokenizer.json."""
    import json

    from safetensors.torch import save_file

    arch = {
        "num_transformer_layers": layers, "hidden_size": hidden, "intermed_size": inner,
        "norm": "LayerNorm", "norm_eps": 1e-12, "norm_scheme": "pre", "nonlin": "GELUglu",
        "use_bias": False, "final_norm": True, "skip_head_transform": True,
        "decoder_bias": False, "tie_weights": True,
        "embedding": {"vocab_size": vocab, "max_seq_length": 16, "normalization": True,
                      "pos_embedding": "scaled-sinusoidal", "embedding_dim": hidden},
        "attention": {"type": "self-attention", "num_attention_heads": heads,
                      "qkv_bias": False, "rotary_embedding": False,
                      "skip_output_projection": False, "sequence_op": "torch-softmax"},
    }  # fmt: skip
    generator = torch.Generator().manual_seed(0)

    def weight(*shape):
        return torch.randn(*shape, generator=generator) * 0.1

    weights = {
        "encoder.embedding.word_embedding.weight": weight(vocab, hidden),
        "encoder.embedding.pos_embedding.scale_factor": torch.tensor([0.25]),
        "encoder.embedding.norm.weight": 1 + weight(hidden),
        "encoder.embedding.norm.bias": weight(hidden),
        "encoder.final_norm.weight": 1 + weight(hidden),
        "encoder.final_norm.bias": weight(hidden),
    }
    for i in range(layers):
        prefix = f"encoder.layers.{i}."
        weights |= {
            prefix + "attn.self_attention.query_key_value.weight": weight(3 * hidden, hidden),
            prefix + "attn.dense.weight": weight(hidden, hidden),
            prefix + "ffn.dense_in.weight": weight(inner, hidden),
            prefix + "ffn.dense_out.weight": weight(hidden, inner // 2),
        }
        for norm in ("norm1", "norm2"):
            weights[f"{prefix}{norm}.weight"] = 1 + weight(hidden)
            weights[f"{prefix}{norm}.bias"] = weight(hidden)
    weights["decoder.weight"] = weights["encoder.embedding.word_embedding.weight"].clone()
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"arch": arch, "model_type": "crammedBERT"}))
    save_file(weights, str(directory / "model.safetensors"))
    tokenizer.save(str(directory / "tokenizer.json"))
    return weights


def test_crammings_published_checkpoint_layout_loads_with_its_attention_heads_intact(tmp_path):
    import json

    from tokenizers import Tokenizer, models

    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(40)}, unk_token="t1"))
    weights = _cramming_checkpoint(tmp_path / "crammed-bert", tokenizer)
    model, loaded_tokenizer = load_checkpoint(tmp_path / "crammed-bert")
    assert model.config.activation == "gelu-glu" and model.config.norm_eps == 1e-12
    assert loaded_tokenizer.get_vocab_size() == 40
    # cramming's attention: the fused projection viewed as (heads, 3·head_dim), split into q, k, v
    x = torch.randn(3, 16)
    fused = x @ weights["encoder.layers.1.attn.self_attention.query_key_value.weight"].T
    theirs = fused.view(3, 2, 24).split(8, dim=-1)  # q, k, v: (tokens, heads, head_dim)
    ours = model.encoder.blocks[1].qkv(x).view(3, 3, 2, 8)  # (tokens, q/k/v, heads, head_dim)
    for index, part in enumerate(theirs):
        assert torch.allclose(ours[:, index], part, atol=1e-6)
    assert model.encoder.positions.scale.item() == 0.25
    assert model.decoder.weight is model.encoder.tokens.weight

    config = json.loads((tmp_path / "crammed-bert" / "config.json").read_text())
    config["arch"]["nonlin"] = "GELU"
    (tmp_path / "crammed-bert" / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InputError, match=r"arch\.nonlin is 'GELU'; this encoder supports 'GELUglu'"
    ):
        load_checkpoint(tmp_path / "crammed-bert")
