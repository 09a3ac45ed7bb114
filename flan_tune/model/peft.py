"""Parameter-efficient tuning: the pretrained model frozen, a few parameters trained.

- `prompt` (Lester et al. 2021, google-research/prompt-tuning's conventions): P vectors
  prepended to the embedded encoder input, the masks extended to cover them. They start
  uniform in [-0.5, 0.5], as rows of the embedding table sampled from the 5,000 first
  (most frequent, in a SentencePiece vocabulary) ids, or as the embeddings of the class
  labels (each label's pieces averaged), the rest sampled. The prompt's logical axes are
  unsharded names, so every rule set replicates it.
- `lora` (Hu et al. 2021, as Hugging Face PEFT defines it): W x + B A dropout(x) * alpha/r
  on the targeted projections, A uniform in +-1/sqrt(fan_in) (kaiming_uniform, a=sqrt(5)),
  B zero, so training starts from the base model's function. Targets use PEFT's T5 module
  names (q, k, v, o, wi, wi_0, wi_1, wo); A and B take their projection's logical axes,
  so they shard by the same rules.

`split` / `merge` separate the trainable parameters from the frozen ones: training keeps
an optimizer state and checkpoints only for the former. `merge_lora` folds the adapters
into the kernels for export.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from flan_tune.errors import ModelConfigError
from flan_tune.model import layers, network
from flan_tune.model.config import T5Config

PyTree = Any

METHODS = ("full", "prompt", "lora")
PROMPT_INITS = ("uniform", "vocab", "labels")
LORA_TARGETS = ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")
VOCAB_SAMPLE_IDS = 5000  # Lester et al. sample from the 5,000 most common tokens
PROMPT_PATH = ("encoder", "prompt")
LORA_LEAVES = ("lora_a", "lora_b")


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PeftConfig:
  """Which parameters train: all (`full`), a soft prompt, or LoRA adapters."""

  method: str = "full"
  prompt_length: int = 100
  prompt_init: str = "vocab"
  prompt_labels: tuple[str, ...] = ()   # class-label words, for prompt_init="labels"
  lora_rank: int = 8
  lora_alpha: float = 8.0
  lora_dropout: float = 0.0
  lora_targets: tuple[str, ...] = ("q", "v")

  def __post_init__(self):
    object.__setattr__(self, "prompt_labels", tuple(self.prompt_labels))
    object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
    _check_choice("method", self.method, METHODS)
    if self.method == "prompt":
      _check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
      if self.prompt_length < 1:
        raise ModelConfigError(f"PeftConfig.prompt_length={self.prompt_length} must be >= 1")
      if self.prompt_init == "labels" and not self.prompt_labels:
        raise ModelConfigError("PeftConfig.prompt_init='labels' needs PeftConfig.prompt_labels "
                               "(the class-label words)")
    if self.method == "lora":
      if self.lora_rank < 1:
        raise ModelConfigError(f"PeftConfig.lora_rank={self.lora_rank} must be >= 1")
      if not 0 <= self.lora_dropout < 1:
        raise ModelConfigError(f"PeftConfig.lora_dropout={self.lora_dropout} must be in [0, 1)")
      unknown = sorted(set(self.lora_targets) - set(LORA_TARGETS))
      if unknown or not self.lora_targets:
        raise ModelConfigError(f"PeftConfig.lora_targets={list(self.lora_targets)}: each must "
                               f"be one of {', '.join(LORA_TARGETS)}")

  @property
  def frozen_base(self) -> bool:
    return self.method != "full"

  def network(self, config: T5Config) -> network.T5:
    """The T5 with this method's extra parameters."""
    lora = (layers.Lora(self.lora_rank, self.lora_alpha, self.lora_dropout, self.lora_targets)
            if self.method == "lora" else None)
    return network.T5(config, prompt_length=self.prompt_length if self.method == "prompt"
                      else 0, lora=lora)

  def is_trainable(self, path: Sequence[str]) -> bool:
    if self.method == "prompt":
      return tuple(path[:2]) == PROMPT_PATH
    if self.method == "lora":
      return path[-1] in LORA_LEAVES
    return True

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, fields: dict) -> "PeftConfig":
    return cls(**fields)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
  if value not in choices:
    raise ModelConfigError(f"PeftConfig.{name}={value!r} must be one of {', '.join(choices)}")


def split(params: PyTree, peft: PeftConfig) -> tuple[PyTree, PyTree | None]:
  """(trainable, frozen) subtrees of `params` (or of any tree shaped like them, e.g. their
  shardings); frozen is None when everything trains."""
  if not peft.frozen_base:
    return params, None
  flat = traverse_util.flatten_dict(params)
  trainable = {path: leaf for path, leaf in flat.items() if peft.is_trainable(path)}
  frozen = {path: leaf for path, leaf in flat.items() if path not in trainable}
  return traverse_util.unflatten_dict(trainable), traverse_util.unflatten_dict(frozen)


def merge(trainable: PyTree, frozen: PyTree | None) -> PyTree:
  """The whole params tree from `split`'s halves."""
  if frozen is None:
    return trainable
  return traverse_util.unflatten_dict({**traverse_util.flatten_dict(frozen),
                                       **traverse_util.flatten_dict(trainable)})


def count(params: PyTree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def initial_prompt(peft: PeftConfig, embedding: np.ndarray, rng: jax.Array,
                   vocabulary=None) -> np.ndarray:
  """The (prompt_length, d_model) starting prompt; `vocabulary` (seqio) encodes labels."""
  length, d_model = peft.prompt_length, embedding.shape[1]
  if peft.prompt_init == "uniform":
    return np.asarray(jax.random.uniform(rng, (length, d_model), jnp.float32, -0.5, 0.5))
  embedding = np.asarray(embedding, np.float32)
  ids = jax.random.choice(rng, min(VOCAB_SAMPLE_IDS, embedding.shape[0]), (length,),
                          replace=length > min(VOCAB_SAMPLE_IDS, embedding.shape[0]))
  prompt = embedding[np.asarray(ids)]
  if peft.prompt_init == "labels":
    if vocabulary is None:
      raise ModelConfigError("PeftConfig.prompt_init='labels' needs the task's vocabulary")
    for row, label in enumerate(peft.prompt_labels[:length]):
      pieces = list(vocabulary.encode(label))
      if not pieces:
        raise ModelConfigError(f"PeftConfig.prompt_labels: {label!r} encodes to no tokens")
      prompt[row] = embedding[pieces].mean(axis=0)
  return prompt


def merge_lora(params: PyTree, peft: PeftConfig) -> PyTree:
  """The adapters folded into their kernels (kernel + A B alpha/r), lora leaves dropped:
  a plain T5 params tree that gives the adapted model's outputs."""
  scaling = peft.lora_alpha / peft.lora_rank

  def fold(node):
    if not isinstance(node, dict):
      return node
    if "lora_a" in node:
      kernel = node["kernel"] + jnp.einsum("...ir,...ro->...io", node["lora_a"],
                                           node["lora_b"]) * scaling
      return {key: value for key, value in node.items() if key not in LORA_LEAVES} | {
          "kernel": np.asarray(kernel)}
    return {key: fold(value) for key, value in node.items()}

  return fold(params)
