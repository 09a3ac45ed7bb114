"""Stage 4: evaluation results and per-task comparison tables."""
