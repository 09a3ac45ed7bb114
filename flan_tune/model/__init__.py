"""The T5 model: config, Flax network, incremental decoding, HF checkpoint interchange.

`flan_tune.model.hf` (import/export of Hugging Face checkpoints, vocabulary) is imported
on its own, since it pulls in seqio and TensorFlow.
"""

from flan_tune.model.config import ModelConfigError, T5Config  # noqa: F401
from flan_tune.model.network import (  # noqa: F401
    T5, abstract_variables, init_variables, logical_axes, stack_layers, unbox, unstack_layers)
