"""--pretrained-backbone imagenet offline: one line saying the download failed and how to give a local
path, no 27-line traceback (issue 27 item 7). The download is mocked: nothing is fetched."""
import types

import paddle.utils.download
import pytest
import requests

from tests.reliability.common import TINY
from utils.errors import WeightsError
from utils.training.checkpoint import load_backbone_weights

URL = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/AlexNet_pretrained.pdparams"


def offline(exc):
    def fail(url, md5sum=None):
        raise exc
    return fail


@pytest.mark.parametrize("exc", [RuntimeError(f"Download from {URL} failed. Retry limit reached"),
                                 requests.exceptions.ConnectionError("Max retries exceeded with url")])
def test_a_failed_download_is_one_line_with_the_local_path_advice(monkeypatch, exc):
    monkeypatch.setattr(paddle.utils.download, "get_weights_path_from_url", offline(exc))
    backbone = types.SimpleNamespace(imagenet_weights=(URL, "0" * 32))
    with pytest.raises(WeightsError) as err:
        load_backbone_weights(backbone, "imagenet")
    message = str(err.value)
    assert "\n" not in message and "download" in message and "failed" in message
    assert "--pretrained-backbone PATH/AlexNet_pretrained.pdparams" in message


def test_training_with_imagenet_offline_is_one_line(monkeypatch, tmp_path, tiny_lite, capsys):
    import main_single_gpu

    monkeypatch.setattr(paddle.utils.download, "get_weights_path_from_url",
                        offline(RuntimeError(f"Download from {URL} failed. Retry limit reached")))
    with pytest.raises(SystemExit) as stop:
        main_single_gpu.main(["--data-path", tiny_lite, "--output-dir", str(tmp_path / "out"), "--epoch", "1",
                              "--pretrained-backbone", "imagenet", *TINY])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "download" in errors[0] and "local path" in errors[0], err
