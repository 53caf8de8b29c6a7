"""Command-line tools that turn raw data sets into the list files of docs/architecture.md (contracts) and docs/datasets.md.

One module per data set, each run as ``python -m tools.make_<name>_split --help``, and
``tools.make_folder_split`` for a folder of one's own images (its labels file reader is
``tools.folder_labels``, its image checks ``tools.folder_check``); shared code (seeded selection,
list/checksum/summary writing) is in ``tools.split_common``.
"""
