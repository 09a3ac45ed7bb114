"""The T5 architecture as one frozen, gin-configurable record.

One record describes both T5 v1.0 (ReLU MLP, tied embedding, logits scaled by
d_model**-0.5) and v1.1 / Flan-T5 (gated-GELU MLP, separate output layer), plus the
execution knobs that do not change the numerics (activation dtype, remat, scanned layers).
Parameters are always float32; `dtype` is the activation dtype only.

`from_hf_config` / `to_hf_config` translate to and from a Hugging Face `config.json`.
"""

import dataclasses
from typing import Any

import gin
import jax.numpy as jnp

from flan_tune.errors import ModelConfigError

# Names T5X uses; "gelu" is the tanh approximation, as in T5X and HF's "gelu_new".
ACTIVATIONS = ("relu", "gelu", "gelu_exact", "silu", "linear")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
REMAT_POLICIES = ("none", "full", "dots", "dots_with_no_batch_dims")
# Fields that change how a model runs or trains, not which function it computes: a
# checkpoint can be loaded under any values of these.
EXECUTION_FIELDS = ("dropout_rate", "dtype", "remat_policy", "scan_layers")

# HF `dense_act_fn` names <-> ours (HF's "gelu" is exact erf; "gelu_new" is tanh).
_FROM_HF_ACTIVATION = {
    "relu": "relu", "gelu": "gelu_exact", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu",
    "silu": "silu", "swish": "silu",
}
_TO_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu_new", "gelu_exact": "gelu", "silu": "silu"}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class T5Config:
  """T5 hyperparameters; defaults are T5 v1.1 small (see gin/models/ for the others)."""

  vocab_size: int = 32128
  d_model: int = 512
  num_heads: int = 6
  d_kv: int = 64
  d_ff: int = 1024
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  # One entry: plain MLP act(x W_i). Several: gated, the elementwise product of
  # act_k(x W_i_k), e.g. ("gelu", "linear") for v1.1's gated GELU.
  mlp_activations: tuple[str, ...] = ("gelu", "linear")
  # True: logits = (y * d_model**-0.5) @ embedding.T (v1.0). False: a separate
  # unscaled output layer (v1.1, Flan-T5).
  tie_word_embeddings: bool = False
  dropout_rate: float = 0.0
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  dtype: str = "float32"
  remat_policy: str = "none"
  scan_layers: bool = False

  def __post_init__(self):
    if isinstance(self.mlp_activations, (list, str)):
      # gin writes lists; a bare string is one activation.
      value = (self.mlp_activations,) if isinstance(self.mlp_activations, str) else tuple(
          self.mlp_activations)
      object.__setattr__(self, "mlp_activations", value)
    _validate(self)

  @property
  def activation_dtype(self) -> jnp.dtype:
    return DTYPES[self.dtype]

  @property
  def is_gated(self) -> bool:
    return len(self.mlp_activations) > 1

  def replace(self, **changes) -> "T5Config":
    return dataclasses.replace(self, **changes)

  def architecture(self) -> dict[str, Any]:
    """The fields a checkpoint's parameters depend on (all but EXECUTION_FIELDS)."""
    return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
            if field.name not in EXECUTION_FIELDS}

  def with_execution_of(self, other: "T5Config") -> "T5Config":
    """This architecture, run and trained as `other` says (its EXECUTION_FIELDS)."""
    return self.replace(**{name: getattr(other, name) for name in EXECUTION_FIELDS})

  def architecture_differences(self, other: "T5Config") -> dict[str, tuple[Any, Any]]:
    """{field: (self's value, other's value)} for the architecture fields that differ."""
    mine, theirs = self.architecture(), other.architecture()
    return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}

  @classmethod
  def from_hf_config(cls, hf_config: dict[str, Any], **overrides) -> "T5Config":
    """A Hugging Face T5 `config.json` dict as a T5Config (execution knobs from overrides).

    `tie_word_embeddings` here follows HF's logit scaling: transformers scales the
    decoder output by d_model**-0.5 unless the config says `tie_word_embeddings: false`
    (newer versions also record `scale_decoder_outputs`)."""
    model_type = hf_config.get("model_type", "t5")
    if model_type != "t5":
      raise ModelConfigError(f"config.json: model_type is {model_type!r}, expected 't5'")
    try:
      num_layers = hf_config["num_layers"]
      fields = dict(
          vocab_size=hf_config["vocab_size"],
          d_model=hf_config["d_model"],
          num_heads=hf_config["num_heads"],
          d_kv=hf_config["d_kv"],
          d_ff=hf_config["d_ff"],
          num_encoder_layers=num_layers,
      )
    except KeyError as missing:
      raise ModelConfigError(f"config.json: missing field {missing.args[0]!r}") from None
    decoder_layers = hf_config.get("num_decoder_layers")
    scale = hf_config.get("scale_decoder_outputs",
                          hf_config.get("tie_word_embeddings", True) is not False)
    fields.update(
        num_decoder_layers=num_layers if decoder_layers is None else decoder_layers,
        mlp_activations=_activations_from_hf(hf_config),
        tie_word_embeddings=bool(scale),
        dropout_rate=float(hf_config.get("dropout_rate", 0.1)),
        relative_attention_num_buckets=hf_config.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf_config.get("relative_attention_max_distance", 128),
        layer_norm_epsilon=float(hf_config.get("layer_norm_epsilon", 1e-6)),
    )
    fields.update(overrides)
    return cls(**fields)

  def to_hf_config(self) -> dict[str, Any]:
    """The `config.json` dict `transformers.T5ForConditionalGeneration` loads."""
    feed_forward_proj = _activations_to_hf(self.mlp_activations)
    dense_act_fn = feed_forward_proj.split("-")[-1]
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": self.vocab_size,
        "d_model": self.d_model,
        "d_kv": self.d_kv,
        "d_ff": self.d_ff,
        "num_layers": self.num_encoder_layers,
        "num_decoder_layers": self.num_decoder_layers,
        "num_heads": self.num_heads,
        "relative_attention_num_buckets": self.relative_attention_num_buckets,
        "relative_attention_max_distance": self.relative_attention_max_distance,
        "dropout_rate": self.dropout_rate,
        "layer_norm_epsilon": self.layer_norm_epsilon,
        "initializer_factor": 1.0,
        "feed_forward_proj": feed_forward_proj,
        "dense_act_fn": "gelu_new" if feed_forward_proj == "gated-gelu" else dense_act_fn,
        "is_gated_act": self.is_gated,
        "tie_word_embeddings": self.tie_word_embeddings,
        "is_encoder_decoder": True,
        "use_cache": True,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "torch_dtype": "float32",
    }


def _activations_from_hf(hf_config: dict[str, Any]) -> tuple[str, ...]:
  proj = hf_config.get("feed_forward_proj", "relu")
  parts = proj.split("-")
  gated = parts[0] == "gated"
  if len(parts) > 2 or (len(parts) == 2 and not gated):
    raise ModelConfigError(f"config.json: feed_forward_proj {proj!r} is not 'ACT' or 'gated-ACT'")
  hf_name = "gelu_new" if proj == "gated-gelu" else parts[-1]
  if hf_name not in _FROM_HF_ACTIVATION:
    raise ModelConfigError(f"config.json: feed_forward_proj {proj!r}: activation {hf_name!r} is "
                           f"not supported (supported: {sorted(_FROM_HF_ACTIVATION)})")
  activation = _FROM_HF_ACTIVATION[hf_name]
  return (activation, "linear") if gated else (activation,)


def _activations_to_hf(activations: tuple[str, ...]) -> str:
  if len(activations) == 1 and activations[0] in _TO_HF_ACTIVATION:
    return _TO_HF_ACTIVATION[activations[0]]
  if (len(activations) == 2 and activations[1] == "linear"
      and activations[0] in ("relu", "gelu", "silu")):
    return f"gated-{activations[0]}"  # HF's gated-gelu is the tanh approximation
  raise ModelConfigError(
      f"T5Config.mlp_activations={activations!r} has no transformers equivalent "
      "(supported: one activation, or (ACT, 'linear') with ACT relu, gelu or silu)")


def _validate(config: T5Config) -> None:
  def fail(field: str, expected: str):
    raise ModelConfigError(
        f"T5Config.{field} must be {expected}, got {getattr(config, field)!r}")

  for field in ("vocab_size", "d_model", "num_heads", "d_kv", "d_ff", "num_encoder_layers",
                "num_decoder_layers", "relative_attention_num_buckets",
                "relative_attention_max_distance"):
    value = getattr(config, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      fail(field, "a positive int")
  if config.relative_attention_num_buckets < 4:
    fail("relative_attention_num_buckets", ">= 4 (half exact, half logarithmic buckets)")
  if config.relative_attention_max_distance <= config.relative_attention_num_buckets // 2:
    fail("relative_attention_max_distance",
         f"> relative_attention_num_buckets // 2 = {config.relative_attention_num_buckets // 2}")
  activations = config.mlp_activations
  if (not isinstance(activations, tuple) or not activations
      or any(a not in ACTIVATIONS for a in activations)):
    fail("mlp_activations", f"a non-empty tuple of names from {ACTIVATIONS}")
  for field in ("tie_word_embeddings", "scan_layers"):
    if not isinstance(getattr(config, field), bool):
      fail(field, "a bool")
  rate = config.dropout_rate
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
    fail("dropout_rate", "a number in [0, 1)")
  epsilon = config.layer_norm_epsilon
  if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
    fail("layer_norm_epsilon", "a positive number")
  if config.dtype not in DTYPES:
    fail("dtype", f"one of {tuple(DTYPES)}")
  if config.remat_policy not in REMAT_POLICIES:
    fail("remat_policy", f"one of {REMAT_POLICIES}")
