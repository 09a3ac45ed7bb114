"""Which model a run trains, and which weights it starts from.

The architecture comes from, in order: MODEL_DIR/config.json (written when the run
started, so a resumed run cannot silently change shape), the initial checkpoint, or the
gin-bound T5Config. Gin may still set the execution knobs (dropout, dtype, remat,
scanned layers) and may repeat architecture values, but a gin binding that contradicts
the checkpoint's architecture is an error rather than a silent choice of one of them.

INITIAL_CHECKPOINT_PATH may be a flan-tune model directory (`flan-tune import-hf` writes
one), a transformers T5 directory (config.json + *.safetensors), or another training
run: its MODEL_DIR (latest complete step) or one `checkpoints/<step>` directory. From a
run only the params are read, never its optimizer state or data position.

A parameter-efficient run (flan_tune.model.peft) checkpoints only what it trains and
records in MODEL_DIR/peft.json its method and the pretrained model it tunes; loading it
reads that model and the run's trained parameters, merged.
"""

import dataclasses
import json
import logging
import os
import pathlib
from typing import Any

import gin
import jax
import numpy as np
from flax import traverse_util

from flan_tune.errors import CheckpointError, ModelConfigError
from flan_tune.model import checkpoint, network, peft as peft_lib
from flan_tune.model.config import T5Config
from flan_tune.runtime import checkpoints

RUN_CONFIG_FILE = checkpoint.CONFIG_FILE  # MODEL_DIR/config.json, as in a model directory
PEFT_FILE = "peft.json"

PyTree = Any


def gin_bound_fields() -> set[str]:
  """The T5Config fields the gin files or --gin flags bind."""
  bound = set()
  for field in dataclasses.fields(T5Config):
    try:
      gin.query_parameter(f"T5Config.{field.name}")
    except ValueError:
      continue
    bound.add(field.name)
  return bound


def reconcile(gin_config: T5Config, bound: set[str], base: T5Config | None,
              source: str) -> T5Config:
  """`base`'s architecture with gin's execution knobs; gin's own config without a base.

  `source` names where `base` came from, for the error when a bound field disagrees."""
  if base is None:
    return gin_config
  conflicts = {name: values for name, values in
               gin_config.architecture_differences(base).items() if name in bound}
  if conflicts:
    listed = "; ".join(f"T5Config.{name}={ours!r} in gin but {theirs!r} in {source}"
                       for name, (ours, theirs) in sorted(conflicts.items()))
    raise ModelConfigError(f"the model gin contradicts {source}: {listed}. Remove the "
                           "binding or use the matching model gin.")
  return base.with_execution_of(gin_config)


def read_run_config(model_dir: str | os.PathLike) -> T5Config | None:
  """The config MODEL_DIR's run started with, or None for a new directory."""
  path = pathlib.Path(model_dir) / RUN_CONFIG_FILE
  if not path.is_file():
    return None
  try:
    return T5Config(**json.loads(path.read_text()))
  except (json.JSONDecodeError, TypeError) as e:
    raise ModelConfigError(f"{path}: not a T5Config ({e}); was MODEL_DIR written by another "
                           "tool?") from None


def write_run_config(model_dir: str | os.PathLike, config: T5Config) -> None:
  """Records the config (process 0 only), for resuming and for evaluating checkpoints."""
  if jax.process_index() == 0:
    path = pathlib.Path(model_dir) / RUN_CONFIG_FILE
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2))


def write_peft(model_dir: str | os.PathLike, peft: peft_lib.PeftConfig, base: str) -> None:
  """Records a parameter-efficient run's method and its pretrained model (process 0)."""
  if jax.process_index() == 0:
    path = pathlib.Path(model_dir) / PEFT_FILE
    path.write_text(json.dumps({"peft": peft.to_json(), "base": os.path.abspath(base)},
                               indent=2))


def read_peft(path: str | os.PathLike) -> tuple[peft_lib.PeftConfig, str] | None:
  """(method, pretrained model) of the parameter-efficient run `path` points into, or None."""
  run = _run_directory(pathlib.Path(path))
  file = run / PEFT_FILE if run is not None else None
  if file is None or not file.is_file():
    return None
  try:
    recorded = json.loads(file.read_text())
    return peft_lib.PeftConfig.from_json(recorded["peft"]), recorded["base"]
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise ModelConfigError(f"{file}: not a flan-tune PEFT record ({e})") from None


def network_for(path: str | os.PathLike, config: T5Config) -> network.T5:
  """The network a checkpoint's params fit: with the soft prompt or adapters of a
  parameter-efficient run."""
  recorded = read_peft(path)
  return recorded[0].network(config) if recorded else network.T5(config)


def _run_directory(path: pathlib.Path) -> pathlib.Path | None:
  """The training run a path points into (its MODEL_DIR, checkpoints/ or one step)."""
  if path.name.isdigit() and path.parent.name == "checkpoints":
    path = path.parent.parent
  elif path.name == "checkpoints":
    path = path.parent
  return path if (path / "checkpoints").is_dir() else None


def initial_config(path: str | os.PathLike,
                   binding: str = "train.initial_checkpoint_path") -> T5Config:
  """The architecture of a checkpoint, read without loading its weights; errors name
  `binding`, the gin parameter that gave the path."""
  path = pathlib.Path(path)

  def fail(problem: str):
    raise ModelConfigError(f"{binding}: {problem}")

  if not path.exists():
    fail(f"{path}: no such file or directory")
  run = _run_directory(path)
  if run is not None:
    return read_run_config(run) or fail(f"{run / RUN_CONFIG_FILE}: file not found")
  if (path / checkpoint.PARAMS_DIR).is_dir() and (path / checkpoint.CONFIG_FILE).is_file():
    return read_run_config(path)
  if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
    return T5Config.from_hf_config(json.loads((path / "config.json").read_text()))
  fail(f"{path}: not a flan-tune model directory (config.json + params/), a transformers "
        "T5 directory (config.json + *.safetensors) or a training run (config.json + "
        "checkpoints/)")


def initial_vocabulary_file(path: str | os.PathLike | None) -> str | None:
  """The SentencePiece model a flan-tune or transformers checkpoint ships (spiece.model),
  which the run's tasks must tokenize with; None when there is none to compare."""
  if not path or _run_directory(pathlib.Path(path)) is not None:
    return None
  found = checkpoint.vocabulary_file(path)
  return str(found) if found else None


def load_params(path: str | os.PathLike, config: T5Config) -> PyTree:
  """Any initial checkpoint's params as host arrays in `config`'s layer layout."""
  path = pathlib.Path(path)
  saved = initial_config(path)
  if _run_directory(path) is not None:
    abstract = network.unbox(network.abstract_variables(network.T5(saved)))["params"]
    step, restored = checkpoints.restore_latest_params(path, abstract)
    _, params = checkpoint.convert_layout(saved, restored, config)
    logging.info("weights: params of %s", step)
  else:
    _, params = checkpoint.load_pretrained(path, layout=config)
    logging.info("weights: %s", path)
  return params


def load_initial_params(path: str | os.PathLike, config: T5Config,
                        shardings: PyTree) -> PyTree:
  """The checkpoint's params in `config`'s layout, placed by `shardings`.

  A flan-tune model directory or a training run saved in that layout restores straight
  into the shardings through Orbax: each process reads only its devices' pieces. Others
  (a transformers directory, a layer layout to convert) are read on the host, and each
  process hands JAX only the pieces its devices hold."""
  recorded = read_peft(path)
  if recorded is not None:
    return _load_peft_run(path, *recorded, config, shardings)
  restored = _restore_sharded(pathlib.Path(path), config, shardings)
  if restored is not None:
    return restored
  if checkpoint.is_hf_directory(path):
    return _place_hf(path, config, shardings)
  return jax.tree.map(_place, load_params(path, config), shardings)


def _place(array, sharding) -> jax.Array:
  """A host array on `sharding`'s devices, each given only its own piece."""
  array = np.asarray(array, np.float32)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _place_hf(path, config: T5Config, shardings: PyTree) -> PyTree:
  """A transformers checkpoint placed one parameter at a time (all layers of one when
  `config` scans them), each host copy dropped once placed."""
  from flan_tune.model import hf  # safetensors; only Hugging Face checkpoints need it

  weights = hf.HFWeights(path)
  groups: dict[tuple[str, ...], list] = {}
  for source in weights.paths:
    target, layer = network.scanned_path(source) if config.scan_layers else (source, None)
    groups.setdefault(target, []).append((layer, source))
  targets = traverse_util.flatten_dict(shardings)
  placed = {}
  for target, sources in groups.items():
    arrays = [weights.read(source) for _, source in sorted(sources)]
    stacked = sources[0][0] is not None
    placed[target] = _place(np.stack(arrays) if stacked else arrays[0], targets[target])
    del arrays
  logging.info("weights: %s, placed one parameter at a time", path)
  return traverse_util.unflatten_dict(placed)


def _load_peft_run(path, peft: peft_lib.PeftConfig, base: str, config: T5Config,
                   shardings: PyTree) -> PyTree:
  """A parameter-efficient run's pretrained model and trained parameters, merged."""
  if initial_config(path).scan_layers != config.scan_layers:
    raise ModelConfigError(f"{path}: a {peft.method} run restores in the layer layout it "
                           "trained in; set T5Config.scan_layers as it was")
  frozen = peft_lib.split(shardings, peft)[1]
  abstract = network.unbox(network.abstract_variables(peft.network(config)))["params"]
  target = peft_lib.split(jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, np.float32, sharding=s), abstract, shardings),
      peft)[0]
  step, trained = checkpoints.restore_latest_params(path, target, sharded=True)
  logging.info("weights: %s of %s on %s", peft.method, step, base)
  return peft_lib.merge(trained, load_initial_params(base, config, frozen))


def load_peft_run_on_host(path: str | os.PathLike, config: T5Config
                          ) -> tuple[peft_lib.PeftConfig, PyTree, PyTree]:
  """(method, trained parameters, pretrained parameters) of a parameter-efficient run,
  as host arrays (for export)."""
  peft, base = read_peft(path)
  abstract = network.unbox(network.abstract_variables(peft.network(config)))["params"]
  _, trained = checkpoints.restore_latest_params(path, peft_lib.split(abstract, peft)[0])
  return peft, trained, load_params(base, config)


def _restore_sharded(path: pathlib.Path, config: T5Config, shardings: PyTree):
  """The params restored into `shardings`, or None where the checkpoint needs the host
  (not Orbax, or saved in the other layer layout)."""
  saved = initial_config(path)
  if saved.scan_layers != config.scan_layers:
    return None
  abstract = network.unbox(network.abstract_variables(network.T5(saved)))["params"]
  target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, np.float32, sharding=s),
                        abstract, shardings)
  if _run_directory(path) is not None:
    step, params = checkpoints.restore_latest_params(path, target, sharded=True)
    logging.info("weights: params of %s, restored into their shardings", step)
    return params
  if (path / checkpoint.PARAMS_DIR).is_dir():
    try:
      params = checkpoint.restore_sharded(path / checkpoint.PARAMS_DIR, target)
    except (ValueError, KeyError, FileNotFoundError) as e:
      raise CheckpointError(f"{path / checkpoint.PARAMS_DIR}: does not match "
                            f"{checkpoint.CONFIG_FILE}: {e}") from None
    logging.info("weights: %s, restored into their shardings", path)
    return params
  return None


def _step_directory(path: str | os.PathLike):
  """A training run's complete step directory that `path` names; None for model dirs."""
  if _run_directory(pathlib.Path(path)) is None:
    return None
  return checkpoints.complete_step_directory(path)


def checkpoint_step(path: str | os.PathLike) -> int | None:
  """The step of the run checkpoint `path` names; None for model directories."""
  step = _step_directory(path)
  return None if step is None else int(step.name)


def trained_on(path: str | os.PathLike) -> str | None:
  """The mixture or task a training run's checkpoint was trained on (from its saved data
  position); None for model directories, which do not record it."""
  step = _step_directory(path)
  if step is None:
    return None
  try:
    return json.loads((step / checkpoints.DATA / "metadata").read_text()).get(
        "mixture_or_task_name")
  except (OSError, json.JSONDecodeError):
    return None
