"""The launch's configuration as the command line gives it: gin files and `--gin.KEY=VALUE`
bindings (T5X's flags), and feature lengths. The `flan-tune` command and the tools in
tools/ parse with these, so gin stays at the edges."""

import argparse
import logging
import os
from collections.abc import Sequence

from flan_tune.errors import FlanTuneError


def parse_lengths(text: str) -> dict:
  """'inputs=512,targets=128' -> {'inputs': 512, 'targets': 128}."""
  lengths = {}
  for part in text.split(","):
    key, _, value = part.partition("=")
    if key.strip() not in ("inputs", "targets") or not value.strip().isdigit():
      raise argparse.ArgumentTypeError(
          f"expected inputs=N,targets=M, got {text!r}")
    lengths[key.strip()] = int(value)
  if set(lengths) != {"inputs", "targets"}:
    raise argparse.ArgumentTypeError(f"expected inputs=N,targets=M, got {text!r}")
  return lengths


GIN_FLAG = "--gin."
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A wheel installs the checkout's gin/ as site-packages/flan_tune_gin (site-packages/gin is
# gin-config itself, so the installed name is looked for first).
_INSTALLED_GIN_DIR = os.path.join(_ROOT, "flan_tune_gin")
GIN_DIR = _INSTALLED_GIN_DIR if os.path.isdir(_INSTALLED_GIN_DIR) else os.path.join(_ROOT, "gin")


def split_gin_flags(argv: Sequence[str]) -> tuple:
  """T5X's `--gin.KEY=VALUE` flags, which argparse cannot declare, taken out in order;
  they bind after every --gin_file."""
  flags = [arg for arg in argv if arg.startswith(GIN_FLAG)]
  return [arg for arg in argv if not arg.startswith(GIN_FLAG)], [
      flag[len(GIN_FLAG):] for flag in flags]


def _quiet_gin_probe(record: logging.LogRecord) -> bool:
  """Drops gin's "Path not found" error, logged while it probes the Python path for an
  `include`d file before finding it on the search path."""
  return not (record.pathname.endswith("resource_reader.py") and
              record.getMessage().startswith("Path not found"))


def _tolerate_namespace_packages() -> None:
  """gin probes an `include`d path's directory as a Python package first, and crashes
  (TypeError) when it is a namespace package on sys.path: e.g. `include 'runs/...'` under
  `python -m` in a directory holding an output folder named runs/. Such a path is simply
  not a package resource, and the search path then finds the file."""
  from gin import config as gin_config
  from gin import resource_reader

  def exists(path: str) -> bool:
    try:
      return resource_reader.system_path_file_exists(path)
    except TypeError:
      return False

  gin_config._FILE_READERS[:] = [  # pylint: disable=protected-access
      (reader, exists if check is resource_reader.system_path_file_exists else check)
      for reader, check in gin_config._FILE_READERS]  # pylint: disable=protected-access


def parse_gin(files: Sequence[str], bindings: Sequence[str]) -> None:
  """Files in order, then each binding; errors name the file or binding at fault.

  flan-tune's gin files (gin/, installed as flan_tune_gin) are on the search path, so
  `include 'models/...'` and `--gin_file=runs/finetune.gin` work from any directory."""
  import gin

  logging.getLogger().addFilter(_quiet_gin_probe)
  _tolerate_namespace_packages()
  gin.add_config_file_search_path(GIN_DIR)
  for path in files:
    found = path if os.path.exists(path) else os.path.join(GIN_DIR, path)
    try:
      gin.parse_config_file(found if os.path.exists(found) else path)
    except (IOError, ValueError, SyntaxError) as e:
      raise FlanTuneError(f"--gin_file={path}: {e}") from None
  for binding in bindings:
    if "=" not in binding:
      raise FlanTuneError(f"{GIN_FLAG}{binding}: expected {GIN_FLAG}KEY=VALUE")
    try:
      gin.parse_config(binding)
    except (ValueError, SyntaxError) as e:
      raise FlanTuneError(f"--gin.{binding}: {e}") from None
