"""benchmarks.outputs: a benchmark says before its run that --plot will replace a file of the repository."""
from benchmarks import outputs


def test_note_names_a_repository_file_and_nothing_else(tmp_path, monkeypatch, capsys):
    repo, outside = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "docs").mkdir(parents=True)
    outside.mkdir()
    (repo / "docs" / "figure.png").write_bytes(b"png")
    (outside / "figure.png").write_bytes(b"png")
    monkeypatch.setattr(outputs, "REPOSITORY", str(repo))
    outputs.note_repository_writes(plot=str(repo / "docs" / "figure.png"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: --plot ") and "replaces docs/figure.png" in err[0]
    outputs.note_repository_writes(plot=str(outside / "figure.png"), json=None)  # outside: silent
    outputs.note_repository_writes(plot=str(repo / "docs" / "new.png"))  # a new file replaces nothing
    assert capsys.readouterr().err == ""
