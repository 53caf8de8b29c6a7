"""Property-based tests (hypothesis): whatever the bytes of a list file or the text of a `-o`
override, the answer is a correct parse or a UserError, never another exception."""
import copy

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils.config import build_config, default_config, load_yaml, parse_override, thaw
from utils.data.lists import read_list
from utils.errors import UserError

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def reference_parse(raw):
    """The list format, written out plainly: (paths, labels, line numbers) or None when invalid."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    rows, count = [], None
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        stripped = line.lstrip()
        if stripped.startswith('"'):  # a quoted path (it may hold spaces), then white space or the end
            close = stripped.find('"', 1)
            if close < 0 or close == 1:
                return None
            rest = stripped[close + 1:]
            if rest and not rest[0].isspace():
                return None
            path, values = stripped[1:close], rest.split()
        else:
            tokens = line.split()
            if not tokens:
                continue
            path, values = tokens[0], tokens[1:]
        if "\x00" in path:
            return None  # no label columns is valid (unlabelled images) if every line has none
        if count is None:
            count = len(values)
        if len(values) != count:
            return None
        row = []
        for value in values:
            try:
                number_value = float(value)
            except ValueError:
                return None
            if number_value not in (0.0, 1.0):
                return None
            row.append(number_value)
        rows.append((path, row, number))
    if not rows:
        return None
    labels = np.array([r[1] for r in rows], dtype=np.float32).reshape(len(rows), count)
    return [r[0] for r in rows], labels, [r[2] for r in rows]


TOKENS = st.sampled_from(["0", "1", "1.0", "0.0", "2", "-1", "nan", "x", "1e0", "a.jpg", "d/é.png", "\x00", '"',
                          '"a b.jpg"', '"c.png', '""'])
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n"])
STRUCTURED = st.lists(st.tuples(TOKENS, SEPARATORS), max_size=30).map(
    lambda parts: "".join(t + s for t, s in parts).encode("utf-8"))
GOOD_LINES = st.lists(st.tuples(st.text(st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp", "Cs")),
                                        min_size=1, max_size=12).filter(lambda p: not p.startswith('"')),
                                st.lists(st.sampled_from(["0", "1"]), min_size=3, max_size=3)), min_size=1, max_size=8)


def check_list(tmp_path, raw):
    path = tmp_path / "list.txt"
    path.write_bytes(raw)
    expected = reference_parse(raw)
    try:
        got = read_list(str(path))
    except UserError as exc:
        assert expected is None, f"refused a valid list: {exc}"
        assert str(exc).startswith(str(path))
        return
    assert expected is not None, f"accepted an invalid list {raw!r}"
    assert got[0] == expected[0] and got[2] == expected[2]
    np.testing.assert_array_equal(got[1], expected[1])


@FAST
@given(raw=st.one_of(st.binary(max_size=200), STRUCTURED))
def test_list_parser_on_any_bytes(tmp_path, raw):
    check_list(tmp_path, raw)


@FAST
@given(lines=GOOD_LINES, newline=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans())
def test_list_parser_on_valid_lists(tmp_path, lines, newline, bom):
    text = newline.join(f"{p} {' '.join(v)}" for p, v in lines)
    raw = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    assert reference_parse(raw) is not None
    check_list(tmp_path, raw)


def leaf_keys(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaf_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


KEYS = st.one_of(st.sampled_from(sorted(leaf_keys(default_config()))), st.sampled_from(["train", "dataset", "nope.x", ""]),
                 st.text(max_size=15))
VALUES = st.one_of(st.text(max_size=20), st.sampled_from(["1", "-1", "0", "2.5", "null", "true", "[1, 2]", "{a: 1}",
                                                         "!!python/object:os.system x", "&a [*a]", "'", "64", "1e9"]))


@FAST
@given(key=KEYS, value=VALUES)
def test_config_overrides_parse_or_user_error(key, value):
    text = f"{key}={value}"
    try:
        cfg = build_config(None, {}, [text])
    except UserError:
        return
    parsed = load_yaml(value) if value != "" else None  # YAML 1.2 numbers (1e5 is a float): test_config.py
    node = cfg
    for part in key.strip().split("."):
        node = node[part]
    node = thaw(node)  # the validated config is frozen: a list is kept as a tuple
    assert node == parsed or (node != node and parsed != parsed), (text, node, parsed)  # nan != nan


@FAST
@given(text=st.text(max_size=40))
def test_override_text_of_any_shape(text):
    try:
        key, value = parse_override(text)
    except UserError:
        return
    assert "=" in text and key == text.split("=", 1)[0].strip()
    try:
        build_config(None, {}, [text])
    except UserError:
        pass


def test_defaults_are_not_mutated_by_overrides():
    before = copy.deepcopy(default_config())  # DEFAULTS and the default method's loss DEFAULTS
    build_config(None, {}, ["train.lr=0.5", "dataset.mean=[1, 2, 3]", "loss.alpha=0.3"])
    assert default_config() == before
