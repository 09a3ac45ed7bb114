"""Hugging Face T5 checkpoints in and out: config.json + safetensors, never pickle.

`import_hf(directory)` reads `config.json` and `model.safetensors` (or the shards listed
in `model.safetensors.index.json`) of a `T5ForConditionalGeneration` checkpoint, v1.0
(ReLU, tied) or v1.1 / Flan-T5 (gated GELU, separate lm_head), into a T5Config and an
unscanned float32 params tree (`network.stack_layers` gives the scanned layout).
`export_hf(config, params, directory)` writes what `from_pretrained` loads.
`vocabulary_from_hf(directory)` gives the directory's `spiece.model` as a seqio vocabulary
whose ids equal the HF T5 tokenizer's, `<extra_id_N>` sentinels included.

Numerics follow transformers: tied (v1.0) models scale the decoder output by
d_model**-0.5 before the shared embedding, as our `tie_word_embeddings` does. Newer
transformers may save a v1.1 model without `lm_head.weight` (output layer tied to the
embedding, no scaling); it is imported with the embedding copied into `logits_dense`.
"""

import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import ml_dtypes
import numpy as np
import safetensors.numpy

from flan_tune.errors import CheckpointError
from flan_tune.model import network
from flan_tune.model.config import T5Config
from flan_tune.model.peft import PeftConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
SPIECE_FILE = "spiece.model"
DEFAULT_EXTRA_IDS = 100
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Tensors some checkpoints carry that the model does not use (or shares with `shared`).
_IGNORED = frozenset({
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
})

Params = dict[str, Any]


# --- the name mapping --------------------------------------------------------------------

def _attention(hf_prefix: str, path: tuple[str, ...]) -> Iterator[tuple[str, tuple, bool]]:
  for hf_name, name in (("q", "query"), ("k", "key"), ("v", "value"), ("o", "out")):
    yield f"{hf_prefix}.{hf_name}.weight", path + (name, "kernel"), True


def _mlp(config: T5Config, hf_prefix: str, path: tuple[str, ...]):
  names = ["wi"] if len(config.mlp_activations) == 1 else [
      f"wi_{i}" for i in range(len(config.mlp_activations))]
  for name in names + ["wo"]:
    yield f"{hf_prefix}.DenseReluDense.{name}.weight", path + ("mlp", name, "kernel"), True


def parameter_mapping(config: T5Config) -> list[tuple[str, tuple[str, ...], bool]]:
  """(HF tensor name, path in our unscanned params, transposed?) for every parameter.

  HF's Linear weights are (out, in), our kernels (in, out); the relative position table
  is (buckets, heads) in HF and (heads, buckets) here."""
  mapping = [("shared.weight", ("token_embedder", "embedding"), False)]
  for stack, norm in (("encoder", "encoder_norm"), ("decoder", "decoder_norm")):
    mapping.append((f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                    (stack, "relpos_bias", "rel_embedding"), True))
    mapping.append((f"{stack}.final_layer_norm.weight", (stack, norm, "scale"), False))
  for i in range(config.num_encoder_layers):
    block, path = f"encoder.block.{i}.layer", ("encoder", f"layers_{i}")
    mapping.append((f"{block}.0.layer_norm.weight", path + ("pre_attention_layer_norm", "scale"),
                    False))
    mapping.extend(_attention(f"{block}.0.SelfAttention", path + ("attention",)))
    mapping.append((f"{block}.1.layer_norm.weight", path + ("pre_mlp_layer_norm", "scale"), False))
    mapping.extend(_mlp(config, f"{block}.1", path))
  for i in range(config.num_decoder_layers):
    block, path = f"decoder.block.{i}.layer", ("decoder", f"layers_{i}")
    mapping.append((f"{block}.0.layer_norm.weight",
                    path + ("pre_self_attention_layer_norm", "scale"), False))
    mapping.extend(_attention(f"{block}.0.SelfAttention", path + ("self_attention",)))
    mapping.append((f"{block}.1.layer_norm.weight",
                    path + ("pre_cross_attention_layer_norm", "scale"), False))
    mapping.extend(_attention(f"{block}.1.EncDecAttention", path + ("encoder_decoder_attention",)))
    mapping.append((f"{block}.2.layer_norm.weight", path + ("pre_mlp_layer_norm", "scale"), False))
    mapping.extend(_mlp(config, f"{block}.2", path))
  if not config.tie_word_embeddings:
    mapping.append(("lm_head.weight", ("decoder", "logits_dense", "kernel"), True))
  return mapping


def _expected_shapes(config: T5Config) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Our unscanned parameter shapes, without running the model."""
  abstract = network.abstract_variables(network.T5(config.replace(scan_layers=False)))
  flat = _flatten(network.unbox(abstract)["params"])
  return {path: tuple(leaf.shape) for path, leaf in flat.items()}


def _flatten(tree: Params, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, prefix + (key,)))
    else:
      flat[prefix + (key,)] = value
  return flat


def _unflatten(flat: dict[tuple[str, ...], Any]) -> Params:
  tree: Params = {}
  for path, value in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return tree


# --- reading -------------------------------------------------------------------------------

def _read_json(path: pathlib.Path) -> dict[str, Any]:
  if not path.is_file():
    raise CheckpointError(f"{path}: file not found")
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as error:
    raise CheckpointError(f"{path}: not valid JSON ({error})") from None


# safetensors dtypes a T5 checkpoint may hold; everything is read as float32.
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F64": np.float64}


def _safetensors_header(path: pathlib.Path) -> tuple[int, dict[str, dict]]:
  """(offset of the data, {tensor name: {"dtype", "shape", "data_offsets"}})."""
  try:
    with open(path, "rb") as f:
      size = int.from_bytes(f.read(8), "little")
      header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    for entry in header.values():
      if entry["dtype"] not in _DTYPES:
        raise ValueError(f"dtype {entry['dtype']} is not one of {', '.join(_DTYPES)}")
      entry["shape"] = tuple(entry["shape"])
  except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
    raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
  return 8 + size, header


def _weight_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
  """Tensor name -> the safetensors file holding it; refuses pickle-only checkpoints."""
  single, index = directory / WEIGHTS_FILE, directory / WEIGHTS_INDEX_FILE
  if index.is_file():
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
      raise CheckpointError(f"{index}: no 'weight_map' object")
    files = {name: directory / shard for name, shard in weight_map.items()}
    for shard in sorted(set(files.values())):
      if not shard.is_file():
        raise CheckpointError(f"{shard}: file not found (listed in {index})")
    return files
  if single.is_file():
    return {name: single for name in _safetensors_header(single)[1]}
  pickles = sorted(p.name for p in directory.iterdir()
                   if p.suffix in _PICKLE_SUFFIXES or p.name.startswith("pytorch_model")
                   ) if directory.is_dir() else []
  if pickles:
    raise CheckpointError(
        f"{directory} has no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}, only pickle-based "
        f"weights ({', '.join(pickles)}). flan-tune never loads pickle files: unpickling can "
        "run arbitrary code. Convert them once, where you trust the file, with transformers: "
        "T5ForConditionalGeneration.from_pretrained(dir).save_pretrained(out_dir, "
        "safe_serialization=True), and import out_dir.")
  raise CheckpointError(f"{single}: file not found (nor {WEIGHTS_INDEX_FILE})")


class HFWeights:
  """A transformers T5 checkpoint, checked whole from its headers, then read one parameter
  at a time by our (unscanned) param path. Reads are plain file reads, not a memory map,
  so the host holds only the tensors the caller keeps: placing each on devices as it is
  read never holds the model twice."""

  def __init__(self, directory: str | os.PathLike):
    self.directory = directory = pathlib.Path(directory)
    hf_config = _read_json(directory / CONFIG_FILE)
    config = T5Config.from_hf_config(hf_config)
    files = _weight_files(directory)
    self._headers = {path: _safetensors_header(path) for path in sorted(set(files.values()))}
    self._files = files

    has_lm_head = "lm_head.weight" in files
    self._fold_scale = False
    if config.tie_word_embeddings and has_lm_head and "shared.weight" in files:
      # Older saves repeat the tied embedding as lm_head; a different one is a separate
      # output layer that transformers still scales: fold d_model**-0.5 into it.
      if not np.array_equal(self._tensor("lm_head.weight"), self._tensor("shared.weight")):
        config, self._fold_scale = config.replace(tie_word_embeddings=False), True
    mapping = parameter_mapping(config)
    if not config.tie_word_embeddings and not has_lm_head:
      # transformers ties lm_head to `shared` when the file has none: copy the embedding.
      mapping = [m if m[0] != "lm_head.weight" else ("shared.weight",) + m[1:] for m in mapping]
    self.config = config
    self._sources = {path: (hf_name, transposed) for hf_name, path, transposed in mapping}
    self._check(mapping)

  @property
  def paths(self) -> list[tuple[str, ...]]:
    return list(self._sources)

  def read(self, path: tuple[str, ...]) -> np.ndarray:
    """Our parameter at `path`, float32, in our orientation."""
    hf_name, transposed = self._sources[path]
    tensor = self._tensor(hf_name)
    if transposed:
      tensor = np.ascontiguousarray(tensor.T)
    if self._fold_scale and path == ("decoder", "logits_dense", "kernel"):
      tensor *= np.float32(self.config.d_model**-0.5)
    return tensor

  def _entry(self, hf_name: str) -> dict:
    return self._headers[self._files[hf_name]][1][hf_name]

  def _tensor(self, hf_name: str) -> np.ndarray:
    file = self._files[hf_name]
    data_start, header = self._headers[file]
    entry = header[hf_name]
    begin, end = entry["data_offsets"]
    dtype = np.dtype(_DTYPES[entry["dtype"]])
    with open(file, "rb") as f:
      f.seek(data_start + begin)
      tensor = np.fromfile(f, dtype=dtype, count=(end - begin) // dtype.itemsize)
    if tensor.size != int(np.prod(entry["shape"])):
      raise CheckpointError(f"{file}: tensor {hf_name} is truncated")
    return tensor.reshape(entry["shape"]).astype(np.float32, copy=False)

  def _check(self, mapping) -> None:
    """Every tensor present, none unaccounted for, every shape right: before any read."""
    names = {hf_name for hf_name, _, _ in mapping}
    missing = sorted(names - set(self._files))
    if missing:
      raise CheckpointError(f"{self.directory}: tensors missing for config.json: "
                            f"{', '.join(missing)}")
    unexpected = sorted(set(self._files) - names - _IGNORED - {"lm_head.weight"})
    if unexpected:
      raise CheckpointError(
          f"{self.directory}: tensors config.json does not account for (more layers than "
          f"num_layers?): {', '.join(unexpected[:10])}"
          + (f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""))
    shapes = _expected_shapes(self.config)
    for hf_name, path, transposed in mapping:
      shape = self._entry(hf_name)["shape"]
      expected = shapes[path][::-1] if transposed else shapes[path]
      if shape != expected:
        raise CheckpointError(
            f"{self.directory}: parameter {hf_name} has shape {shape} but config.json "
            f"implies {expected} (our {'/'.join(path)} {shapes[path]})")


def import_hf(directory: str | os.PathLike) -> tuple[T5Config, Params]:
  """(config, unscanned float32 params) from a transformers T5 checkpoint directory."""
  weights = HFWeights(directory)
  return weights.config, _unflatten({path: weights.read(path) for path in weights.paths})


# --- writing -------------------------------------------------------------------------------

def export_hf(config: T5Config, params: Params, directory: str | os.PathLike) -> None:
  """Writes config.json, generation_config.json and model.safetensors (float32).

  params: scanned or unscanned, boxed or plain (a {"params": ...} wrapper is accepted)."""
  directory = pathlib.Path(directory)
  hf_config = config.to_hf_config()  # fails early for activations transformers lacks
  params = network.unbox(params)
  if set(params) == {"params"}:
    params = params["params"]
  if "layers" in params.get("encoder", {}) or "layers" in params.get("decoder", {}):
    params = network.unstack_layers(params)
  flat = _flatten(params)
  shapes = _expected_shapes(config)
  extra = sorted("/".join(p) for p in set(flat) - set(shapes))
  if extra:
    raise CheckpointError(f"params have entries the config does not define: {', '.join(extra)}")
  tensors = {}
  for hf_name, path, transposed in parameter_mapping(config):
    if path not in flat:
      raise CheckpointError(f"params lack {'/'.join(path)} (for {hf_name})")
    array = np.asarray(flat[path], dtype=np.float32)
    if tuple(array.shape) != shapes[path]:
      raise CheckpointError(f"params {'/'.join(path)} has shape {tuple(array.shape)}, the "
                            f"config implies {shapes[path]}")
    tensors[hf_name] = np.ascontiguousarray(array.T if transposed else array)
  directory.mkdir(parents=True, exist_ok=True)
  with open(directory / CONFIG_FILE, "w") as f:
    json.dump(hf_config, f, indent=2, sort_keys=True)
  with open(directory / "generation_config.json", "w") as f:
    json.dump({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}, f, indent=2)
  safetensors.numpy.save_file(tensors, directory / WEIGHTS_FILE, metadata={"format": "pt"})


def export_peft_adapter(config: T5Config, peft: PeftConfig, lora_params: Params,
                        directory: str | os.PathLike, base_model: str) -> None:
  """Writes LoRA adapters as a Hugging Face PEFT adapter directory (adapter_config.json +
  adapter_model.safetensors) for the base model `export_hf` writes: PEFT's
  `PeftModel.from_pretrained(base, directory)` then computes what flan-tune does.

  lora_params: the adapters alone (lora_a (in, r) and lora_b (r, out) beside kernels),
  scanned or not. PEFT stores A as (r, in) and B as (out, r)."""
  directory = pathlib.Path(directory)
  params = network.unbox(lora_params)
  if "layers" in params.get("encoder", {}) or "layers" in params.get("decoder", {}):
    params = network.unstack_layers(params)
  names = {path: hf_name.removesuffix(".weight")
           for hf_name, path, _ in parameter_mapping(config)}
  tensors = {}
  for path, array in _flatten(params).items():
    kernel = path[:-1] + ("kernel",)
    if path[-1] not in ("lora_a", "lora_b") or kernel not in names:
      raise CheckpointError(f"{'/'.join(path)} is not a LoRA adapter of a T5 projection")
    which = "lora_A" if path[-1] == "lora_a" else "lora_B"
    tensors[f"base_model.model.{names[kernel]}.{which}.weight"] = np.ascontiguousarray(
        np.asarray(array, np.float32).T)
  directory.mkdir(parents=True, exist_ok=True)
  with open(directory / "adapter_config.json", "w") as f:
    json.dump({"peft_type": "LORA", "task_type": "SEQ_2_SEQ_LM", "r": peft.lora_rank,
               "lora_alpha": peft.lora_alpha, "lora_dropout": peft.lora_dropout,
               "target_modules": list(peft.lora_targets),
               "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
               "base_model_name_or_path": base_model}, f, indent=2)
  safetensors.numpy.save_file(tensors, directory / "adapter_model.safetensors",
                              metadata={"format": "pt"})


# --- vocabulary ----------------------------------------------------------------------------

def _extra_ids(directory: pathlib.Path) -> int:
  """extra_ids from tokenizer_config.json when it says, else T5's 100."""
  path = directory / "tokenizer_config.json"
  if not path.is_file():
    return DEFAULT_EXTRA_IDS
  tokenizer_config = _read_json(path)
  if isinstance(tokenizer_config.get("extra_ids"), int) and tokenizer_config["extra_ids"] > 0:
    return tokenizer_config["extra_ids"]
  special = tokenizer_config.get("additional_special_tokens") or []
  sentinels = [t for t in special if isinstance(t, str) and t.startswith("<extra_id_")]
  return len(sentinels) or DEFAULT_EXTRA_IDS


def vocabulary_from_hf(directory: str | os.PathLike, extra_ids: int | None = None):
  """The directory's spiece.model as a seqio.SentencePieceVocabulary with HF's ids.

  Both put the sentinels after the pieces in reverse: <extra_id_N> is
  vocab_size - 1 - N (seqio's `vocabulary.vocab_size - 1 - N`)."""
  import seqio  # heavy (TensorFlow); only this function needs it

  directory = pathlib.Path(directory)
  path = directory / SPIECE_FILE
  if not path.is_file():
    raise CheckpointError(f"{path}: file not found (T5 checkpoints ship their SentencePiece "
                          "model as spiece.model)")
  count = _extra_ids(directory) if extra_ids is None else extra_ids
  return seqio.SentencePieceVocabulary(str(path), extra_ids=count)
