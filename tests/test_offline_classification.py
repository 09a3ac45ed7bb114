"""The offline classification families, checked against the world.

Every label is recomputed here from the texts (parsed back with the family's phrase
tables), the world's facts, the numbers or the strings, rather than trusted; labels must
be balanced and the inverted templates must ask for something the inputs do not give away.
"""

import collections
import functools
import operator
import re
import string

import pytest

from flan_tune.tasks import PromptStyle, registry, render
from flan_tune.tasks.templates import pattern_fields
from flan_tune_tasks.offline import classification as cls
from flan_tune_tasks.offline import world
from flan_tune_tasks.offline.world import Fact, fact_sentence, get_world

W = get_world()
PEOPLE = W.person_by_name
TOWNS = W.town_by_name
YES, NO, UNKNOWN = "yes", "no", "it is not possible to tell"

# family -> (cluster, the field its usual templates ask for)
FAMILIES = {
    "nli_residents": ("nli", "label"), "nli_towns": ("nli", "label"),
    "nli_quantities": ("nli", "label"), "sentiment_reviews": ("sentiment", "label"),
    "sentiment_letters": ("sentiment", "label"), "sentiment_stars": ("sentiment", "stars"),
    "topic_news": ("topic_classification", "topic"),
    "topic_question_type": ("topic_classification", "label"),
    "topic_job_from_day": ("topic_classification", "job"),
    "paraphrase_facts": ("paraphrase", "label"),
    "paraphrase_questions": ("paraphrase", "label"),
    "coref_pronoun": ("coreference", "answer"), "coref_objects": ("coreference", "answer"),
}


def all_records(name):
  source = registry.get_task(name).source
  return [r for split in source.splits for r in source.records(split)]


def pattern_regex(pattern, digits=()):
  """A template pattern as a regex: each slot a group, repeated slots back-references."""
  parts, seen = [], set()
  for literal, name, _, _ in string.Formatter().parse(pattern):
    parts.append(re.escape(literal))
    if name is None:
      continue
    if name in seen:
      parts.append(f"(?P={name})")
    else:
      seen.add(name)
      parts.append(rf"(?P<{name}>\d+)" if name in digits else f"(?P<{name}>.+?)")
  return re.compile("".join(parts))


def assert_balanced(values, labels, slack=0.3):
  counts = collections.Counter(values)
  assert set(counts) <= set(labels), counts
  share = len(values) / len(labels)
  for label in labels:
    assert (1 - slack) * share <= counts[label] <= (1 + slack) * share, counts


def split_sentences(text):
  return re.split(r"(?<=\.) ", text)


# --- shape of every family ---------------------------------------------------------------

def test_families_are_registered_with_enough_templates():
  for name, (cluster, answer_field) in FAMILIES.items():
    task = registry.get_task(name)
    assert task.cluster == cluster and task.collection == "offline"
    regular = [t for t in task.templates if not t.inverted]
    inverted = [t for t in task.templates if t.inverted]
    assert len(task.templates) >= 8 and inverted, name
    assert all(t.targets == "{" + answer_field + "}" for t in regular), name
    assert sum(t.shows_options() for t in regular) > len(regular) / 2, name
    assert len(all_records(name)) == 1200, name


def test_texts_are_short_enough():
  for name in FAMILIES:
    task = registry.get_task(name)
    renderer = render.PromptRenderer(task, PromptStyle.ZS_OPT, lambda t: len(t.split()), 512)
    for fields in all_records(name)[::10]:
      for index in task.templates_for(PromptStyle.ZS_OPT):
        out = renderer.render(fields, template_index=index)
        assert len(out.inputs.split()) < 120, (name, out.inputs)
        assert len(out.targets.split()) < 60, (name, out.targets)


def test_inverted_templates_ask_for_what_the_inputs_withhold():
  for name, (_, answer_field) in FAMILIES.items():
    task = registry.get_task(name)
    renderer = render.PromptRenderer(task, PromptStyle.ZS_INV, lambda t: len(t.split()), 512)
    for index in task.templates_for(PromptStyle.ZS_INV):
      template = task.templates[index]
      assert answer_field in pattern_fields(template.inputs), (name, index)
      assert not pattern_fields(template.targets) & pattern_fields(template.inputs)
      for fields in task.source.records("train")[:30]:
        out = renderer.render(fields, template_index=index)
        assert out.targets not in out.inputs, (name, out)
        assert str(fields[answer_field]) in out.inputs, (name, out)


# --- NLI over world facts ----------------------------------------------------------------

FUNCTIONAL = {"town", "job", "age", "color", "friend", "region", "founded"}
NUMERIC = {"age", "founded", "population"}
COMPARE = {"older": ("age", operator.gt), "younger": ("age", operator.lt),
           "after": ("founded", operator.gt), "before": ("founded", operator.lt),
           "century": ("founded", lambda actual, v: actual // 100 == v // 100),
           "more": ("population", operator.gt), "fewer": ("population", operator.lt)}
DOMAINS = {"town": set(TOWNS), "friend": set(PEOPLE), "job": set(world.JOBS),
           "pet": set(world.PETS), "color": set(world.COLORS), "food": set(world.FOODS),
           "instrument": set(world.INSTRUMENTS), "region": set(world.REGIONS),
           "river": set(world.RIVERS), "product": set(world.PRODUCTS),
           "landmark": set(world.LANDMARKS)}
RELATIONS = world.PERSON_RELATIONS + world.TOWN_RELATIONS
REGION_OF_PLACE = {place: region for region, place in world.REGION_PLACE.items()}
NUMERIC_FACTS = [(r, pattern_regex(fact_sentence(Fact("{s}", r, "{v}"), variant), ("v",)))
                 for r in NUMERIC for variant in range(3)]


def subjects_of(relation):
  return PEOPLE if relation in world.PERSON_RELATIONS else TOWNS


def valid(relation, subject, value):
  kind_ok = value.isdigit() if relation in NUMERIC else value in DOMAINS[relation]
  return subject in subjects_of(relation) and kind_ok


@functools.cache
def fact_index():
  """Every phrasing of every non-numeric (subject, relation, value), true or not."""
  index = collections.defaultdict(set)
  for relation in RELATIONS:
    if relation not in NUMERIC:
      for subject in subjects_of(relation):
        for value in DOMAINS[relation]:
          for variant in range(3):
            index[fact_sentence(Fact(subject, relation, value), variant)].add(
                (subject, relation, value))
  return index


def parse_fact(sentence):
  """The one (subject, relation, value) a fact_sentence phrasing can mean."""
  parses = set(fact_index().get(sentence, ()))
  parses |= {(m["s"], r, m["v"]) for r, regex in NUMERIC_FACTS
             for m in [regex.fullmatch(sentence)] if m and m["s"] in subjects_of(r)}
  assert len(parses) == 1, (sentence, parses)
  return parses.pop()


def world_value(subject, relation):
  thing = PEOPLE.get(subject) or TOWNS[subject]
  return str(getattr(thing, relation))


def hypothesis_patterns():
  table = []
  for kind, claims in (("claim", cls.PERSON_CLAIMS), ("claim", cls.TOWN_CLAIMS),
                       ("deny", cls.PERSON_DENIALS), ("deny", cls.TOWN_DENIALS)):
    table += [(kind, r, pattern_regex(p)) for r, phrasings in claims.items() for p in phrasings]
  for kind, (relation, phrasings) in {**cls.PERSON_COMPARISONS,
                                      **cls.TOWN_COMPARISONS}.items():
    assert COMPARE[kind][0] == relation
    table += [(kind, relation, pattern_regex(p, digits=("v",))) for p in phrasings]
  return table


HYPOTHESES = hypothesis_patterns()


def parse_hypothesis(sentence):
  parses = set()
  for kind, relation, regex in HYPOTHESES:
    m = regex.fullmatch(sentence)
    value = m and (m["v"] if "v" in m.groupdict() else REGION_OF_PLACE.get(m["p"], ""))
    if m and valid(relation, m["s"], value):
      parses.add((kind, relation, m["s"], value))
  assert len(parses) == 1, (sentence, parses)
  return parses.pop()


def judge(stated, kind, relation, value):
  """The NLI label of one hypothesis, given the facts the premise states."""
  if relation not in stated:
    return UNKNOWN
  actual = stated[relation]
  if kind in COMPARE:
    return YES if COMPARE[kind][1](int(actual), int(value)) else NO
  if kind == "claim":
    return YES if value == actual else (NO if relation in FUNCTIONAL else UNKNOWN)
  return NO if value == actual else (YES if relation in FUNCTIONAL else UNKNOWN)


@pytest.mark.parametrize("name", ["nli_residents", "nli_towns"])
def test_world_nli_labels_follow_from_the_premise(name):
  records = all_records(name)
  unknown_truths = collections.Counter()
  for r in records:
    stated = {}
    sentences = split_sentences(r["premise"])
    assert 2 <= len(sentences) <= 3, r
    for sentence in sentences:
      subject, relation, value = parse_fact(sentence)
      assert value == world_value(subject, relation), sentence  # the premise is true
      assert relation not in stated
      stated[relation] = value
    kind, relation, subject_h, value = parse_hypothesis(r["hypothesis"])
    assert subject_h == subject, r
    assert r["label"] == judge(stated, kind, relation, value), r
    if r["label"] == UNKNOWN:
      assert "does not say" in r["rationale"]
      everything = {rel: world_value(subject, rel) for rel in RELATIONS
                    if rel in (world.PERSON_RELATIONS if subject in PEOPLE
                               else world.TOWN_RELATIONS)}
      unknown_truths[judge(everything, kind, relation, value)] += 1
    else:
      assert r["rationale"].endswith("true." if r["label"] == YES else "false.")
  assert_balanced([r["label"] for r in records], cls.NLI_LABELS)
  # "not possible to tell" is about the premise: the world knows some of them are true
  assert unknown_truths[YES] > 50 and unknown_truths[NO] > 50, unknown_truths


QUANTITY_PHRASES = [(kind, pattern_regex(p, digits=("n",)))
                    for kind, phrasings in cls.QUANTIFIERS.items() for p in phrasings]
SENTENCE = re.compile(r"(\w+) (\w+) (.+?) (\w+)( in all)?\.")
SUM = re.compile(r"(\w+) (\w+) (\d+) (\w+) in the morning and (\d+) more in the afternoon\.")
INF = 10 ** 6


def parse_quantity(sentence):
  """(name, verb, item, low, high, summed) of one quantity sentence."""
  summed = SUM.fullmatch(sentence)
  if summed:
    name, verb, a, item, b = summed.groups()
    return name, verb, item, int(a) + int(b), int(a) + int(b), (int(a), int(b))
  name, verb, quantity, item, tail = SENTENCE.fullmatch(sentence).groups()
  kinds = [(kind, int(m["n"])) for kind, regex in QUANTITY_PHRASES
           for m in [regex.fullmatch(quantity)] if m]
  assert len(kinds) == 1, sentence
  kind, n = kinds[0]
  low, high = {"exact": (n, n), "more": (n + 1, INF), "fewer": (0, n - 1),
               "at_least": (n, INF), "at_most": (0, n)}[kind]
  return name, verb, item, low, high, tail


def test_quantity_labels_follow_from_the_numbers():
  records = all_records("nli_quantities")
  for r in records:
    name, verb, item, low, high, summed = parse_quantity(r["premise"])
    h_name, h_verb, h_item, h_low, h_high, tail = parse_quantity(r["hypothesis"])
    assert verb == h_verb and item in cls.QUANTITY_VERBS[verb], r
    assert bool(tail) == isinstance(summed, tuple), r  # "in all" exactly after a sum
    if isinstance(summed, tuple):
      assert f"{summed[0]} + {summed[1]} = {low}" in r["rationale"], r
    if (name, item) != (h_name, h_item):
      expected = UNKNOWN
    elif h_low <= low and high <= h_high:
      expected = YES
    elif high < h_low or h_high < low:
      expected = NO
    else:
      expected = UNKNOWN
      inside, outside = map(int, re.search(r"could be (\d+), .* or (\d+),",
                                           r["rationale"]).groups())
      assert low <= inside <= high and h_low <= inside <= h_high, r
      assert low <= outside <= high and not h_low <= outside <= h_high, r
    assert r["label"] == expected, r
  assert_balanced([r["label"] for r in records], cls.NLI_LABELS)


# --- sentiment ---------------------------------------------------------------------------

def test_reviews_praise_or_fault_the_towns_own_product():
  records = all_records("sentiment_reviews")
  for r in records:
    town = TOWNS[r["town"]]
    assert r["item"] == cls.PRODUCT_ITEMS[town.product] and r["item"] in r["text"], r
    assert town.name in r["text"]
    good, bad = cls.PRODUCT_QUALITIES[town.product]
    mine, theirs = (good, bad) if r["label"] == "positive" else (bad, good)
    variants = lambda s: (s, "But " + s[0].lower() + s[1:])  # noqa: E731
    assert any(v in r["text"] for v in variants(mine)), r
    assert not any(v in r["text"] for v in variants(theirs)), r
    other = "negative" if r["label"] == "positive" else "positive"
    assert sum(v in r["text"] for v in cls.REVIEW_VERDICTS[r["label"]]) == 1, r
    assert not any(v in r["text"] for v in cls.REVIEW_VERDICTS[other]), r
  assert_balanced([r["label"] for r in records], cls.REVIEW_LABELS, slack=0.1)


def test_letters_go_to_best_friends_and_state_true_facts():
  records = all_records("sentiment_letters")
  for r in records:
    sender = PEOPLE[r["sender"]]
    assert r["recipient"] == sender.friend, r
    landmark = TOWNS[sender.town].landmark
    slots = {"pet": sender.pet, "instrument": sender.instrument, "job": sender.job,
             "town": sender.town, "food": sender.food,
             "the_landmark": "the " + landmark.split(" ", 1)[1]}
    greeting, body, closing = r["letter"].split("\n")
    assert PEOPLE[r["recipient"]].first_name in greeting and sender.first_name in closing
    found = {label: sum(line.format(**slots) in body for line in lines)
             for label, lines in cls.LETTER_LINES.items()}
    assert found[r["label"]] == 2 and sum(found.values()) == 2, (r, found)
  assert_balanced([r["label"] for r in records], cls.LETTER_LABELS)


def test_star_reviews_use_the_vocabulary_of_their_grade():
  records = all_records("sentiment_stars")
  for r in records:
    found = {stars: sum(line in r["text"] for line in lines)
             for stars, lines in cls.STAR_LINES.items()}
    assert found[r["stars"]] == 2 and sum(found.values()) == 2, r
    town = TOWNS[r["town"]]
    assert town.name in r["text"]
    if "I bought" in r["text"] or "sent to me" in r["text"]:
      assert cls.PRODUCT_ITEMS[town.product] in r["text"], r
  assert_balanced([r["stars"] for r in records], cls.STAR_LABELS)


# --- topic classification ----------------------------------------------------------------

def check_news_slots(groups):
  town = TOWNS[groups["town"]]
  expected = {"product": town.product, "river": town.river, "region": town.region,
              "region_place": world.REGION_PLACE[town.region], "founded": str(town.founded),
              "the_landmark": "the " + town.landmark[town.landmark.index(" ") + 1:]}
  for slot, value in groups.items():
    if slot in expected:
      assert value == expected[slot], (slot, value, town)
    elif slot in ("person", "doctor"):
      person = PEOPLE[value]
      assert person.town == town.name and (slot == "person" or person.job == "doctor")
    elif slot in ("job", "instrument"):
      assert value == getattr(PEOPLE[groups["person"]], slot)
    elif slot == "other_town":
      assert value in TOWNS and value != town.name
    elif slot == "day":
      assert value in cls.DAYS
    else:
      assert slot in ("town", "number"), slot


def test_news_items_are_true_to_the_world_and_belong_to_one_topic():
  records = all_records("topic_news")
  patterns = [(topic, pattern_regex(p, digits=("number", "founded")))
              for topic, items in cls.NEWS.items() for p in items]
  for r in records:
    matches = [(topic, m) for topic, regex in patterns for m in [regex.fullmatch(r["news"])]
               if m]
    assert len(matches) == 1 and matches[0][0] == r["topic"], r
    groups = matches[0][1].groupdict()
    assert groups["town"] == r["town"]
    check_news_slots(groups)
  assert_balanced([r["topic"] for r in records], cls.NEWS_TOPICS, slack=0.35)


SLOT_VALUES = {"person": PEOPLE, "other": PEOPLE, "town": TOWNS, "other_town": TOWNS,
               "job": world.JOBS, "instrument": world.INSTRUMENTS,
               "product": world.PRODUCTS, "number": [str(n) for n in range(10, 401)]}


def acceptable_answers(key, g):
  """Every correct answer to a TYPED_QUESTIONS question, recomputed from the world."""
  person, other = PEOPLE.get(g.get("person")), PEOPLE.get(g.get("other"))
  town, other_town = TOWNS.get(g.get("town")), TOWNS.get(g.get("other_town"))
  if key in ("job_in_town", "instrument_in_town"):
    relation, value = ("job", g["job"]) if key == "job_in_town" else (
        "instrument", g["instrument"])
    return {p.name for p in W.people if p.town == town.name and getattr(p, relation) == value}
  if key == "oldest_in_town":
    ages = {p.name: p.age for p in W.people if p.town == town.name}
    return {n for n, age in ages.items() if age == max(ages.values())}
  if key == "town_of_product":
    return {t.name for t in W.towns if t.product == g["product"]}
  friend = PEOPLE[person.friend] if person else None
  value = {
      "friend": lambda: person.friend,
      "older_of_two": lambda: person.name if person.age > other.age else other.name,
      "town": lambda: person.town, "region": lambda: town.region, "river": lambda: town.river,
      "workplace": lambda: world.JOB_WORKPLACE[person.job],
      "bigger_town": lambda: (town if town.population > other_town.population
                              else other_town).name,
      "age": lambda: person.age, "population": lambda: town.population,
      "pet_legs": lambda: world.PET_LEGS[person.pet],
      "resident_count": lambda: sum(p.town == town.name for p in W.people),
      "age_gap": lambda: abs(person.age - other.age), "founded": lambda: town.founded,
      "anniversary": lambda: town.founded + int(g["number"]),
      "home_founded": lambda: TOWNS[person.town].founded,
      "friend_home_founded": lambda: TOWNS[friend.town].founded,
      "pet": lambda: person.pet, "product": lambda: town.product,
      "instrument": lambda: person.instrument, "tool": lambda: world.JOB_TOOL[person.job],
      "food": lambda: person.food, "landmark": lambda: town.landmark,
      "friend_pet": lambda: friend.pet, "color": lambda: person.color,
  }[key]()
  return {str(value)}


def test_question_types_and_answers_match_the_world():
  records = all_records("topic_question_type")
  patterns = [(label, key, pattern_regex(p, digits=("number",)))
              for label, items in cls.TYPED_QUESTIONS.items() for p, key in items]
  places = set(TOWNS) | set(world.REGIONS) | set(world.RIVERS) | set(
      world.JOB_WORKPLACE.values())
  for r in records:
    matches = [(label, key, m.groupdict()) for label, key, regex in patterns
               for m in [regex.fullmatch(r["question"])] if m and all(
                   value in SLOT_VALUES[slot] for slot, value in m.groupdict().items())]
    assert len(matches) == 1, r
    label, key, groups = matches[0]
    assert label == r["label"] and r["answer"] in acceptable_answers(key, groups), r
    assert {"person": r["answer"] in PEOPLE, "place": r["answer"] in places,
            "number": r["answer"].isdigit(),
            "year": r["answer"].isdigit() and len(r["answer"]) == 4,
            "thing": not r["answer"].isdigit() and r["answer"] not in places | set(PEOPLE),
            }[label], r
  assert_balanced([r["label"] for r in records], cls.QUESTION_TYPES)


def test_working_days_describe_the_persons_real_job():
  activities = [(job, a) for job, acts in cls.JOB_ACTIVITIES.items() for a in acts]
  for job, activity in activities:  # an activity names its job only, and not the job word
    assert job not in activity and sum(activity in a for _, a in activities) == 1
  records = all_records("topic_job_from_day")
  for r in records:
    person = PEOPLE[r["person"]]
    assert person.job == r["job"], r
    seen = [job for job, activity in activities if activity in r["description"]]
    assert len(seen) >= 2 and set(seen) == {r["job"]}, r
    assert {t for t in TOWNS if t in r["description"]} <= {person.town}, r
    for other in world.JOBS:
      if other != r["job"]:
        assert f"without {world.JOB_TOOL[other]}." not in r["description"]
        assert f"at the {world.JOB_WORKPLACE[other]} in" not in r["description"]
    assert len(set(r["choices"])) == 4 and set(r["choices"]) <= set(world.JOBS)
    assert r["job"] in r["choices"]
  assert_balanced([r["job"] for r in records], world.JOBS, slack=0.4)
  assert_balanced([r["choices"].index(r["job"]) for r in records], range(4), slack=0.2)


# --- paraphrase --------------------------------------------------------------------------

def test_fact_pairs_are_paraphrases_exactly_when_they_state_the_same_fact():
  records = all_records("paraphrase_facts")
  for r in records:
    first, second = parse_fact(r["sentence1"]), parse_fact(r["sentence2"])
    subject, relation, value = first
    assert value == world_value(subject, relation), r
    assert r["label"] == ("yes" if first == second else "no"), r
    assert r["sentence1"] != r["sentence2"] or r["label"] == "no"
    if r["label"] == "yes":
      assert r["sentence1"] != r["sentence2"], r
  assert_balanced([r["label"] for r in records], cls.YES_NO, slack=0.1)


def test_question_pairs_match_exactly_when_they_ask_the_same_thing():
  patterns = [(r, PEOPLE, pattern_regex(p)) for r, forms in cls.PERSON_QUESTION_FORMS.items()
              for p in forms]
  patterns += [(r, TOWNS, pattern_regex(p)) for r, forms in cls.TOWN_QUESTION_FORMS.items()
               for p in forms]

  def parse(question):
    parses = {(m["s"], r) for r, subjects, regex in patterns
              for m in [regex.fullmatch(question)] if m and m["s"] in subjects}
    assert len(parses) == 1, (question, parses)
    return parses.pop()

  records = all_records("paraphrase_questions")
  for r in records:
    same = parse(r["question1"]) == parse(r["question2"])
    assert r["label"] == ("yes" if same else "no"), r
    if same:
      assert r["question1"] != r["question2"], r
  assert_balanced([r["label"] for r in records], cls.YES_NO, slack=0.1)


# --- coreference -------------------------------------------------------------------------

def test_story_mentions_resolve_from_the_stated_facts():
  records = all_records("coref_pronoun")
  for r in records:
    stated, event = r["story"].split(". ", 1)
    matches = [(relation, m) for relation, p in cls.COREF_FACTS.items()
               for m in [pattern_regex(p).fullmatch(stated + ".")] if m]
    assert len(matches) == 1, r
    relation, m = matches[0]
    a, b = PEOPLE[m["a"]], PEOPLE[m["b"]]
    assert (m["va"], m["vb"]) == (str(getattr(a, relation)), str(getattr(b, relation))), r
    if relation == "age":
      older, younger = (a, b) if a.age > b.age else (b, a)
      referent = {cls.OLDER: older, cls.YOUNGER: younger}[r["mention"]]
    else:
      mention = cls.COREF_MENTIONS[relation][0]
      referents = [p for p, v in ((a, m["va"]), (b, m["vb"])) if mention.format(v=v) ==
                   r["mention"]]
      assert len(referents) == 1, r
      referent = referents[0]
    assert r["answer"] == referent.name and r["answer"] in r["rationale"], r
    assert r["mention"].lower() in event.lower(), r
    assert sorted(r["choices"]) == sorted([a.name, b.name])
    assert (r["person1"], r["person2"]) == (a.name, b.name)
  assert_balanced([r["answer"] == r["person1"] for r in records], (True, False), slack=0.1)
  assert_balanced([r["answer"] == r["choices"][0] for r in records], (True, False), slack=0.1)


def test_object_pronouns_resolve_by_the_adjective():
  records = all_records("coref_objects")
  for r in records:
    matches = []
    for sentence, question, a_nouns, b_nouns, adjectives in cls.OBJECT_SCHEMAS:
      m = pattern_regex(sentence).fullmatch(r["sentence"])
      if m and m["a"] in a_nouns and m["b"] in b_nouns and m["adj"] in adjectives:
        matches.append((m, adjectives[m["adj"]], question))
    assert len(matches) == 1, r
    m, side, question = matches[0]
    assert r["answer"] == m[side], r
    assert r["question"] == question.format(adj=m["adj"])
    assert (r["first"], r["second"]) == (m["a"], m["b"])
    assert sorted(r["choices"]) == sorted([m["a"], m["b"]])
  assert_balanced([r["answer"] == r["first"] for r in records], (True, False), slack=0.1)
  assert_balanced([r["answer"] == r["choices"][0] for r in records], (True, False), slack=0.1)
