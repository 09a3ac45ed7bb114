"""Stage 3: sharded training."""
