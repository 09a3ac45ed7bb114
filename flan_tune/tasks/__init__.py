"""Stage 1: templated instruction tasks registered as seqio tasks, one per prompt style."""

from flan_tune.tasks.registry import get_task, register_task, task_names, unregister
from flan_tune.tasks.sources import CsvSource, GeneratorSource, JsonlSource, tfds_source
from flan_tune.tasks.spec import FewShotConfig, InstructionTask
from flan_tune.tasks.templates import PromptStyle, Template
