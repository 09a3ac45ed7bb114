"""How an offline task family is declared: a seeded generator, templates, metrics.

Each family draws unique examples from one generator seeded by the family's name and
cuts that stream into train, validation and test by position, so the splits never share
an example and adding a family never changes another.
"""

import functools
import random
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from flan_tune.errors import SourceError
from flan_tune.tasks import GeneratorSource, Template, metrics, postprocessors, register_task
from flan_tune.tasks.seeding import stable_digest
from flan_tune.tasks.spec import FewShotConfig
from flan_tune_tasks.offline.vocabulary import offline_vocabulary

COLLECTION = "offline"
SPLIT_SIZES = {"train": 1000, "validation": 100, "test": 100}
FEWSHOT = FewShotConfig(k=2, max_input_tokens=512, pool_size=200)
MAX_DRAWS_PER_EXAMPLE = 50

Example = Dict[str, object]
Generator = Callable[[random.Random], Example]

FAMILIES: List[str] = []  # registration order


@functools.cache
def _draw(name: str, generate: Generator, sizes: tuple) -> Dict[str, List[Example]]:
  """All splits of a family, drawn once per process."""
  rng = random.Random(stable_digest("offline-family", name))
  total = sum(size for _, size in sizes)
  seen, examples = set(), []
  for _ in range(total * MAX_DRAWS_PER_EXAMPLE):
    if len(examples) == total:
      break
    example = generate(rng)
    key = stable_digest(example)
    if key not in seen:
      seen.add(key)
      examples.append(example)
  else:
    if len(examples) < total:
      raise SourceError(f"offline family {name!r}: its generator gave only {len(examples)} "
                        f"distinct examples in {total * MAX_DRAWS_PER_EXAMPLE} draws, but "
                        f"the splits {dict(sizes)} need {total}; lower the sizes")
  splits, start = {}, 0
  for split, size in sizes:
    splits[split] = examples[start:start + size]
    start += size
  return splits


def _split_examples(name: str, generate: Generator, sizes: tuple, split: str):
  return _draw(name, generate, sizes)[split]


def register_family(name: str, cluster: str, generate: Generator,
                    templates: Sequence[Template], *,
                    options: Optional[Sequence[str]] = None,
                    options_field: Optional[str] = None,
                    rationale_field: Optional[str] = None,
                    metric_fns: Sequence[Callable] = metrics.ACCURACY,
                    postprocess_fn: Optional[Callable] = postprocessors.strip,
                    sizes: Mapping[str, int] = SPLIT_SIZES) -> List[str]:
  """Registers one offline family in every prompt style it supports.

  `generate(rng)` returns one example as a dict of strings (or lists of strings); it
  must draw every random choice from `rng`.
  """
  size_items = tuple(sizes.items())
  source = GeneratorSource(functools.partial(_split_examples, name, generate, size_items),
                           splits=tuple(sizes))
  names = register_task(
      name=name, source=source, templates=templates, cluster=cluster,
      collection=COLLECTION, options=options, options_field=options_field,
      rationale_field=rationale_field, metric_fns=metric_fns,
      postprocess_fn=postprocess_fn, fewshot=FEWSHOT, vocabulary=offline_vocabulary(),
      seed=stable_digest("offline-render", name) % 2**31)
  FAMILIES.append(name)
  return names
