"""What a run is built from, one builder each: the data (lists, data sets, loaders), the network,
and the training parts (loss, optimizer, schedule). The engine calls them in this order, which
fixes where each random draw comes from: seed_everything, the data, paddle.seed, the network."""
import dataclasses
import random

import numpy as np
import paddle

from models import build_model
from utils.config import dataset_lists
from utils.data.dataset import ImageListDataset, SubsetView, split_validation
from utils.data.loader import build_dataloader
from utils.data.transforms import build_transform
from utils.data.views import TwoViewTransform
from utils.errors import ConfigError, DataError
from utils.losses import build_loss, is_shallow, loss_class
from utils.runtime.cpu import apply_training_options
from utils.storage.weights import load_weights
from utils.training.checkpoint import load_backbone_weights
from utils.training.init_from import init_from_shorter
from utils.training.optimizer import build_optimizer


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def build_split(cfg, list_path, train):
    """The data set of one list file, with the train (augmenting) or test transform of the config; a method
    that contrasts two views of each image (VIEWS = 2) trains on utils/data/views.py's pairs. With
    train.augment false the training images get the test transform (center crop, no flip)."""
    d = cfg["dataset"]
    views = loss_class(cfg["loss"]["name"]).VIEWS
    if train and not cfg["train"]["augment"] and views == 2:
        raise ConfigError(f"train.augment: false, but loss {cfg['loss']['name']!r} learns from two augmented "
                          f"views of each image; keep it true for this method")
    train = train and cfg["train"]["augment"]
    if train and views == 2:
        transform = TwoViewTransform(resize_size=d["resize_size"], crop_size=d["crop_size"], mean=d["mean"],
                                     std=d["std"])
    else:
        transform = build_transform(train, resize_size=d["resize_size"], crop_size=d["crop_size"],
                                    mean=d["mean"], std=d["std"])
    return ImageListDataset(list_path, d["data_path"], transform, num_classes=d["num_classes"],
                            seed=cfg["train"]["seed"], skip_bad=d["skip_bad_images"],
                            allow_outside_root=d["allow_outside_root"], max_pixels=d["max_image_pixels"])


@dataclasses.dataclass
class RunData:
    """The data of a run. train_set/train_loader are None with --eval; val_loaders (queries, their
    database) only with dataset.val_fraction > 0; num_train is the length of train.txt (the loss
    memory is indexed by position in it, validation slots included). num_classes: the lists' label
    count (0 when none has labels; the query and database lists have them or not together)."""
    lists: dict
    query_set: ImageListDataset
    db_set: ImageListDataset
    query_loader: object
    db_loader: object
    num_classes: int
    train_set: object = None
    train_loader: object = None
    val_loaders: tuple = None
    num_train: int = 0

    @property
    def train_list(self):
        return self.lists["train"]


def build_data(cfg, rank=0, world_size=1):
    """Lists (the lite data is generated when absent), data sets and loaders; each rank encodes its
    share of the evaluation sets and trains on its share of every epoch."""
    t, d = cfg["train"], cfg["dataset"]
    lists = dataset_lists(cfg)
    query_set = build_split(cfg, lists["test"], train=False)
    db_set = build_split(cfg, lists["database"], train=False)
    train_set = None
    if not cfg["eval_only"]:  # a shallow method is fitted on the features of the images as they are
        train_set = build_split(cfg, lists["train"], train=not is_shallow(cfg["loss"]["name"]))
        train_set = without_labels(cfg, train_set)
    classes = {ds.num_classes for ds in (query_set, db_set, train_set) if ds is not None and ds.num_classes}
    if len(classes) > 1 or query_set.num_classes != db_set.num_classes:
        found = sorted({ds.num_classes for ds in (query_set, db_set, train_set) if ds is not None})
        raise DataError(f"the list files of {lists} disagree on the number of labels: {found}")
    workers, eval_batch = d["num_workers"], max(t["batch_size"], 32)
    shard = {"num_replicas": world_size, "rank": rank}

    def eval_loader(dataset):
        return build_dataloader(dataset, eval_batch, shuffle=False, drop_last=False, num_workers=workers,
                                seed=t["seed"], **shard)

    data = RunData(lists=lists, query_set=query_set, db_set=db_set, query_loader=eval_loader(query_set),
                   db_loader=eval_loader(db_set), num_classes=classes.pop() if classes else 0, train_set=train_set)
    if train_set is None:
        return data
    data.num_train = len(train_set)
    if d["val_fraction"] > 0:
        # Honest model selection: validation queries held out of train.txt, searched among the
        # remaining training images; the network never trains on them.
        keep, held_out = split_validation(len(train_set), d["val_fraction"], t["seed"])
        plain = build_split(cfg, lists["train"], train=False)
        data.val_loaders = tuple(eval_loader(SubsetView(plain, idx)) for idx in (held_out, keep))
        data.train_set = SubsetView(train_set, keep)
    data.train_loader = build_dataloader(data.train_set, t["batch_size"], shuffle=True, drop_last=True,
                                         num_workers=workers, seed=t["seed"], **shard)
    return data


def without_labels(cfg, train_set):
    """The training set as the method may see it: a method that learns without labels (or a run with
    train.use_labels: false, which validation allows for those methods only) gets no label columns; a
    method that learns from labels refuses a list that has none, in one line naming the list."""
    method = loss_class(cfg["loss"]["name"])
    if method.SUPERVISED:
        if train_set.num_classes == 0:
            raise DataError(f"{train_set.list_path}: the images have no labels (no label columns), but loss "
                            f"{method.NAME!r} learns from labels; pick a method that learns without them "
                            f"(configs/methods/{{bihalf,greedyhash_unsup,cibhash,itq}}_*.yaml, docs/methods.md)")
        return train_set
    if cfg["dataset"]["val_fraction"] > 0:
        raise ConfigError(f"dataset.val_fraction: picks the best epoch by validation mAP, which needs labels; "
                          f"loss {method.NAME!r} learns without them (set dataset.val_fraction 0)")
    train_set.labels = train_set.labels[:, :0]  # never handed to the loss
    train_set.num_classes = 0
    return train_set


def build_network(cfg, num_classes, logger):
    """The network of cfg['model'], seeded, with the CPU speed options, ImageNet backbone weights
    (training) and --pretrained weights. Heads with a classifier need the class count to train
    (without it, with --eval, they only encode)."""
    paddle.seed(cfg["train"]["seed"])
    model = build_model(cfg, num_classes=None if cfg["eval_only"] else num_classes)
    tuned = apply_training_options(cfg, paddle.device.get_device().split(":")[0], model)
    if tuned:
        logger.info(f"CPU speed options: {', '.join(tuned)}")
    if cfg["model"]["backbone_weights"] and not cfg["eval_only"]:
        load_backbone_weights(model.backbone, cfg["model"]["backbone_weights"], logger)
    if cfg["pretrained"]:
        logger.info(f"loaded weights {load_weights(model, cfg['pretrained'])}")
    elif cfg["init_from"] and not cfg["eval_only"] and not cfg["resume"]:  # a resumed run has its own weights
        logger.info(init_from_shorter(model, cfg["init_from"], cfg["model"]["backbone"]))
    return model


@dataclasses.dataclass
class TrainingParts:
    """What updates the network: the loss (with its state: memory, centers), the model the step
    runs (DataParallel over several ranks; its parameters are the network's), optimizer, schedule."""
    criterion: object
    train_model: object
    optimizer: object
    scheduler: object


def build_training(cfg, data, model, comm, world_size=1):
    """The loss, the model the step runs, the optimizer and the schedule; None for a shallow method
    (fitted in closed form: utils/training/shallow.py)."""
    if is_shallow(cfg["loss"]["name"]):
        return None
    criterion = build_loss(cfg, num_train=data.num_train, num_classes=data.num_classes, comm=comm,
                           train_labels=data.train_set.labels)
    # gradients are averaged over ranks by DataParallel; the parameters stay those of model
    train_model = paddle.DataParallel(model) if world_size > 1 else model
    optimizer, scheduler = build_optimizer(cfg, model.named_parameters(), world_size)
    return TrainingParts(criterion, train_model, optimizer, scheduler)
