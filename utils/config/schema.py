"""The config schema: every key with its default. A key that is not here is an error wherever it
comes from, so a typo in a YAML file or an override fails loudly instead of being ignored.

The `loss` section is the method's: its keys and published defaults are the loss class's DEFAULTS
(utils/losses/<method>.py, picked by loss.name from utils.losses.LOSSES); default_config() puts
the default method's (HashNet's) there.
"""
import copy

SUPPORTED_BITS = (8, 12, 16, 24, 32, 48, 64, 128)
DEFAULT_METHOD = "hashnet"
# model.name values of configs saved before the generic head was renamed (it was named after HashNet)
LEGACY_MODEL_NAMES = {"hashnet": "linear"}

DEFAULTS = {  # every section but `loss`, whose keys are the chosen method's
    "dataset": {
        "name": "lite",
        "data_path": "./datasets/lite/",
        "list_dir": None,          # default: data/<name>/ ; the lite set keeps its lists in data_path
        "num_classes": None,       # None: read from the list files
        "topk": -1,                # mAP@topK; -1 or None: the whole database
        "resize_size": 256,
        "crop_size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "num_workers": 2,
        "lite_seed": 0,
        "val_fraction": 0.0,       # > 0: hold out this part of train.txt to pick the best epoch
        "skip_bad_images": False,  # True: skip unreadable/missing images, count them, report at the end
        "allow_outside_root": False,  # True: accept absolute and ../ list paths outside data_path
        "max_image_pixels": 100_000_000,  # decompression-bomb guard, checked from the image header
    },
    "model": {
        "name": "linear",          # the head (models.MODELS): linear, ssdh, dshsd, greedyhash, ppshitu
        "backbone": "alexnet",
        "bit": 64,
        "dropout": 0.5,
        "fc_dim": 4096,            # width of fc6/fc7; ImageNet weights need 4096
        "batch_norm": False,       # BatchNorm after each conv: for training from scratch
        "hash_lr_mult": 10.0,
        "hash_bias_lr_mult": None,  # None: same as hash_lr_mult (Caffe used 20)
        "hash_init_std": 0.01,      # hash (latent) layer weights ~ N(0, std)
        "hash_bias_init": 0.0,      # hash (latent) layer bias, a constant
        "classifier_init_std": None,  # heads with a classifier: weights ~ N(0, std), bias 0; null: paddle's default
        "backbone_weights": None,   # a local .pdparams, or "imagenet" to download through paddle.vision
        "needs_backbone_weights": False,  # a fine-tuning recipe: warn when trained without backbone_weights
        "freeze_backbone": False,   # train the head alone on the backbone's fixed features (backbone in eval mode)
    },
    "train": {
        "epochs": 150,
        "batch_size": 64,          # per device
        "lr": 0.001,               # at a global batch of base_batch
        "base_batch": 64,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "clip_grad_norm": None,    # clip the global gradient norm at this value (null: never)
        # per-parameter lr multipliers / weight decays, first matching rule wins (utils/training/optimizer.py):
        # [{match: "*.bias", lr_mult: 2, weight_decay: 0}, ...]; empty: the model's own multipliers, one decay
        "param_groups": [],
        "lr_schedule": "step",     # step: x lr_decay_gamma every lr_decay_every epochs | cosine: to 0 over the epochs
        "warmup_epochs": 0,        # linear warm-up from 0 to the lr over these first epochs (then the schedule)
        "lr_decay_every": 50,
        "lr_decay_gamma": 0.5,
        "seed": 0,
        "eval_every": 10,
        "log_every": 10,
        "eval_untrained": True,
        "loss_rise_epochs": 3,     # warn when the epoch loss rises this many epochs in a row (0: never)
        "cpu_malloc_reuse": True,  # CPU: keep freed large buffers for the next step (utils/runtime/cpu.py)
        "onednn_conv": "auto",     # auto | true | false: convolutions through oneDNN on CPU (utils/runtime/onednn_conv.py)
        "amp": None,               # null (fp32) | fp16 | bf16: mixed precision on GPU (utils/training/amp.py)
        "use_labels": True,        # false: train without the lists' labels (a method that learns without them);
                                   # evaluation still uses the query/database labels when the lists have them
    },
    "device": "auto",              # auto | cpu | gpu
    "threads": 0,                  # CPU threads per process; 0: cores / processes
    "output_dir": "./output",
    "pretrained": None,            # a weights prefix (or .pdparams) to start from / evaluate
    "resume": None,                # a checkpoint prefix to continue training from
    "init_from": None,             # a shorter-code model to start from (utils/training/init_from.py, DSH)
    "eval_only": False,
    "plots": False,                # write P-R curve and precision@N plots (matplotlib) after evaluation
}

# The main_*.py flags and the config keys they set.
# The main_*.py flags and the config keys they set.
FLAG_KEYS = {
    "dataset": "dataset.name",
    "data_path": "dataset.data_path",
    "list_dir": "dataset.list_dir",
    "bit": "model.bit",
    "epoch": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "num_workers": "dataset.num_workers",
    "output_dir": "output_dir",
    "pretrained": "pretrained",
    "pretrained_backbone": "model.backbone_weights",
    "resume": "resume",
    "init_from": "init_from",
    "eval": "eval_only",
    "plots": "plots",
    "device": "device",
    "threads": "threads",
    "skip_bad_images": "dataset.skip_bad_images",
    "allow_outside_data_root": "dataset.allow_outside_root",
}


def method_defaults(name):
    """The `loss` section of method `name`: {"name": name, its DEFAULTS} (ConfigError for an unknown
    name). Imports utils.losses (and paddle) on first use only."""
    from utils.losses import loss_class

    return {"name": name, **copy.deepcopy(loss_class(name).DEFAULTS)}


def default_config():
    """The built-in config: DEFAULTS with the default method's `loss` section, in section order."""
    base = copy.deepcopy(DEFAULTS)
    cfg = {key: base.pop(key) for key in ("dataset", "model")}
    cfg["loss"] = method_defaults(DEFAULT_METHOD)
    cfg.update(base)
    return cfg
