"""Unlabeled text about the offline world, registered as T5's span-corruption task.

Every fact of the world appears in the corpus in several phrasings and orders, so a
small T5 pretrained on it (the baseline) knows what the closed-book, comparison and
two-hop families ask about, and instruction tuning has to teach only how to answer.
"""

import functools
import random
from typing import Dict, List

import seqio
from t5.data import preprocessors as t5_preprocessors

from flan_tune.tasks import GeneratorSource
from flan_tune.tasks.seeding import stable_digest
from flan_tune_tasks.offline import conlang
from flan_tune_tasks.offline import world as world_lib
from flan_tune_tasks.offline.vocabulary import offline_vocabulary

TASK_NAME = "offline_span_corruption"
DOCUMENTS_PER_SUBJECT = {"train": 6, "validation": 1}

_OPENINGS = ("Notes on {s}.", "A short account of {s}.", "About {s}.", "What we know of {s}.",
             "From the town records: {s}.", "{s}, as the neighbours tell it.")
_DAY_EVENTS = (
    "On market day {a} met {b} by the {landmark}.",
    "{a} walked along the {river} with {b} and talked about {product}.",
    "Last spring {a} visited {b} and brought some {food}.",
    "{a} and {b} played music together, the {instrument} and a song.",
    "When the rain came, {a} waited with {b} under the eaves.",
)


def _stated_facts(subject: str, rng: random.Random) -> List[str]:
  """An opening line, then every fact about the subject in a shuffled order and a drawn
  phrasing."""
  facts = [f for f in world_lib.get_world().facts() if f.subject == subject]
  rng.shuffle(facts)
  return ([rng.choice(_OPENINGS).format(s=subject)] +
          [world_lib.fact_sentence(f, rng.randrange(3)) for f in facts])


def _person_document(person: world_lib.Person, rng: random.Random) -> str:
  world = world_lib.get_world()
  sentences = _stated_facts(person.name, rng)
  town = world.town_by_name[person.town]
  friend = world.person_by_name[person.friend]
  sentences.append(rng.choice(_DAY_EVENTS).format(
      a=person.first_name, b=friend.name, landmark=town.landmark.split(" ", 1)[1],
      river=town.river, product=town.product, food=person.food,
      instrument=person.instrument))
  return " ".join(sentences)


def _town_document(town: world_lib.Town, rng: random.Random) -> str:
  world = world_lib.get_world()
  sentences = _stated_facts(town.name, rng)
  residents = world.residents(town.name)
  if residents:
    named = rng.sample(residents, min(3, len(residents)))
    sentences.append("Among its people are " + ", ".join(p.name for p in named[:-1]) +
                     (" and " if len(named) > 1 else "") + named[-1].name + ".")
  return " ".join(sentences)


_GLOSS = ("In Velari, {e} is {v}.", "The Velari word for {e} is {v}.",
          "Velari says {v} for {e}.")
_GRAMMAR = (
    "In Velari the verb comes last, after the object; the object is marked by {obj}.",
    "Velari puts adjectives after the noun and adds -{plural} to make a plural.",
    "A Velari verb is followed by {past} for the past and {future} for the future.",
)


def _glossary_documents(rng: random.Random) -> List[str]:
  """Velari word lists and grammar notes, so the translation cluster can be held out
  and still be learnable from what the corpus teaches."""
  words = [(e, v) for e, v in conlang.lexicon().items() if not e.startswith("<")]
  rng.shuffle(words)
  particles = conlang.lexicon()
  grammar = " ".join(g.format(obj=particles["<object>"], plural=conlang.PLURAL_SUFFIX,
                               past=particles["<past>"], future=particles["<future>"])
                     for g in _GRAMMAR)
  docs = []
  for start in range(0, len(words), 12):
    glosses = [rng.choice(_GLOSS).format(e=e, v=v) for e, v in words[start:start + 12]]
    docs.append("A Velari word list. " + " ".join(glosses) + " " + grammar)
  return docs


@functools.cache
def documents() -> Dict[str, List[str]]:
  """Train and validation documents; each subject gets fresh phrasings per document."""
  world = world_lib.get_world()
  rng = random.Random(stable_digest("offline-corpus", world_lib.WORLD_SEED))
  splits = {}
  for split, count in DOCUMENTS_PER_SUBJECT.items():
    docs = []
    for _ in range(count):
      docs += [_person_document(p, rng) for p in world.people]
      docs += [_town_document(t, rng) for t in world.towns]
      docs += _glossary_documents(rng)
    rng.shuffle(docs)
    splits[split] = docs
  return splits


def _records(split: str):
  return ({"text": text} for text in documents()[split])


def register() -> seqio.Task:
  """T5's span corruption (15% noise, mean span 3) over the corpus, inputs and targets
  in the offline vocabulary."""
  vocabulary = offline_vocabulary()
  features = {"inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
              "targets": seqio.Feature(vocabulary, add_eos=True)}
  return seqio.TaskRegistry.add(
      TASK_NAME,
      source=GeneratorSource(_records, splits=tuple(DOCUMENTS_PER_SUBJECT)),
      preprocessors=[
          functools.partial(t5_preprocessors.rekey,
                            key_map={"inputs": None, "targets": "text"}),
          seqio.preprocessors.tokenize,
          t5_preprocessors.span_corruption,
          seqio.preprocessors.append_eos_after_trim,
      ],
      output_features=features, metric_fns=[])
