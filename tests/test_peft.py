"""Parameter-efficient tuning: a soft prompt and LoRA on the frozen model, trained through
`flan-tune train` with runs/prompt_tuning.gin and runs/lora.gin, resumed, evaluated and
served from the run directory, and LoRA exported as a PEFT adapter that `peft` loads."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import seqio
from flax import traverse_util

import training_runs as runs_lib
from flan_tune.errors import ModelConfigError
from flan_tune.model import network, peft as peft_lib
from flan_tune.model.config import T5Config
from flan_tune.runtime import partitioning
from flan_tune.training import memory_plan, optimizers, train_state

pytestmark = pytest.mark.xdist_group("peft")

CONFIG = T5Config(vocab_size=128, d_model=32, num_heads=4, d_kv=8, d_ff=48,
                  num_encoder_layers=2, num_decoder_layers=2)
ENCODER = jnp.array([[5, 6, 7, 1, 0, 0], [8, 9, 1, 0, 0, 0]])
TARGETS = jnp.array([[3, 4, 1, 0], [5, 1, 0, 0]])
DECODER = jnp.pad(TARGETS, ((0, 0), (1, 0)))[:, :-1]
LORA = peft_lib.PeftConfig(method="lora", lora_targets=("q", "v", "o", "wi_0", "wo"))


def logits(model, params, encoder=ENCODER):
  return model.apply({"params": params}, encoder, DECODER, TARGETS, enable_dropout=False)


def base_params(config=CONFIG):
  return network.unbox(network.init_variables(network.T5(config), jax.random.key(0))["params"])


@pytest.mark.parametrize("scan", [False, True])
def test_lora_starts_as_the_base_model_and_merges_into_it_exactly(scan):
  config = CONFIG.replace(scan_layers=scan)
  base = base_params(CONFIG)
  base = network.stack_layers(base) if scan else base
  model = LORA.network(config)
  added = peft_lib.split(network.unbox(network.init_variables(model, jax.random.key(1))
                                       ["params"]), LORA)[0]
  reference = logits(network.T5(config), base)
  np.testing.assert_array_equal(logits(model, peft_lib.merge(added, base)), reference)  # B = 0
  moved = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2), x.shape), added)
  adapted = logits(model, peft_lib.merge(moved, base))
  assert float(jnp.abs(adapted - reference).max()) > 0.1
  folded = peft_lib.merge_lora(peft_lib.merge(moved, base), LORA)
  np.testing.assert_allclose(logits(network.T5(config), folded), adapted, atol=2e-5)
  # A uniform in +-1/sqrt(fan_in), B zero, only where targeted
  query = added["encoder"]["layers" if scan else "layers_0"]["attention"]["query"]
  assert float(jnp.abs(query["lora_a"]).max()) <= 1 / np.sqrt(CONFIG.d_model)
  assert not np.any(query["lora_b"]) and "key" not in added["encoder"].get("layers_0", {})


def test_the_prompt_is_prepended_with_the_masks_extended():
  peft = peft_lib.PeftConfig(method="prompt", prompt_length=3, prompt_init="uniform")
  model = peft.network(CONFIG)
  params = network.unbox(network.init_variables(model, jax.random.key(1))["params"])
  assert params["encoder"]["prompt"].shape == (3, CONFIG.d_model)
  valid = (TARGETS > 0)[..., None]
  padded = logits(model, params, jnp.pad(ENCODER, ((0, 0), (0, 5))))
  np.testing.assert_allclose(jnp.where(valid, padded, 0), jnp.where(valid, logits(model, params),
                                                                     0), atol=1e-5)
  without = dict(params, encoder={k: v for k, v in params["encoder"].items() if k != "prompt"})
  assert float(jnp.abs(logits(model, params) - logits(network.T5(CONFIG), without)).max()) > 1e-3
  with pytest.raises(ValueError, match="soft prompt needs unpacked rows"):
    model.apply({"params": params}, ENCODER, DECODER, TARGETS,
                encoder_segment_ids=jnp.ones_like(ENCODER), enable_dropout=False)


def test_prompt_initialisations():
  embedding = np.random.default_rng(0).normal(size=(6000, 8)).astype(np.float32)
  rng = jax.random.key(0)

  def prompt(**kwargs):
    return peft_lib.initial_prompt(peft_lib.PeftConfig(method="prompt", prompt_length=20,
                                                       **kwargs), embedding, rng, vocabulary)

  vocabulary = seqio.ByteVocabulary()
  uniform = prompt(prompt_init="uniform")
  assert uniform.shape == (20, 8) and -0.5 <= uniform.min() and uniform.max() <= 0.5
  sampled = prompt(prompt_init="vocab")
  rows = [int(np.flatnonzero((embedding == row).all(axis=1))[0]) for row in sampled]
  assert max(rows) < peft_lib.VOCAB_SAMPLE_IDS and len(set(rows)) == 20
  labels = prompt(prompt_init="labels", prompt_labels=("yes", "no"))
  np.testing.assert_allclose(labels[0], embedding[list(vocabulary.encode("yes"))].mean(axis=0))
  np.testing.assert_allclose(labels[1], embedding[list(vocabulary.encode("no"))].mean(axis=0))
  np.testing.assert_array_equal(labels[2:], sampled[2:])


@pytest.mark.parametrize("fields, message", [
    ({"method": "adapter"}, "PeftConfig.method='adapter' must be one of full, prompt, lora"),
    ({"method": "lora", "lora_targets": ("q", "query")}, "each must be one of q, k, v, o"),
    ({"method": "prompt", "prompt_init": "labels"}, "needs PeftConfig.prompt_labels"),
    ({"method": "lora", "lora_rank": 0}, "PeftConfig.lora_rank=0 must be >= 1"),
])
def test_bad_peft_configs_say_what_is_wrong(fields, message):
  with pytest.raises(ModelConfigError, match=message):
    peft_lib.PeftConfig(**fields)


@pytest.mark.parametrize("peft", [LORA, peft_lib.PeftConfig(method="prompt", prompt_length=4)])
def test_only_the_added_parameters_train_and_shard_by_the_rules(peft):
  model, optimizer = peft.network(CONFIG), optimizers.adamw(1e-3)
  state = train_state.abstract_state(model, optimizer, peft)
  assert all(map(peft.is_trainable, traverse_util.flatten_dict(state.params)))
  assert not any(map(peft.is_trainable, traverse_util.flatten_dict(state.frozen)))
  trainable = peft_lib.count(state.params)
  # Adam's two moments, for the trainable parameters only.
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.opt_state)) == 2 * trainable + 1
  shardings = train_state.state_shardings(memory_plan.abstract_mesh({"data": 4, "model": 2}),
                                          partitioning.FSDP_RULES, model, optimizer, peft)
  if peft.method == "prompt":
    assert set(shardings.params["encoder"]["prompt"].spec) <= {None}  # replicated
  else:
    query = shardings.params["encoder"]["layers_0"]["attention"]["query"]
    assert query["lora_a"].spec == jax.sharding.PartitionSpec("data", None)  # embed, rank
    assert query["lora_b"].spec == jax.sharding.PartitionSpec(None, "model")  # rank, joined_kv


# --- through the command line -------------------------------------------------------------

def peft_args(run_dir, gin_file, steps, initial, *extra):
  args = runs_lib.train_args(run_dir, steps, initial, *extra)
  return [arg.replace("runs/finetune.gin", gin_file) for arg in args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A LoRA run of the tiny model, 2 steps then resumed to 4, and a 4-step prompt-tuning run."""
  root = tmp_path_factory.mktemp("peft")
  initial = root / "initial"
  runs_lib.write_initial_checkpoint(initial)
  dirs = {"lora": root / "lora", "prompt": root / "prompt"}
  for name, gin_file, steps, extra in (
      ("lora", "runs/lora.gin", 2, ["--gin.PeftConfig.lora_targets=('q', 'v', 'wo')"]),
      ("lora", "runs/lora.gin", 4, ["--gin.PeftConfig.lora_targets=('q', 'v', 'wo')"]),
      ("prompt", "runs/prompt_tuning.gin", 4, ["--gin.PROMPT_LENGTH=4"])):
    runs_lib.finish_ok(runs_lib.start(peft_args(dirs[name], gin_file, steps, initial, *extra),
                                      root / f"{name}_{steps}.log"))
  return root, initial, dirs


def stored_arrays(item_directory):
  """The checkpoint's array tree as Orbax recorded it: what was saved, independent of how
  Orbax happened to lay its files out (their sizes vary from run to run)."""
  return ocp.StandardCheckpointer().metadata(item_directory).item_metadata.tree


def array_bytes(tree):
  return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
             for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("name, trained", [("lora", {"lora_a", "lora_b"}), ("prompt", {"prompt"})])
def test_a_peft_run_checkpoints_only_what_it_trains_and_resumes(runs, name, trained):
  _, initial, dirs = runs
  run = dirs[name]
  assert [row["step"] for row in runs_lib.metrics(run)] == [1, 2, 3, 4]  # lora: resumed at 2
  recorded = json.loads((run / "peft.json").read_text())
  assert recorded["peft"]["method"] == name and recorded["base"] == str(initial)
  saved = stored_arrays(run / "checkpoints" / "4" / "state")
  assert not jax.tree.leaves(saved["frozen"])
  assert {path[-1] for path in traverse_util.flatten_dict(saved["params"])} == trained
  # Parameters and both Adam moments of the adapters, against the tiny model's params alone.
  assert array_bytes(saved) < 0.1 * array_bytes(stored_arrays(initial / "params"))


def test_peft_runs_need_a_pretrained_model_and_prompts_unpacked_rows(runs, capsys):
  from test_train import cli_error

  root, initial, _ = runs
  lora = peft_args(root / "none", "runs/lora.gin", 2, initial)[3:]
  lora = [a for a in lora if not a.startswith("--gin.INITIAL_CHECKPOINT_PATH")]
  assert "tunes a pretrained model: set train.initial_checkpoint_path" in cli_error(
      lora + ["--gin.INITIAL_CHECKPOINT_PATH=None"], capsys)
  prompt = peft_args(root / "packed", "runs/prompt_tuning.gin", 2, initial)[3:]
  assert "needs TrainInput.pack=False" in cli_error(prompt + ["--gin.TrainInput.pack=True"],
                                                    capsys)


def test_infer_takes_the_run_directory(runs):
  """The run directory is enough: its recorded base model plus its trained parameters."""
  from flan_tune import cli
  import gin

  root, _, dirs = runs
  inputs = root / "inputs.jsonl"
  inputs.write_text('{"inputs": "Translate: the red town"}\n{"inputs": "Who lives here?"}\n')
  out = root / "prompt_out.jsonl"
  gin.clear_config()
  assert cli.main(["infer", str(dirs["prompt"]), str(inputs), "--output", str(out),
                   "--lengths", "inputs=64,targets=8"]) == 0
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert len(rows) == 2 and all("prediction" in row for row in rows)
  gin.clear_config()
  # `eval` loads a checkpoint the same way (model_setup.load_initial_params); the LoRA
  # run loads through it in the export test below.


def test_lora_exports_as_a_peft_adapter_that_peft_loads_with_the_same_logits(runs):
  import peft
  import torch
  import transformers

  from flan_tune import cli
  from flan_tune.runtime import model_setup

  root, _, dirs = runs
  base_dir, adapter_dir, merged_dir = root / "hf_base", root / "hf_adapter", root / "hf_merged"
  assert cli.main(["export-hf", str(dirs["lora"]), str(base_dir), "--adapter",
                   str(adapter_dir)]) == 0
  assert cli.main(["export-hf", str(dirs["lora"]), str(merged_dir)]) == 0
  config = model_setup.initial_config(dirs["lora"])
  recorded, base = model_setup.read_peft(dirs["lora"])
  model = recorded.network(config)
  shardings = jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]),
                           network.unbox(network.abstract_variables(model))["params"])
  params = model_setup.load_initial_params(dirs["lora"], config, shardings)
  assert float(jnp.abs(params["decoder"]["layers_0"]["mlp"]["wo"]["lora_b"]).max()) > 0
  rng = np.random.default_rng(0)
  encoder = rng.integers(2, 4000, (2, 12))
  targets = rng.integers(2, 4000, (2, 5))
  decoder = np.pad(targets, ((0, 0), (1, 0)))[:, :-1]
  ours = np.asarray(model.apply({"params": params}, encoder, decoder, targets,
                                enable_dropout=False))
  hf_base = transformers.T5ForConditionalGeneration.from_pretrained(base_dir).eval()
  adapted = peft.PeftModel.from_pretrained(hf_base, adapter_dir).eval()
  merged = transformers.T5ForConditionalGeneration.from_pretrained(merged_dir).eval()
  for hf_model in (adapted, merged):
    with torch.no_grad():
      theirs = hf_model(input_ids=torch.from_numpy(encoder),
                        decoder_input_ids=torch.from_numpy(decoder)).logits.numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=1e-4)
