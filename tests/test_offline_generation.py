"""The offline generation families: answers recomputed from the world, the numbers and
the strings; the Velari translator in both directions."""

import collections
import dataclasses
import random
import re

import pytest

from flan_tune.tasks import registry
from flan_tune.tasks.templates import pattern_fields
from flan_tune_tasks.offline import conlang, generation
from flan_tune_tasks.offline.world import Fact, fact_sentence, get_world

FAMILIES = ("arith_word_problems", "arith_prices", "arith_ages", "str_reverse_words",
            "str_sort_words", "str_spell", "summ_town_report", "summ_headline",
            "data_to_text", "text_to_data", "translate_to_conlang", "translate_from_conlang")
WORLD = get_world()
PEOPLE = WORLD.person_by_name
TOWNS = WORLD.town_by_name
NAME = r"([A-Z][a-z]+ [A-Z][a-z]+)"
TRUE_FACT_SENTENCES = {fact_sentence(f, v) for f in WORLD.facts() for v in range(3)}


def examples(name, splits=("train", "validation", "test")):
  task = registry.get_task(name)
  return [{k: v for k, v in r.items() if k != "_origin"}
          for split in splits for r in task.source.records(split)]


def sentences(text):
  return re.findall(r"[^.]+\.", text)


def check_rationale(rationale, answer):
  """Every `a op b = c` step is right, and the last one gives the answer."""
  steps = re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", rationale)
  assert steps, rationale
  for a, op, b, c in steps:
    a, b, c = int(a), int(b), int(c)
    expected = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
    assert c == expected, rationale
  assert steps[-1][3] == answer or rationale.endswith(f"can buy {answer}."), rationale


def kind_counts(items, patterns):
  counts = collections.Counter()
  for item in items:
    (kind,) = [k for k, p in patterns.items() if re.search(p, item)]
    counts[kind] += 1
  return counts


def assert_balanced(counts, kinds):
  total = sum(counts.values())
  assert set(counts) == set(kinds), counts
  assert min(counts.values()) > 0.6 * total / len(kinds), counts


# ------------------------------------------------------------------------- arithmetic

WORD_PROBLEMS = {
    "made_sold": r"made (\d+) .* and on Tuesday (\d+) more\. .* sold (\d+) of them",
    "shared": r"had (\d+) .* bought (\d+) more .* among (\d+) neighbours",
    "daily": r"makes (\d+) .*After (\d+) days, .* gives (\d+) of them to " + NAME,
    "gift": r"has (\d+) .* and " + NAME + r" has (\d+)\. .* gives (\d+) to .*who then sells "
            r"(\d+)",
    "packed": r"made (\d+) .* in the morning and (\d+) in the afternoon.* hold (\d+) each",
}


def solve_word_problem(question):
  person, town, product = re.match(NAME + r" lives in (\w+), a town known for its (\w+)\.",
                                   question).groups()
  assert PEOPLE[person].town == town and TOWNS[town].product == product
  kind = kind_counts([question], WORD_PROBLEMS).most_common(1)[0][0]
  values = re.search(WORD_PROBLEMS[kind], question).groups()
  if kind == "made_sold":
    a, b, sold = map(int, values)
    return kind, a + b - sold
  if kind == "shared":
    a, b, people = map(int, values)
    assert (a + b) % people == 0
    return kind, (a + b) // people
  if kind == "daily":
    per_day, days, given = map(int, values[:3])
    assert values[3] == PEOPLE[person].friend
    return kind, per_day * days - given
  if kind == "gift":
    mine, friend, theirs, given, sold = values
    assert friend == PEOPLE[person].friend and int(given) <= int(mine)
    return kind, int(theirs) + int(given) - int(sold)
  a, b, crate = map(int, values)
  assert (a + b) % crate == 0
  return kind, (a + b) // crate


def test_word_problems_are_right_and_kinds_balanced():
  kinds = collections.Counter()
  for example in examples("arith_word_problems"):
    kind, answer = solve_word_problem(example["question"])
    kinds[kind] += 1
    assert answer >= 0 and example["answer"] == str(answer)
    check_rationale(example["rationale"], example["answer"])
  assert_balanced(kinds, WORD_PROBLEMS)


PRICE_QUESTIONS = {
    "total": r"buys (\d+) .* and (\d+) .*How many coins does \w+ spend\?",
    "change": r"buys (\d+) .* and (\d+) .*pays with (\d+) coins",
    "afford": r"has (\d+) coins\. How many",
    "difference": r"How many more coins do (\d+) (.+) cost than (\d+) (.+)\?",
    "profit": r"sells (\d+) .* spends (\d+) coins on lunch",
}


def test_prices_are_right_and_kinds_balanced():
  kinds = collections.Counter()
  for example in examples("arith_prices"):
    question = example["question"]
    town, one_a, price_a, one_b, price_b = re.match(
        r"At the market in (\w+), a (.+?) costs (\d+) coins and a (.+?) costs (\d+) coins\.",
        question).groups()
    assert town in TOWNS
    price_a, price_b = int(price_a), int(price_b)
    plural = {one: many for one, many in generation.GOODS.values()}
    kind = kind_counts([question], PRICE_QUESTIONS).most_common(1)[0][0]
    kinds[kind] += 1
    values = re.search(PRICE_QUESTIONS[kind], question).groups()
    if kind == "total":
      answer = int(values[0]) * price_a + int(values[1]) * price_b
    elif kind == "change":
      answer = int(values[2]) - int(values[0]) * price_a - int(values[1]) * price_b
    elif kind == "afford":
      answer = int(values[0]) // price_a
    elif kind == "difference":
      prices = {plural[one_a]: price_a, plural[one_b]: price_b}
      answer = int(values[0]) * prices[values[1]] - int(values[2]) * prices[values[3]]
    else:
      answer = int(values[0]) * price_a - int(values[1])
    assert answer >= 0 and example["answer"] == str(answer), question
    check_rationale(example["rationale"], example["answer"])
  assert_balanced(kinds, PRICE_QUESTIONS)


AGE_QUESTIONS = {
    "future": r"^How old will " + NAME + r" be in (\d+) years\?",
    "past": r"^How old was " + NAME + r" (\d+) years ago\?",
    "older": r"^How many years older is " + NAME + " than " + NAME + r"\?",
    "friend": r"^How old will the best friend of " + NAME + r" be in (\d+) years\?",
    "until": r"^In how many years will " + NAME + r" turn (\d+)\?",
}


def test_ages_come_from_the_world_and_facts_are_true():
  kinds = collections.Counter()
  for example in examples("arith_ages"):
    assert all(s.strip() in TRUE_FACT_SENTENCES for s in sentences(example["facts"]))
    kind = kind_counts([example["question"]], AGE_QUESTIONS).most_common(1)[0][0]
    kinds[kind] += 1
    a, b = re.match(AGE_QUESTIONS[kind], example["question"]).groups()
    if kind == "future":
      answer, given = PEOPLE[a].age + int(b), [a]
    elif kind == "past":
      answer, given = PEOPLE[a].age - int(b), [a]
    elif kind == "older":
      answer, given = PEOPLE[a].age - PEOPLE[b].age, [a, b]
    elif kind == "friend":
      answer, given = PEOPLE[PEOPLE[a].friend].age + int(b), [PEOPLE[a].friend]
      assert PEOPLE[a].friend in example["facts"]
    else:
      answer, given = int(b) - PEOPLE[a].age, [a]
    assert answer > 0 and example["answer"] == str(answer), example
    for name in given:  # the facts state every age the question needs
      assert any(fact_sentence(f, v) in example["facts"] for v in range(3)
                 for f in WORLD.facts() if f.subject == name and f.relation == "age")
    check_rationale(example["rationale"], example["answer"])
  assert_balanced(kinds, AGE_QUESTIONS)


# ---------------------------------------------------------------- string manipulation


def test_reversed_sorted_and_spelled_strings():
  for example in examples("str_reverse_words"):
    words = example["words"].split(" ")
    assert example["reversed"] == " ".join(words[::-1]) and 3 <= len(words) <= 7
  for example in examples("str_sort_words"):
    words = example["words"].split(" ")
    assert example["sorted"] == " ".join(sorted(words, key=str.lower)) != example["words"]
    assert int(example["count"]) == len(set(words)) == len(words)
    assert len({w[0].isupper() for w in words}) == 1  # one letter case per list
  spelled = examples("str_spell")
  for example in spelled:
    assert example["spelled"] == "-".join(example["word"])
    assert example["spelled"].replace("-", "") == example["word"]
  assert len({e["word"] for e in spelled}) == len(spelled)  # no word in two splits


# ---------------------------------------------------------------------- summarization

# Claims the news makes about the world, with how to check each against it.
CLAIMS = (
    (NAME + r", a (\w+) from (\w+)", lambda p, job, t: PEOPLE[p].job == job and
     PEOPLE[p].town == t),
    (NAME + r", a (\w+), opened a new (.+?) in (\w+)",
     lambda p, job, place, t: PEOPLE[p].job == job and PEOPLE[p].town == t),
    (NAME + r" played the (\w+) at a concert beside the (.+?) in (\w+)\.",
     lambda p, i, landmark, t: PEOPLE[p].instrument == i and PEOPLE[p].town == t and
     TOWNS[t].landmark.endswith(" " + landmark)),
    (r"The (\w+) of " + NAME + r" went missing in (\w+) and was found two days later by "
     + NAME, lambda pet, p, t, f: PEOPLE[p].pet == pet and PEOPLE[p].town == t and
     PEOPLE[p].friend == f),
    (r"(\w+) held a three-day festival in honour of its (\w+)",
     lambda t, product: TOWNS[t].product == product),
    (r"The river (\w+) rose after heavy rain and flooded the lower streets of (\w+)",
     lambda r, t: TOWNS[t].river == r),
    (r"The council of (\w+) voted to repair the (.+?)\.",
     lambda t, landmark: TOWNS[t].landmark.endswith(" " + landmark)),
    (r"Merchants from (\w+) agreed to buy (\w+) from (\w+)",
     lambda other, product, t: other != t and TOWNS[t].product == product),
    (r"(\w+), founded in (\d+), marked", lambda t, year: TOWNS[t].founded == int(year)),
    (r"(\w+) has (\d+) inhabitants", lambda t, n: t not in TOWNS or
     TOWNS[t].population == int(n)),
)


def check_claims(text):
  checked = 0
  for pattern, holds in CLAIMS:
    for match in re.finditer(pattern, text):
      assert holds(*match.groups()), (pattern, text)
      checked += 1
  return checked


WORLD_NAMES = {w for p in WORLD.people for w in p.name.split()} | set(TOWNS) | {
    t.river for t in WORLD.towns}


def proper_names_and_numbers(text):
  return {w for w in re.findall(r"\b\w+\b", text) if w in WORLD_NAMES or w.isdigit()}


def test_town_reports_are_true_and_summaries_grounded():
  main_first = collections.Counter()
  for example in examples("summ_town_report"):
    report, summary = example["report"], example["summary"]
    assert 4 <= len(sentences(report)) <= 6 and len(sentences(summary)) == 1
    assert check_claims(report) >= 1
    assert proper_names_and_numbers(summary) <= proper_names_and_numbers(report), example
    assert example["topic"] in report
    main_first[check_claims(sentences(report)[0]) > 0] += 1
  assert main_first[False] > 0.3 * sum(main_first.values())  # the point is not always first


def test_background_facts_are_true(monkeypatch):
  """Every fact a generator states through `fact_sentence` holds in the world."""
  stated = []

  def checked_fact_sentence(fact, variant=0):
    entity = PEOPLE.get(fact.subject) or TOWNS[fact.subject]
    assert str(getattr(entity, fact.relation)) == fact.value, fact
    stated.append(fact)
    return fact_sentence(fact, variant)

  monkeypatch.setattr(generation, "fact_sentence", checked_fact_sentence)
  rng = random.Random(1)
  for generate in (generation._ages, generation._town_report, generation._text_to_data):
    for _ in range(300):
      generate(rng)
  assert len(stated) > 1000


def test_headlines_are_grounded_in_their_articles():
  for example in examples("summ_headline"):
    article, headline = example["article"], example["headline"]
    assert check_claims(article) >= 1 and not headline.endswith(".")
    assert proper_names_and_numbers(headline) <= proper_names_and_numbers(article), example
    assert example["town"] in TOWNS and example["town"] in article
    assert 2 <= len(sentences(article)) <= 3


# --------------------------------------------------------------------- struct to text


def parse_table(table):
  (key, subject), *facts = [field.split(": ", 1) for field in table.split(" | ")]
  return key, subject, facts


def test_tables_are_true_and_sentences_state_them_in_order():
  for name in ("data_to_text", "text_to_data"):
    for example in examples(name):
      key, subject, facts = parse_table(example["table"])
      entity = PEOPLE[subject] if key == "name" else TOWNS[subject]
      assert 2 <= len(facts) <= 4 and len({r for r, _ in facts}) == len(facts)
      for relation, value in facts:
        assert str(getattr(entity, relation)) == value
      clauses = generation.PERSON_CLAUSES if key == "name" else generation.TOWN_CLAUSES
      composed = f"{subject} {generation._join([clauses[r].format(v=v) for r, v in facts])}."
      if name == "data_to_text" or example["text"] == composed:
        assert example["text"] == composed
      else:  # one sentence per fact, in the table's order
        for sentence, (relation, value) in zip(sentences(example["text"]), facts, strict=True):
          assert sentence.strip() in {fact_sentence(Fact(subject, relation, value), v)
                                      for v in range(3)}


# ------------------------------------------------------------------------ translation


def test_lexicon_is_one_to_one_and_deterministic():
  lexicon = conlang.lexicon()
  assert len(lexicon) >= 140 and len(set(lexicon.values())) == len(lexicon)
  assert conlang.lexicon.__wrapped__() == lexicon  # rebuilt from the seed: the same
  words = set(lexicon.values())
  names = {n.lower() for n in conlang._proper_names()}
  assert not words & set(conlang.ENGLISH_WORDS) and not words & names
  assert not {w + conlang.PLURAL_SUFFIX for w in words} & words
  assert all(re.fullmatch(r"[a-z]+", w) for w in words)


def test_grammar_of_a_known_sentence():
  dog = conlang.NounPhrase("dog", False, (), "the")
  pinned = conlang.Sentence(conlang.NounPhrase("Ada"), "see", "past", dog, town="Pelholm",
                            time="yesterday")
  # The module docstring's example; a changed lexicon would silently change every dataset.
  assert conlang.to_velari(pinned) == "Te Ada Pelholm zo dado la vu pitimi ti."
  dogs = conlang.NounPhrase("dog", True, ("big",), "the")
  sentence = dataclasses.replace(pinned, obj=dogs)
  word = conlang.lexicon()
  assert conlang.to_english(sentence) == "Ada saw the big dogs in Pelholm yesterday."
  assert conlang.to_velari(sentence) == " ".join([
      word["yesterday"].capitalize(), "Ada", "Pelholm", word["in"], word["dog"] + "n",
      word["big"], word["the"], word["<object>"], word["see"], word["<past>"]]) + "."
  a_cat = conlang.NounPhrase("cat", False, ("old",), "a")
  negated = conlang.Sentence(a_cat, "sleep", "present", negated=True)
  assert conlang.to_english(negated) == "An old cat does not sleep."
  assert conlang.to_velari(negated) == (
      f"{word['cat'].capitalize()} {word['old']} {word['not']} {word['sleep']}.")
  assert conlang.glossary(negated) == (f"old = {word['old']}; cat = {word['cat']}; "
                                       f"not = {word['not']}; sleep = {word['sleep']}")


def test_both_directions_invert_each_other():
  rng = random.Random(0)
  for _ in range(2000):
    sentence = conlang.random_sentence(rng)
    english, velari = conlang.to_english(sentence), conlang.to_velari(sentence)
    assert conlang.parse_english(english) == sentence == conlang.parse_velari(velari)
    assert conlang.translate(english) == velari
    assert conlang.translate(velari, to="English") == english
    assert conlang.translate(sentence) == velari


def test_parsers_reject_what_the_grammar_cannot_write():
  for bad in ("Ada saw the dog", "Ada saw the dogg.", "The dog in Elbrook.", "Dog sees Ada."):
    with pytest.raises(ValueError):
      conlang.parse_english(bad)
  word = conlang.lexicon()
  for bad in (f"Ada {word['see']} {word['dog']}.", f"{word['dog']}n {word['see']}.",
              f"Ada {word['dog']} {word['see']}."):
    with pytest.raises(ValueError):
      conlang.parse_velari(bad)


def test_translation_examples_are_exact_and_about_the_world():
  tenses = collections.Counter()
  for name in ("translate_to_conlang", "translate_from_conlang"):
    for example in examples(name):
      sentence = conlang.parse_english(example["english"])
      assert conlang.to_velari(sentence) == example["velari"]
      assert conlang.glossary(sentence) == example["glossary"]
      tenses[sentence.tense] += 1
      if sentence.town:  # a named person is placed in their own town
        assert any(p.first_name == sentence.subject.head and p.town == sentence.town
                   for p in WORLD.people)
      if sentence.time:
        assert conlang.TIME_WORDS[sentence.tense] == sentence.time
  assert_balanced(tenses, conlang.TENSES)


# ----------------------------------------------------------------- templates, inverted


@pytest.mark.parametrize("name", FAMILIES)
def test_inverted_templates_ask_for_the_usual_input(name):
  """An inverted template gives what is normally asked for (a target or the
  rationale) and asks for a field the usual templates are given."""
  task = registry.get_task(name)
  usual = [t for t in task.templates if not t.inverted]
  inverted = [t for t in task.templates if t.inverted]
  assert len(task.templates) >= 8 and inverted
  usual_inputs = set().union(*(pattern_fields(t.inputs) for t in usual))
  usual_targets = set().union(*(pattern_fields(t.targets) for t in usual))
  usual_targets |= {task.rationale_field} - {None}
  for template in inverted:
    assert pattern_fields(template.targets) <= usual_inputs
    assert pattern_fields(template.inputs) & usual_targets


def test_generators_are_deterministic():
  for generate in (generation._word_problem, generation._prices, generation._ages,
                   generation._town_report, generation._sentence_pair, generation._text_to_data):
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert [generate(rng_a) for _ in range(20)] == [generate(rng_b) for _ in range(20)]
