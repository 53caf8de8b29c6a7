"""Convert trained weights PREFIX.pdparams (a pickle) to PREFIX.safetensors (no code runs on load).

    python -m tools.convert_weights PREFIX [--out released/hashnet_64.safetensors]   # PREFIX: trained weights

A .pdparams is a pickle. By default only plain pickles (numpy arrays and containers, what
paddle.save writes) are read; --trust reads any pickle with paddle.load, which runs whatever
code the file names: use it only for files whose origin you trust.
The bit count and backbone are stored in the safetensors header when the config_<K>.yaml the
run saved is found beside the weights (or --bit/--backbone are given).
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.convert_weights [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse


from utils.cli import exit_on_user_error
from utils.errors import WeightsError
from utils.runtime import configure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pdparams", help="PREFIX or PREFIX.pdparams")
    p.add_argument("--out", default=None, help="output file (default: PREFIX.safetensors)")
    p.add_argument("--bit", type=int, default=None, help="bit count to record (default: from the weights)")
    p.add_argument("--backbone", default=None, help="backbone to record (default: from config_<K>.yaml beside them)")
    p.add_argument("--trust", action="store_true", help="read any pickle (runs code it names): trusted files only")
    return p.parse_args(argv)


def convert(pdparams, out=None, bit=None, backbone=None, trust=False):
    from utils.storage.weights import load_state_file, strip_suffix, weights_path
    from utils.storage.weights import save_safetensors

    source = weights_path(strip_suffix(pdparams))
    state = load_state_file(source, "weights file", trust_pickle=trust)
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"{source} is not a state dict")
    if bit is None and "hash_layer.weight" in state:
        bit = int(state["hash_layer.weight"].shape[-1])
    if backbone is None:
        from utils.config import saved_config

        config = saved_config(source, bit)
        if config:
            import yaml

            with open(config, encoding="utf-8") as f:
                backbone = ((yaml.safe_load(f) or {}).get("model") or {}).get("backbone")
    metadata = {k: v for k, v in (("bit", bit), ("backbone", backbone)) if v is not None}
    out = out or strip_suffix(source) + ".safetensors"
    return save_safetensors(state, out, metadata), metadata


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    out, metadata = convert(args.pdparams, args.out, args.bit, args.backbone, args.trust)
    print(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in metadata.items()) or 'no metadata'})")


if __name__ == "__main__":
    main()
