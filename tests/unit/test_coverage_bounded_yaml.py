"""The shared bounded YAML loader of plan texts and kubeconfigs: what each problem is called
and where it is marked (the callers word their own messages from it)."""

import pytest

from dashboard.coverage.bounded_yaml import BoundedYamlError, load_bounded


def _load(text: str, first_line: int = 1) -> object:
    return load_bounded(text, max_nodes=50, max_depth=8, first_line=first_line)


def test_loads_one_document_and_none_for_an_empty_one():
    assert _load("a: [1, two]\n") == {"a": [1, "two"]}
    assert _load("# only a comment\n") is None


@pytest.mark.parametrize(
    ("text", "problem", "message"),
    [
        ("a: &x [*x]\n", "alias loop", "invalid YAML: an alias refers to itself"),
        ("a: " + "[" * 20 + "]" * 20 + "\n", "too deep", "invalid YAML: nested too deeply"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "too deep", "invalid YAML: nested too deeply"),
        (
            "a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: [*a, *a, *a, *a, *a, *a, *a]\n",
            "too large",
            "too large once its YAML aliases are expanded",
        ),
    ],
)
def test_bounds(text, problem, message):
    with pytest.raises(BoundedYamlError) as info:
        _load(text)
    assert (info.value.problem, str(info.value)) == (problem, message)


def test_a_syntax_error_is_marked_from_the_callers_first_line():
    with pytest.raises(BoundedYamlError) as info:
        _load("a: 1\nb: c: d\n", first_line=10)
    error = info.value
    assert (error.problem, error.line, error.column) == ("syntax", 11, 5)
    assert str(error) == "invalid YAML at line 11, column 5: mapping values are not allowed here"


def test_a_value_the_safe_loader_will_not_build():
    with pytest.raises(BoundedYamlError) as info:
        _load("a: !!python/object:os.system x\n")
    assert str(info.value) == "invalid YAML at line 1, column 4: a value cannot be read"
    with pytest.raises(BoundedYamlError, match=r"^invalid YAML: a value cannot be read$"):
        _load("a: !!int xyz\n")
