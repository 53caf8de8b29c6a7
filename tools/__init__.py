"""Command-line tools that turn raw data sets into the list files of docs/architecture.md (contracts) and docs/datasets.md.

One module per data set, each run as ``python -m tools.make_<name>_split --help``;
shared code (seeded selection, list/checksum/summary writing) is in ``tools.split_common``.
"""
