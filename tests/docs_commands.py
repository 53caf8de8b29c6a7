"""The commands of the documentation's ```bash blocks, as the shell reads them, and a check that parses a
command's flags with its entry point's own parser without running it (tests/test_docs_commands.py).

A block is read by dash itself (Debian's /bin/sh, what users have), with every command a user would run
(python, pip, sh, bash, curl, ...) replaced by a shell function that records its argv and the variables set
before it: continuation lines, comments, `&&`, `for` loops, `${VAR}` and `~` come out as dash makes them.
PATH holds nothing else, so a command outside RECORDED makes the block fail instead of running.
"""
import argparse
import contextlib
import glob
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = ("python", "python3", "pip", "sh", "bash", "sudo", "wget", "curl", "lint-imports", "ruff", "mypy")
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
FIELD, ARGV_END, RECORD_END = "\036", "\035", "\034"


def documents(root=ROOT):
    """README.md, docs/*.md, deploy/*/README.md and test_tipc/README.md, relative to `root`."""
    found = ["README.md", *sorted(glob.glob("docs/*.md", root_dir=root)),
             *sorted(glob.glob("deploy/*/README.md", root_dir=root)), "test_tipc/README.md"]
    return [path for path in found if os.path.isfile(os.path.join(root, path))]


@dataclass
class Block:
    doc: str
    line: int          # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def where(self):
        return f"{self.doc}:{self.line}"


def fenced_blocks(doc, root=ROOT):
    """Every fenced block of `doc` (its language tag and text)."""
    lines = open(os.path.join(root, doc), encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        opening = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise AssertionError(f"{doc}:{i + 1}: code block never closed")
        blocks.append(Block(doc, i + 1, opening.group(1).lower(), "\n".join(lines[i + 1:end])))
        i = end + 1
    return blocks


def shell_blocks(root=ROOT):
    """The blocks users run: tagged bash/sh, plus `$ command` lines of an untagged transcript. A command
    word at the start of a line of a block not tagged as shell is an error: it would go unchecked."""
    blocks, untagged_commands = [], []
    for doc in documents(root):
        for block in fenced_blocks(doc, root):
            if block.lang in SHELL_BLOCKS:
                blocks.append(block)
                continue
            prompts = [line[2:] for line in block.text.split("\n") if line.startswith("$ ")]
            if prompts:
                blocks.append(Block(block.doc, block.line, "transcript", "\n".join(prompts)))
            elif block.lang in ("", "text") and re.search(rf"^({'|'.join(map(re.escape, RECORDED))}) ",
                                                          block.text, re.M):
                untagged_commands.append(block.where)
    return blocks, untagged_commands


@dataclass
class Command:
    block: Block
    argv: list
    env: dict = field(default_factory=dict)   # variables set before the command (`TIPC_DRY_RUN=1 bash ...`)

    @property
    def text(self):
        prefix = [f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        return " ".join(prefix + [shlex.quote(a) for a in self.argv])

    def __str__(self):
        return f"{self.block.where}: {self.text}"


def recorder_script(block_text, log):
    functions = "\n".join(f"{name.replace('-', '_')}_() {{ __rec {name} \"$@\"; }}; alias {name}={name.replace('-', '_')}_"
                          if "-" in name else f"{name}() {{ __rec {name} \"$@\"; }}" for name in RECORDED)
    return (f"__rec() {{ for a in \"$@\"; do printf '%s{FIELD}' \"$a\"; done >> {shlex.quote(log)}; "
            f"printf '{ARGV_END}' >> {shlex.quote(log)}; /usr/bin/env -0 >> {shlex.quote(log)}; "
            f"printf '{RECORD_END}' >> {shlex.quote(log)}; }}\n{functions}\nset -e\n{block_text}\n")


def dash():
    path = shutil.which("dash")
    if path is None:
        raise AssertionError("dash (Debian's /bin/sh) not found: install it (sh scripts/install_test_tools.sh)")
    return path


def block_commands(block, home, scratch):
    """[Command] of `block` as dash reads it (HOME=home for `~`); an AssertionError when dash cannot."""
    log = os.path.join(scratch, "commands.log")
    open(log, "w").close()
    env = {"HOME": home, "PATH": os.path.join(scratch, "nothing-else"), "LANG": "C.UTF-8"}
    proc = subprocess.run([dash(), "-c", recorder_script(block.text, log)], env=env, cwd=scratch,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or proc.stderr:
        raise AssertionError(f"{block.where}: dash cannot read the block as commands it knows "
                             f"(exit {proc.returncode}): {proc.stderr.strip()}")
    commands = []
    for record in open(log, encoding="utf-8").read().split(RECORD_END)[:-1]:
        argv_text, env_text = record.split(ARGV_END)
        argv = argv_text.split(FIELD)[:-1]
        seen = dict(item.split("=", 1) for item in env_text.split("\0") if "=" in item)
        prefix = {k: v for k, v in seen.items() if env.get(k) != v and k not in ("PWD", "OLDPWD", "SHLVL", "_")}
        commands.append(Command(block, argv, prefix))
    return commands


# --- parse only -------------------------------------------------------------------------------------------

class Parsed(Exception):
    """Raised by the patched parser once the argv parsed: the program stops before doing anything."""

    def __init__(self, parser, namespace, extras):
        super().__init__("parsed")
        self.parser, self.namespace, self.extras = parser, namespace, extras


@contextlib.contextmanager
def parse_and_stop():
    """ArgumentParser.parse_args (and a parse_known_args of its own, as paddle's launcher calls) parse
    as usual, then raise Parsed instead of returning: an error still exits 2 with argparse's message."""
    parse_args, parse_known = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    inside = []

    def full(self, args=None, namespace=None):
        inside.append(self)
        try:
            ns = parse_args(self, args, namespace)
        finally:
            inside.pop()
        raise Parsed(self, ns, [])

    def known(self, args=None, namespace=None):
        if inside:
            return parse_known(self, args, namespace)
        ns, extras = parse_known(self, args, namespace)
        raise Parsed(self, ns, extras)

    argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = full, known
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = parse_args, parse_known


def program_of(argv, root=ROOT):
    """(how to run it, name, arguments) of `python X.py ...` / `python -m module ...`: ("path", abs path)
    for a script, ("module", name) for a module; an AssertionError when the script or module is missing."""
    args = argv[1:]
    if args[:1] == ["-m"]:
        module = args[1]
        own = os.path.join(root, *module.split("."))
        if module.split(".")[0] in ("paddle",):
            return "module", module, args[2:]
        if not (os.path.isfile(own + ".py") or os.path.isfile(os.path.join(own, "__main__.py"))):
            raise AssertionError(f"python -m {module}: no such module in the repository")
        return "module", module, args[2:]
    if not args or not args[0].endswith(".py"):
        raise AssertionError(f"{shlex.join(argv)}: neither `python X.py` nor `python -m module`")
    path = os.path.join(root, args[0])
    if not os.path.isfile(path):
        raise AssertionError(f"{args[0]}: no such script in the repository")
    return "path", path, args[1:]


def parse_only(argv, cwd):
    """Parse `python ...`'s flags with the program's own parser, in this process, without running it.
    Returns the Parsed (parser, namespace, extras); an AssertionError with argparse's message if they
    do not parse, or if the program ran to the end without parsing anything."""
    kind, target, args = program_of(argv, cwd)
    saved_argv, saved_cwd, err = sys.argv, os.getcwd(), io.StringIO()
    sys.argv = [target if kind == "path" else target.rsplit(".", 1)[-1], *args]
    os.chdir(cwd)
    try:
        with parse_and_stop(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if kind == "path":
                runpy.run_path(target, run_name="__main__")
            else:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
    except Parsed as parsed:
        return parsed
    except SystemExit as stop:
        said = err.getvalue().strip().splitlines() or [""]
        raise AssertionError(f"does not parse (exit {stop.code}): {said[-1]}") from None
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    raise AssertionError(f"{shlex.join(argv)}: ran to the end without parsing its flags")
