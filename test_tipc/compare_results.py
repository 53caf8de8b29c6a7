"""Compare the codes an inference run printed with the expected codes stored under test_tipc/results/
(PaddleClas's test_tipc/compare_results.py, for hash codes: a Hamming budget instead of atol/rtol).

    python -m test_tipc.compare_results --gt-file test_tipc/results/hashnet_16/python_infer_fp32.txt \
        --log-file 'test_tipc/output/hashnet_16/lite_train_lite_infer/python_infer_cpu_gpus_-1_*.log'

Every --log-file (a path or a quoted glob; repeatable) must hold one `<image>\tcode: <bits>\t...` line
(the output of deploy/inference_python/infer.py and deploy/onnxruntime_python/infer.py) for every
image of the expected file, images matched by file name. fp32 is exact: the default budget is 0.
Other precisions (int8, bf16) pass --max-hamming (per image) and --max-mean-hamming (over the
images). Exit code 0 when every log is within the budget, 1 when one is not, 2 for a missing or
malformed file (one `error:` line).

The expected file records the weights digest of the model that made it (the export's description
records it); with --model-dir the model under test is checked against it. TIPC's lite chains
train their model: training is deterministic for one CPU kernel path (seeded weights, data order,
augmentation and dropout), not across CPUs (oneDNN and MKL round differently on other CPUs, see
README's results table), so a model trained on another CPU has another digest. Its codes are then
held to the given budget plus --other-model-max-hamming / --other-model-max-mean-hamming (default 2
bits per image, 0.25 on average), with a note saying so: a code bit whose logit sits near zero may
flip with the rounding. The sum, not the larger of the two, by the triangle inequality: the distance
to the expected codes is at most the distance to the other model's own fp32 codes (the given budget:
int8, bf16, QAT's moved weights) plus that model's distance to the expected model (a PACT chain on a
Zen 4 EPYC, another model fine-tuned by QAT, came to mean 4.04 bits of 16 against K/4 = 4). (Here,
trained with MKL's generic kernels, HASHNET_MKL_AVX2=0, the weights differ and all 100 codes are
the same; test_tipc/README.md.) Make an expected file
with --write:

    python -m test_tipc.compare_results --write --gt-file test_tipc/results/hashnet_16/python_infer_fp32.txt \
        --log-file LOG --model-dir MODEL_DIR
"""
import argparse
import glob
import os
import re
import sys


from utils.cli import exit_on_user_error
from utils.errors import ConfigError, DataError

CODE_LINE = re.compile(r"^(?P<path>[^\t]+)\tcode: (?P<bits>[01]+)(\t|$)")
DIGEST_LINE = re.compile(r"^# weights_digest: (\S+)$")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt-file", "--gt_file", required=True,
                   help="expected codes: `<image name>\\t<bits>` lines after `#` header lines")
    p.add_argument("--log-file", "--log_file", action="append", required=True, metavar="PATH_OR_GLOB",
                   help="inference log(s) to check; a quoted glob matches several (repeatable)")
    p.add_argument("--max-hamming", "--max_hamming", type=int, default=0,
                   help="largest Hamming distance allowed for any one image (fp32: 0)")
    p.add_argument("--max-mean-hamming", "--max_mean_hamming", type=float, default=0.0,
                   help="largest mean Hamming distance over the images (fp32: 0)")
    p.add_argument("--other-model-max-hamming", "--other_model_max_hamming", type=int, default=2,
                   help="with --model-dir, when its weights digest is not the expected file's (the model was "
                        "trained on another CPU): added to the per-image budget")
    p.add_argument("--other-model-max-mean-hamming", "--other_model_max_mean_hamming", type=float, default=0.25,
                   help="as --other-model-max-hamming, for the mean over the images")
    p.add_argument("--model-dir", "--model_dir", default=None,
                   help="the exported model the logs came from: the weights_digest its description records must be the "
                        "expected file's (with --write: recorded in the file)")
    p.add_argument("--write", action="store_true",
                   help="write --gt-file from the one --log-file instead of comparing (atomic)")
    p.add_argument("--note", default="", help="with --write: a header line saying what made the file")
    args = p.parse_args(argv)
    if args.max_hamming < 0:
        raise ConfigError(f"--max-hamming must be >= 0, got {args.max_hamming}")
    if not args.max_mean_hamming >= 0:
        raise ConfigError(f"--max-mean-hamming must be >= 0, got {args.max_mean_hamming}")
    if args.other_model_max_hamming < 0:
        raise ConfigError(f"--other-model-max-hamming must be >= 0, got {args.other_model_max_hamming}")
    if not args.other_model_max_mean_hamming >= 0:
        raise ConfigError(f"--other-model-max-mean-hamming must be >= 0, got {args.other_model_max_mean_hamming}")
    return args


def log_files(patterns):
    """The files the --log-file values name, in order, each once."""
    files = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise DataError(f"--log-file {pattern}: no file matches")
        for path in found:
            if not os.path.isfile(path):
                raise DataError(f"--log-file {path}: not found")
            if path not in files:
                files.append(path)
    return files


def _read_lines(path, flag):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{flag} {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{flag} {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def _add(codes, name, bits, where):
    if name in codes and codes[name] != bits:
        raise DataError(f"{where}: image {name} appears twice with different codes")
    codes[name] = bits


def read_log(path):
    """{image file name: bit string} of the code lines of an inference log."""
    codes = {}
    for number, line in enumerate(_read_lines(path, "--log-file"), 1):
        match = CODE_LINE.match(line)
        if match:
            _add(codes, os.path.basename(match["path"]), match["bits"], f"--log-file {path}:{number}")
    if not codes:
        raise DataError(f"--log-file {path}: no `<image>\\tcode: <bits>` lines (not an inference log?)")
    return codes


def read_expected(path):
    """({image file name: bit string}, weights digest or None) of an expected-codes file."""
    codes, digest = {}, None
    for number, line in enumerate(_read_lines(path, "--gt-file"), 1):
        if line.startswith("#") or not line.strip():
            found = DIGEST_LINE.match(line)
            digest = found[1] if found else digest
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1] or set(parts[1]) - {"0", "1"}:
            raise DataError(f"--gt-file {path}:{number}: expected `<image name>\\t<0/1 bits>`, got {line[:80]!r}")
        _add(codes, parts[0], parts[1], f"--gt-file {path}:{number}")
    if not codes:
        raise DataError(f"--gt-file {path}: no codes")
    lengths = {len(b) for b in codes.values()}
    if len(lengths) != 1:
        raise DataError(f"--gt-file {path}: codes of different lengths {sorted(lengths)}")
    return codes, digest


def model_digest(model_dir):
    import yaml

    from utils.storage.run_folder import ExportFolder

    path = ExportFolder(model_dir).infer_cfg
    try:
        with open(path, encoding="utf-8") as f:
            info = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise DataError(f"--model-dir {model_dir}: no {os.path.basename(path)} (not a folder written by export_model.py)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"--model-dir {path}: cannot read ({exc})") from None
    if not isinstance(info, dict) or not info.get("weights_digest"):
        raise DataError(f"--model-dir {path}: no weights_digest")
    return str(info["weights_digest"])


def hamming(expected, found):
    """Per-image Hamming distances, in the expected file's order; a DataError when the image sets
    or code lengths differ."""
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    if missing or extra:
        what = [f"{len(missing)} expected images missing (first: {missing[0]})"] if missing else []
        what += [f"{len(extra)} images not expected (first: {extra[0]})"] if extra else []
        raise DataError("; ".join(what))
    distances = []
    for name, bits in expected.items():
        if len(found[name]) != len(bits):
            raise DataError(f"{name}: a {len(found[name])}-bit code, expected {len(bits)} bits")
        distances.append(sum(a != b for a, b in zip(bits, found[name])))
    return distances


def write_expected(args):
    from utils.storage.fileio import atomic_write_bytes

    files = log_files(args.log_file)
    if len(files) != 1:
        raise ConfigError(f"--write takes one --log-file, got {len(files)}")
    codes = read_log(files[0])
    header = ["# expected codes for test_tipc/compare_results.py: `<image name>\\t<bits>` per line"]
    header += [f"# {args.note}"] if args.note else []
    if args.model_dir:
        header.append(f"# weights_digest: {model_digest(args.model_dir)}")
    header.append(f"# from: {os.path.basename(files[0])} ({len(codes)} images)")
    text = "\n".join(header + [f"{name}\t{bits}" for name, bits in sorted(codes.items())]) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.gt_file)), exist_ok=True)
    atomic_write_bytes(args.gt_file, text.encode("utf-8"))
    print(f"compare_results: wrote {len(codes)} expected codes to {args.gt_file}")


def compare(args):
    expected, digest = read_expected(args.gt_file)
    max_hamming, max_mean = args.max_hamming, args.max_mean_hamming
    if args.model_dir:
        found = model_digest(args.model_dir)
        if digest is None:
            raise DataError(f"--gt-file {args.gt_file}: records no weights_digest to check --model-dir against")
        if found != digest:
            max_hamming += args.other_model_max_hamming  # the triangle inequality: module docstring
            max_mean += args.other_model_max_mean_hamming
            print(f"compare_results: note: {args.model_dir} is not the model the expected codes were made from "
                  f"(weights_digest {found[:12]}... vs {digest[:12]}...: trained with other float rounding, e.g. "
                  f"on another CPU); its codes are held to the other-model budget (max {max_hamming}, "
                  f"mean {max_mean:g})")
    failed = 0
    for path in log_files(args.log_file):
        try:
            distances = hamming(expected, read_log(path))
        except DataError as exc:
            raise DataError(f"--log-file {path} vs --gt-file {args.gt_file}: {exc}") from None
        worst, mean = max(distances), sum(distances) / len(distances)
        ok = worst <= max_hamming and mean <= max_mean
        failed += not ok
        print(f"compare_results: {'ok' if ok else 'FAILED'}: {path}: {len(distances)} images, "
              f"{sum(d > 0 for d in distances)} differ, max {worst} / mean {mean:.3f} bits "
              f"(budget: max {max_hamming}, mean {max_mean:g}) vs {args.gt_file}")
    return 1 if failed else 0


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.write:
        write_expected(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
