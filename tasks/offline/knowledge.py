"""Knowledge families of the offline collection: reading comprehension, closed-book QA,
commonsense and comparisons, all about the fictional world.

Every answer is computed from `world.get_world()`, whose facts the pretraining corpus
states, so a held-out closed-book or comparison cluster measures recall of what the model
read rather than luck. Passages state only true facts, so reading and recall never
disagree, and wrong answer choices are checked never to be true.
"""

import functools
import random
from typing import Dict, List, Sequence, Tuple

from flan_tune.tasks import Template, metrics
from flan_tune_tasks.offline import world as world_lib
from flan_tune_tasks.offline.family import register_family
from flan_tune_tasks.offline.world import Fact, fact_sentence, get_world

# Questions about one fact, several phrasings each, so closed-book examples of the same
# fact stay distinct and are not answerable by matching the corpus sentence word for word.
PERSON_QUESTIONS = {
    "town": ("Where does {s} live?", "In which town does {s} live?",
             "Which town is home to {s}?"),
    "job": ("What does {s} do for a living?", "What is {s}'s job?",
            "Which trade does {s} work in?"),
    "age": ("How old is {s}?", "What is the age of {s}?", "How many years has {s} lived?"),
    "pet": ("What pet does {s} keep?", "Which animal does {s} have as a pet?",
            "What kind of pet lives with {s}?"),
    "color": ("What is {s}'s favourite colour?", "Which colour does {s} like best?",
              "What colour does {s} prefer to all others?"),
    "food": ("What is {s}'s favourite food?", "What does {s} love to eat?",
             "Which food would {s} choose above all others?"),
    "instrument": ("Which instrument does {s} play?", "What musical instrument can {s} play?",
                   "What does {s} play in the evenings?"),
    "friend": ("Who is {s}'s best friend?", "Who is the closest friend of {s}?",
               "Which person is {s}'s best friend?"),
}
TOWN_QUESTIONS = {
    "region": ("In which part of the country is {s}?", "Which region is {s} in?",
               "Where in the country does {s} lie?"),
    "river": ("Which river flows through {s}?", "On which river does {s} stand?",
              "Which river was {s} built beside?"),
    "founded": ("When was {s} founded?", "In what year was {s} founded?",
                "Since which year has {s} stood?"),
    "population": ("How many people live in {s}?", "What is the population of {s}?",
                   "How many inhabitants does {s} have?"),
    "product": ("What is {s} known for?", "What do the people of {s} make?",
                "What do traders come to {s} to buy?"),
    "landmark": ("Which landmark does {s} have?", "What do visitors to {s} admire?",
                 "What stands in the centre of {s}?"),
}
# Founding years and populations are distinct, so these name exactly one town.
TOWN_REVERSE_QUESTIONS = {
    "founded": ("Which town was founded in {v}?", "Which town has stood since {v}?"),
    "population": ("Which town has {v} inhabitants?", "In which town do {v} people live?"),
}
# Yes/no questions only for relations with one value per subject, so "no" is certain.
YES_NO_QUESTIONS = {
    "town": "Does {s} live in {v}?",
    "job": "Does {s} work as a {v}?",
    "age": "Is {s} {v} years old?",
    "pet": "Is {s}'s pet a {v}?",
    "color": "Is {v} the favourite colour of {s}?",
    "food": "Is {v} the favourite food of {s}?",
    "friend": "Is {v} the best friend of {s}?",
    "region": "Does {s} lie in the {v} of the country?",
    "river": "Is {s} on the river {v}?",
    "founded": "Was {s} founded in {v}?",
    "population": "Does {s} have {v} inhabitants?",
}
# (first hop from a person, second hop from what it reaches) -> phrasings.
TWO_HOP_QUESTIONS = {
    ("friend", "job"): ("What does the best friend of {s} do for a living?",
                        "What is the job of {s}'s best friend?"),
    ("friend", "town"): ("Where does {s}'s best friend live?",
                         "In which town does the best friend of {s} live?"),
    ("friend", "pet"): ("What pet does {s}'s best friend keep?",
                        "Which animal does the best friend of {s} keep as a pet?"),
    ("friend", "instrument"): ("Which instrument does {s}'s best friend play?",
                               "What does the best friend of {s} play in the evenings?"),
    ("town", "river"): ("Which river flows through the town where {s} lives?",
                        "On which river does {s}'s home town stand?"),
    ("town", "region"): ("In which part of the country does {s} live?",
                         "Which region is the home town of {s} in?"),
    ("town", "product"): ("What is the home town of {s} known for?",
                          "What do the people of {s}'s town make?"),
    ("town", "founded"): ("In what year was the town where {s} lives founded?",
                          "When was {s}'s home town founded?"),
}
# Many phrasings: only 3 of the 10 pets walk on two legs, and balanced labels need many
# distinct two-legged examples.
PET_LEG_QUESTIONS = {
    "own": ("How many legs does {s}'s pet have?", "On how many legs does the pet of {s} walk?",
            "{s} keeps a pet. How many legs does it have?", "Count the legs of {s}'s pet.",
            "What is the number of legs of the animal {s} keeps as a pet?",
            "Does the pet that lives with {s} have two legs or four?"),
    "friend": ("How many legs does the pet of {s}'s best friend have?",
               "{s}'s best friend keeps a pet. How many legs does it have?",
               "Count the legs of the pet that {s}'s best friend keeps.",
               "On how many legs does the pet of {s}'s best friend walk?",
               "Does the pet of {s}'s best friend have two legs or four?"),
}
# Generic forms ({job}/{tool}/{workplace}) and forms about a world person ({p}), whose job
# is then the world's.
TOOL_QUESTIONS = {
    "tool": ("What does a {job} use most at work?",
             "What tool would you expect a {job} to use?",
             "{p} works as a {job}. What does {p} most likely use at work?"),
    "workplace": ("Where does a {job} usually work?",
                  "In which place would you find a {job} at work?",
                  "{p} is a {job}. Where does {p} most likely spend the working day?"),
    "job_from_tool": ("Who works with {tool} every day?",
                      "Which worker would most likely need {tool}?",
                      "{p} uses {tool} all day at work. Which job does {p} most likely have?"),
    "job_from_workplace": ("Whose usual place of work is a {workplace}?",
                           "If you visit a {workplace}, which worker do you expect to meet?",
                           "{p} goes to a {workplace} every working day. What is {p}'s job?"),
}
# Jobs whose tools or workplaces overlap; never offered as each other's wrong answers.
CONFUSABLE_JOBS = (("fisher", "sailor"), ("farmer", "gardener"), ("carpenter", "clockmaker"),
                   ("tailor", "weaver"), ("potter", "painter"), ("teacher", "librarian"))

# Everyday commonsense, written for this collection: (goal, answer, three wrong answers).
EVERYDAY_USES = (
    ("see the path home on a moonless night", "a lantern",
     ("a spoon", "a pillow", "a bucket of sand")),
    ("cross a muddy field without soaking both feet", "tall boots",
     ("a straw hat", "a fishing net", "a paper fan")),
    ("wash grease off both hands", "soap and water", ("flour", "a dry leaf", "honey")),
    ("tie a small boat to the pier", "a rope", ("a feather", "a slice of cheese", "a candle")),
    ("carry twenty apples home from the market", "a basket",
     ("a fork", "a thimble", "a kite")),
    ("find the road to a town never visited before", "a map",
     ("a hammer", "a teapot", "a broom")),
    ("know whether it is time for lunch", "a clock", ("a ladder", "a blanket", "a jar of salt")),
    ("call the whole village to the square", "a loud bell",
     ("a whisper", "a sponge", "a pencil")),
    ("sweeten a cup of tea", "a spoonful of honey",
     ("a pinch of salt", "a splash of vinegar", "a lump of clay")),
    ("send a letter to a friend in another town", "paper and ink",
     ("a fishing rod", "a cooking pot", "a pair of boots")),
    ("keep fish from spoiling on a long journey", "salt",
     ("warm water", "feathers", "a woollen sock")),
    ("keep warm on a freezing night", "a thick wool blanket",
     ("a glass of ice", "a paper fan", "an open window")),
    ("see whether a hat sits straight before a party", "a mirror",
     ("a loaf of bread", "a drum", "a shovel")),
    ("cut a loaf of bread into slices", "a bread knife", ("a feather", "a spoon", "a bell")),
    ("dig a hole to plant a tree", "a spade", ("a teacup", "a comb", "a flute")),
    ("stay dry while walking in the rain", "an umbrella",
     ("a sieve", "a paper bag", "a fishing net")),
    ("boil water for soup", "a pot over a fire",
     ("a wicker basket", "a paper cup on ice", "a wooden sieve")),
    ("carry water from the well", "a bucket", ("a sieve", "a fishing net", "a woven basket")),
    ("light the fire in a stove", "matches", ("a wet towel", "a cup of water", "a snowball")),
    ("sweep crumbs off the kitchen floor", "a broom", ("a hammer", "a candle", "a map")),
    ("measure how long a plank is", "a measuring tape",
     ("a spoon", "a whistle", "a pillow")),
    ("open a locked door", "the right key", ("a feather", "a slice of bread", "a song")),
    ("sew a button back onto a coat", "a needle and thread",
     ("a hammer and nails", "a ladle", "a bar of soap")),
    ("reach apples at the top of a tall tree", "a ladder",
     ("a pillow", "a soup bowl", "a pair of socks")),
)
# (situation, what happens, three wrong outcomes); "someone" may become a world person.
EVERYDAY_EFFECTS = (
    ("someone leaves a bowl of ice in the summer sun", "the ice melts",
     ("the ice turns to stone", "the ice gets colder", "the bowl fills with sand")),
    ("someone drops a glass jar onto a stone floor", "the jar breaks",
     ("the jar bounces up to the ceiling", "the jar turns into wood", "the floor melts")),
    ("someone forgets to water a potted plant for a month", "the plant dries out and wilts",
     ("the plant grows twice as fast", "the plant turns blue", "the pot fills with water")),
    ("someone hangs a wet shirt outside on a sunny, windy day", "the shirt dries",
     ("the shirt gets wetter", "the shirt turns into paper", "the shirt freezes solid")),
    ("someone blows out the only lantern in a windowless room at night", "the room goes dark",
     ("the room gets brighter", "the lantern gets heavier", "the walls turn green")),
    ("someone rings a large bell in the town square", "people nearby hear it",
     ("the bell melts", "the square goes silent", "the bell turns into bread")),
    ("someone leaves a jug of milk in a warm kitchen for a week", "the milk goes sour",
     ("the milk turns into water", "the milk becomes sweeter", "the milk turns into wine")),
    ("someone drops a heavy stone into a pond", "the stone sinks",
     ("the stone floats away", "the pond dries up", "the stone flies into the air")),
    ("someone puts a lump of butter next to a hot stove", "the butter melts",
     ("the butter freezes", "the butter turns into cheese", "the butter gets harder")),
    ("someone walks through heavy rain with no coat or umbrella", "they get soaked",
     ("they stay perfectly dry", "they turn into a fish", "the rain stops at once")),
    ("someone pours a bucket of water on a small campfire", "the fire goes out",
     ("the fire grows much bigger", "the water catches fire", "the wood turns to ice")),
    ("someone knocks a full cup of tea off the table", "the cup falls and the tea spills",
     ("the cup floats in the air", "the cup rises to the ceiling", "the tea turns to honey")),
    ("someone winds a clock that had stopped", "the clock starts ticking again",
     ("the clock turns into a bell", "the clock melts", "the clock runs backwards forever")),
    ("someone leaves bread in a hot oven for far too long", "the bread burns",
     ("the bread turns back into dough", "the bread turns into cheese",
      "the bread gets wetter")),
    ("someone plants a bean in good soil and waters it", "a plant sprouts",
     ("the bean turns into a stone", "the soil turns to glass", "the bean flies away")),
    ("someone leaves an iron hammer out in the rain for months", "the hammer rusts",
     ("the hammer turns to gold", "the hammer grows longer", "the hammer becomes wooden")),
    ("someone washes a woollen jumper in very hot water", "the jumper shrinks",
     ("the jumper grows two sizes", "the jumper turns into cotton", "the jumper catches fire")),
    ("someone stirs a spoonful of salt into a glass of warm water", "the salt dissolves",
     ("the water turns to ice", "the salt catches fire", "the glass turns to wood")),
    ("someone leaves a candle burning all night", "the candle gets shorter",
     ("the candle gets longer", "the candle turns into water", "the candle turns blue")),
    ("someone opens the window of a warm room on a winter night", "the room gets colder",
     ("the room gets warmer", "the window turns to ice cream", "the room fills with smoke")),
    ("someone shouts loudly in a big empty stone hall", "they hear an echo",
     ("the hall gets warmer", "the floor gets wet", "the hall fills with snow")),
    ("someone sits on a chair with a broken leg", "the chair tips over",
     ("the chair grows a new leg", "the chair floats", "the chair turns into a table")),
)
EVERYDAY_USE_QUESTIONS = ("What would you use to {goal}?", "Which of these helps you {goal}?",
                          "{p} wants to {goal}. What should {p} use?")
EVERYDAY_EFFECT_QUESTIONS = ("What happens if {situation}?",
                             "Suppose {situation}. What is most likely to happen?",
                             "If {situation}, what will probably happen next?")

TOWN_AGE_QUESTIONS = {
    "older": ("Which town is older, {a} or {b}?", "Which was founded first, {a} or {b}?",
              "Of {a} and {b}, which town has stood longer?"),
    "younger": ("Which town is younger, {a} or {b}?", "Which was founded later, {a} or {b}?",
                "Of {a} and {b}, which town is newer?"),
}
PEOPLE_AGE_QUESTIONS = {
    "older": ("Who is older, {a} or {b}?", "Which of {a} and {b} has lived longer?",
              "Is {a} or {b} the elder of the two?"),
    "younger": ("Who is younger, {a} or {b}?", "Which of {a} and {b} has lived fewer years?",
                "Is {a} or {b} the younger of the two?"),
}
POPULATION_QUESTIONS = {
    "more": ("Which town has more inhabitants, {a} or {b}?",
             "Do more people live in {a} or in {b}?",
             "Which is the larger town by population, {a} or {b}?"),
    "fewer": ("Which town has fewer inhabitants, {a} or {b}?",
              "Do fewer people live in {a} or in {b}?",
              "Which is the smaller town by population, {a} or {b}?"),
}


def _value(entity, relation: str) -> str:
  return str(getattr(entity, relation))


def _sentence(entity, relation: str, variant: int = 0) -> str:
  return fact_sentence(Fact(entity.name, relation, _value(entity, relation)), variant)


@functools.cache
def _value_pools() -> Dict[str, Tuple[str, ...]]:
  """Every value a relation takes, for wrong answers that look like right ones."""
  world = get_world()
  return {
      "town": tuple(t.name for t in world.towns), "job": world_lib.JOBS,
      "age": tuple(str(a) for a in range(18, 90)), "pet": world_lib.PETS,
      "color": world_lib.COLORS, "food": world_lib.FOODS,
      "instrument": world_lib.INSTRUMENTS, "friend": tuple(p.name for p in world.people),
      "region": world_lib.REGIONS, "river": world_lib.RIVERS,
      "founded": tuple(str(t.founded) for t in world.towns),
      "population": tuple(str(t.population) for t in world.towns),
      "product": world_lib.PRODUCTS, "landmark": world_lib.LANDMARKS}


def _wrong_values(entity, relation: str) -> List[str]:
  """Values that are false for `entity`, in a fixed order.

  The corpus says "A and B are best friends" for A's friend B, so nobody who calls
  `entity` their best friend is offered as a wrong best friend.
  """
  excluded = {_value(entity, relation), entity.name}
  if relation == "friend":
    excluded |= {p.name for p in get_world().people if p.friend == entity.name}
  return [v for v in _value_pools()[relation] if v not in excluded]


def _with_answer(rng: random.Random, answer: str, wrong: Sequence[str]) -> List[str]:
  """The wrong answers shuffled, with the answer at a uniformly drawn position."""
  choices = list(wrong)
  rng.shuffle(choices)
  choices.insert(rng.randrange(len(choices) + 1), answer)
  return choices


# ---------------------------------------------------------------- reading comprehension

def _passage(rng: random.Random, askable: Sequence[str]) -> dict:
  """3-6 true sentences: 2-4 about one subject, 1-2 about others that never mention it.

  Returns the subject, the asked relation (one of `askable`), its true value, the text,
  and the values of the asked relation that the passage states about other subjects.
  """
  world = get_world()
  if rng.random() < 0.5:
    entities, relations = world.people, world_lib.PERSON_RELATIONS
  else:
    entities, relations = world.towns, world_lib.TOWN_RELATIONS
  subject = rng.choice(entities)
  asked = rng.choice([r for r in relations if r in askable])
  extra = rng.sample([r for r in relations if r != asked], rng.randint(1, 3))
  sentences = [_sentence(subject, r, rng.randrange(3)) for r in [asked] + extra]
  others = rng.sample([e for e in entities if e.name != subject.name], rng.randint(1, 2))
  other_values = []
  for other in others:
    allowed = [r for r in relations if _value(other, r) != subject.name]
    relation = asked if asked in allowed and rng.random() < 0.5 else rng.choice(allowed)
    sentences.append(_sentence(other, relation, rng.randrange(3)))
    if relation == asked:
      other_values.append(_value(other, asked))
  rng.shuffle(sentences)
  return {"subject": subject, "relation": asked, "answer": _value(subject, asked),
          "text": " ".join(sentences), "other_values": other_values}


def _question(subject, relation: str, rng: random.Random) -> str:
  table = PERSON_QUESTIONS if relation in PERSON_QUESTIONS else TOWN_QUESTIONS
  return rng.choice(table[relation]).format(s=subject.name)


def rc_extractive(rng: random.Random) -> dict:
  passage = _passage(rng, world_lib.PERSON_RELATIONS + world_lib.TOWN_RELATIONS)
  return {"passage": passage["text"], "subject": passage["subject"].name,
          "question": _question(passage["subject"], passage["relation"], rng),
          "answer": passage["answer"]}


def rc_multiple_choice(rng: random.Random) -> dict:
  """Wrong choices prefer values the passage states about someone else."""
  passage = _passage(rng, world_lib.PERSON_RELATIONS + world_lib.TOWN_RELATIONS)
  subject, relation = passage["subject"], passage["relation"]
  false = _wrong_values(subject, relation)
  in_text = [v for v in dict.fromkeys(passage["other_values"]) if v in false]
  wrong = (in_text + rng.sample([v for v in false if v not in in_text], 3))[:3]
  return {"passage": passage["text"], "question": _question(subject, relation, rng),
          "answer": passage["answer"], "choices": _with_answer(rng, passage["answer"], wrong)}


def rc_boolean(rng: random.Random) -> dict:
  """Label first; a "no" question often names a value the passage gives someone else."""
  answer = rng.choice(("yes", "no"))
  passage = _passage(rng, tuple(YES_NO_QUESTIONS))
  subject, relation = passage["subject"], passage["relation"]
  value = passage["answer"]
  if answer == "no":
    false = _wrong_values(subject, relation)
    in_text = [v for v in passage["other_values"] if v in false]
    value = rng.choice(in_text if in_text and rng.random() < 0.7 else false)
  return {"passage": passage["text"], "answer": answer,
          "question": YES_NO_QUESTIONS[relation].format(s=subject.name, v=value)}


# ---------------------------------------------------------------- closed-book QA

def cbqa_people(rng: random.Random) -> dict:
  person = rng.choice(get_world().people)
  relation = rng.choice(world_lib.PERSON_RELATIONS)
  return {"question": _question(person, relation, rng), "answer": _value(person, relation),
          "subject": person.name}


def cbqa_towns(rng: random.Random) -> dict:
  """Mostly town -> value; sometimes a unique year or population -> town."""
  town = rng.choice(get_world().towns)
  if rng.random() < 0.2:
    relation = rng.choice(tuple(TOWN_REVERSE_QUESTIONS))
    question = rng.choice(TOWN_REVERSE_QUESTIONS[relation]).format(v=_value(town, relation))
    return {"question": question, "answer": town.name}
  relation = rng.choice(world_lib.TOWN_RELATIONS)
  return {"question": _question(town, relation, rng), "answer": _value(town, relation)}


def _hop(entity, relation: str):
  """The person or town a relation leads to."""
  world = get_world()
  value = _value(entity, relation)
  return world.person_by_name[value] if relation == "friend" else world.town_by_name[value]


def cbqa_two_hop(rng: random.Random) -> dict:
  person = rng.choice(get_world().people)
  first, second = rng.choice(tuple(TWO_HOP_QUESTIONS))
  bridge = _hop(person, first)
  return {"question": rng.choice(TWO_HOP_QUESTIONS[first, second]).format(s=person.name),
          "answer": _value(bridge, second), "subject": person.name,
          "rationale": f"{_sentence(person, first)} {_sentence(bridge, second)}"}


# ---------------------------------------------------------------- commonsense

def _plausible_wrong_jobs(job: str) -> List[str]:
  confusable = {b for a, b in CONFUSABLE_JOBS if a == job} | {
      a for a, b in CONFUSABLE_JOBS if b == job}
  return [j for j in world_lib.JOBS if j != job and j not in confusable]


def commonsense_tools(rng: random.Random) -> dict:
  """Jobs and their tools or workplaces; a named person's job is the world's."""
  kind = rng.choice(tuple(TOOL_QUESTIONS))
  phrasing = rng.choice(TOOL_QUESTIONS[kind])
  if "{p}" in phrasing:
    person = rng.choice(get_world().people)
    job, name = person.job, person.name
  else:
    job, name = rng.choice(world_lib.JOBS), ""
  tool, workplace = world_lib.JOB_TOOL[job], world_lib.JOB_WORKPLACE[job]
  wrong_jobs = rng.sample(_plausible_wrong_jobs(job), 3)
  answer, wrong = {
      "tool": (tool, [world_lib.JOB_TOOL[j] for j in wrong_jobs]),
      "workplace": (workplace, [world_lib.JOB_WORKPLACE[j] for j in wrong_jobs]),
      "job_from_tool": (job, wrong_jobs),
      "job_from_workplace": (job, wrong_jobs)}[kind]
  question = phrasing.format(p=name, job=job, tool=tool, workplace=workplace)
  return {"question": question, "answer": answer, "choices": _with_answer(rng, answer, wrong)}


def _pet_owner(person, kind: str):
  return _hop(person, "friend") if kind == "friend" else person


def commonsense_pet_legs(rng: random.Random) -> dict:
  """Label first, then a person (or their best friend) whose pet has that many legs."""
  answer = rng.choice(("2", "4"))
  kind = rng.choice(tuple(PET_LEG_QUESTIONS))
  person = rng.choice([p for p in get_world().people
                       if str(world_lib.PET_LEGS[_pet_owner(p, kind).pet]) == answer])
  owner = _pet_owner(person, kind)
  steps = [_sentence(person, "friend")] if kind == "friend" else []
  steps += [_sentence(owner, "pet"), f"A {owner.pet} has {answer} legs."]
  return {"question": rng.choice(PET_LEG_QUESTIONS[kind]).format(s=person.name),
          "answer": answer, "subject": person.name, "rationale": " ".join(steps)}


def commonsense_everyday(rng: random.Random) -> dict:
  if rng.random() < 0.5:
    goal, answer, wrong = rng.choice(EVERYDAY_USES)
    phrasing, slots = rng.choice(EVERYDAY_USE_QUESTIONS), {"goal": goal}
  else:
    situation, answer, wrong = rng.choice(EVERYDAY_EFFECTS)
    phrasing, slots = rng.choice(EVERYDAY_EFFECT_QUESTIONS), {"situation": situation}
  name = rng.choice(get_world().people).name
  if "situation" in slots and rng.random() < 0.5:
    slots["situation"] = slots["situation"].replace("someone", name, 1)
  return {"question": phrasing.format(p=name, **slots), "answer": answer,
          "choices": _with_answer(rng, answer, wrong)}


# ---------------------------------------------------------------- comparison

def _comparison(rng: random.Random, entities: Sequence, value_of, questions: dict,
                explain) -> dict:
  """Two entities with different values, in random order; the winner answers.

  The first direction in `questions` asks for the larger value (older, more),
  the second for the smaller. `explain(a, b, winner, direction)` gives the rationale.
  """
  first, second = rng.sample(list(entities), 2)
  while value_of(first) == value_of(second):
    first, second = rng.sample(list(entities), 2)
  direction = rng.choice(tuple(questions))
  bigger = first if value_of(first) > value_of(second) else second
  smaller = second if bigger is first else first
  winner = bigger if direction == next(iter(questions)) else smaller
  return {"question": rng.choice(questions[direction]).format(a=first.name, b=second.name),
          "answer": winner.name, "choices": [first.name, second.name],
          "rationale": explain(first, second, winner, direction)}


def compare_town_age(rng: random.Random) -> dict:
  """Older means founded earlier: the bigger value is the negated year."""
  def explain(a, b, winner, direction):
    return (f"{a.name} was founded in {a.founded} and {b.name} in {b.founded}, "
            f"so {winner.name} is {direction}.")
  return _comparison(rng, get_world().towns, lambda t: -t.founded, TOWN_AGE_QUESTIONS, explain)


def compare_people_age(rng: random.Random) -> dict:
  def explain(a, b, winner, direction):
    return (f"{a.name} is {a.age} years old and {b.name} is {b.age}, "
            f"so {winner.name} is {direction}.")
  return _comparison(rng, get_world().people, lambda p: p.age, PEOPLE_AGE_QUESTIONS, explain)


def compare_population(rng: random.Random) -> dict:
  def explain(a, b, winner, direction):
    return (f"{a.name} has {a.population} inhabitants and {b.name} has {b.population}, "
            f"so {winner.name} has {direction} people.")
  return _comparison(rng, get_world().towns, lambda t: t.population, POPULATION_QUESTIONS,
                     explain)


# ---------------------------------------------------------------- registration

T = Template
READING = "reading_comprehension"
CLOSED_BOOK = "closed_book_qa"
COMMONSENSE = "commonsense"
COMPARISON = "comparison"

register_family("rc_extractive", READING, rc_extractive, [
    T("{passage}\n\nQuestion: {question}\nAnswer with words taken from the passage.",
      "{answer}"),
    T("Read this and answer the question.\n\n{passage}\n\n{question}", "{answer}"),
    T("{question}\n\nThe answer is somewhere in this text:\n{passage}", "{answer}"),
    T("Passage: {passage}\nQ: {question}\nA:", "{answer}"),
    T("Here are a few lines about {subject} and others.\n{passage}\n"
      "A question on those lines: {question}", "{answer}"),
    T("Copy the shortest part of the passage that answers \"{question}\"\n\n{passage}",
      "{answer}"),
    T("{passage}\n{question}", "{answer}"),
    T("Context: {passage}\n\nUsing only the context, answer this: {question}", "{answer}"),
    T("I read this: \"{passage}\" Can you tell me: {question}", "{answer}"),
    T("{passage}\n\nWrite a question about {subject} that this passage answers with "
      "\"{answer}\".", "{question}", inverted=True),
], metric_fns=metrics.QA)

register_family("rc_multiple_choice", READING, rc_multiple_choice, [
    T("{passage}\n\n{question}\n{options_}", "{answer}"),
    T("Read the passage and pick the right answer.\n\nPassage: {passage}\n"
      "Question: {question}\n{options_}", "{answer}"),
    T("Question: {question}\n\nThe text below holds the answer.\n{passage}\n\n{options_}",
      "{answer}"),
    T("{passage}\nAccording to the passage: {question}\n{options_}", "{answer}"),
    T("Choose the answer to \"{question}\" using this text.\n{passage}\n{options_}",
      "{answer}"),
    T("Text: {passage}\nQ: {question}\n{options_}\nA:", "{answer}"),
    T("{question}\n{options_}\nBase your choice on this passage: {passage}", "{answer}"),
    T("Here is a passage.\n{passage}\nWhich option answers the question \"{question}\"?\n"
      "{options_}", "{answer}"),
    T("{passage}\n\nAnswer the question about the text: {question}", "{answer}"),
    T("{passage}\n\nThe right answer is \"{answer}\". Write the question it answers.",
      "{question}", inverted=True),
], options_field="choices")

register_family("rc_boolean", READING, rc_boolean, [
    T("{passage}\n\n{question}\n{options_}", "{answer}"),
    T("Read the text and answer yes or no.\n\n{passage}\n\nQuestion: {question}\n{options_}",
      "{answer}"),
    T("Passage: {passage}\nAfter reading the passage, answer: {question}\n{options_}",
      "{answer}"),
    T("{question} Answer from this passage:\n{passage}\n{options_}", "{answer}"),
    T("Is the answer to the question yes or no?\nText: {passage}\nQuestion: {question}\n"
      "{options_}", "{answer}"),
    T("Here is what the town records say:\n{passage}\nGiven that, decide: {question}\n"
      "{options_}", "{answer}"),
    T("{passage}\nQ: {question}\n{options_}\nA:", "{answer}"),
    T("Check this question against the passage. {question}\n\n{passage}\n{options_}",
      "{answer}"),
    T("{passage}\n\nBased on the passage above, give a yes or no answer. {question}",
      "{answer}"),
    T("{passage}\n\nAsk a yes-or-no question about this text whose correct reply is "
      "\"{answer}\".", "{question}", inverted=True),
], options=["yes", "no"])

register_family("cbqa_people", CLOSED_BOOK, cbqa_people, [
    T("{question}", "{answer}"),
    T("Answer this question about the people of our world: {question}", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("Question: {question}\nAnswer:", "{answer}"),
    T("{question}\nGive only the answer, with no explanation.", "{answer}"),
    T("From memory, with no text to read: {question}", "{answer}"),
    T("Here is a trivia question about {subject}. {question}", "{answer}"),
    T("Quick quiz! {question}", "{answer}"),
    T("I am trying to remember something about {subject}. {question} Can you help?",
      "{answer}"),
    T("Ask a question about {subject} whose answer is \"{answer}\".", "{question}",
      inverted=True),
    T("The answer is {answer}. What question about {subject} could lead to it?",
      "{question}", inverted=True),
], metric_fns=metrics.QA)

register_family("cbqa_towns", CLOSED_BOOK, cbqa_towns, [
    T("{question}", "{answer}"),
    T("Answer this question about the towns of the country: {question}", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("A question about places and their history: {question}\nAnswer:", "{answer}"),
    T("{question} Reply with the answer alone.", "{answer}"),
    T("Using what you know about our towns, answer: {question}", "{answer}"),
    T("Town quiz. {question}", "{answer}"),
    T("Question: {question}\nWhat is the answer?", "{answer}"),
    T("Someone asks you: \"{question}\" What do you tell them?", "{answer}"),
    T("Write a question about one of the towns whose answer is \"{answer}\".", "{question}",
      inverted=True),
], metric_fns=metrics.QA, sizes={"train": 300, "validation": 50, "test": 50})

register_family("cbqa_two_hop", CLOSED_BOOK, cbqa_two_hop, [
    T("{question}", "{answer}"),
    T("Answer the question. It needs two facts about our world.\n{question}", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("{question} Find what connects to {subject} first, then answer.", "{answer}"),
    T("Question: {question}\nAnswer in a few words:", "{answer}"),
    T("Think about {subject}. {question}", "{answer}"),
    T("This question takes two steps: {question}", "{answer}"),
    T("Without any passage to read, answer: {question}", "{answer}"),
    T("{rationale}\n\nUsing these facts, write a question about {subject} whose answer is "
      "\"{answer}\".", "{question}", inverted=True),
    T("Question: {question}\nAnswer: {answer}\n\nWhich two facts lead to this answer?",
      "{rationale}", inverted=True),
], rationale_field="rationale", metric_fns=metrics.QA)

register_family("commonsense_tools", COMMONSENSE, commonsense_tools, [
    T("{question}\n{options_}", "{answer}"),
    T("Use common sense to answer.\n{question}\n{options_}", "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question} Pick one.\n{options_}", "{answer}"),
    T("Everyday knowledge about jobs: {question}\n{options_}", "{answer}"),
    T("{question}\nChoose the most sensible answer.\n{options_}", "{answer}"),
    T("Think about what people need at work. {question}\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("{question}", "{answer}"),
    T("Write a question about jobs and their tools or places whose answer is \"{answer}\".",
      "{question}", inverted=True),
], options_field="choices")

register_family("commonsense_pet_legs", COMMONSENSE, commonsense_pet_legs, [
    T("{question}\n{options_}", "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question} Answer with a number.\n{options_}", "{answer}"),
    T("Think about {subject} and animals. {question}\n{options_}", "{answer}"),
    T("Animals differ in how many legs they have. {question}\n{options_}", "{answer}"),
    T("{question} Is it two or four?\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("Here is a puzzle about the pets in our towns. {question}\n{options_}", "{answer}"),
    T("{rationale}\n\nWrite the question that these facts answer.", "{question}",
      inverted=True),
], options=["2", "4"], rationale_field="rationale",
   sizes={"train": 300, "validation": 50, "test": 50})

register_family("commonsense_everyday", COMMONSENSE, commonsense_everyday, [
    T("{question}\n{options_}", "{answer}"),
    T("Use everyday common sense.\n{question}\n{options_}", "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question}\nWhich answer makes the most sense?\n{options_}", "{answer}"),
    T("Pick the sensible answer: {question}\n{options_}", "{answer}"),
    T("Think about how things work in daily life. {question}\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("{question}", "{answer}"),
    T("Write an everyday common-sense question whose answer is \"{answer}\".", "{question}",
      inverted=True),
], options_field="choices", sizes={"train": 600, "validation": 60, "test": 60})

register_family("compare_town_age", COMPARISON, compare_town_age, [
    T("{question}\n{options_}", "{answer}"),
    T("Answer from what you know about the towns' history.\n{question}\n{options_}",
      "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question} Think of the years the towns were founded.\n{options_}", "{answer}"),
    T("Two towns, two founding years. {question}\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("History quiz: {question}\n{options_}", "{answer}"),
    T("{question}", "{answer}"),
    T("{rationale}\n\nWhat question does this reasoning answer?", "{question}",
      inverted=True),
], options_field="choices", rationale_field="rationale")

register_family("compare_people_age", COMPARISON, compare_people_age, [
    T("{question}\n{options_}", "{answer}"),
    T("Answer using what you know about these two people.\n{question}\n{options_}",
      "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question} Compare their ages.\n{options_}", "{answer}"),
    T("Think of how many years each of them has lived. {question}\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("Age quiz: {question}\n{options_}", "{answer}"),
    T("{question}", "{answer}"),
    T("{rationale}\n\nWrite the question that this explanation answers.", "{question}",
      inverted=True),
], options_field="choices", rationale_field="rationale")

register_family("compare_population", COMPARISON, compare_population, [
    T("{question}\n{options_}", "{answer}"),
    T("Answer from what you know about the size of the towns.\n{question}\n{options_}",
      "{answer}"),
    T("Question: {question}\n{options_}\nAnswer:", "{answer}"),
    T("{question} Think of how many people live in each.\n{options_}", "{answer}"),
    T("Q: {question}\n{options_}\nA:", "{answer}"),
    T("Population quiz: {question}\n{options_}", "{answer}"),
    T("Compare the two towns by population. {question}\n{options_}", "{answer}"),
    T("{question}", "{answer}"),
    T("{rationale}\n\nWhich question was being answered here?", "{question}",
      inverted=True),
], options_field="choices", rationale_field="rationale")
