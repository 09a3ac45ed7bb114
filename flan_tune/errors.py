"""Errors that say what is wrong and where, so bad input never becomes a silent example."""


class FlanTuneError(ValueError):
  """Base class: a user's input (task, template, file, mixture, flag) is wrong, or a run
  cannot go on; the message says what and where."""


class TemplateError(FlanTuneError):
  """A template cannot be parsed or names something the task does not provide."""


class SourceError(FlanTuneError):
  """A data file or generator yields something the task cannot use."""


class RegistrationError(FlanTuneError):
  """A task or mixture definition is inconsistent (names, options, few-shot pool)."""


class MixtureError(FlanTuneError):
  """A mixture names unknown tasks or would sample with zero or negative rates."""


class ModelConfigError(FlanTuneError):
  """A model configuration field has a value the model cannot be built with."""


class CheckpointError(FlanTuneError):
  """A model, Hugging Face or training checkpoint (or a data-iterator state) is missing,
  incomplete, holds pickle weights, or does not match what restores it."""


class PartitioningError(FlanTuneError):
  """A mesh, rule set or batch size cannot shard over the available devices."""


class NonFiniteLossError(FlanTuneError):
  """Training produced a NaN or infinite loss; the loop stops without saving."""
