"""`crammed-bert` scaled down for the smoke profile (a minute on a CPU): the same recipe in every
respect but its sizes, 2 layers of width 128 (2 heads, FFN 512 halved to 256 by the GLU), and its
batch, ramping to 32 sequences (cramming's 8192 / 256, as `bert-original-tiny` divides BERT's).
Not cramming's model; its numbers do not compare with the paper's.
"""

from tasks.base import MethodRun
from tasks.cramming import recipes

HYPERPARAMETERS = {
    "hidden_size": 128,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 512,
    "lr": 1e-3,
    "betas": [0.9, 0.98],
    "eps": 1e-12,
    "weight_decay": 0.01,
    "grad_clip": 0.5,
    "lr_base": 0.25,
    "lr_falloff": 0.25,
    "batch_size": 32,
    "batch_ramp_until": 0.6,
    "mask_rate": 0.25,
    "precision": "auto",
    "compile": True,
}


def model_config(vocab_size, max_seq_len, budget_s, run: MethodRun):
    return recipes.crammed_bert_encoder(vocab_size, max_seq_len, run.hyperparameters)


def configure_optimizer(model, run: MethodRun):
    return recipes.decoupled_adam(model, run.hyperparameters)


def learning_rate(progress, step, run: MethodRun):
    hp = run.hyperparameters
    return recipes.budget_triangle(progress, hp["lr_base"], hp["lr_falloff"])


def batch_size(progress, run: MethodRun):
    hp = run.hyperparameters
    return recipes.ramped_batch(progress, hp["batch_size"], hp["batch_ramp_until"])
