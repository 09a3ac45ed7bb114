"""Tiny random Hugging Face T5 models for the parity tests (PyTorch, test extra only)."""

import torch
import transformers

# d_kv * num_heads != d_model, an odd number of heads, more decoder than encoder layers,
# and few buckets so short test sequences reach the logarithmic ones.
HF_SHAPE = dict(vocab_size=96, d_model=32, d_kv=10, num_heads=3, d_ff=48, num_layers=2,
                num_decoder_layers=3, relative_attention_num_buckets=16,
                relative_attention_max_distance=24)
VERSIONS = {
    "v1.0": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "v1.1": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    # transformers 5 saves a fresh v1.1 model with lm_head tied to the embedding, unscaled.
    "v1.1-head-shared": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def save_hf_model(version, directory, dropout_rate=0.1, **save_kwargs):
  """A seeded random model saved as safetensors; v1.1 gets its own, larger head."""
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(
      transformers.T5Config(**HF_SHAPE, **VERSIONS[version], dropout_rate=dropout_rate))
  if version == "v1.1":
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.3)
    model.config.tie_word_embeddings = False
  model.save_pretrained(directory, safe_serialization=True, **save_kwargs)
  return model.eval()
