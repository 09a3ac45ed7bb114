"""A small fictional world whose facts every offline task and the corpus agree on.

One seeded draw builds the towns and people; families ask questions about them and the
pretraining corpus states the same facts, so closed-book QA and comparison tasks have
answers a model can learn from the corpus. Everything here is deterministic from
`WORLD_SEED`: the same world on every machine and in every process.
"""

import dataclasses
import functools
import random
from typing import Dict, List, Tuple

WORLD_SEED = 20261121

REGIONS = ("north", "south", "east", "west", "coast", "hills")
REGION_PLACE = {"north": "in the north", "south": "in the south", "east": "in the east",
                "west": "in the west", "coast": "on the coast", "hills": "in the hills"}
RIVERS = ("Amberflow", "Silverrun", "Greywater", "Mossbrook", "Stillwater", "Redfern",
          "Coldspring", "Larkwater")
PRODUCTS = ("cheese", "glass", "wool", "clocks", "rope", "honey", "pottery", "paper",
            "lanterns", "boots", "cider", "salt", "bells", "baskets", "maps", "soap")
LANDMARKS = ("an old stone bridge", "a tall clock tower", "a round market hall",
             "a windmill", "a lighthouse", "a walled garden", "a painted gate",
             "a copper fountain", "a ruined castle", "a great library", "a glass house",
             "a long pier")
PREFIXES = ("Ash", "Bel", "Cor", "Dun", "El", "Fen", "Gal", "Har", "Ivy", "Kel", "Lor",
            "Mar", "Nor", "Ost", "Pel", "Quin", "Ros", "Sal", "Tor", "Umber", "Val", "Wil",
            "Yar", "Zel")
SUFFIXES = ("brook", "ford", "mere", "wick", "holm", "stead", "ton", "dale", "moor",
            "haven", "crest", "field")
FIRST_NAMES = (
    "Ada", "Bram", "Cora", "Dane", "Edda", "Finn", "Greta", "Hugo", "Ines", "Jory", "Kira",
    "Lev", "Mira", "Nils", "Orla", "Pim", "Quill", "Rhea", "Sven", "Tess", "Ulla", "Vito",
    "Wren", "Xavi", "Yara", "Zeno", "Alba", "Bodi", "Cleo", "Dov", "Elin", "Fenna", "Gus",
    "Hedda", "Ivo", "Juna", "Kai", "Lotte", "Milo", "Noor", "Odo", "Pia", "Rune", "Sia",
    "Theo", "Uma", "Vera", "Wim")
LAST_NAMES = (
    "Ashby", "Birchall", "Crane", "Dalloway", "Everly", "Fairweather", "Goodwin",
    "Hollis", "Ingram", "Juniper", "Kettle", "Lark", "Marlow", "Nettle", "Oakes", "Pike",
    "Quarry", "Rook", "Sparrow", "Thorne", "Underhill", "Vale", "Wilder", "Yew")
JOBS = ("baker", "blacksmith", "teacher", "fisher", "weaver", "carpenter", "doctor",
        "farmer", "potter", "librarian", "painter", "miller", "tailor", "sailor",
        "gardener", "clockmaker")
PETS = ("cat", "dog", "parrot", "rabbit", "tortoise", "goat", "hedgehog", "canary",
        "ferret", "goose")
COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black",
          "brown", "grey")
FOODS = ("soup", "bread", "apples", "pears", "fish pie", "noodles", "rice", "plums",
         "carrots", "cheese", "pancakes", "figs", "beans", "mushrooms")
INSTRUMENTS = ("fiddle", "flute", "drum", "harp", "lute", "horn", "piano", "accordion")

# Commonsense facts about the world's real things, for commonsense and comparison tasks.
PET_LEGS = {"cat": 4, "dog": 4, "parrot": 2, "rabbit": 4, "tortoise": 4, "goat": 4,
            "hedgehog": 4, "canary": 2, "ferret": 4, "goose": 2}
JOB_WORKPLACE = {
    "baker": "bakery", "blacksmith": "forge", "teacher": "school", "fisher": "harbour",
    "weaver": "loom house", "carpenter": "workshop", "doctor": "clinic", "farmer": "farm",
    "potter": "kiln yard", "librarian": "library", "painter": "studio", "miller": "mill",
    "tailor": "sewing room", "sailor": "ship", "gardener": "garden",
    "clockmaker": "clock shop"}
JOB_TOOL = {
    "baker": "an oven", "blacksmith": "a hammer", "teacher": "chalk", "fisher": "a net",
    "weaver": "a loom", "carpenter": "a saw", "doctor": "a stethoscope", "farmer": "a plough",
    "potter": "a wheel", "librarian": "a catalogue", "painter": "a brush", "miller": "a millstone",
    "tailor": "a needle", "sailor": "a compass", "gardener": "a spade",
    "clockmaker": "a tiny screwdriver"}

PERSON_RELATIONS = ("town", "job", "age", "pet", "color", "food", "instrument", "friend")
TOWN_RELATIONS = ("region", "river", "founded", "population", "product", "landmark")


@dataclasses.dataclass(frozen=True)
class Town:
  name: str
  region: str
  river: str
  founded: int      # year
  population: int   # people
  product: str
  landmark: str


@dataclasses.dataclass(frozen=True)
class Person:
  name: str
  town: str
  job: str
  age: int
  pet: str
  color: str
  food: str
  instrument: str
  friend: str       # another person's name

  @property
  def first_name(self) -> str:
    return self.name.split(" ")[0]


@dataclasses.dataclass(frozen=True)
class Fact:
  """One (subject, relation, value) triple; values are text."""
  subject: str
  relation: str
  value: str


@dataclasses.dataclass(frozen=True)
class World:
  towns: Tuple[Town, ...]
  people: Tuple[Person, ...]

  @functools.cached_property
  def town_by_name(self) -> Dict[str, Town]:
    return {t.name: t for t in self.towns}

  @functools.cached_property
  def person_by_name(self) -> Dict[str, Person]:
    return {p.name: p for p in self.people}

  def residents(self, town: str) -> List[Person]:
    return [p for p in self.people if p.town == town]

  def facts(self) -> List[Fact]:
    """Every fact of the world, people first, in a fixed order."""
    facts = [Fact(p.name, r, str(getattr(p, r))) for p in self.people
             for r in PERSON_RELATIONS]
    facts += [Fact(t.name, r, str(getattr(t, r))) for t in self.towns for r in TOWN_RELATIONS]
    return facts


def _build(seed: int, num_towns: int = 24, num_people: int = 144) -> World:
  rng = random.Random(seed)
  names = rng.sample([p + s for p in PREFIXES for s in SUFFIXES], num_towns)
  founded = rng.sample(range(1100, 1900), num_towns)  # distinct, so "older" is decidable
  population = rng.sample(range(800, 60000, 10), num_towns)
  towns = tuple(
      Town(name, rng.choice(REGIONS), rng.choice(RIVERS), year, size, rng.choice(PRODUCTS),
           rng.choice(LANDMARKS))
      for name, year, size in zip(names, founded, population))
  full_names = rng.sample([f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES],
                          num_people)
  ages = [rng.randrange(18, 90) for _ in full_names]
  friends = full_names[1:] + full_names[:1]  # a ring: everyone is someone's friend
  rng.shuffle(friends)
  friends = [f if f != n else full_names[(i + 1) % num_people]
             for i, (n, f) in enumerate(zip(full_names, friends))]
  people = tuple(
      Person(name, rng.choice(towns).name, rng.choice(JOBS), age, rng.choice(PETS),
             rng.choice(COLORS), rng.choice(FOODS), rng.choice(INSTRUMENTS), friend)
      for name, age, friend in zip(full_names, ages, friends))
  return World(towns, people)


@functools.cache
def get_world() -> World:
  """The world every offline family and the corpus use."""
  return _build(WORLD_SEED)


# How the corpus and passages state a fact, in several phrasings so that closed-book
# questions are not answerable by string matching alone.
_PERSON_PHRASES = {
    "town": ("{s} lives in {v}.", "{s} makes a home in the town of {v}.",
             "The town of {v} is where {s} lives."),
    "job": ("{s} works as a {v}.", "By trade, {s} is a {v}.", "{s} earns a living as a {v}."),
    "age": ("{s} is {v} years old.", "{s} has lived for {v} years.", "{s}'s age is {v}."),
    "pet": ("{s} keeps a {v} as a pet.", "{s} has a pet {v}.", "A {v} lives with {s}."),
    "color": ("{s}'s favourite colour is {v}.", "{s} likes the colour {v} best.",
              "Of all colours, {s} prefers {v}."),
    "food": ("{s}'s favourite food is {v}.", "{s} loves to eat {v}.",
             "Given the choice, {s} eats {v}."),
    "instrument": ("{s} plays the {v}.", "{s} can play the {v}.",
                   "In the evenings {s} plays the {v}."),
    "friend": ("{s}'s best friend is {v}.", "{s} calls {v} their best friend.",
               "The closest friend of {s} is {v}."),
}
_TOWN_PHRASES = {
    "region": ("{s} lies {p}.", "{s} is a town {p}.", "You will find {s} {p}."),
    "river": ("{s} stands on the river {v}.", "The river {v} flows through {s}.",
              "{s} was built beside the {v}."),
    "founded": ("{s} was founded in {v}.", "The town of {s} dates from the year {v}.",
                "{s} has stood since {v}."),
    "population": ("{s} has {v} inhabitants.", "About {v} people live in {s}.",
                   "The population of {s} is {v}."),
    "product": ("{s} is known for its {v}.", "The people of {s} make fine {v}.",
                "Traders come to {s} for its {v}."),
    "landmark": ("{s} has {v}.", "Visitors to {s} admire {v}.", "In the centre of {s} is {v}."),
}


def fact_sentence(fact: Fact, variant: int = 0) -> str:
  """The fact stated in one of three phrasings (`variant` modulo 3)."""
  table = _PERSON_PHRASES if fact.relation in _PERSON_PHRASES and (
      fact.relation not in _TOWN_PHRASES) else _TOWN_PHRASES
  phrases = table[fact.relation]
  return phrases[variant % len(phrases)].format(s=fact.subject, v=fact.value,
                                                p=REGION_PLACE.get(fact.value, ""))
