"""Stage 1: templated instruction tasks registered as seqio tasks, one per prompt style."""

from flan_tune.tasks.registry import get_task, register_task, task_names, unregister  # noqa: F401
from flan_tune.tasks.sources import CsvSource, GeneratorSource, JsonlSource, tfds_source  # noqa: F401
from flan_tune.tasks.spec import FewShotConfig, InstructionTask  # noqa: F401
from flan_tune.tasks.templates import PromptStyle, Template  # noqa: F401
