"""Reading YAML and JSON that came from outside (configs, -o values, index configs, an export's description,
the code cache's fingerprint, the index file's header) with bounded work.

- YAML: PyYAML's safe loader (no `!!python` tags), with aliases refused: a few hundred bytes of
  nested aliases (`&a [x, x]`, `&b [*a, *a]`, ...) load as shared references and expand to
  gigabytes as soon as anything walks or prints the value. Nesting deeper than MAX_DEPTH is
  refused while the document is composed, before PyYAML's recursive composer overflows the stack.
- JSON: the nesting depth is counted by a scan of the text before json.loads, whose parser
  recurses.
Both raise ordinary yaml.YAMLError / ValueError (with a line number where there is one), which
the callers turn into their own one-line errors.
"""
import json
import re

import yaml

MAX_DEPTH = 100  # levels of nested lists/mappings: far above any real config, far below the stack limit


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases and with a nesting bound (see the module docstring)."""

    _depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{event.anchor}) are not accepted",
                                              event.start_mark)
        if self._depth >= MAX_DEPTH:
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                              event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python refuses to convert more than 4300 digits: a ValueError, not a YAMLError
            raise yaml.constructor.ConstructorError(None, None, "an integer too long to read (over 4300 digits)",
                                                    node.start_mark) from None


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)


def load_yaml(text_or_stream, loader=StrictLoader):
    """One YAML document, read with `loader` (StrictLoader or a subclass)."""
    return yaml.load(text_or_stream, Loader=loader)


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text):
    """The deepest nesting of [ and { in JSON text (strings skipped); no recursion."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def load_json(data, max_depth=MAX_DEPTH):
    """json.loads of text or UTF-8 bytes; ValueError when it is not JSON or nests deeper than max_depth."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if json_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
