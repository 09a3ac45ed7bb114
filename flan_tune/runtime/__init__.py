"""Stage 3: what training, evaluation and inference all stand on: the device mesh and
logical-axis rules (`partitioning`), the model's loss, score and predict (`model`,
`losses`), checkpoints and what a checkpoint path holds (`checkpoints`, `model_setup`),
and the batch's feature names (`features`). Training, evaluation and inference depend on
this layer, not on each other."""
