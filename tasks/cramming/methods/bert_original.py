"""Cramming's BERT baseline: `arch=bert-original` with `train=bert-original` (BERT as published,
Devlin et al. 2019, as cramming runs it), the same model at every budget.

12 post-norm layers of width 768 (12 heads), FFN 3072, GELU, biases, learned positions, LayerNorm
eps 1e-12, the head transform, dense prediction, dropout 0.1 (see tasks/cramming/recipes.py).
Adam with L2 weight decay 0.01 except biases and norms (lr 1e-4, betas 0.9/0.999, eps 1e-8), no
clipping, batch 512, BERT's step schedule: linear warm-up over 10,000 steps (1 % of it), linear
decay to 0 at 1,000,000 steps, so within a day's budget it has barely begun to decay; 15 %
masking; bf16 autocast and torch.compile on a GPU.
"""

from tasks.base import MethodRun
from tasks.cramming import recipes

HYPERPARAMETERS = {
    "hidden_size": 768,
    "num_layers": 12,
    "num_heads": 12,
    "intermediate_size": 3072,
    "lr": 1e-4,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.01,
    "grad_clip": None,
    "warmup_steps": 10_000,
    "total_steps": 1_000_000,
    "batch_size": 512,
    "mask_rate": 0.15,
    "precision": "auto",
    "compile": True,
}


def model_config(vocab_size, max_seq_len, budget_s, run: MethodRun):
    return recipes.bert_original_encoder(vocab_size, max_seq_len, run.hyperparameters)


def configure_optimizer(model, run: MethodRun):
    return recipes.classic_adam(model, run.hyperparameters)


def learning_rate(progress, step, run: MethodRun):
    hp = run.hyperparameters
    return recipes.warmup_linear_decay(step, hp["warmup_steps"], hp["total_steps"])


def batch_size(progress, run: MethodRun):
    return run.hyperparameters["batch_size"]
