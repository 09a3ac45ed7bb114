"""Generation: summarization (CNN/DailyMail, Gigaword, AESLC), translation (WMT16),
struct to text (E2E, CommonGen, WebNLG), all in FLAN 2021, and dialog (WikiDialog, the
dialog-inpainting data of FLAN 2022's dialog collection).
Sizes: TFDS catalog of each pinned version.
"""

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds import families
from flan_tune_tasks.flan_tfds.common import add, squash, text_postprocessor
from flan_tune_tasks.flan_tfds.families import T, inverted

# ---------------------------------------------------------------- summarization

add("cnn_dailymail", "cnn_dailymail:3.4.0", splits=("train", "validation", "test"),
    sizes={"train": 287_113, "validation": 13_368, "test": 11_490},
    collection="flan2021", cluster="summarization",
    example_fn=lambda r: {"text": r["article"], "summary": r["highlights"],
                          "kind": "news article", "summary_kind": "highlights"},
    templates=families.summarization() + [
        T("{text}\n\nList the key points of this story.", "{summary}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

add("gigaword", "gigaword:1.2.0", splits=("train", "validation", "test"),
    sizes={"train": 3_803_957, "validation": 189_651, "test": 1_951},
    collection="flan2021", cluster="summarization",
    example_fn=lambda r: {"text": r["document"], "summary": r["summary"],
                          "kind": "news lead", "summary_kind": "headline"},
    templates=families.summarization() + [
        T("Write a newspaper headline for this opening sentence: {text}", "{summary}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

add("aeslc", "aeslc:1.0.0", splits=("train", "validation", "test"),
    sizes={"train": 14_436, "validation": 1_960, "test": 1_906},
    collection="flan2021", cluster="summarization",
    example_fn=lambda r: {"text": r["email_body"], "summary": r["subject_line"],
                          "kind": "email", "summary_kind": "subject line"},
    templates=families.summarization() + [
        T("{text}\n\nWhat subject line would you give this email?", "{summary}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

# ------------------------------------------------------------------ translation

LANGUAGES = {"de": "German", "ro": "Romanian", "en": "English"}
WMT16_SIZES = {  # wmt16_translate 1.0.0
    "de": {"train": 4_548_885, "validation": 2_169, "test": 2_999},
    "ro": {"train": 610_320, "validation": 1_999, "test": 1_999},
}
for language, sizes in WMT16_SIZES.items():
  add(f"wmt16_translate_{language}_en", f"wmt16_translate/{language}-en:1.0.0",
      splits=("train", "validation", "test"), sizes=sizes,
      collection="flan2021", cluster="translation",
      # Into English normally; the inverted templates go the other way.
      example_fn=lambda r, language=language: {
          "source": r[language], "target": r["en"],
          "source_language": LANGUAGES[language], "target_language": "English"},
      templates=families.translation(),
      metric_fns=[metrics.bleu], postprocess_fn=text_postprocessor)

# --------------------------------------------------------------- struct to text


def e2e_fields(raw):
  """E2E meaning representations as 'name: The Eagle | food: French'."""
  table = raw["input_text"]["table"]
  pairs = zip(table["column_header"], table["content"])
  return {"data": " | ".join(f"{key}: {value}" for key, value in pairs),
          "text": raw["target_text"], "kind": "restaurant attributes"}


add("e2e_nlg", "e2e_cleaned:0.1.0", splits=("train", "validation", "test"),
    sizes={"train": 33_525, "validation": 4_299, "test": 4_693},
    collection="flan2021", cluster="struct_to_text", example_fn=e2e_fields,
    templates=families.data_to_text() + [
        T("Describe this restaurant for a guidebook: {data}", "{text}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

add("web_nlg", "gem/web_nlg_en:1.1.0", splits=("train", "validation", "test"),
    sizes={"train": 35_426, "validation": 1_667, "test": 1_779},
    collection="flan2021", cluster="struct_to_text",
    example_fn=lambda r: {"data": "; ".join(r["input"]), "text": r["target"],
                          "kind": "facts (subject | relation | object)"},
    templates=families.data_to_text() + [
        T("Triples: {data}\nWrite them up as a short encyclopedia-style text.", "{text}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

add("common_gen", "gem/common_gen:1.1.0", splits=("train", "validation"),
    sizes={"train": 67_389, "validation": 993},
    collection="flan2021", cluster="struct_to_text",
    example_fn=lambda r: {"concepts": list(r["concepts"]), "text": r["target"]},
    templates=[
        T("Write a sentence that uses all of these words: {concepts}", "{text}"),
        T("Concepts: {concepts}\n\nDescribe an everyday scene that involves them.",
          "{text}"),
        T("Make a natural sentence out of these keywords: {concepts}", "{text}"),
        T("{concepts}\n\nCombine the words above into one coherent sentence.", "{text}"),
        T("Here is a list of ideas: {concepts}\nWrite one sentence that mentions each of "
          "them.", "{text}"),
        T("Use the following concepts in a single, plausible sentence: {concepts}",
          "{text}"),
        T("Keywords: {concepts}\nSentence:", "{text}"),
        T("Create a sentence about daily life that contains: {concepts}", "{text}"),
        inverted("Which key concepts appear in this sentence? {text}", "{concepts}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)

# ---------------------------------------------------------------------- dialog


def wiki_dialog_fields(raw):
  """The conversation so far and its last turn; speakers alternate."""
  turns = [squash(u) for u in raw["utterances"]]
  if len(turns) < 2:
    raise ValueError("a WikiDialog conversation needs at least two turns")
  speakers = ("A", "B")
  lines = [f"{speakers[i % 2]}: {turn}" for i, turn in enumerate(turns[:-1])]
  return {"title": raw["title"], "passage": squash(raw["passage"]),
          "history": "\n".join(lines), "response": turns[-1],
          "previous_turn": turns[-2], "next_speaker": speakers[(len(turns) - 1) % 2]}


add("wiki_dialog", "wiki_dialog/OQ:1.0.0", splits=("train", "validation"),
    sizes={"train": 11_264_129, "validation": 113_822},
    collection="dialog", cluster="dialog", example_fn=wiki_dialog_fields,
    templates=[
        T("{history}\n\nWhat does {next_speaker} say next?", "{response}"),
        T("Here is a conversation about {title}.\n\n{history}\n\nContinue it with "
          "{next_speaker}'s reply.", "{response}"),
        T("Background: {passage}\n\nConversation:\n{history}\n{next_speaker}:",
          "{response}"),
        T("Write the next turn of this dialog about {title}.\n{history}", "{response}"),
        T("{history}\n{next_speaker}:", "{response}"),
        T("Two people are chatting about {title}.\n{history}\n\nHow would "
          "{next_speaker} respond?", "{response}"),
        T("Use the passage to write {next_speaker}'s next line.\nPassage: {passage}\n\n"
          "{history}", "{response}"),
        T("Continue the conversation naturally.\n\n{history}", "{response}"),
        inverted("Here is the last line of a conversation about {title}: {response}\n"
                 "Write the line that came right before it.", "{previous_turn}"),
    ],
    metric_fns=[metrics.rouge], postprocess_fn=text_postprocessor)
