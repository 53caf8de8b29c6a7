"""Export trained weights to a static inference graph for Paddle Inference.

Writes DIR/inference_<K>.json + DIR/inference_<K>.pdiparams (Paddle 3 PIR format) and
its description (preprocessing, bit count, the weights' digest;
utils.storage.run_folder.ExportFolder names the files). The graph outputs the network's
pre-sign features z (float32, K per image); the code is their sign (utils.encoding.sign_codes, the
rule every encoder applies, so the export and the dygraph network give the same codes). The weights also go to DIR/model_<K>.safetensors: the form to hand to others (loading it
runs no code). Everything is written in full before any file of a previous export in DIR is
replaced, so a failed write (disk full) leaves that export as it was. export_model.py, the
search service and the demo model all call export_model() here.
"""
import os
import shutil
import tempfile

import yaml

from utils.errors import WriteError
from utils.inference.model_files import model_file_digests, preprocess_settings
from utils.storage.fileio import Staged, file_sha256, remove_stale_temp_dirs, stage_bytes, staged_generation
from utils.storage.library_writes import check_library_files
from utils.storage.run_folder import ExportFolder
from utils.storage.weights import load_weights, safetensors_bytes, weights_digest

# what the graph's output is (the description's `output`); exports of earlier versions say
# "code, float32 +1/-1 per bit" and give the same codes through utils.encoding.sign_codes
OUTPUT = "pre-sign features, float32 per bit (code: +1 where >= 0, else -1)"


def export_model(cfg, pretrained, out_dir, onnx=False):
    """Export the weights PREFIX `pretrained` of the network `cfg` describes (the config that trained
    them: utils.config.config_for_weights) into out_dir; returns the prefix DIR/inference_<K>. With
    onnx, the graph is also converted to DIR/inference_<K>.onnx (paddle2onnx, utils.inference.onnx)
    in the same all-or-nothing generation, and the description records its sha256."""
    import paddle

    if onnx:  # before any work: a missing package is one line naming requirements-onnx.txt
        from utils.inference.onnx import convert_to_onnx, require

        require("paddle2onnx", "onnx")

    from models import build_model

    bit = cfg["model"]["bit"]
    model = build_model(cfg)
    weights = load_weights(model, pretrained)
    model.eval()  # every head returns its pre-sign output z in eval mode
    crop = cfg["dataset"]["crop_size"]
    static = paddle.jit.to_static(model, input_spec=[paddle.static.InputSpec([None, 3, crop, crop], "float32", "x")],
                                  full_graph=True)
    folder = ExportFolder(out_dir)
    name, prefix = folder.graph_name(bit), folder.graph_prefix(bit)
    try:
        os.makedirs(out_dir, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=out_dir)  # the new export, beside the old one
    except OSError as exc:
        raise WriteError(prefix + ".json", exc) from None
    try:
        with staged_generation(out_dir) as staged:
            try:
                paddle.jit.save(static, os.path.join(work, name))
            except OSError as exc:
                raise WriteError(f"{prefix}.json/.pdiparams", exc) from None
            graph = [os.path.join(work, name + ext) for ext in (".json", ".pdiparams")]
            # Paddle's C++ save does not report a full disk: read the files back before trusting them
            check_library_files([(path, os.path.join(out_dir, os.path.basename(path))) for path in graph])
            onnx_file = os.path.join(work, name + ".onnx")
            if onnx:
                convert_to_onnx(*graph, onnx_file, target=prefix + ".onnx")
            staged += [Staged(os.path.join(work, f), os.path.join(out_dir, f)) for f in sorted(os.listdir(work))]
            released = folder.released(bit)
            staged.append(stage_bytes(released, safetensors_bytes(
                model.state_dict(), {"bit": bit, "backbone": cfg["model"]["backbone"]})))
            # weights_digest: the model fingerprint predict.py and the service compare, the same as the
            # dygraph weights'; model_files_sha256 says the exported files are still these
            info = {"bit": bit, "backbone": cfg["model"]["backbone"], **preprocess_settings(cfg["dataset"]),
                    "output": OUTPUT, "weights": os.path.abspath(weights),
                    "weights_sha256": file_sha256(weights), "weights_digest": weights_digest(model.state_dict()),
                    "model_files_sha256": file_sha256(*graph), "model_file_sha256": model_file_digests(graph),
                    "safetensors": os.path.basename(released)}
            if onnx:
                info.update(onnx=os.path.basename(onnx_file), onnx_sha256=file_sha256(onnx_file))
            text = yaml.safe_dump(info, sort_keys=False).encode("utf-8")
            staged.append(stage_bytes(folder.infer_cfg, text))  # last: it describes the rest
    finally:
        shutil.rmtree(work, ignore_errors=True)
    remove_stale_temp_dirs(out_dir, ".export-")  # of exports killed before they finished
    return prefix
