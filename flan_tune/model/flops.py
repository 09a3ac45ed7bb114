"""Model FLOPs of T5, the numerator of MFU (model FLOPs utilization).

MFU = model FLOPs per step / step time / peak FLOP/s, as MaxText and the PaLM paper count
it: the matmuls the architecture needs (projections, attention scores and values, MLP,
output layer), 2 FLOPs per multiply-add, training = 3x the forward pass (the backward
pass does two matmuls per forward one). Rematerialization is not counted (it is work
the hardware does, not work the model needs), nor are embedding lookups, norms and
softmaxes. Attention counts the full length x length product, masked or not.
"""

from flan_tune.model.config import T5Config


def forward_flops(config: T5Config, batch: int, inputs_length: int, targets_length: int) -> int:
  """Matmul FLOPs of one forward pass over `batch` rows of the given lengths."""
  c = config
  inner = c.num_heads * c.d_kv
  enc_tokens, dec_tokens = batch * inputs_length, batch * targets_length
  mlp = 2 * c.d_model * c.d_ff * (len(c.mlp_activations) + 1)  # per token: wi_*, wo

  def attention(queries: int, keys: int) -> int:  # per row: scores and weighted values
    return 2 * 2 * c.num_heads * queries * keys * c.d_kv

  encoder_layer = (enc_tokens * (4 * 2 * c.d_model * inner + mlp)
                   + batch * attention(inputs_length, inputs_length))
  decoder_layer = (dec_tokens * (4 * 2 * c.d_model * inner + 2 * 2 * c.d_model * inner + mlp)
                   + enc_tokens * 2 * 2 * c.d_model * inner  # cross-attention keys, values
                   + batch * (attention(targets_length, targets_length)
                              + attention(targets_length, inputs_length)))
  logits = dec_tokens * 2 * c.d_model * c.vocab_size
  return (c.num_encoder_layers * encoder_layer + c.num_decoder_layers * decoder_layer
          + logits)


def train_flops(config: T5Config, batch: int, inputs_length: int, targets_length: int) -> int:
  """Matmul FLOPs of one training step (forward + backward)."""
  return 3 * forward_flops(config, batch, inputs_length, targets_length)


# Dense bfloat16 peak FLOP/s per device (vendor figures, no sparsity), the MFU denominator
# MaxText and the PaLM paper use whatever the training dtype. Matched against
# jax.Device.device_kind; first match wins, so the longer names come first.
PEAK_BF16_FLOPS = (
    ("TPU v6 lite", 918e12), ("TPU v5 lite", 197e12), ("TPU v5p", 459e12),
    ("TPU v5", 459e12), ("TPU v4", 275e12), ("TPU v3", 123e12),
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12),
)


def peak_flops_per_device(device_kind: str) -> float | None:
  """The bfloat16 peak of a known accelerator; None (e.g. for CPUs) when unknown."""
  for name, peak in PEAK_BF16_FLOPS:
    if name.lower() in device_kind.lower():
      return peak
  return None
