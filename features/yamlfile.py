"""Reading a user's YAML (table descriptions, extraction settings) with bounds: a repeated key
is an error (YAML would let the last one win silently), and aliases may not expand the
document beyond :data:`MAX_EXPANDED` (a "billion laughs" file of a few hundred bytes
otherwise unfolds into gigabytes wherever it is walked or printed).

>>> load_yaml("patient: id\\n", "the table description d.yaml")
{'patient': 'id'}
"""

from __future__ import annotations

import yaml

from features.errors import UserInputError, quoted

#: Largest size of a YAML document with every alias unfolded: one per node plus the
#: characters of its scalars. A real table description or settings file is below 10,000.
MAX_EXPANDED = 1_000_000


def load_yaml(text: str, source: str, loader: type = yaml.SafeLoader):
    """The data of the YAML ``text`` (``source`` names it in messages), read with
    ``loader`` (a :class:`yaml.SafeLoader` or a subclass). The document is composed first
    (aliases stay shared, nothing unfolds), checked, then built. Raises
    :class:`yaml.YAMLError` for bad syntax, and :class:`UserInputError` for a repeated key,
    an alias that refers to itself, or a document that unfolds beyond
    :data:`MAX_EXPANDED`."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None
        try:
            size = _expanded_size(node, {}, set(), source)
        except RecursionError:
            raise UserInputError(f"{source} is nested too deeply to read; write it as a "
                                 "plain mapping of keys to values.") from None
        if size > MAX_EXPANDED:
            raise UserInputError(
                f"{source} unfolds, through its aliases (*name), to more than "
                f"{MAX_EXPANDED:,} nodes and characters; it was not read. Write the values "
                "out instead of nesting aliases.")
        return reader.construct_document(node)
    finally:
        reader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int], source: str) -> int:
    """The size of ``node`` with its aliases unfolded (memoised per shared node, so this
    costs one visit per node written); duplicate keys and self-reference are refused."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise UserInputError(f"{source}: an alias (*name) at line {node.start_mark.line + 1} "
                             "refers to the value that holds it; write the value out.")
    open_.add(key)
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, sizes, open_, source) for n in node.value)
        size = min(size, MAX_EXPANDED + 1)
    else:
        seen: dict[tuple[str, str], int] = {}
        size = 1
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                first = seen.get((k.tag, k.value))
                seen[(k.tag, k.value)] = k.start_mark.line + 1
                if first is not None:
                    raise UserInputError(
                        f"{source} gives the key {quoted(k.value)} twice (lines {first} and "
                        f"{k.start_mark.line + 1}); YAML would keep only the last one. Keep "
                        "one of them.")
            size += _expanded_size(k, sizes, open_, source) + _expanded_size(v, sizes, open_,
                                                                             source)
            size = min(size, MAX_EXPANDED + 1)
    open_.discard(key)
    sizes[key] = size
    return size
