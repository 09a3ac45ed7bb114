"""The features of a batch, as seqio's EncDecFeatureConverter names them, defined once:
the packers write them, the model reads its inputs from them, memory plans count them."""

# Per input position.
ENCODER = ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions")
# Per target position; the loss weights go to the loss, not to the model.
DECODER = ("decoder_target_tokens", "decoder_input_tokens", "decoder_segment_ids",
           "decoder_positions", "decoder_loss_weights")
LOSS_ONLY = ("decoder_loss_weights",)
# What T5.__call__ takes.
MODEL_INPUTS = tuple(name for name in ENCODER + DECODER if name not in LOSS_ONLY)
