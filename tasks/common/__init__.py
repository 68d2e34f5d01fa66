"""What several tasks share, so that no task imports another: the masked-LM kit that cramming,
large-batch and quant train and evaluate with (`model`, `masking`, `tokenization`, `corpus` with
its mirror check, `precision`, `heldout`, `pretraining_data`), the measuring helpers (`measure`:
seconds per call, peak resident memory) and the plot style every figure is drawn in (`plots`,
which the site reaches through `tasks.base`). A task imports only `tasks.base` and this package;
modules here import no task, and only `plots` and `corpus` stay free of torch at import time.
"""
