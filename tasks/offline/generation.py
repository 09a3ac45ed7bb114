"""Offline families whose answers are computed or generated rather than chosen.

Arithmetic (with worked rationales for the chain-of-thought styles), string
manipulation, summarization, struct-to-text and translation into Velari (`conlang`).
Every example is built from the shared world, so its facts agree with the corpus, and
every answer is computed from the same values the text states.
"""

import random
from typing import Dict, Sequence, Tuple

from flan_tune.tasks import Template, metrics
from flan_tune_tasks.offline import conlang
from flan_tune_tasks.offline import world as world_lib
from flan_tune_tasks.offline.family import register_family
from flan_tune_tasks.offline.world import Fact, Person, Town, fact_sentence, get_world

STRING_METRICS = (metrics.accuracy, metrics.edit_distance)

# How each town's product is counted: (one, many).
GOODS = {
    "cheese": ("wheel of cheese", "wheels of cheese"), "glass": ("glass jar", "glass jars"),
    "wool": ("bag of wool", "bags of wool"), "clocks": ("clock", "clocks"),
    "rope": ("coil of rope", "coils of rope"), "honey": ("jar of honey", "jars of honey"),
    "pottery": ("clay pot", "clay pots"), "paper": ("ream of paper", "reams of paper"),
    "lanterns": ("lantern", "lanterns"), "boots": ("pair of boots", "pairs of boots"),
    "cider": ("bottle of cider", "bottles of cider"), "salt": ("sack of salt", "sacks of salt"),
    "bells": ("bell", "bells"), "baskets": ("basket", "baskets"), "maps": ("map", "maps"),
    "soap": ("bar of soap", "bars of soap"),
}


def _join(items: Sequence[str]) -> str:
  """"a", "a and b", "a, b and c"."""
  return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _short_names(person: Person, other: Person) -> Tuple[str, str]:
  """First names, unless the two share one; then full names keep them apart."""
  if person.first_name == other.first_name:
    return person.name, other.name
  return person.first_name, other.first_name


def _bare(landmark: str) -> str:
  """"a windmill" -> "windmill"."""
  return landmark.split(" ", 1)[1]


def _the(landmark: str) -> str:
  return "the " + _bare(landmark)


def _other_town(rng: random.Random, town: Town) -> Town:
  return rng.choice([t for t in get_world().towns if t.name != town.name])


def _worked(steps: Sequence[str], answer: int) -> Dict[str, str]:
  return {"rationale": " ".join(steps), "answer": str(answer)}


# ------------------------------------------------------------------------- arithmetic

ARITHMETIC_TEMPLATES = [
    Template("{question}", "{answer}"),
    Template("Solve this problem and give the number.\n\n{question}", "{answer}"),
    Template("Question: {question}\nAnswer:", "{answer}"),
    Template("{question}\n\nWhat number answers the question above?", "{answer}"),
    Template("Here is a small maths puzzle from the town records.\n{question}\n"
             "Your answer:", "{answer}"),
    Template("Read the problem, work it out, and reply with the result.\nProblem: {question}",
             "{answer}"),
    Template("Q: {question}\nA:", "{answer}"),
    Template("Work out the answer: {question}", "{answer}"),
    Template("{question} Reply with a number.", "{answer}"),
    Template("Write a word problem whose answer is {answer}.", "{question}", inverted=True),
    Template("Here is a worked solution:\n{rationale}\n\nWhat problem does it solve?",
             "{question}", inverted=True),
]


def _word_problem(rng: random.Random) -> Dict[str, str]:
  world = get_world()
  person = rng.choice(world.people)
  friend = world.person_by_name[person.friend]
  me, pal = _short_names(person, friend)
  town = world.town_by_name[person.town]
  one, many = GOODS[town.product]
  intro = f"{person.name} lives in {town.name}, a town known for its {town.product}."
  kind = rng.choice(("made_sold", "shared", "daily", "gift", "packed"))
  if kind == "made_sold":
    a, b = rng.randint(5, 40), rng.randint(5, 40)
    sold = rng.randint(1, a + b - 1)
    question = (f"{intro} On Monday {me} made {a} {many}, and on Tuesday {b} more. "
                f"{me} then sold {sold} of them. How many {many} does {me} have left?")
    steps = [f"{me} made {a} + {b} = {a + b} {many}.",
             f"After selling {sold}, {a + b} - {sold} = {a + b - sold} are left."]
    return {"question": question, **_worked(steps, a + b - sold)}
  if kind == "shared":
    people, each = rng.randint(2, 6), rng.randint(2, 12)
    total = people * each
    had = rng.randint(1, total - 1)
    question = (f"{intro} {me} had {had} {many} and bought {total - had} more at the market, "
                f"then shared all of them equally among {people} neighbours. "
                f"How many {many} did each neighbour get?")
    steps = [f"{me} had {had} + {total - had} = {total} {many}.",
             f"Shared among {people} neighbours, each got {total} / {people} = {each}."]
    return {"question": question, **_worked(steps, each)}
  if kind == "daily":
    per_day, days = rng.randint(2, 12), rng.randint(2, 7)
    made = per_day * days
    given = rng.randint(1, made - 1)
    question = (f"{intro} Every day {me} makes {per_day} {many}. After {days} days, {me} "
                f"gives {given} of them to {friend.name}. How many {many} does {me} keep?")
    steps = [f"In {days} days {me} makes {per_day} * {days} = {made} {many}.",
             f"After giving away {given}, {me} keeps {made} - {given} = {made - given}."]
    return {"question": question, **_worked(steps, made - given)}
  if kind == "gift":
    mine, theirs = rng.randint(5, 30), rng.randint(1, 20)
    given = rng.randint(1, mine)
    sold = rng.randint(1, theirs + given)
    left = theirs + given - sold
    question = (f"{intro} {me} has {mine} {many} and {friend.name} has {theirs}. "
                f"{me} gives {given} to {pal}, who then sells {sold}. "
                f"How many {many} does {pal} have now?")
    steps = [f"{pal} had {theirs} and got {given}, so {theirs} + {given} = {theirs + given}.",
             f"After selling {sold}, {pal} has {theirs + given} - {sold} = {left}."]
    return {"question": question, **_worked(steps, left)}
  crate, crates = rng.randint(2, 10), rng.randint(2, 12)
  total = crate * crates
  morning = rng.randint(1, total - 1)
  question = (f"{intro} {me} made {morning} {many} in the morning and {total - morning} in "
              f"the afternoon, then packed them into crates that hold {crate} each. "
              f"How many crates did {me} fill?")
  steps = [f"{me} made {morning} + {total - morning} = {total} {many}.",
           f"Crates of {crate} hold them all in {total} / {crate} = {crates} crates."]
  return {"question": question, **_worked(steps, crates)}


register_family("arith_word_problems", "arithmetic", _word_problem, ARITHMETIC_TEMPLATES,
                rationale_field="rationale")


def _prices(rng: random.Random) -> Dict[str, str]:
  world = get_world()
  buyer = rng.choice(world.people)
  town = world.town_by_name[buyer.town]
  first, second = rng.sample(sorted(GOODS), 2)
  (one_a, many_a), (one_b, many_b) = GOODS[first], GOODS[second]
  price_a, price_b = rng.randint(2, 25), rng.randint(2, 25)
  stall = (f"At the market in {town.name}, a {one_a} costs {price_a} coins and a {one_b} "
           f"costs {price_b} coins.")
  name = buyer.first_name
  count_a, count_b = rng.randint(2, 6), rng.randint(2, 6)
  cost_a, cost_b = count_a * price_a, count_b * price_b
  kind = rng.choice(("total", "change", "afford", "difference", "profit"))
  if kind in ("total", "change"):
    total = cost_a + cost_b
    steps = [f"{count_a} {many_a} cost {count_a} * {price_a} = {cost_a} coins.",
             f"{count_b} {many_b} cost {count_b} * {price_b} = {cost_b} coins.",
             f"Together that is {cost_a} + {cost_b} = {total} coins."]
    purchase = f"{buyer.name} buys {count_a} {many_a} and {count_b} {many_b}."
    if kind == "total":
      question = f"{stall} {purchase} How many coins does {name} spend?"
      return {"question": question, **_worked(steps, total)}
    paid = (total // 50 + 1) * 50 + rng.choice((0, 50, 100))
    question = (f"{stall} {purchase} {name} pays with {paid} coins. "
                f"How many coins does {name} get back?")
    steps.append(f"The change is {paid} - {total} = {paid - total} coins.")
    return {"question": question, **_worked(steps, paid - total)}
  if kind == "afford":
    purse = rng.randint(price_a, 120)
    count, rest = divmod(purse, price_a)
    question = (f"{stall} {buyer.name} has {purse} coins. How many {many_a} can {name} buy "
                "at most?")
    leftover = (f"with {rest} coins left over" if rest else "with nothing left over")
    steps = [f"{purse} / {price_a} = {count} {leftover}, so {name} can buy {count}."]
    return {"question": question, **_worked(steps, count)}
  if kind == "difference":
    while cost_a == cost_b:
      count_b = rng.randint(2, 6)
      cost_b = count_b * price_b
    if cost_a < cost_b:  # ask about the dearer purchase first
      (count_a, many_a, price_a, cost_a), (count_b, many_b, price_b, cost_b) = (
          (count_b, many_b, price_b, cost_b), (count_a, many_a, price_a, cost_a))
    question = (f"{stall} How many more coins do {count_a} {many_a} cost than "
                f"{count_b} {many_b}?")
    steps = [f"{count_a} {many_a} cost {count_a} * {price_a} = {cost_a} coins.",
             f"{count_b} {many_b} cost {count_b} * {price_b} = {cost_b} coins.",
             f"The difference is {cost_a} - {cost_b} = {cost_a - cost_b} coins."]
    return {"question": question, **_worked(steps, cost_a - cost_b)}
  spent = rng.randint(1, cost_a - 1)
  question = (f"{stall} {buyer.name} sells {count_a} {many_a} there and then spends {spent} "
              f"coins on lunch. How many coins from the sale does {name} have left?")
  steps = [f"{count_a} {many_a} bring in {count_a} * {price_a} = {cost_a} coins.",
           f"After lunch {name} has {cost_a} - {spent} = {cost_a - spent} coins."]
  return {"question": question, **_worked(steps, cost_a - spent)}


register_family("arith_prices", "arithmetic", _prices, ARITHMETIC_TEMPLATES,
                rationale_field="rationale")


AGE_TEMPLATES = [
    Template("{facts}\n\n{question}", "{answer}"),
    Template("Use these facts to answer.\nFacts: {facts}\nQuestion: {question}", "{answer}"),
    Template("{facts} {question} Give the number.", "{answer}"),
    Template("Question: {question}\nWhat we know: {facts}\nAnswer:", "{answer}"),
    Template("Read the notes and answer the question about ages.\n\n{facts}\n\n{question}",
             "{answer}"),
    Template("{question}\nHint: {facts}", "{answer}"),
    Template("Town records say: {facts}\nAnswer from the records: {question}", "{answer}"),
    Template("Context: {facts}\nQ: {question}\nA:", "{answer}"),
    Template("Facts: {facts}\nWrite a question about ages whose answer is {answer}.",
             "{question}", inverted=True),
]


def _ages(rng: random.Random) -> Dict[str, str]:
  world = get_world()
  person = rng.choice(world.people)
  name, age = person.name, person.age
  kind = rng.choice(("future", "past", "older", "friend", "until"))
  facts = [Fact(name, "age", str(age))]
  if kind == "future":
    years = rng.randint(1, 30)
    question = f"How old will {name} be in {years} years?"
    steps = [f"{name} is {age} now.", f"In {years} years, {age} + {years} = {age + years}."]
    answer = age + years
  elif kind == "past":
    years = rng.randint(1, min(40, age - 1))
    question = f"How old was {name} {years} years ago?"
    steps = [f"{name} is {age} now.", f"{years} years ago, {age} - {years} = {age - years}."]
    answer = age - years
  elif kind == "older":
    other = rng.choice([p for p in world.people if p.age != age])
    older, younger = (person, other) if age > other.age else (other, person)
    facts = [Fact(p.name, "age", str(p.age)) for p in rng.sample([person, other], 2)]
    question = f"How many years older is {older.name} than {younger.name}?"
    steps = [f"{older.name} is {older.age} and {younger.name} is {younger.age}.",
             f"The difference is {older.age} - {younger.age} = {older.age - younger.age}."]
    answer = older.age - younger.age
  elif kind == "friend":
    friend = world.person_by_name[person.friend]
    years = rng.randint(1, 30)
    facts = [Fact(name, "friend", friend.name), Fact(friend.name, "age", str(friend.age))]
    question = f"How old will the best friend of {name} be in {years} years?"
    steps = [f"The best friend of {name} is {friend.name}, who is {friend.age}.",
             f"In {years} years, {friend.age} + {years} = {friend.age + years}."]
    answer = friend.age + years
  else:
    target = rng.randint(age + 1, age + 30)
    question = f"In how many years will {name} turn {target}?"
    steps = [f"{name} is {age} now.", f"{target} - {age} = {target - age} years."]
    answer = target - age
  relation = rng.choice(("job", "town", "pet"))  # a fact the question does not need
  facts.append(Fact(name, relation, str(getattr(person, relation))))
  rng.shuffle(facts)
  text = " ".join(fact_sentence(f, rng.randrange(3)) for f in facts)
  return {"facts": text, "question": question, **_worked(steps, answer)}


register_family("arith_ages", "arithmetic", _ages, AGE_TEMPLATES, rationale_field="rationale")

# ------------------------------------------------------------------ string manipulation


def _word_pools() -> Dict[str, Tuple[str, ...]]:
  """Single words from the world, grouped so a list can keep to one letter case."""
  world = get_world()
  lower = world_lib.PRODUCTS + world_lib.JOBS + world_lib.PETS + world_lib.COLORS + (
      world_lib.INSTRUMENTS + tuple(f for f in world_lib.FOODS if " " not in f))
  upper = tuple(t.name for t in world.towns) + world_lib.FIRST_NAMES + (
      world_lib.LAST_NAMES + world_lib.RIVERS)
  return {"lower": tuple(dict.fromkeys(lower)), "upper": tuple(dict.fromkeys(upper))}


REVERSE_TEMPLATES = [
    Template("Reverse the order of the words: {words}", "{reversed}"),
    Template("{words}\n\nWrite these words again, last word first.", "{reversed}"),
    Template("Words: {words}\nSame words, backwards order:", "{reversed}"),
    Template("Turn this sequence around so it reads from the end to the start.\n{words}",
             "{reversed}"),
    Template("Input: {words}\nOutput (words in reverse order):", "{reversed}"),
    Template("Flip the word order of \"{words}\". Keep each word spelled as it is.",
             "{reversed}"),
    Template("List the following words starting from the last one: {words}", "{reversed}"),
    Template("Task: word reversal.\n{words}", "{reversed}"),
    Template("What do you get if you read \"{words}\" one word at a time from right to left?",
             "{reversed}"),
    Template("Someone reversed a list of words and got: {reversed}\nWhat was the list before "
             "it was reversed?", "{words}", inverted=True),
]


def _reverse_words(rng: random.Random) -> Dict[str, str]:
  pools = _word_pools()
  pool = pools["lower"] + pools["upper"] if rng.random() < 0.3 else pools[rng.choice(
      ("lower", "upper"))]
  words = rng.sample(pool, rng.randint(3, 7))
  return {"words": " ".join(words), "reversed": " ".join(reversed(words))}


register_family("str_reverse_words", "string_manipulation", _reverse_words, REVERSE_TEMPLATES,
                metric_fns=STRING_METRICS)

SORT_TEMPLATES = [
    Template("Sort these words alphabetically: {words}", "{sorted}"),
    Template("{words}\n\nPut the words above in alphabetical order.", "{sorted}"),
    Template("Arrange in A-to-Z order: {words}", "{sorted}"),
    Template("Words: {words}\nThe same words sorted from A to Z:", "{sorted}"),
    Template("A librarian needs these in dictionary order. Write them out sorted, separated "
             "by spaces.\n{words}", "{sorted}"),
    Template("Alphabetize: {words}", "{sorted}"),
    Template("Which order would these {count} words take in a dictionary? {words}",
             "{sorted}"),
    Template("Input words: {words}\nSorted:", "{sorted}"),
    Template("Order the list alphabetically, first letter first, and reply with the words "
             "only: {words}", "{sorted}"),
    Template("Write a list of {count} words, in any order but not sorted, that become "
             "\"{sorted}\" once sorted alphabetically.", "{words}", inverted=True),
]


def _sort_words(rng: random.Random) -> Dict[str, str]:
  pool = _word_pools()[rng.choice(("lower", "upper"))]
  words = rng.sample(pool, rng.randint(3, 7))
  ordered = sorted(words, key=str.lower)
  while words == ordered:
    rng.shuffle(words)
  return {"words": " ".join(words), "sorted": " ".join(ordered), "count": str(len(words))}


register_family("str_sort_words", "string_manipulation", _sort_words, SORT_TEMPLATES,
                metric_fns=STRING_METRICS)

SPELL_TEMPLATES = [
    Template("Spell \"{word}\" letter by letter, with hyphens between the letters.",
             "{spelled}"),
    Template("{word}\n\nWrite out the letters of this word, joined by hyphens.", "{spelled}"),
    Template("How do you spell {word}? Answer like this: w-o-r-d.", "{spelled}"),
    Template("Break the word into its letters, separated by dashes: {word}", "{spelled}"),
    Template("Word: {word}\nSpelled out:", "{spelled}"),
    Template("Please spell the name or word below one letter at a time (keep capitals).\n"
             "{word}", "{spelled}"),
    Template("Split {word} into single letters joined with -.", "{spelled}"),
    Template("Spell it out: {word}", "{spelled}"),
    Template("Join these letters into one word: {spelled}", "{word}", inverted=True),
    Template("Which word is spelled {spelled}?", "{word}", inverted=True),
]


def _spelling_words() -> Tuple[str, ...]:
  """World words, every town name the world could have had, and Velari words: a pool
  big enough for three disjoint splits."""
  pools = _word_pools()
  towns = tuple(p + s for p in world_lib.PREFIXES for s in world_lib.SUFFIXES)
  words = pools["lower"] + pools["upper"] + towns + conlang.NOUNS + conlang.ADJECTIVES
  words += tuple(conlang.VERBS) + tuple(conlang.lexicon()[w] for w in conlang.ENGLISH_WORDS)
  return tuple(dict.fromkeys(w for w in words if len(w) >= 3))


def _spell(rng: random.Random) -> Dict[str, str]:
  word = rng.choice(_spelling_words())
  return {"word": word, "spelled": "-".join(word)}


register_family("str_spell", "string_manipulation", _spell, SPELL_TEMPLATES,
                sizes={"train": 500, "validation": 50, "test": 50})

# ---------------------------------------------------------------------- summarization

_FILLERS = (
    "The weather stayed dry for most of the week.",
    "Market day went ahead as usual.",
    "Children played by the river {river} in the afternoons.",
    "The bakeries were busy from early morning.",
    "A cold wind blew in from the {region} on Thursday.",
    "Several carts of {product} left for other towns.",
)


PERSON_EVENTS = ("prize", "concert", "pet", "workshop")
TOWN_EVENTS = ("festival", "flood", "repair", "trade", "founding", "census")


def _event(rng: random.Random) -> Dict[str, object]:
  """One piece of town news: its main sentence, supporting details, a one-sentence
  summary and a headline, all consistent with the world."""
  world = get_world()
  person = rng.choice(world.people)
  town = world.town_by_name[person.town]
  friend = world.person_by_name[person.friend]
  other = _other_town(rng, town)
  first = person.first_name
  kind = rng.choice(PERSON_EVENTS + TOWN_EVENTS)
  if kind == "prize":
    main = f"{person.name}, a {person.job} from {town.name}, won first prize at the fair."
    details = [f"The judges praised the care {first} puts into every job.",
               f"{first} thanked {friend.name} for help in the weeks before.",
               f"Entries came from as far away as {other.name}."]
    summary = f"{person.name}, a {person.job} from {town.name}, won first prize at the fair."
    headline = f"{town.name} {person.job} wins first prize at fair"
  elif kind == "concert":
    main = (f"{person.name} played the {person.instrument} at a concert beside "
            f"{_the(town.landmark)} in {town.name}.")
    details = [f"More than {rng.randint(3, 20) * 10} people came to listen.",
               f"{friend.name} sang along to the last song.",
               "The crowd asked for two more tunes at the end."]
    summary = f"{person.name} played the {person.instrument} at a concert in {town.name}."
    headline = f"{person.name} gives {person.instrument} concert in {town.name}"
  elif kind == "pet":
    main = (f"The {person.pet} of {person.name} went missing in {town.name} and was found "
            f"two days later by {friend.name}.")
    details = [f"The {person.pet} had wandered down to the river {town.river}.",
               f"{first} has promised to keep a closer eye on it.",
               "Neighbours had searched every garden in the street."]
    summary = f"{friend.name} found the missing {person.pet} of {person.name} in {town.name}."
    headline = f"Missing {person.pet} found safe in {town.name}"
  elif kind == "workshop":
    place = world_lib.JOB_WORKPLACE[person.job]
    main = f"{person.name}, a {person.job}, opened a new {place} in {town.name} this week."
    details = [f"{first} had worked for others for many years.",
               f"The new {place} stands close to {_the(town.landmark)}.",
               f"{friend.name} was the first visitor."]
    summary = f"{person.name}, a {person.job}, opened a new {place} in {town.name}."
    headline = f"New {place} opens in {town.name}"
  elif kind == "festival":
    main = f"{town.name} held a three-day festival in honour of its {town.product}."
    details = [f"Stalls were set up all around {_the(town.landmark)}.",
               f"Visitors travelled from {other.name} to join in.",
               f"{person.name} played the {person.instrument} on the last evening."]
    summary = f"{town.name} celebrated its {town.product} with a three-day festival."
    headline = f"{town.name} holds festival for its {town.product}"
  elif kind == "flood":
    main = (f"The river {town.river} rose after heavy rain and flooded the lower streets "
            f"of {town.name}.")
    details = [f"{person.name}, a local {person.job}, helped neighbours carry their goods "
               "to higher ground.", "No one was hurt.",
               "The water went down after two days."]
    summary = f"Heavy rain made the river {town.river} flood part of {town.name}."
    headline = f"River {town.river} floods streets of {town.name}"
  elif kind == "repair":
    main = f"The council of {town.name} voted to repair {_the(town.landmark)}."
    details = ["Work will start in the spring.",
               f"The makers of {town.product} in the town will help pay for it.",
               f"{person.name} spoke in favour at the meeting."]
    summary = f"The council of {town.name} decided to repair {_the(town.landmark)}."
    headline = f"{town.name} to repair its {_bare(town.landmark)}"
  elif kind == "trade":
    main = (f"Merchants from {other.name} agreed to buy {town.product} from {town.name} "
            "every month.")
    details = [f"The first cart will leave for {other.name} next week.",
               f"{person.name} will help load the carts.",
               "The road between the two towns is being mended."]
    summary = f"{town.name} will sell its {town.product} to {other.name} every month."
    headline = f"{town.name} and {other.name} agree {town.product} trade"
  elif kind == "founding":
    main = (f"{town.name}, founded in {town.founded}, marked its founding day with a "
            "parade.")
    details = [f"{person.name} led the parade playing the {person.instrument}.",
               "Flags hung from every window.",
               f"The parade ended at {_the(town.landmark)}."]
    summary = f"{town.name} held a parade for the anniversary of its founding in {town.founded}."
    headline = f"{town.name} parades to mark its founding in {town.founded}"
  else:
    main = f"A new count found that {town.name} has {town.population} inhabitants."
    details = ["Many families have moved in from the countryside.",
               f"Most newcomers settled near the river {town.river}.",
               f"{person.name} helped with the count."]
    summary = f"A count found {town.population} inhabitants in {town.name}."
    headline = f"Count puts {town.name} at {town.population} inhabitants"
  return {"kind": kind, "town": town, "person": person, "main": main,
          "details": rng.sample(details, rng.randint(1, 2)), "summary": summary,
          "headline": headline}


REPORT_TEMPLATES = [
    Template("{report}\n\nSummarize the report above in one sentence.", "{summary}"),
    Template("Report: {report}\nOne-sentence summary:", "{summary}"),
    Template("What is the main point of this report? Say it in a single sentence.\n\n"
             "{report}", "{summary}"),
    Template("Give a one-line summary.\n{report}", "{summary}"),
    Template("{report}\n\nTL;DR:", "{summary}"),
    Template("Here is this week's news from the town paper:\n{report}\n"
             "Tell me in one sentence what happened.", "{summary}"),
    Template("Condense the following into one sentence that keeps only the key event: "
             "{report}", "{summary}"),
    Template("Text: {report}\nIn short,", "{summary}"),
    Template("A neighbour asks what the news from {topic} was. Using the report below, "
             "answer in one sentence.\n{report}", "{summary}"),
    Template("Write a short report, four to six sentences long, about {topic} whose main "
             "point is: {summary}", "{report}", inverted=True),
]


def _town_report(rng: random.Random) -> Dict[str, str]:
  """The event's sentences as one block, placed among background facts and filler so
  that the main point is not always the first sentence."""
  event = _event(rng)
  town, person = event["town"], event["person"]
  block = [event["main"]] + event["details"]
  facts = [Fact(town.name, r, str(getattr(town, r))) for r in world_lib.TOWN_RELATIONS]
  facts += [Fact(person.name, r, str(getattr(person, r))) for r in ("job", "pet", "age")]
  background = [fact_sentence(f, rng.randrange(3)) for f in rng.sample(facts, 2)]
  fillers = [f.format(river=town.river, region=town.region, product=town.product)
             for f in rng.sample(_FILLERS, 2)]
  others = rng.sample(background + fillers, rng.randint(4, 6) - len(block))
  at = rng.randint(0, min(2, len(others)))
  sentences = others[:at] + block + others[at:]
  about_person = event["kind"] in PERSON_EVENTS and rng.random() < 0.5
  topic = person.name if about_person else town.name
  return {"report": " ".join(sentences), "summary": event["summary"], "topic": topic}


register_family("summ_town_report", "summarization", _town_report, REPORT_TEMPLATES,
                metric_fns=metrics.GENERATION)

HEADLINE_TEMPLATES = [
    Template("{article}\n\nWrite a headline for this news item.", "{headline}"),
    Template("Article: {article}\nHeadline:", "{headline}"),
    Template("Give this story a short title, the kind a newspaper would print.\n{article}",
             "{headline}"),
    Template("What headline would you put above the following paragraph?\n\n{article}",
             "{headline}"),
    Template("News: {article}\nSum it up in a headline of a few words.", "{headline}"),
    Template("{article}\nTitle:", "{headline}"),
    Template("Write a catchy but accurate headline for the {town} paper about this: "
             "{article}", "{headline}"),
    Template("Headline-writing task. Story: {article}", "{headline}"),
    Template("Read the report and write its headline.\nReport: {article}\nAnswer:",
             "{headline}"),
    Template("Write a short news paragraph to go under the headline \"{headline}\".",
             "{article}", inverted=True),
]


def _headline(rng: random.Random) -> Dict[str, str]:
  event = _event(rng)
  return {"article": " ".join([event["main"]] + event["details"]),
          "headline": event["headline"], "town": event["town"].name}


register_family("summ_headline", "summarization", _headline, HEADLINE_TEMPLATES,
                metric_fns=metrics.GENERATION)

# --------------------------------------------------------------------- struct to text

PERSON_CLAUSES = {
    "town": "lives in {v}", "job": "works as a {v}", "age": "is {v} years old",
    "pet": "keeps a {v} as a pet", "color": "likes the colour {v} best",
    "food": "loves to eat {v}", "instrument": "plays the {v}",
    "friend": "is best friends with {v}"}
TOWN_CLAUSES = {
    "region": "lies in the {v}", "river": "stands on the river {v}",
    "founded": "was founded in {v}", "population": "has {v} inhabitants",
    "product": "is known for its {v}", "landmark": "has {v}"}


def _record(rng: random.Random) -> Dict[str, object]:
  """A person or town with two to four of its facts, in a random order."""
  world = get_world()
  if rng.random() < 0.6:
    subject = rng.choice(world.people)
    key, relations, clauses = "name", world_lib.PERSON_RELATIONS, PERSON_CLAUSES
  else:
    subject = rng.choice(world.towns)
    key, relations, clauses = "town", world_lib.TOWN_RELATIONS, TOWN_CLAUSES
  chosen = rng.sample(relations, rng.randint(2, 4))
  facts = [Fact(subject.name, r, str(getattr(subject, r))) for r in chosen]
  table = " | ".join([f"{key}: {subject.name}"] + [f"{f.relation}: {f.value}" for f in facts])
  sentence = f"{subject.name} " + _join([clauses[f.relation].format(v=f.value)
                                          for f in facts]) + "."
  return {"facts": facts, "table": table, "sentence": sentence}


DATA_TO_TEXT_TEMPLATES = [
    Template("{table}\n\nWrite one sentence that states all of these facts.", "{text}"),
    Template("Data: {table}\nSentence:", "{text}"),
    Template("Turn this record into a fluent English sentence: {table}", "{text}"),
    Template("Describe the entry below in plain words, in a single sentence.\n{table}",
             "{text}"),
    Template("Here are some facts from the town register, written as field: value pairs "
             "separated by bars.\n{table}\nExpress them as a sentence.", "{text}"),
    Template("Record: {table}\nWrite it up as prose.", "{text}"),
    Template("Verbalize the table: {table}", "{text}"),
    Template("What sentence does this attribute list describe? {table}", "{text}"),
    Template("{table}\nSay this in a sentence.", "{text}"),
    Template("Sentence: {text}\nWrite the record it was made from, as field: value pairs "
             "separated by \" | \".", "{table}", inverted=True),
]


def _data_to_text(rng: random.Random) -> Dict[str, str]:
  record = _record(rng)
  return {"table": record["table"], "text": record["sentence"]}


register_family("data_to_text", "struct_to_text", _data_to_text, DATA_TO_TEXT_TEMPLATES,
                metric_fns=metrics.GENERATION)

TEXT_TO_DATA_TEMPLATES = [
    Template("{text}\n\nExtract the facts above as a record of field: value pairs separated "
             "by \" | \", starting with the name or town.", "{table}"),
    Template("Text: {text}\nRecord:", "{table}"),
    Template("Fill in a register entry from this description. Use the form "
             "\"name: ... | job: ...\" and list facts in the order they appear.\n{text}",
             "{table}"),
    Template("Convert the sentence into structured data: {text}", "{table}"),
    Template("Read the passage and write down its facts as a table row.\n\n{text}",
             "{table}"),
    Template("What record of fields and values does this text describe? {text}", "{table}"),
    Template("Passage: {text}\nStructured version (field: value | field: value ...):",
             "{table}"),
    Template("Turn this into a database row with \" | \" between fields: {text}", "{table}"),
    Template("{text}\nAs a record:", "{table}"),
    Template("Write a short description that states every fact in this record: {table}",
             "{text}", inverted=True),
]


def _text_to_data(rng: random.Random) -> Dict[str, str]:
  record = _record(rng)
  if rng.random() < 0.5:
    text = record["sentence"]
  else:
    text = " ".join(fact_sentence(f, rng.randrange(3)) for f in record["facts"])
  return {"text": text, "table": record["table"]}


register_family("text_to_data", "struct_to_text", _text_to_data, TEXT_TO_DATA_TEMPLATES,
                metric_fns=(metrics.accuracy, metrics.rouge))

# ------------------------------------------------------------------------ translation

TO_VELARI_TEMPLATES = [
    Template("Translate into Velari: {english}", "{velari}"),
    Template("English: {english}\nVelari:", "{velari}"),
    Template("How would a Velari speaker say \"{english}\"?", "{velari}"),
    Template("Dictionary: {glossary}\n\nUsing the words above, translate into Velari.\n"
             "{english}", "{velari}"),
    Template("{english}\n\nRender this sentence in Velari.", "{velari}"),
    Template("Velari puts adjectives after the noun and the verb near the end. Translate: "
             "{english}", "{velari}"),
    Template("Word list: {glossary}\nEnglish sentence: {english}\nThe same sentence in "
             "Velari:", "{velari}"),
    Template("Please give the Velari version of this English sentence.\n{english}",
             "{velari}"),
    Template("Translate from English to Velari.\nInput: {english}\nOutput:", "{velari}"),
    Template("Here is a Velari sentence: {velari}\nWrite the English sentence that it "
             "translates.", "{english}", inverted=True),
]

FROM_VELARI_TEMPLATES = [
    Template("Translate into English: {velari}", "{english}"),
    Template("Velari: {velari}\nEnglish:", "{english}"),
    Template("What does the Velari sentence \"{velari}\" mean in English?", "{english}"),
    Template("Dictionary: {glossary}\n\nWith the help of the dictionary, translate this "
             "Velari sentence into English.\n{velari}", "{english}"),
    Template("{velari}\n\nGive an English translation.", "{english}"),
    Template("In Velari the verb comes last and the tense follows it. Put this into "
             "English: {velari}", "{english}"),
    Template("Glossary: {glossary}\nVelari sentence: {velari}\nEnglish sentence:",
             "{english}"),
    Template("A traveller heard someone say \"{velari}\" in Velari. What was said, in "
             "English?", "{english}"),
    Template("Translate from Velari to English.\nInput: {velari}\nOutput:", "{english}"),
    Template("Which Velari sentence would a translator turn into \"{english}\"?",
             "{velari}", inverted=True),
]


def _sentence_pair(rng: random.Random) -> Dict[str, str]:
  sentence = conlang.random_sentence(rng)
  return {"english": conlang.to_english(sentence), "velari": conlang.to_velari(sentence),
          "glossary": conlang.glossary(sentence)}


register_family("translate_to_conlang", "translation", _sentence_pair, TO_VELARI_TEMPLATES,
                metric_fns=metrics.TRANSLATION)
register_family("translate_from_conlang", "translation", _sentence_pair,
                FROM_VELARI_TEMPLATES, metric_fns=metrics.TRANSLATION)
