"""Checkpoint interchange with Hugging Face transformers: parity, export, vocabulary, refusals."""

import functools
import json
import os
import random

import jax
import numpy as np
import pytest
import safetensors.numpy
import sentencepiece
import torch
import transformers
from transformers.models.t5 import modeling_t5

from flan_tune.model import T5, layers, stack_layers
from flan_tune.model.hf import CheckpointError, export_hf, import_hf, vocabulary_from_hf
from hf_models import VERSIONS, save_hf_model





def hf_batch(seed=0):
  """Unpacked rows: encoder inputs with padding, decoder targets with padding."""
  rng = np.random.default_rng(seed)
  inputs = np.zeros((3, 20), np.int64)
  targets = np.zeros((3, 14), np.int64)
  for row, (n_in, n_out) in enumerate(((20, 14), (11, 9), (6, 12))):
    inputs[row, :n_in] = np.append(rng.integers(2, 96, n_in - 1), 1)
    targets[row, :n_out] = np.append(rng.integers(2, 96, n_out - 1), 1)
  return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
          "decoder_input_tokens": np.pad(targets, ((0, 0), (1, 0)))[:, :-1]}


def hf_logits(model, batch):
  with torch.no_grad():
    return model(input_ids=torch.from_numpy(batch["encoder_input_tokens"]),
                 attention_mask=torch.from_numpy(batch["encoder_input_tokens"] > 0),
                 decoder_input_ids=torch.from_numpy(batch["decoder_input_tokens"])).logits.numpy()


@functools.cache
def _jitted_forward(config):
  def apply(params, batch):
    return T5(config).apply({"params": params}, **batch, enable_dropout=False)
  # Tiny models: compile time dominates, and LLVM's optimizations only slow it down.
  return jax.jit(apply, compiler_options={"xla_backend_optimization_level": 0})


def our_logits(config, params, batch):
  batch = {k: v.astype(np.int32) for k, v in batch.items()}
  return np.asarray(_jitted_forward(config)(params, batch))


def assert_close_on_targets(actual, expected, batch):
  valid = batch["decoder_target_tokens"] > 0
  np.testing.assert_allclose(actual[valid], expected[valid], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("version", list(VERSIONS))
def test_import_matches_transformers_and_export_loads_back(version, tmp_path):
  hf_model = save_hf_model(version, tmp_path / "hf")
  batch = hf_batch()
  expected = hf_logits(hf_model, batch)

  config, params = import_hf(tmp_path / "hf")
  assert config.d_kv * config.num_heads != config.d_model
  assert config.tie_word_embeddings == (version == "v1.0")
  assert config.relative_attention_num_buckets == 16 and config.num_decoder_layers == 3
  assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(params))
  assert_close_on_targets(our_logits(config, params, batch), expected, batch)

  export_hf(config, params, tmp_path / "ours")
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "ours").eval()
  assert_close_on_targets(hf_logits(reloaded, batch), expected, batch)
  again_config, again_params = import_hf(tmp_path / "ours")
  assert again_config == config
  jax.tree.map(np.testing.assert_array_equal, again_params, params)


def test_a_tied_checkpoint_with_an_lm_head_copy_stays_tied_and_a_distinct_head_is_scaled(
    tmp_path):
  save_hf_model("v1.0", tmp_path)
  path = tmp_path / "model.safetensors"
  tensors = safetensors.numpy.load_file(path)
  safetensors.numpy.save_file({**tensors, "lm_head.weight": tensors["shared.weight"]}, path,
                              metadata={"format": "pt"})
  config, params = import_hf(tmp_path)
  assert config.tie_word_embeddings and "logits_dense" not in params["decoder"]

  head = np.random.default_rng(0).normal(size=tensors["shared.weight"].shape).astype(np.float32)
  safetensors.numpy.save_file({**tensors, "lm_head.weight": head}, path, metadata={"format": "pt"})
  config, params = import_hf(tmp_path)
  assert not config.tie_word_embeddings
  hf_model = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
  batch = hf_batch(2)
  assert_close_on_targets(our_logits(config, params, batch), hf_logits(hf_model, batch), batch)


def test_sharded_checkpoints_import_and_a_missing_shard_is_named(tmp_path):
  hf_model = save_hf_model("v1.1", tmp_path, max_shard_size="40KB")
  index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
  shards = sorted(set(index["weight_map"].values()))
  assert len(shards) > 1
  config, params = import_hf(tmp_path)
  batch = hf_batch(1)
  assert_close_on_targets(our_logits(config, params, batch), hf_logits(hf_model, batch), batch)
  os.remove(tmp_path / shards[-1])
  with pytest.raises(CheckpointError, match=shards[-1]):
    import_hf(tmp_path)


def test_scanned_params_export_like_unscanned(tmp_path):
  save_hf_model("v1.0", tmp_path / "hf")
  config, params = import_hf(tmp_path / "hf")
  export_hf(config.replace(scan_layers=True), stack_layers(params), tmp_path / "scanned")
  _, again = import_hf(tmp_path / "scanned")
  jax.tree.map(np.testing.assert_array_equal, again, params)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 24), (8, 20), (64, 256)])
def test_relative_position_buckets_equal_transformers(bidirectional, num_buckets, max_distance):
  relative = np.arange(-300, 301)
  expected = modeling_t5.T5Attention._relative_position_bucket(
      torch.from_numpy(relative), bidirectional=bidirectional, num_buckets=num_buckets,
      max_distance=max_distance).numpy()
  actual = layers.relative_position_bucket(relative, bidirectional=bidirectional,
                                           num_buckets=num_buckets, max_distance=max_distance)
  np.testing.assert_array_equal(np.asarray(actual), expected)


# --- vocabulary ----------------------------------------------------------------------------

WORDS = ("the river town people garden music apple cherry mountain house quick brown fox "
         "jumps over lazy dog alpha beta gamma delta").split()


def train_spiece(directory):
  rng = random.Random(0)
  corpus = directory / "corpus.txt"
  corpus.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12))
                              for _ in range(400)) + "\nNumbers 12345, symbols #$%!\n")
  sentencepiece.SentencePieceTrainer.train(
      input=str(corpus), model_prefix=str(directory / "spiece"), vocab_size=60,
      model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
      minloglevel=2)
  os.remove(directory / "spiece.vocab")
  os.remove(corpus)


def test_vocabulary_ids_equal_the_transformers_tokenizer(tmp_path):
  train_spiece(tmp_path)
  vocabulary = vocabulary_from_hf(tmp_path)
  tokenizer = transformers.T5Tokenizer.from_pretrained(tmp_path, extra_ids=100)
  assert vocabulary.vocab_size == len(tokenizer) == 160
  for text in ("the quick brown fox", "Gamma river, delta town!", "apple cherry 12345",
               "zebra xylophone", "music house mountain jumps over the lazy dog"):
    assert vocabulary.encode(text) == tokenizer(text, add_special_tokens=False).input_ids, text
  for n in (0, 1, 37, 99):
    sentinel = tokenizer.convert_tokens_to_ids(f"<extra_id_{n}>")
    assert sentinel == vocabulary.vocab_size - 1 - n
    assert tokenizer(f"fox <extra_id_{n}>", add_special_tokens=False).input_ids == (
        vocabulary.encode("fox") + [sentinel])
  assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == vocabulary.eos_id == 1
  assert tokenizer.unk_token_id == vocabulary.unk_id == 2


def test_missing_spiece_model_is_named(tmp_path):
  with pytest.raises(CheckpointError, match="spiece.model"):
    vocabulary_from_hf(tmp_path)


# --- bad input -----------------------------------------------------------------------------

@pytest.fixture
def exported(tmp_path):
  save_hf_model("v1.1", tmp_path)
  return tmp_path


def test_config_that_does_not_fit_the_weights_names_parameter_and_shapes(exported):
  config = json.loads((exported / "config.json").read_text())
  (exported / "config.json").write_text(json.dumps({**config, "d_ff": 64}))
  with pytest.raises(CheckpointError, match=r"parameter (en|de)coder\.block\.0\.layer\.\d\."
                     r"DenseReluDense\.wi_0\.weight has shape \(48, 32\) but config\.json "
                     r"implies \(64, 32\)"):
    import_hf(exported)
  (exported / "config.json").write_text(json.dumps({**config, "num_decoder_layers": 2}))
  with pytest.raises(CheckpointError, match=r"does not account for.*decoder\.block\.2\."):
    import_hf(exported)


def test_missing_tensor_is_named(exported):
  tensors = safetensors.numpy.load_file(exported / "model.safetensors")
  del tensors["decoder.block.1.layer.1.EncDecAttention.k.weight"]
  safetensors.numpy.save_file(tensors, exported / "model.safetensors", metadata={"format": "pt"})
  with pytest.raises(CheckpointError, match=r"decoder\.block\.1\.layer\.1\.EncDecAttention\.k"):
    import_hf(exported)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_missing_file_is_named(exported, name):
  os.remove(exported / name)
  with pytest.raises(CheckpointError, match=f"{name}: file not found"):
    import_hf(exported)


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "model.ckpt"])
def test_pickle_weights_are_refused_and_never_opened(exported, pickle_name):
  os.remove(exported / "model.safetensors")
  # Not even a valid pickle: the refusal must come from the name alone.
  (exported / pickle_name).write_bytes(b"\x80\x04 not a pickle, never read")
  with pytest.raises(CheckpointError,
                     match=f"only pickle-based weights \\({pickle_name}\\).*never loads "
                           "pickle.*safe_serialization=True"):
    import_hf(exported)


def test_a_truncated_weights_file_is_named(exported):
  path = exported / "model.safetensors"
  path.write_bytes(path.read_bytes()[:-1000])
  with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor .* is truncated"):
    import_hf(exported)
  path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
  with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors"):
    import_hf(exported)
