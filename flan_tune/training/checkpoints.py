"""Training checkpoints: the train state and the data position, saved together by Orbax.

One `ocp.CheckpointManager` with two items per step: "state" (the train-state pytree,
written shard by shard from every process) and "data" (the input iterator's JSON
position), so a resumed run sees exactly the batches an uninterrupted one would.

Torn saves: Orbax 0.12 writes each step into `<step>.orbax-checkpoint-tmp-<time>`, adds
`commit_success.txt`, and renames it to `<step>` once every item is written; its step
listing skips the temporary name. But on a local or POSIX file system it accepts any
`<step>` directory, marker or not (one left by a copy, an older tool or an object store's
half-written save). So a step counts here only with its marker: unmarked step
directories are set aside as `<step>.incomplete-<n>` when the Checkpointer opens, before
Orbax can list, restore or garbage-collect around them (tests simulate both cases).
"""

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import gin
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from etils import epath

from flan_tune.errors import CheckpointError
from flan_tune.model import checkpoint

PyTree = Any
STATE, DATA = "state", "data"
COMMIT_MARKER = "commit_success.txt"


@gin.configurable
@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """How often to save (in steps), how many steps to keep, and whether saves run in
  the background while training continues."""

  save_interval_steps: int = 1000
  max_to_keep: int | None = 3
  async_save: bool = True

  def __post_init__(self):
    if self.save_interval_steps < 1:
      raise CheckpointError(f"CheckpointConfig.save_interval_steps="
                            f"{self.save_interval_steps} must be >= 1")
    if self.max_to_keep is not None and self.max_to_keep < 1:
      raise CheckpointError(f"CheckpointConfig.max_to_keep={self.max_to_keep} must be >= 1 "
                            "or None (keep all)")


class Checkpointer:
  """Saves and restores (train state, data state) under `model_dir/checkpoints`."""

  def __init__(self, model_dir: str | epath.Path, config: CheckpointConfig = CheckpointConfig()):
    # Orbax refuses relative local paths (mid-save, after the first steps): make it absolute.
    local = "://" not in str(model_dir)
    self.directory = epath.Path(os.path.abspath(model_dir) if local else model_dir) / "checkpoints"
    self.config = config
    if jax.process_index() == 0:
      set_aside_incomplete_steps(self.directory)
    if jax.process_count() > 1:  # no process may list steps before they are set aside
      multihost_utils.sync_global_devices("flan_tune: incomplete checkpoints set aside")
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=config.save_interval_steps, max_to_keep=config.max_to_keep,
        enable_async_checkpointing=config.async_save, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=(STATE, DATA))

  def save(self, step: int, state: PyTree, data_state: Mapping[str, Any],
           force: bool = False) -> bool:
    """Saves if `step` is on the interval (or `force`); True if a save started.

    With async saves this returns once the arrays are copied off the devices; the
    state may then be donated or updated."""
    return self._manager.save(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(state),
                                         DATA: ocp.args.JsonSave(dict(data_state))}),
        force=force)

  def should_save(self, step: int) -> bool:
    """Whether `save(step, ...)` would save: callers build the data state only then (it
    gathers every host's data position)."""
    return self._manager.should_save(step)

  def all_steps(self) -> list[int]:
    """Complete steps on disk, oldest first (unfinished saves are not listed)."""
    self._manager.reload()
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def restore(self, abstract_state: PyTree, step: int | None = None) -> tuple[PyTree, dict]:
    """(state, data_state) of `step` (default: the latest complete one).

    `abstract_state` is a pytree of `jax.ShapeDtypeStruct`s whose shardings say where
    each array goes, so a checkpoint written on one mesh restores onto another; see
    `abstract_like`."""
    self.wait()
    if step is None:
      step = self.latest_step()
      if step is None:
        raise CheckpointError(f"no complete checkpoint in {self.directory}")
    elif step not in self.all_steps():
      raise CheckpointError(f"step {step} is not a complete checkpoint in {self.directory} "
                            f"(complete: {self.all_steps()})")
    restored = self._manager.restore(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract_state),
                                         DATA: ocp.args.JsonRestore()}))
    return restored[STATE], dict(restored[DATA])

  def wait(self) -> None:
    """Blocks until a background save has committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases Orbax's threads."""
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def complete_step_directory(path: str | epath.Path) -> epath.Path:
  """A training run's latest complete step directory (`path` is MODEL_DIR or
  MODEL_DIR/checkpoints), or `path` itself when it is one complete step directory."""
  path = epath.Path(path)
  if path.name.isdigit():
    if not (path / COMMIT_MARKER).exists():
      raise CheckpointError(f"{path}: an incomplete checkpoint (no {COMMIT_MARKER})")
    return path
  directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
  steps = sorted(int(p.name) for p in directory.iterdir()
                 if p.name.isdigit() and (p / COMMIT_MARKER).exists())
  if not steps:
    raise CheckpointError(f"{path}: no complete training checkpoint")
  return directory / str(steps[-1])


def restore_params(step_directory: epath.Path, abstract_params: PyTree) -> PyTree:
  """Only the params of a saved train state (the optimizer state is not read), as host
  numpy arrays shaped like `abstract_params`."""
  try:
    return checkpoint.restore_on_host(epath.Path(step_directory) / STATE,
                                      {"params": abstract_params}, partial=True)["params"]
  except (ValueError, KeyError, FileNotFoundError) as e:
    raise CheckpointError(f"{step_directory}: cannot restore its params: {e}") from None


def set_aside_incomplete_steps(directory: epath.Path) -> list[str]:
  """Renames `<step>` directories without Orbax's commit marker so no listing sees them."""
  if not directory.exists():
    return []
  moved = []
  for path in sorted(directory.iterdir()):
    if path.is_dir() and path.name.isdigit() and not (path / COMMIT_MARKER).exists():
      suffix = 0
      while (target := directory / f"{path.name}.incomplete-{suffix}").exists():
        suffix += 1
      path.rename(target)
      moved.append(target.name)
  if moved:
    logging.warning("checkpoints: %s had no %s (a save that never finished); set aside as %s",
                    directory, COMMIT_MARKER, ", ".join(moved))
  return moved


def abstract_like(state: PyTree, shardings: PyTree) -> PyTree:
  """ShapeDtypeStructs of `state` placed by `shardings` (a matching pytree), the target
  that `Checkpointer.restore` takes."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      state, shardings)
