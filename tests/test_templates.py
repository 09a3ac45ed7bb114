import pytest

from flan_tune.errors import TemplateError
from flan_tune.tasks.templates import (Template, drop_options_slot, pattern_fields,
                                       validate_templates)


def test_pattern_fields_plain_names_and_literal_braces():
  assert pattern_fields("Q: {question} {{not a field}} {options_}") == {"question", "options_"}


@pytest.mark.parametrize("pattern, message", [
    ("Q: {question", "unbalanced"),
    ("Q: question}", "unbalanced"),
    ("Q: {}", "empty placeholder"),
    ("Q: {0}", "not a plain field name"),
    ("Q: {a.b}", "not a plain field name"),
    ("Q: {a:>3}", "not a plain field name"),
])
def test_bad_patterns(pattern, message):
  with pytest.raises(TemplateError, match=message):
    pattern_fields(pattern)


def test_errors_name_task_template_and_side():
  templates = [Template("{a}", "{b}"), Template("{a", "{b}")]
  with pytest.raises(TemplateError, match=r"task 'demo', template 1, inputs pattern"):
    validate_templates("demo", templates, has_options=False)


def test_empty_template_list():
  with pytest.raises(TemplateError, match="template list is empty"):
    validate_templates("demo", [], has_options=False)


def test_only_inverted_templates():
  with pytest.raises(TemplateError, match="every template is inverted"):
    validate_templates("demo", [Template("{b}", "{a}", inverted=True)], has_options=False)


def test_options_slot_needs_options():
  with pytest.raises(TemplateError, match="template 0 shows {options_} but the task"):
    validate_templates("demo", [Template("{a} {options_}", "{b}")], has_options=False)


def test_unknown_field_names_field_and_template():
  with pytest.raises(TemplateError, match=r"template 1 names field\(s\) \['c'\]"):
    validate_templates("demo", [Template("{a}", "{b}"), Template("{c}", "{b}")],
                       has_options=False, known_fields={"a", "b"})


def test_drop_options_slot_leaves_no_blank_block():
  assert drop_options_slot("Q: {q}\n\n{options_}\n\nAnswer:") == "Q: {q}\n\nAnswer:"
  assert drop_options_slot("Q: {q} {options_}") == "Q: {q}"
