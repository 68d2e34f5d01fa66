"""`bert-original` scaled down for the smoke profile (a minute on a CPU), at the size of
`crammed-bert-tiny` (2 layers of width 128, 2 heads, FFN 512): batch 16 (BERT's 512 / 256 as
`crammed-bert-tiny` divides cramming's, raised to one micro-batch of the smoke profile) and BERT's
step schedule at 1/1000 of its length (warm-up over 10 steps, linear decay to 0 at 1,000), so a
minute on a CPU (tens of steps) passes the warm-up and barely decays, as a day does at full size.
Not cramming's baseline model; its numbers do not compare with the paper's.
"""

from tasks.base import MethodRun
from tasks.cramming import recipes

HYPERPARAMETERS = {
    "hidden_size": 128,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 512,
    "lr": 1e-4,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.01,
    "grad_clip": None,
    "warmup_steps": 10,
    "total_steps": 1_000,
    "batch_size": 16,
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
