"""Stage 2: FLAN-style mixtures of the registered instruction tasks."""

from flan_tune.mixtures.builder import (  # noqa: F401
    DEFAULT_STYLE_WEIGHTS, MixtureSpec, capped_rates, compute_rates, mixture_rates,
    register_eval_mixture, register_held_out_mixtures, register_mixture, unregister_mixture)
