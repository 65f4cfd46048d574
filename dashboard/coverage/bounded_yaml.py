"""YAML from someone we do not trust, loaded within bounds: the one loader of plan texts
(plan_input) and kubeconfigs (kube.kubeconfig_yaml).

Only the safe loader's tags are built. Aliases can make a few hundred bytes stand for
billions of nodes ("billion laughs"), which PyYAML builds as shared references — cheap to
load, but every walk over the result would never end — so the composed node graph is
measured, with every alias expanded, before anything is built from it. Nesting is bounded
too. Each caller sets its own limits and words its own messages from the BoundedYamlError.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml

# The pure-Python loader, as yaml.safe_load: its error marks point at the exact spot
# (libyaml reports the end of the input for an unclosed bracket), and speed is no concern
# for the small texts we load.
_Loader = yaml.SafeLoader

Problem = Literal["syntax", "value", "too deep", "alias loop", "too large"]

_REASONS: dict[Problem, str] = {
    "too deep": "invalid YAML: nested too deeply",
    "alias loop": "invalid YAML: an alias refers to itself",
    "too large": "too large once its YAML aliases are expanded",
}


class BoundedYamlError(ValueError):
    """Why the text was not loaded. `line` and `column` (1-based, `line` counted from the
    loader's `first_line`) are set where PyYAML marks the spot; `detail` is PyYAML's own
    description of a syntax error, which quotes a character or an alias name of the text."""

    def __init__(
        self,
        problem: Problem,
        line: int | None = None,
        column: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(self._message())

    @property
    def at(self) -> str:
        """The mark as words (" at line L, column C"), or "" without one."""
        return f" at line {self.line}, column {self.column}" if self.line is not None else ""

    def _message(self) -> str:
        if self.problem == "syntax":
            return f"invalid YAML{self.at}: {self.detail or 'cannot be parsed'}"
        if self.problem == "value":
            return f"invalid YAML{self.at}: a value cannot be read"
        return _REASONS[self.problem]


def load_bounded(text: str, *, max_nodes: int, max_depth: int, first_line: int = 1) -> Any:
    """The one YAML document of `text`, or None for an empty one; BoundedYamlError when it
    is not YAML, holds a value the safe loader cannot build, nests deeper than `max_depth`
    or stands for more than `max_nodes` nodes once its aliases are expanded. `first_line` is
    the number of the text's first line in the caller's input, for the error's `line`."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise BoundedYamlError("too deep") from None
        except yaml.YAMLError as exc:
            raise _marked("syntax", exc, first_line, getattr(exc, "problem", None)) from None
        if node is None:
            return None
        _check_size(node, max_nodes, max_depth)
        try:
            return loader.construct_document(node)
        except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
            raise _marked("value", exc, first_line) from None
    finally:
        loader.dispose()


def _marked(
    problem: Problem, exc: BaseException, first_line: int, detail: str | None = None
) -> BoundedYamlError:
    mark = getattr(exc, "problem_mark", None)
    if not mark:
        return BoundedYamlError(problem, detail=detail)
    return BoundedYamlError(problem, first_line + mark.line, mark.column + 1, detail)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_size(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """Count the nodes of the document with every alias expanded, without expanding:
    each distinct node's expanded size is computed once (iteratively, so depth cannot
    overflow the stack)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > max_nodes:
                raise BoundedYamlError("too large")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise BoundedYamlError("alias loop")
        if depth > max_depth:
            raise BoundedYamlError("too deep")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in sizes)
