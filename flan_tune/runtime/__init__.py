"""Stage 3: what training, evaluation and inference all stand on: the device mesh and
logical-axis rules (`partitioning`) and the model's sharded score and predict functions
(`model`). Training, evaluation and inference depend on this layer, not on each other."""
