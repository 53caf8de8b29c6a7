"""Say before a long run when a benchmark's output replaces a file of this repository.

README's commands regenerate the tracked figures (`--plot docs/compare_methods_lite.png`); a user who
runs them to check a number should know, before the run, that the file will change under git.
"""
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def note_repository_writes(**flags):
    """One line on standard error per flag whose path is an existing file inside the repository."""
    for flag, path in flags.items():
        if not path:
            continue
        full = os.path.abspath(path)
        if os.path.isfile(full) and os.path.commonpath([full, REPOSITORY]) == REPOSITORY:
            print(f"note: --{flag.replace('_', '-')} {path} replaces {os.path.relpath(full, REPOSITORY)}, a file of "
                  f"this repository, at the end of the run (pass a path outside it to keep the file)",
                  file=sys.stderr, flush=True)
