"""Stage 2: FLAN-style mixtures of the registered instruction tasks.

The public names load on first use, so input workers, which import `sampling`, come
without seqio and TensorFlow."""

import importlib

_EXPORTS = ("DEFAULT_STYLE_WEIGHTS", "MixtureSpec", "capped_rates", "compute_rates",
            "mixture_rates", "register_eval_mixture", "register_held_out_mixtures",
            "register_mixture", "unregister_mixture")
__all__ = list(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f"{__name__}.builder"), name)
