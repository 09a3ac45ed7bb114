"""The knowledge families: answers agree with the world, labels are balanced, inverted
templates ask for what is normally given, and every template renders in every style.

Questions are parsed back with the module's own phrasing tables and answered again
from the world, independently of the generators.
"""

import collections
import functools
import random
import re
import string

import pytest

from flan_tune.tasks import PromptStyle, registry, render
from flan_tune_tasks.offline import knowledge
from flan_tune_tasks.offline import world as world_lib
from flan_tune_tasks.offline.world import Fact, fact_sentence, get_world

FAMILIES = ("rc_extractive", "rc_multiple_choice", "rc_boolean", "cbqa_people", "cbqa_towns",
            "cbqa_two_hop", "commonsense_tools", "commonsense_pet_legs",
            "commonsense_everyday", "compare_town_age", "compare_people_age",
            "compare_population")
WORLD = get_world()
PEOPLE = WORLD.person_by_name
TOWNS = WORLD.town_by_name


def examples(name: str) -> list:
  """Every split of a family, train first."""
  task = registry.get_task(name)
  return [r for split in task.source.splits for r in task.source.records(split)]


@functools.cache
def _regex(phrasing: str, subjects: tuple = ()) -> re.Pattern:
  """A phrasing's slots as named groups; a repeated slot must repeat its text, and `s`
  must be one of `subjects` when they are given."""
  parts, seen = [], set()
  for literal, field, _, _ in string.Formatter().parse(phrasing):
    parts.append(re.escape(literal))
    if field in seen:
      parts.append(f"(?P={field})")
    elif field:
      body = "|".join(map(re.escape, subjects)) if field == "s" and subjects else ".+?"
      parts.append(f"(?P<{field}>{body})")
      seen.add(field)
  return re.compile("".join(parts))


def parse(text: str, table: dict, subjects=()) -> list:
  """(key, slots) for every phrasing of `table` that the text fully matches, with the
  `s` slot naming one of `subjects` when they are given."""
  subjects = tuple(sorted(subjects, key=len, reverse=True))
  found = []
  for key, phrasings in table.items():
    for phrasing in (phrasings,) if isinstance(phrasings, str) else phrasings:
      match = _regex(phrasing, subjects).fullmatch(text)
      if match:
        found.append((key, match.groupdict()))
  return found


def parse_one(text: str, table: dict, subjects=()) -> tuple:
  """The unique parse of a question: several parses would make it ambiguous."""
  found = {(key, tuple(sorted(slots.items()))) for key, slots in parse(text, table, subjects)}
  assert len(found) == 1, f"{text!r} parses as {found}"
  key, slots = found.pop()
  return key, dict(slots)


@functools.cache
def true_sentences() -> frozenset:
  return frozenset(fact_sentence(f, v) for f in WORLD.facts() for v in range(3))


@functools.cache
def own_sentences(subject: str) -> frozenset:
  return frozenset(fact_sentence(f, v) for f in WORLD.facts() if f.subject == subject
                   for v in range(3))


def sentences(text: str) -> list:
  return re.split(r"(?<=\.) ", text)


def value(entity, relation: str) -> str:
  return str(getattr(entity, relation))


def states(passage: str, subject: str, relation: str, fact_value: str) -> bool:
  return any(fact_sentence(Fact(subject, relation, fact_value), v) in sentences(passage)
             for v in range(3))


def entity(name: str):
  return PEOPLE.get(name) or TOWNS[name]


def assert_balanced(labels: list, low: float, high: float):
  counts = collections.Counter(labels)
  for label, count in counts.items():
    assert low <= count / len(labels) <= high, counts


QUESTIONS = {**knowledge.PERSON_QUESTIONS, **knowledge.TOWN_QUESTIONS}
NAMES = set(PEOPLE) | set(TOWNS)


# ---------------------------------------------------------------- declarations, rendering

@pytest.mark.parametrize("name", FAMILIES)
def test_declaration(name):
  task = registry.get_task(name)
  assert len(task.templates) >= 8
  assert any(t.inverted for t in task.templates)
  if task.has_options:
    assert sum(t.shows_options() for t in task.templates) > len(task.templates) / 2


@pytest.mark.parametrize("name", FAMILIES)
def test_inverted_templates_ask_for_a_given_field(name):
  """The target is a field other than the answer, hidden from the inputs, which name
  the answer instead."""
  task = registry.get_task(name)
  renderer = render.PromptRenderer(task, PromptStyle.ZS_INV, lambda t: len(t.split()),
                                   512)
  for fields in task.source.records("test")[:20]:
    for index in task.templates_for(PromptStyle.ZS_INV):
      out = renderer.render(fields, template_index=index)
      givens = [v for k, v in fields.items() if k not in ("answer", "_origin")]
      assert out.targets in givens and out.targets != fields["answer"]
      assert out.targets not in out.inputs and fields["answer"] in out.inputs


@pytest.mark.parametrize("name", FAMILIES)
def test_generators_are_deterministic(name):
  generate = getattr(knowledge, name)
  first = [generate(random.Random(5)) for _ in range(3)]
  assert first == [generate(random.Random(5)) for _ in range(3)]
  rng_a, rng_b = random.Random(9), random.Random(9)
  assert [generate(rng_a) for _ in range(30)] == [generate(rng_b) for _ in range(30)]


# ---------------------------------------------------------------- reading comprehension

@pytest.mark.parametrize("name", ["rc_extractive", "rc_multiple_choice", "rc_boolean"])
def test_passages_state_only_true_facts(name):
  """Only the subject's own facts name it: a distractor such as "B and A are best
  friends" would give a question about A a second answer."""
  table = knowledge.YES_NO_QUESTIONS if name == "rc_boolean" else QUESTIONS
  for example in examples(name):
    _, slots = parse_one(example["question"], table, NAMES)
    own = own_sentences(slots["s"])
    passage = sentences(example["passage"])
    assert 3 <= len(passage) <= 6
    assert set(passage) <= true_sentences(), example["passage"]
    assert all(s in own for s in passage if slots["s"] in s), example["passage"]


def test_rc_extractive_answers_are_true_spans():
  for example in examples("rc_extractive"):
    relation, slots = parse_one(example["question"], QUESTIONS, NAMES)
    subject = slots["s"]
    assert subject == example["subject"]
    assert example["answer"] == value(entity(subject), relation)
    assert states(example["passage"], subject, relation, example["answer"])


def test_rc_multiple_choice_has_exactly_one_true_choice():
  positions = []
  for example in examples("rc_multiple_choice"):
    relation, slots = parse_one(example["question"], QUESTIONS, NAMES)
    subject = entity(slots["s"])
    choices = example["choices"]
    assert len(choices) == 4 == len(set(choices))
    assert [c for c in choices if c == value(subject, relation)] == [example["answer"]]
    assert states(example["passage"], subject.name, relation, example["answer"])
    if relation == "friend":  # nobody offered calls the subject their best friend
      assert all(PEOPLE[c].friend != subject.name for c in choices if c != example["answer"])
    positions.append(choices.index(example["answer"]))
  assert_balanced(positions, 0.2, 0.3)


def test_rc_boolean_answers_and_balance():
  for example in examples("rc_boolean"):
    relation, slots = parse_one(example["question"], knowledge.YES_NO_QUESTIONS, NAMES)
    subject = entity(slots["s"])
    truth = value(subject, relation)
    assert (slots["v"] == truth) == (example["answer"] == "yes"), example
    assert states(example["passage"], subject.name, relation, truth)
    if relation == "friend" and example["answer"] == "no":
      assert PEOPLE[slots["v"]].friend != subject.name
  assert_balanced([e["answer"] for e in examples("rc_boolean")], 0.45, 0.55)


# ---------------------------------------------------------------- closed-book QA

def test_cbqa_people_answers_match_the_world():
  relations = collections.Counter()
  for example in examples("cbqa_people"):
    relation, slots = parse_one(example["question"], knowledge.PERSON_QUESTIONS, PEOPLE)
    assert slots["s"] == example["subject"]
    assert example["answer"] == value(PEOPLE[slots["s"]], relation)
    relations[relation] += 1
  assert set(relations) == set(world_lib.PERSON_RELATIONS)


def test_cbqa_towns_answers_match_the_world():
  reverse = 0
  for example in examples("cbqa_towns"):
    forward = parse(example["question"], knowledge.TOWN_QUESTIONS, TOWNS)
    if forward:
      relation, slots = parse_one(example["question"], knowledge.TOWN_QUESTIONS, TOWNS)
      assert example["answer"] == value(TOWNS[slots["s"]], relation)
    else:
      relation, slots = parse_one(example["question"], knowledge.TOWN_REVERSE_QUESTIONS)
      matching = [t.name for t in WORLD.towns if value(t, relation) == slots["v"]]
      assert matching == [example["answer"]]
      reverse += 1
  assert reverse > 0


def test_cbqa_two_hop_answers_and_rationales():
  for example in examples("cbqa_two_hop"):
    (first, second), slots = parse_one(example["question"], knowledge.TWO_HOP_QUESTIONS,
                                       PEOPLE)
    person = PEOPLE[slots["s"]]
    bridge = entity(value(person, first))
    assert example["answer"] == value(bridge, second)
    hops = sentences(example["rationale"])
    assert hops == [fact_sentence(Fact(person.name, first, bridge.name)),
                    fact_sentence(Fact(bridge.name, second, example["answer"]))]


# ---------------------------------------------------------------- commonsense

def _confusable(job_a: str, job_b: str) -> bool:
  return (job_a, job_b) in knowledge.CONFUSABLE_JOBS or (
      job_b, job_a) in knowledge.CONFUSABLE_JOBS


def test_commonsense_tools_answers_match_the_job():
  tool_of, place_of = world_lib.JOB_TOOL, world_lib.JOB_WORKPLACE
  kinds = collections.Counter()
  for example in examples("commonsense_tools"):
    kind, slots = parse_one(example["question"], knowledge.TOOL_QUESTIONS)
    answer, choices = example["answer"], example["choices"]
    assert answer in choices and len(choices) == 4 == len(set(choices))
    if kind in ("tool", "workplace"):
      job = slots["job"]
      attribute = tool_of if kind == "tool" else place_of
      assert answer == attribute[job]
      holders = [j for c in choices for j in world_lib.JOBS if attribute[j] == c]
      assert all(j == job or not _confusable(j, job) for j in holders)
    else:
      job = answer
      given = slots["tool"] if kind == "job_from_tool" else slots["workplace"]
      attribute = tool_of if kind == "job_from_tool" else place_of
      assert [c for c in choices if attribute[c] == given] == [answer]
      assert not any(_confusable(c, answer) for c in choices)
    if "p" in slots:
      assert PEOPLE[slots["p"]].job == job
    kinds[kind] += 1
  assert set(kinds) == set(knowledge.TOOL_QUESTIONS)


def test_commonsense_pet_legs_answers_and_balance():
  for example in examples("commonsense_pet_legs"):
    kind, slots = parse_one(example["question"], knowledge.PET_LEG_QUESTIONS, PEOPLE)
    person = PEOPLE[slots["s"]]
    owner = PEOPLE[person.friend] if kind == "friend" else person
    assert example["answer"] == str(world_lib.PET_LEGS[owner.pet])
    steps = sentences(example["rationale"])
    assert steps[-1] == f"A {owner.pet} has {example['answer']} legs."
    assert set(steps[:-1]) <= true_sentences() and len(steps) == (3 if kind == "friend" else 2)
  assert_balanced([e["answer"] for e in examples("commonsense_pet_legs")], 0.4, 0.6)


def test_commonsense_everyday_pool_is_consistent():
  items = knowledge.EVERYDAY_USES + knowledge.EVERYDAY_EFFECTS
  assert len({item[0] for item in items}) == len(items)
  for _, answer, wrong in items:
    assert len(set(wrong)) == 3 and answer not in wrong
  for situation, _, _ in knowledge.EVERYDAY_EFFECTS:
    assert situation.startswith("someone ")


def test_commonsense_everyday_answers_match_the_pool():
  table = {"use": knowledge.EVERYDAY_USE_QUESTIONS,
           "effect": knowledge.EVERYDAY_EFFECT_QUESTIONS}
  uses = {goal: (answer, wrong) for goal, answer, wrong in knowledge.EVERYDAY_USES}
  effects = {s[len("someone "):]: (answer, wrong)
             for s, answer, wrong in knowledge.EVERYDAY_EFFECTS}
  positions = []
  for example in examples("commonsense_everyday"):
    kind, slots = parse_one(example["question"], table)
    if kind == "use":
      answer, wrong = uses[slots["goal"]]
      assert slots.get("p", "someone") in set(PEOPLE) | {"someone"}
    else:
      rest = [r for r in effects if slots["situation"].endswith(" " + r)]
      assert len(rest) == 1
      actor = slots["situation"][:-len(rest[0]) - 1]
      assert actor in set(PEOPLE) | {"someone"}
      answer, wrong = effects[rest[0]]
    assert example["answer"] == answer
    assert sorted(example["choices"]) == sorted((answer,) + wrong)
    positions.append(example["choices"].index(answer))
  assert_balanced(positions, 0.2, 0.3)


# ---------------------------------------------------------------- comparison

COMPARISONS = {
    "compare_town_age": (knowledge.TOWN_AGE_QUESTIONS, lambda n: -TOWNS[n].founded,
                         "{a} was founded in {x} and {b} in {y}, so {w} is {d}.",
                         lambda n: TOWNS[n].founded),
    "compare_people_age": (knowledge.PEOPLE_AGE_QUESTIONS, lambda n: PEOPLE[n].age,
                           "{a} is {x} years old and {b} is {y}, so {w} is {d}.",
                           lambda n: PEOPLE[n].age),
    "compare_population": (knowledge.POPULATION_QUESTIONS, lambda n: TOWNS[n].population,
                           "{a} has {x} inhabitants and {b} has {y}, so {w} has {d} people.",
                           lambda n: TOWNS[n].population),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparison_answers_rationales_and_balance(name):
  questions, size, explanation, stated = COMPARISONS[name]
  larger_direction = next(iter(questions))
  first_wins, directions = [], []
  for example in examples(name):
    direction, slots = parse_one(example["question"], questions)
    a, b = slots["a"], slots["b"]
    assert example["choices"] == [a, b] and size(a) != size(b)
    larger = a if size(a) > size(b) else b
    winner = larger if direction == larger_direction else (b if larger == a else a)
    assert example["answer"] == winner
    assert example["rationale"] == explanation.format(a=a, b=b, x=stated(a), y=stated(b),
                                                      w=winner, d=direction)
    first_wins.append(winner == a)
    directions.append(direction)
  assert_balanced(first_wins, 0.45, 0.55)
  assert_balanced(directions, 0.45, 0.55)
