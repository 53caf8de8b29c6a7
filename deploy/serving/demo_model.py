"""An untrained model, exported like a trained one: for the tests and the load benchmark.

Its codes are deterministic (seeded weights), it has the lite config's architecture and
preprocessing, and it encodes exactly as fast as trained weights, so the service can be tested
and measured without a training run. Not for retrieval quality.
"""
import os


def export_untrained_model(out_dir, data_path, bit=64, seed=0, overrides=()):
    """Write <out_dir>/untrained_<K>.pdparams + the config (as a run saves it) and export them to the
    folder's export folder (<out_dir>/inference)."""
    import paddle

    from models import build_model
    from utils.config import build_config, save_config
    from utils.inference.export import export_model
    from utils.storage.run_folder import RunFolder, weights_path
    from utils.storage.weights import atomic_paddle_save

    cfg = build_config(None, {"dataset": "lite", "data_path": data_path, "bit": bit}, overrides)
    paddle.seed(seed)
    model = build_model(cfg)
    prefix = os.path.join(out_dir, f"untrained_{bit}")
    atomic_paddle_save(model.state_dict(), weights_path(prefix))
    folder = RunFolder(out_dir)
    save_config(cfg, folder.config(bit))
    model_dir = folder.export.path
    export_model(cfg, prefix, model_dir)  # what export_model.py does with the config saved beside the weights
    return model_dir
