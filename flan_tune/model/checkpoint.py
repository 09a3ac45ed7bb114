"""A flan-tune model on disk: config.json + orbax params (+ spiece.model), nothing else.

    DIR/config.json    T5Config fields as JSON (the execution knobs included)
    DIR/params/        the float32 params tree, orbax StandardCheckpointer
    DIR/spiece.model   the SentencePiece model, when the model came with one

The layout is the one the config implies (scanned params when scan_layers), so loading
restores straight into the shapes `T5(config)` expects and a mismatch is an error.
"""

import dataclasses
import json
import os
import pathlib
import shutil
from typing import Any

import jax
import numpy as np

from flan_tune.errors import CheckpointError
from flan_tune.model import network
from flan_tune.model.config import T5Config

CONFIG_FILE = "config.json"
PARAMS_DIR = "params"
SPIECE_FILE = "spiece.model"

Params = dict[str, Any]


def save_model(directory: str | os.PathLike, config: T5Config, params: Params,
               vocabulary_file: str | os.PathLike | None = None) -> None:
  """Writes config.json, params/ and (when given) a copy of vocabulary_file as spiece.model.

  params: plain or boxed, with or without the {"params": ...} wrapper."""
  import orbax.checkpoint as ocp  # heavy; only saving and loading need it

  directory = pathlib.Path(directory).absolute()  # orbax wants absolute paths
  if (directory / CONFIG_FILE).exists() or (directory / PARAMS_DIR).exists():
    raise CheckpointError(f"{directory}: already holds a model; choose a new directory")
  if vocabulary_file is not None and not pathlib.Path(vocabulary_file).is_file():
    raise CheckpointError(f"{vocabulary_file}: file not found")
  params = network.unbox(params)
  if set(params) == {"params"}:
    params = params["params"]
  _check_layout(config, params, f"params for {directory}")
  directory.mkdir(parents=True, exist_ok=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / PARAMS_DIR, params)
    checkpointer.wait_until_finished()
  with open(directory / CONFIG_FILE, "w") as f:
    json.dump(dataclasses.asdict(config), f, indent=2)
  if vocabulary_file is not None:
    shutil.copyfile(vocabulary_file, directory / SPIECE_FILE)


def load_model(directory: str | os.PathLike) -> tuple[T5Config, Params]:
  """(config, params) as saved by save_model; params are host float32 arrays."""
  directory = pathlib.Path(directory).absolute()
  if not directory.is_dir():
    raise CheckpointError(f"{directory}: model directory not found")
  config_path, params_path = directory / CONFIG_FILE, directory / PARAMS_DIR
  if not config_path.is_file():
    raise CheckpointError(f"{config_path}: file not found (not a flan-tune model directory; "
                              "`flan-tune import-hf` makes one from a transformers checkpoint)")
  if not params_path.is_dir():
    raise CheckpointError(f"{params_path}: directory not found")
  try:
    fields = json.loads(config_path.read_text())
    config = T5Config(**fields)
  except (json.JSONDecodeError, TypeError) as e:
    raise CheckpointError(f"{config_path}: not a T5Config: {e}") from None
  target = network.unbox(network.abstract_variables(network.T5(config)))["params"]
  try:
    params = restore_on_host(params_path, target)
  except (ValueError, KeyError, FileNotFoundError) as e:
    raise CheckpointError(f"{params_path}: does not match {CONFIG_FILE}: {e}") from None
  return config, params


def restore_on_host(path: str | os.PathLike, target: Params, partial: bool = False) -> Params:
  """An Orbax pytree as host numpy arrays shaped like `target` (ShapeDtypeStructs).

  Host arrays carry no device topology, so any process of any job can read them.
  `partial`: read only the entries `target` names (e.g. params, not optimizer state)."""
  import orbax.checkpoint as ocp

  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
  with ocp.PyTreeCheckpointer() as checkpointer:
    return checkpointer.restore(pathlib.Path(path).absolute(), args=ocp.args.PyTreeRestore(
        item=target, restore_args=restore_args, partial_restore=partial))


def restore_sharded(path: str | os.PathLike, target: Params, partial: bool = False) -> Params:
  """An Orbax pytree straight into the shardings of `target` (ShapeDtypeStructs with
  `sharding`): each process reads only the pieces its devices hold, so no host holds
  the whole model. `partial` as for `restore_on_host`."""
  import orbax.checkpoint as ocp

  with ocp.PyTreeCheckpointer() as checkpointer:
    return checkpointer.restore(pathlib.Path(path).absolute(), args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=partial))


def load_pretrained(directory: str | os.PathLike, layout: T5Config | None = None
                    ) -> tuple[T5Config, Params]:
  """(config, params) from a flan-tune model directory or a transformers T5 directory.

  With `layout`, the params come in its layer layout (scanned or not) and the returned
  config takes its execution knobs, so a checkpoint saved one way trains the other."""
  directory = pathlib.Path(directory)
  if (directory / PARAMS_DIR).is_dir():
    config, params = load_model(directory)
  elif is_hf_directory(directory):
    from flan_tune.model import hf  # safetensors; only Hugging Face checkpoints need it

    config, params = hf.import_hf(directory)
  else:
    raise CheckpointError(
        f"{directory}: neither a flan-tune model directory ({CONFIG_FILE} + {PARAMS_DIR}/) "
        "nor a transformers T5 directory (config.json + *.safetensors)")
  if layout is None:
    return config, params
  return convert_layout(config, params, layout)


def is_hf_directory(directory: str | os.PathLike) -> bool:
  """A transformers directory (safetensors weights), not a flan-tune model directory."""
  directory = pathlib.Path(directory)
  return (not (directory / PARAMS_DIR).is_dir() and directory.is_dir()
          and any(directory.glob("*.safetensors")))


def convert_layout(config: T5Config, params: Params, layout: T5Config
                   ) -> tuple[T5Config, Params]:
  """`params` (saved under `config`) in `layout`'s layer layout, and `config` with
  `layout`'s execution knobs: a checkpoint saved scanned trains unscanned and back."""
  if layout.scan_layers and not config.scan_layers:
    params = network.stack_layers(params)
  elif config.scan_layers and not layout.scan_layers:
    params = network.unstack_layers(params)
  return config.with_execution_of(layout), params


def vocabulary_file(directory: str | os.PathLike) -> pathlib.Path | None:
  """DIR/spiece.model when the model directory has one."""
  path = pathlib.Path(directory) / SPIECE_FILE
  return path if path.is_file() else None


def _check_layout(config: T5Config, params: Params, what: str) -> None:
  """Refuses params whose tree or shapes differ from what T5(config) builds."""
  expected = network.unbox(network.abstract_variables(network.T5(config)))["params"]
  shapes = jax.tree.map(lambda x: tuple(x.shape), expected)
  try:
    actual = jax.tree.map(lambda x: tuple(jax.numpy.shape(x)), params)
  except Exception as e:  # not a pytree of arrays
    raise CheckpointError(f"{what}: not a params tree: {e}") from None
  if actual != shapes:
    flat_expected = dict(jax.tree_util.tree_leaves_with_path(shapes, is_leaf=_is_shape))
    flat_actual = dict(jax.tree_util.tree_leaves_with_path(actual, is_leaf=_is_shape))
    differ = sorted(jax.tree_util.keystr(k) for k in set(flat_expected) | set(flat_actual)
                    if flat_expected.get(k) != flat_actual.get(k))
    raise CheckpointError(
        f"{what}: do not match the config (scan_layers={config.scan_layers}) at "
        f"{', '.join(differ[:5])}" + (f" and {len(differ) - 5} more" if len(differ) > 5 else ""))


def _is_shape(x) -> bool:
  return isinstance(x, tuple) and all(isinstance(d, int) for d in x)
