"""Task `quant` on every common causal-LM architecture: a tiny model of each family, made with
`save_pretrained`, runs end to end with a 4-bit format; a model with nothing to quantize is refused
before anything runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from quant_tiny import qwen_tokenizer, run_quant, scalars, tiny_tokenizer, write_mirror

from harness.errors import InputError
from harness.run.runner import prepare


def _config(family: str, vocab: int):
    import transformers as t

    common = {"vocab_size": vocab, "pad_token_id": 1, "eos_token_id": 2, "bos_token_id": 3}
    if family == "gpt2":  # Conv1D projections, fused c_attn
        return t.GPT2Config(n_embd=64, n_layer=2, n_head=2, n_positions=64, **common)
    if family == "gpt-neox":  # Pythia: fused query_key_value
        return t.GPTNeoXConfig(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=64,
            **common,
        )
    if family == "opt":
        return t.OPTConfig(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            ffn_dim=128,
            word_embed_proj_dim=64,
            max_position_embeddings=64,
            **common,
        )
    if family == "falcon":  # FalconLinear, fused query_key_value
        return t.FalconConfig(
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            new_decoder_architecture=False,
            **common,
        )
    if family == "qwen2":  # biased q/k/v projections, grouped-query attention, no BOS
        no_bos = {**common, "pad_token_id": 0, "eos_token_id": 0, "bos_token_id": None}
        return t.Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                             num_attention_heads=4, num_key_value_heads=2, **no_bos)  # fmt: skip
    raise ValueError(family)


# Llama is tests/test_quant.py's model.
FAMILIES = ("gpt2", "gpt-neox", "opt", "falcon", "qwen2")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return write_mirror(tmp_path_factory.mktemp("mirror"))


@pytest.mark.parametrize(
    ("family", "method"), [*((family, "bnb-nf4") for family in FAMILIES), ("gpt-neox", "hqq-4bit")]
)
def test_a_tiny_model_of_each_family_runs_a_4bit_format_end_to_end(
    family, method, mirror, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = qwen_tokenizer() if family == "qwen2" else tiny_tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(family, len(tokenizer)))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "model")  # as the task loads it
    text = (mirror / "wikitext-2-raw" / "valid.txt").read_text()[:500]
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"] != []
    outcome = run_quant(tmp_path / "model", mirror, tmp_path, method, monkeypatch,
                        ["sensitivity_max_layers=2"])  # fmt: skip
    assert outcome.status == "succeeded", outcome.error
    measured = scalars(outcome)
    assert 4.0 < measured["measured_bits_per_weight"] < 5.1  # HQQ's float32 scales: 5.0x
    assert measured["kl_mean"] > 0 and measured["layers_probed"] == 2


def test_gpt2_conv1d_projections_become_equivalent_linears():
    from transformers import GPT2LMHeadModel

    from tasks.quant.formats import linear_projections, quantizable_linears

    torch.manual_seed(0)
    model = GPT2LMHeadModel(_config("gpt2", 70)).eval()
    tokens = torch.randint(0, 70, (2, 12))
    with torch.no_grad():
        before = model(input_ids=tokens).logits
        after = linear_projections(model)(input_ids=tokens).logits
    assert torch.allclose(before, after, atol=1e-5)
    assert len(quantizable_linears(model)) == 8  # c_attn, c_proj, c_fc, mlp.c_proj per block


def test_a_model_with_nothing_to_quantize_is_an_input_error_before_the_run(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

    class EmbeddingOnlyConfig(PretrainedConfig):
        model_type = "budgetbench-embedding-only"

    class EmbeddingOnlyLM(PreTrainedModel):
        config_class = EmbeddingOnlyConfig

        def __init__(self, config):
            super().__init__(config)
            self.embed = torch.nn.Embedding(70, 70)

    AutoConfig.register("budgetbench-embedding-only", EmbeddingOnlyConfig)
    AutoModelForCausalLM.register(EmbeddingOnlyConfig, EmbeddingOnlyLM)
    EmbeddingOnlyLM(EmbeddingOnlyConfig()).save_pretrained(tmp_path / "model")
    with pytest.raises(InputError) as raised:
        prepare("quant", "bnb-nf4", "smoke", "cpu", [f"model={tmp_path / 'model'}"])
    message = str(raised.value)
    assert "has no linear layer to quantize" in message and "\n" not in message


def test_bits_per_weight_count_packed_codes_scales_and_only_real_zero_points():
    from tasks.quant.formats import torchao
    from tasks.quant.speed import bits_per_weight

    def measured(config) -> float:
        base = torch.nn.Sequential(torch.nn.Linear(64, 128))
        quantized = torchao(copy.deepcopy(base), ["0"], config)
        return bits_per_weight(base, quantized, ["0"])

    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, PerGroup
    from torchao.quantization.quant_primitives import MappingType

    # int4 codes kept one per int8 count 4 bits; a float32 scale per 32 weights adds 1.
    int4 = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))
    assert measured(int4) == pytest.approx(4 + 32 / 32)
    assert measured(Int8WeightOnlyConfig()) == pytest.approx(8 + 32 / 64)  # per-row scale
    asymmetric = IntxWeightOnlyConfig(
        weight_dtype=torch.int4, granularity=PerGroup(32), mapping_type=MappingType.ASYMMETRIC
    )
    assert measured(asymmetric) == pytest.approx(4 + 32 / 32 + 4 / 32)  # a 4-bit zero point


def test_hqq_4bit_quantizes_on_a_cpu_with_its_packed_bits_counted():
    from tasks.quant.formats import hqq
    from tasks.quant.speed import bits_per_weight

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(256, 512))
    quantized = hqq(copy.deepcopy(base), ["0"], nbits=4, group_size=64)
    assert type(quantized[0]).__name__ == "HQQLinear"
    x = torch.randn(4, 256)
    with torch.no_grad():
        error = (quantized(x) - base(x)).abs().mean() / base(x).abs().mean()
    assert 0 < error < 0.2  # a 4-bit approximation, not a copy and not noise
    # packed 4-bit codes + float32 scale and zero per 64 weights = 5.0, plus HQQ's few bytes of
    # per-layer metadata (shape, packing names)
    assert 5.0 <= bits_per_weight(base, quantized, ["0"]) < 5.01


def test_gptq_4bit_runs_end_to_end_with_its_packed_bits_counted(mirror, tmp_path, monkeypatch):
    pytest.importorskip("gptqmodel", reason="the gptq extra (GPTQModel) is not installed")
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         pad_token_id=1, eos_token_id=2, bos_token_id=3)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    outcome = run_quant(tmp_path / "model", mirror, tmp_path, "gptq-4bit", monkeypatch,
                        ["calibration_windows=4"])  # fmt: skip
    assert outcome.status == "succeeded", outcome.error
    assert list((tmp_path / "cwd").iterdir()) == []  # GPTQModel's log files stay in its scratch
    measured = scalars(outcome)
    # Packed 4-bit codes, a bfloat16 scale and a 4-bit zero point per 128 weights, and a
    # 32-bit group index per input column: q, k, v, o (128 -> 128), gate, up (128 -> 256) and
    # down (256 -> 128).
    shapes = [(128, 128)] * 4 + [(128, 256)] * 2 + [(256, 128)]
    weights = sum(i * o for i, o in shapes)
    stored = sum(i * o * (4 + (16 + 4) / 128) + 32 * i for i, o in shapes)
    assert measured["measured_bits_per_weight"] == pytest.approx(stored / weights)
    assert measured["kl_mean"] > 0 and measured["quality_retained"] > 50
    assert "layer_kl_max" not in measured  # no per-layer sweep for GPTQ


def test_gptq_refuses_a_conv1d_model_it_would_reload_transposed():
    pytest.importorskip("gptqmodel", reason="the gptq extra (GPTQModel) is not installed")
    from transformers import GPT2LMHeadModel

    from tasks.quant.formats import Unsupported, gptq, linear_projections, quantizable_linears

    model = linear_projections(GPT2LMHeadModel(_config("gpt2", 70)).eval())
    with pytest.raises(Unsupported, match=r"reload transformer\.h\.0\.attn\.c_attn as a Conv1D"):
        gptq(model, torch.zeros(1, 8, dtype=torch.long), quantizable_linears(model), 4, 32)
