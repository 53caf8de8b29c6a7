"""The run's log file and curves: deferred until the run has weights, and a failing disk is one warning."""
import errno
import os
import subprocess
import sys

import pytest

from utils.runtime.log import open_log_files, ScalarWriter, setup_logger


def test_a_deferred_log_file_is_written_only_when_opened(tmp_path, capsys):
    logger = setup_logger(str(tmp_path), filename="train_16.log", deferred=True)
    logger.info("first line")
    assert capsys.readouterr().out.endswith("first line\n")  # the console at once
    assert os.listdir(tmp_path) == []  # the folder untouched
    open_log_files(logger)
    logger.info("second line")
    text = (tmp_path / "train_16.log").read_text()
    assert "first line" in text and "second line" in text and text.index("first") < text.index("second")
    setup_logger()  # close the file handler


def test_a_log_file_that_cannot_be_written_is_one_warning_not_a_traceback(tmp_path, capsys):
    logger = setup_logger(str(tmp_path), filename="train_16.log")
    handler = [h for h in logger.handlers if hasattr(h, "open_file")][0]
    logger.info("fits")

    def disk_full(text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    handler.stream.write = disk_full
    logger.info("does not fit")
    logger.info("nor this")
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"warning: cannot write the log file {tmp_path / 'train_16.log'}: "
                                        "No space left on device; logging to the console only"], err
    setup_logger()


def test_deferred_curves_create_nothing_until_opened(tmp_path):
    writer = ScalarWriter(str(tmp_path / "vdl"), deferred=True)
    writer.add("train/loss", 1.0, 0)
    assert not (tmp_path / "vdl").exists()
    writer.open()
    writer.add("train/loss", 0.5, 1)
    writer.close()
    assert os.listdir(tmp_path / "vdl")


def test_native_stderr_lines_of_a_pattern_are_dropped_the_others_kept_in_order(capfd):
    from utils.inference.model_files import PASS_REPORT
    from utils.runtime.log import native_stderr_without

    with pytest.raises(RuntimeError):
        with native_stderr_without(PASS_REPORT):
            os.write(2, b"\x1b[37m---    quantized 0 fusion_gru ops\x1b[0m\nW: first\n---    squashed 2 pairs\n")
            os.write(2, b"second\n")
            raise RuntimeError("the C++ call failed")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "W: first\nsecond\nafter\n"  # fd 2 restored, even after the error


def test_quiet_loggers_hold_a_library_logger_at_warning_and_drop_its_named_messages(capsys):
    import logging

    from utils.runtime.log import quiet_loggers

    logger = logging.getLogger("tests.chatty_library")  # as paddle's log_helper.get_logger makes them
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        quiet_loggers(["tests.chatty_library"], drop=("The old way",))
        logger.info("Collect quantized variable names ...")
        logger.warning("The old way to load inference model is deprecated.")
        logger.warning("a warning that matters")
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == "a warning that matters\n"


@pytest.mark.slow  # new processes
def test_faiss_says_nothing_on_import_after_configure():
    """faiss's loader logs which CPU build it loaded at INFO, which prints once paddle has given the
    root logger a handler (the control run shows it); configure() holds it at WARNING."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {**os.environ, "PYTHONPATH": root, "PYTHONWARNINGS": "ignore"}

    def stderr_of(code):
        proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    assert "Loading faiss" in stderr_of("import paddle, faiss")
    assert stderr_of("from utils.runtime import configure; configure(); import paddle, faiss") == ""
