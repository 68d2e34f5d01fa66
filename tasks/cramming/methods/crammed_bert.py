"""Cramming's final recipe, exactly: `arch=crammed-bert` with `train=bert-o4` (Geiping & Goldstein
2023; github.com/JonasGeiping/cramming), the same model at every budget.

16 pre-norm layers of width 768 (12 heads), FFN 768 -> 3072, GELU-GLU halving to 1536, -> 768; no
linear biases, LayerNorm eps 1e-12, scaled sinusoidal positions, tied embeddings, no head
transform, sparse prediction (see tasks/cramming/recipes.py). AdamW (lr 1e-3, betas 0.9/0.98,
eps 1e-12, weight decay 0.01 except biases and norms), gradient clipping 0.5, `budget-triangle2`
(25 % of the peak rising to the peak at 75 % of the budget, then to 0), the batch ramping to 8192
sequences by 60 % of the budget, exactly 25 % of each sequence masked, bf16 autocast and
torch.compile on a GPU.
"""

from tasks.base import MethodRun
from tasks.cramming import recipes

HYPERPARAMETERS = {
    "hidden_size": 768,
    "num_layers": 16,
    "num_heads": 12,
    "intermediate_size": 3072,
    "lr": 1e-3,
    "betas": [0.9, 0.98],
    "eps": 1e-12,
    "weight_decay": 0.01,
    "grad_clip": 0.5,
    "lr_base": 0.25,
    "lr_falloff": 0.25,
    "batch_size": 8192,
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
