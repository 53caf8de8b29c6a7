"""An untrained model, exported like a trained one: for the tests and the load benchmark.

Its codes are deterministic (seeded weights), it has the lite config's architecture and
preprocessing, and it encodes exactly as fast as trained weights, so the service can be tested
and measured without a training run. Not for retrieval quality.
"""
import os


def export_untrained_model(out_dir, data_path, bit=64, seed=0, overrides=()):
    """Write <out_dir>/untrained_<K>.pdparams + config_<K>.yaml and export them to <out_dir>/inference."""
    import paddle

    from models import build_model
    from utils.config import build_config, save_config
    from utils.inference.export import export_model
    from utils.storage.weights import atomic_paddle_save

    cfg = build_config(None, {"dataset": "lite", "data_path": data_path, "bit": bit}, overrides)
    paddle.seed(seed)
    model = build_model(cfg)
    prefix = os.path.join(out_dir, f"untrained_{bit}")
    atomic_paddle_save(model.state_dict(), prefix + ".pdparams")
    save_config(cfg, os.path.join(out_dir, f"config_{bit}.yaml"))
    model_dir = os.path.join(out_dir, "inference")
    export_model(cfg, prefix, model_dir)  # what export_model.py does with the config saved beside the weights
    return model_dir
