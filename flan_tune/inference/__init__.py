"""Stage 4 (with training and evaluation): predictions from a checkpoint, `flan-tune
infer` and `flan-tune generate`."""
