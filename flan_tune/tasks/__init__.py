"""Stage 1: templated instruction tasks registered as seqio tasks, one per prompt style.

The public names load on first use, so the modules that input workers import (render,
records, templates) come without seqio and TensorFlow."""

import importlib

_EXPORTS = {
    "get_task": "registry", "register_task": "registry", "task_names": "registry",
    "unregister": "registry",
    "CsvSource": "sources", "GeneratorSource": "sources", "JsonlSource": "sources",
    "ParquetSource": "sources", "tfds_source": "sources",
    "FewShotConfig": "spec", "InstructionTask": "spec",
    "PromptStyle": "templates", "Template": "templates",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  module = _EXPORTS.get(name)
  if module is None:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f"{__name__}.{module}"), name)
