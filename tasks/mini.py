"""A tiny offline collection (mixture `flan_mini`): four generated task families in
four clusters, enough to exercise every prompt style with no network and no downloads.

Each family draws unique examples from one seeded generator and splits them by
position, so train, validation and test never share an example.
"""

import functools
import random

import t5.evaluation.metrics as t5_metrics

from flan_tune.mixtures import MixtureSpec, register_held_out_mixtures, register_mixture
from flan_tune.tasks import GeneratorSource, Template, register_task

COLLECTION = "mini"
SPLIT_SIZES = {"train": 400, "validation": 50, "test": 50}
ANIMALS = ("fox", "owl", "crab", "mole", "heron", "otter", "lynx", "newt", "stoat", "wren")
COLORS = ("red", "blue", "green", "grey", "golden", "white", "black", "amber")
WORDS = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "haven", "inlet",
         "juniper", "kestrel", "lagoon", "meadow", "nectar", "orchard", "pebble")


def _split(make_example, seed: int, split: str):
  """Unique examples from one seeded stream, cut into disjoint splits by position."""
  rng, seen, examples = random.Random(seed), set(), []
  total = sum(SPLIT_SIZES.values())
  while len(examples) < total:
    example = make_example(rng)
    key = tuple(sorted(example.items()))
    if key not in seen:
      seen.add(key)
      examples.append(example)
  start = 0
  for name, size in SPLIT_SIZES.items():
    if name == split:
      return examples[start:start + size]
    start += size
  raise ValueError(split)


def _review(rng):
  good = ("lovely", "bright", "warm", "delightful", "gripping", "charming")
  bad = ("dull", "tedious", "cold", "clumsy", "dreary", "grating")
  positive = rng.random() < 0.5
  words = rng.sample(good if positive else bad, 2)
  thing = rng.choice(("play", "song", "novel", "film", "meal", "concert"))
  return {"text": f"The {thing} by the {rng.choice(ANIMALS)} was {words[0]} and {words[1]}.",
          "label": "positive" if positive else "negative"}


def _inference(rng):
  animal, color = rng.choice(ANIMALS), rng.choice(COLORS)
  kind = rng.randrange(3)
  if kind == 0:
    hypothesis, label = f"The {animal} is {color}.", "yes"
  elif kind == 1:
    other = rng.choice([c for c in COLORS if c != color])
    hypothesis, label = f"The {animal} is {other}.", "no"
  else:
    other = rng.choice([a for a in ANIMALS if a != animal])
    hypothesis, label = f"The {other} is {color}.", "it is not possible to tell"
  return {"premise": f"In the valley, the {animal} is {color}.", "hypothesis": hypothesis,
          "label": label}


def _arithmetic(rng):
  animal = rng.choice(ANIMALS)
  a, b, c = rng.randrange(2, 30), rng.randrange(2, 30), rng.randrange(1, 20)
  total = a + b
  answer = total - c
  return {"question": f"The {animal} gathered {a} acorns, then {b} more, and ate {c}. "
                      "How many acorns are left?",
          "rationale": f"It gathered {a} + {b} = {total} acorns. After eating {c}, "
                       f"{total} - {c} = {answer} remain.",
          "answer": str(answer)}


def _reverse(rng):
  words = rng.sample(WORDS, rng.randrange(3, 6))
  return {"words": " ".join(words), "reversed": " ".join(reversed(words))}


def _source(make_example, seed):
  return GeneratorSource(functools.partial(_split, make_example, seed),
                         splits=tuple(SPLIT_SIZES))


register_task(
    name="mini_sentiment", cluster="sentiment", collection=COLLECTION,
    source=_source(_review, 1), options=["positive", "negative"],
    templates=[
        Template("{text}\nWas that review positive or negative? {options_}", "{label}"),
        Template("Review: {text}\nHow does the writer feel? {options_}", "{label}"),
        Template("What is the sentiment of this review?\n{text}\n{options_}", "{label}"),
        Template("Write a short {label} review.", "{text}", inverted=True),
    ],
    metric_fns=[t5_metrics.accuracy])

register_task(
    name="mini_inference", cluster="nli", collection=COLLECTION,
    source=_source(_inference, 2), options=["yes", "no", "it is not possible to tell"],
    templates=[
        Template("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail "
                 "the hypothesis? {options_}", "{label}"),
        Template("{premise}\nCan we conclude that \"{hypothesis}\"? {options_}", "{label}"),
        Template("Given that {premise} Is it true that {hypothesis} {options_}", "{label}"),
        Template("Write a premise for which \"{hypothesis}\" gets the answer {label}.",
                 "{premise}", inverted=True),
    ],
    metric_fns=[t5_metrics.accuracy])

register_task(
    name="mini_arithmetic", cluster="arithmetic", collection=COLLECTION,
    source=_source(_arithmetic, 3), rationale_field="rationale",
    templates=[
        Template("{question}", "{answer}"),
        Template("Solve this word problem: {question}", "{answer}"),
        Template("Question: {question}\nAnswer:", "{answer}"),
        Template("Write a word problem whose answer is {answer}.", "{question}", inverted=True),
    ],
    metric_fns=[t5_metrics.accuracy])

register_task(
    name="mini_reverse", cluster="string_manipulation", collection=COLLECTION,
    source=_source(_reverse, 4),
    templates=[
        Template("Reverse the order of these words: {words}", "{reversed}"),
        Template("{words}\nWrite the words above from last to first.", "{reversed}"),
        Template("Words: {words}\nThe same words in reverse order:", "{reversed}"),
        Template("These words are in reverse order: {reversed}. Put them back.",
                 "{words}", inverted=True),
    ],
    metric_fns=[t5_metrics.accuracy])

TASKS = ("mini_sentiment", "mini_inference", "mini_arithmetic", "mini_reverse")
SPEC = MixtureSpec(caps={COLLECTION: 300})
register_mixture("flan_mini", TASKS, SPEC)
HELD_OUT = register_held_out_mixtures("flan_mini", TASKS, SPEC)
