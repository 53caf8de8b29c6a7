"""The run's log file and curves: deferred until the run has weights, and a failing disk is one warning."""
import errno
import os

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
