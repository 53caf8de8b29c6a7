"""Hashing without labels end to end on tiny lite data: lists of paths alone, train.use_labels: false,
code health instead of mAP, supervised methods refusing unlabelled lists in one line, the shallow methods
fitted into a model, and every method's export giving the trained model's codes (0 differing bits)."""
import os

import numpy as np
import paddle
import pytest

import export_model
import main_single_gpu
import predict
from tests.reliability.common import assert_one_line_error, run
from utils.config import build_config
from utils.errors import UserError
from utils.evaluation.baselines import BASELINES
from utils.inference.encoders import DygraphEncoder, InferenceEncoder, encode_list
from utils.inference.features import backbone_features
from utils.losses import LOSSES, SHALLOW_METHODS
from utils.training.engine import Engine

pytestmark = pytest.mark.slow  # every test trains, fits, exports or runs a command

BIT = 16
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs", "methods")
UNSUPERVISED = ["bihalf", "greedyhash_unsup", "cibhash"]
TINY = ["model.fc_dim=64", "dataset.num_workers=0"]


@pytest.fixture(scope="module")
def unlabelled(tiny_lite, tmp_path_factory):
    """The tiny lite lists with the label columns cut off (the images are tiny_lite's)."""
    root = tmp_path_factory.mktemp("unlabelled")
    for split in ("train", "test", "database"):
        lines = open(os.path.join(tiny_lite, f"{split}.txt")).read().split("\n")
        (root / f"{split}.txt").write_text("\n".join(line.split(" ")[0] for line in lines if line) + "\n")
    return str(root)


def flags(data, lists, out, **extra):
    return {"dataset": "custom", "data_path": data, "list_dir": lists, "bit": BIT, "epoch": 1, "batch_size": 8,
            "seed": 0, "output_dir": str(out), "threads": 2, **extra}


def config(method, data, lists, out, overrides=(), **extra):
    return build_config(os.path.join(CONFIGS, f"{method}_lite.yaml"), flags(data, lists, out, **extra),
                        TINY + list(overrides))


def test_an_unlabelled_run_reports_code_health_instead_of_map(tiny_lite, unlabelled, tmp_path, capsys):
    main_single_gpu.main(["-c", os.path.join(CONFIGS, "bihalf_lite.yaml"), "--dataset", "custom", "--data-path",
                          tiny_lite, "--list-dir", unlabelled, "--bit", str(BIT), "--epoch", "2", "--batch-size", "8",
                          "--output-dir", str(tmp_path), "--threads", "2", "-o", "model.fc_dim=64",
                          "-o", "dataset.num_workers=0", "-o", "train.eval_every=1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("no labels to compute mAP; codes: ") and "quantisation error" in last
    log = (tmp_path / f"train_{BIT}.log").read_text()
    assert "[untrained] no labels to compute mAP: codes:" in log and "[epoch 2] no labels to compute mAP" in log
    assert "model selection: the last evaluated epoch" in log and "mAP@" not in log
    best = paddle.load(str(tmp_path / f"model_best_{BIT}.pdopt"))["best"]
    assert best["epoch"] == 2 and best["map"] is None and 0 <= best["codes"]["bit_balance"] <= 1


def test_a_supervised_method_refuses_an_unlabelled_list_in_one_line(tiny_lite, unlabelled, tmp_path):
    with pytest.raises(UserError, match=r"train\.txt: the images have no labels .* but loss 'dsh' learns from labels"):
        Engine(config("dsh", tiny_lite, unlabelled, tmp_path))
    code, _, err = run("main_single_gpu.py", "-c", os.path.join(CONFIGS, "dsh_lite.yaml"), "--dataset", "custom",
                       "--data-path", tiny_lite, "--list-dir", unlabelled, "--epoch", "1",
                       "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(code, err, os.path.join(unlabelled, "train.txt"), "'dsh' learns from labels")
    assert not os.path.exists(tmp_path / "o" / "model_best_64.pdparams")


def test_use_labels_false_refuses_a_supervised_method_and_hides_the_labels_from_an_unsupervised_one(
        tiny_lite, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="train.use_labels: false, but loss 'dsh' learns from labels"):
        config("dsh", tiny_lite, tiny_lite, tmp_path, ["train.use_labels=false"])
    seen = []
    forward = LOSSES["bihalf"].forward

    def spy(self, outputs, labels, indices):
        seen.append(list(labels.shape))
        return forward(self, outputs, labels, indices)

    monkeypatch.setattr(LOSSES["bihalf"], "forward", spy)
    engine = Engine(config("bihalf", tiny_lite, tiny_lite, tmp_path, ["train.use_labels=false"]))
    result = engine.train()
    assert seen and all(shape[1] == 0 for shape in seen)  # the loss never saw a label column
    assert 0 <= result["map"] <= 1  # the labelled query/database lists still give mAP


def test_a_frozen_backbone_does_not_change(tiny_lite, tmp_path):
    engine = Engine(config("bihalf", tiny_lite, tiny_lite, tmp_path, ["train.eval_untrained=false"]))
    before = {k: v.numpy().copy() for k, v in engine.model.backbone.state_dict().items()}
    hash_before = engine.model.hash_layer.weight.numpy().copy()
    engine.train()
    after = engine.model.backbone.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)  # BatchNorm statistics included
    assert not np.array_equal(hash_before, engine.model.hash_layer.weight.numpy())
    engine.model.train()
    assert engine.model.training and not engine.model.backbone.training


@pytest.mark.parametrize("method", sorted(SHALLOW_METHODS))
def test_a_shallow_method_is_fitted_into_the_model(method, tiny_lite, tmp_path):
    cfg = config(method, tiny_lite, tiny_lite, tmp_path)
    engine = Engine(cfg)
    assert engine.run() > 0
    # the model's codes are the numpy fit's codes on the same features
    features, _ = backbone_features(engine.model, engine.db_loader)
    plain_train = engine.data.train_set
    from utils.data.loader import build_dataloader

    train_features, _ = backbone_features(engine.model, build_dataloader(plain_train, 16, False, False))
    fitted = BASELINES[method](train_features, BIT, seed=0, **{k: v for k, v in cfg["loss"].items() if k != "name"})
    with paddle.no_grad():
        engine.model.eval()
        images = paddle.concat([batch[0] for batch in engine.db_loader])
        z = engine.model(images).numpy()
    codes = np.where(z >= 0, 1, -1)
    assert (codes != fitted.encode(features)).mean() < 0.01  # float32 model vs float64 fit: a near-zero may flip
    assert os.path.isfile(tmp_path / f"model_best_{BIT}.safetensors")
    with pytest.raises(UserError, match="nothing to resume"):
        Engine(config(method, tiny_lite, tiny_lite, tmp_path, resume=str(tmp_path / f"model_last_{BIT}")))


def test_a_shallow_method_on_the_backbone_of_a_trained_model(tiny_lite, unlabelled, tmp_path, capsys):
    trained = Engine(config("bihalf", tiny_lite, tiny_lite, tmp_path / "bihalf", ["train.eval_untrained=false"]))
    trained.run()
    weights = str(tmp_path / "bihalf" / f"model_best_{BIT}.safetensors")
    cfg = config("itq", tiny_lite, tiny_lite, tmp_path / "itq", [f"model.backbone_weights={weights}"])
    engine = Engine(cfg)
    for key, value in trained.model.backbone.state_dict().items():
        np.testing.assert_array_equal(engine.model.backbone.state_dict()[key].numpy(), value.numpy())
    engine.run()
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    predict.main(["--bit", str(BIT), "--img", query, "--data-path", tiny_lite, "--topk", "3", "--num-workers", "0",
                  "--pretrained", str(tmp_path / "itq" / f"model_best_{BIT}"), "--save-path", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert "00000.jpg" in out and "relevant" in out  # labelled lists: the matches are judged
    predict.main(["--bit", str(BIT), "--img", query, "--data-path", tiny_lite, "--list-dir", unlabelled, "--topk", "3",
                  "--num-workers", "0", "--pretrained", str(tmp_path / "itq" / f"model_best_{BIT}"),
                  "--save-path", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert "top 3 of 48 database images" in out and "relevant" not in out and "query labels" not in out  # no labels


@pytest.mark.parametrize("method", UNSUPERVISED + sorted(SHALLOW_METHODS))
def test_the_export_gives_the_trained_models_codes(method, tiny_lite, tmp_path):
    engine = Engine(config(method, tiny_lite, tiny_lite, tmp_path, ["train.eval_untrained=false"]))
    engine.run()
    weights = str(tmp_path / f"model_best_{BIT}")
    export_model.main(["--bit", str(BIT), "--pretrained", weights, "--save-inference-dir", str(tmp_path / "inf")])
    cfg = build_config(str(tmp_path / f"config_{BIT}.yaml"))
    expected, _ = encode_list(DygraphEncoder(cfg, weights), os.path.join(tiny_lite, "database.txt"), tiny_lite, 16)
    got, _ = encode_list(InferenceEncoder(str(tmp_path / "inf"), BIT, cpu_threads=2),
                         os.path.join(tiny_lite, "database.txt"), tiny_lite, 16)
    assert (got != expected).sum() == 0  # 0 differing bits
    assert len(np.unique(expected, axis=0)) > 1


def test_the_service_searches_with_a_fitted_model_and_an_unlabelled_database(tiny_lite, unlabelled, tmp_path):
    from deploy.serving.service import SearchService, ServiceSettings
    from utils.inference.searcher import ListSource, SearchSettings

    Engine(config("itq", tiny_lite, tiny_lite, tmp_path)).run()
    export_model.main(["--bit", str(BIT), "--pretrained", str(tmp_path / f"model_best_{BIT}"),
                       "--save-inference-dir", str(tmp_path / "inf")])
    database = ListSource(os.path.join(unlabelled, "database.txt"), tiny_lite, str(tmp_path / "cache"))
    search = SearchSettings(bit=None, model_dir=str(tmp_path / "inf"), database=database,
                            cache_dir=str(tmp_path / "cache"), threads=1, predictors=1, num_workers=0)
    service = SearchService(ServiceSettings(search, str(tmp_path / "store")), lambda *a: None)
    first = open(os.path.join(unlabelled, "database.txt")).readline().strip()
    with open(os.path.join(tiny_lite, first), "rb") as f:
        data = f.read()
    body = service.search(data, os.path.basename(first), k=5)
    assert body["database_size"] == 48 and len(body["matches"]) == 5
    assert body["matches"][0]["distance"] == 0 and body["matches"][0]["labels"] == []
    added = service.add_items([("again.jpg", data)])  # no labels to give, none needed
    assert service.stats()["database_size"] == 49, added
