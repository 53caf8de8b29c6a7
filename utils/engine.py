"""The one training engine behind main_single_gpu.py and main_multi_gpu.py.

It owns the loop (train, evaluate, checkpoint, resume); entry points only parse flags and
start processes. Determinism: the data order, the augmentations and the dropout masks of an
epoch derive from (seed, epoch) alone, so a run resumed from the checkpoint of epoch e ends
with the same weights as one that was never interrupted.
"""
import os
import random
import time

import numpy as np
import paddle
from tqdm import tqdm

from models import build_model, codes_from_logits
from utils.storage.weights import load_weights
from utils.training.checkpoint import (load_backbone_weights, load_checkpoint, optimizer_state, save_checkpoint,
                                       set_optimizer_state)
from utils.config import SCRATCH_CONFIG, config_yaml, dataset_lists, default_config_path, list_dir
from utils.runtime.cpu import apply_training_options
from utils.data.dataset import bad_image_summary, ImageListDataset, split_validation, SubsetView
from utils.data.loader import build_dataloader
from utils.data.transforms import build_transform
from utils.runtime.distributed import Comm, in_dataset_order
from utils.errors import UserError
from utils.storage.fileio import display_path
from utils.runtime.log import open_log_files, ScalarWriter, setup_logger
from utils.losses import build_loss
from utils.evaluation.code_health import code_statistics, codes_collapsed
from utils.evaluation.metrics import mean_average_precision, precision_within_radius
from utils.optimizer import build_optimizer


def lists_name(cfg):
    return os.path.join(list_dir(cfg), "train.txt")


def topk_label(topk):
    return "all" if topk in (None, -1) else str(topk)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def build_split(cfg, list_path, train):
    d = cfg["dataset"]
    transform = build_transform(train, resize_size=d["resize_size"], crop_size=d["crop_size"],
                                mean=d["mean"], std=d["std"])
    return ImageListDataset(list_path, d["data_path"], transform, num_classes=d["num_classes"],
                            seed=cfg["train"]["seed"], skip_bad=d["skip_bad_images"],
                            allow_outside_root=d["allow_outside_root"], max_pixels=d["max_image_pixels"])


@paddle.no_grad()
def encode(model, loader, desc="encode", show_progress=True, comm=None):
    """Codes (+-1 int8) and labels of every item, in dataset order (gathered from all ranks)."""
    was_training = model.training
    model.eval()
    codes, labels, indices = [], [], []
    for images, batch_labels, batch_indices in tqdm(loader, desc=desc, leave=False,
                                                    disable=None if show_progress else True):
        codes.append(codes_from_logits(model(images)).numpy().astype(np.int8))
        labels.append(batch_labels.numpy())
        indices.append(batch_indices.numpy())
    if was_training:
        model.train()
    codes, labels, indices = np.concatenate(codes), np.concatenate(labels), np.concatenate(indices)
    if comm is None or not comm.active:
        return codes, labels
    codes, labels = in_dataset_order(comm, indices, codes.astype(np.int32), labels)
    return codes.astype(np.int8), labels


def train_step(model, criterion, optimizer, images, labels, indices, loss_scale=1):
    """One SGD step; benchmarks/train_speed.py times exactly this."""
    loss = criterion(model(images), labels, indices)
    (loss * loss_scale if loss_scale != 1 else loss).backward()
    optimizer.step()
    optimizer.clear_grad()
    return loss


class Engine:
    def __init__(self, cfg, rank=0, world_size=1):
        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        self.comm = Comm(rank, world_size)
        self.bit = cfg["model"]["bit"]
        self.out = cfg["output_dir"]
        self.warnings = []  # collapse, divergence, recipe: repeated in the final report
        os.makedirs(self.out, exist_ok=True)
        mode = "eval" if cfg["eval_only"] else "train"
        # the log file waits until the run has weights (or, with --eval, a result): a run that fails
        # before leaves the output folder as it was
        self.logger = setup_logger(self.out, filename=f"{mode}_{self.bit}.log", rank=rank, deferred=True)
        t = cfg["train"]
        seed_everything(t["seed"])

        lists = dataset_lists(cfg)
        self.query_set = build_split(cfg, lists["test"], train=False)
        self.db_set = build_split(cfg, lists["database"], train=False)
        self.train_set, self.val_loaders = None, None
        if not cfg["eval_only"]:
            self.train_set = build_split(cfg, lists["train"], train=True)
        classes = {ds.num_classes for ds in (self.query_set, self.db_set, self.train_set) if ds is not None}
        if len(classes) != 1:
            raise UserError(f"the list files of {lists} disagree on the number of labels: {sorted(classes)}")
        self.num_classes = classes.pop()
        self.topk = cfg["dataset"]["topk"]

        workers = cfg["dataset"]["num_workers"]
        eval_batch = max(t["batch_size"], 32)
        shard = {"num_replicas": world_size, "rank": rank}  # each rank encodes its share of the eval sets
        self.query_loader = build_dataloader(self.query_set, eval_batch, shuffle=False, drop_last=False,
                                             num_workers=workers, seed=t["seed"], **shard)
        self.db_loader = build_dataloader(self.db_set, eval_batch, shuffle=False, drop_last=False,
                                          num_workers=workers, seed=t["seed"], **shard)
        if self.train_set is not None and cfg["dataset"]["val_fraction"] > 0:
            # Honest model selection: validation queries held out of train.txt, searched among
            # the remaining training images; the network never trains on them.
            keep, held_out = split_validation(len(self.train_set), cfg["dataset"]["val_fraction"], t["seed"])
            plain = build_split(cfg, lists["train"], train=False)
            self.val_loaders = tuple(
                build_dataloader(SubsetView(plain, idx), eval_batch, shuffle=False, drop_last=False,
                                 num_workers=workers, seed=t["seed"], **shard) for idx in (held_out, keep))
            self.num_train_list = len(self.train_set)
            self.train_set = SubsetView(self.train_set, keep)

        paddle.seed(t["seed"])
        # heads with a classifier need the class count to train (without it they only encode)
        self.model = build_model(cfg, num_classes=None if cfg["eval_only"] else self.num_classes)
        tuned = apply_training_options(cfg, paddle.device.get_device().split(":")[0], self.model)
        if tuned:
            self.logger.info(f"CPU speed options: {', '.join(tuned)}")
        if cfg["model"]["backbone_weights"] and not cfg["eval_only"]:
            load_backbone_weights(self.model.backbone, cfg["model"]["backbone_weights"], self.logger)
        if cfg["pretrained"]:
            path = load_weights(self.model, cfg["pretrained"])
            self.logger.info(f"loaded weights {path}")

        if self.train_set is not None:
            self.train_loader = build_dataloader(self.train_set, t["batch_size"], shuffle=True, drop_last=True,
                                                 num_workers=workers, seed=t["seed"], **shard)
            # the memory is indexed by position in train.txt (held-out validation slots stay empty)
            num_train = getattr(self, "num_train_list", len(self.train_set))
            self.criterion = build_loss(cfg, num_train=num_train, num_classes=self.num_classes,
                                        comm=self.comm, train_labels=self.train_set.labels)
            # gradients are averaged over ranks by DataParallel; the parameters stay those of self.model
            self.train_model = paddle.DataParallel(self.model) if world_size > 1 else self.model
            self.optimizer, self.scheduler = build_optimizer(cfg, self.model.parameters(), world_size)

    # -- evaluation -------------------------------------------------------------------------
    def _retrieval(self, query_loader, db_loader, what):
        show = self.rank == 0
        q_codes, q_labels = encode(self.model, query_loader, f"encode {what} queries", show, self.comm)
        db_codes, db_labels = encode(self.model, db_loader, f"encode {what} database", show, self.comm)
        if what == "test":
            self.last_codes = (q_codes, db_codes, q_labels, db_labels)  # for the optional plots
        return (mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk=self.topk),
                precision_within_radius(q_codes, db_codes, q_labels, db_labels, radius=2))

    def _average_batchnorm_statistics(self):
        """Ranks collect BatchNorm running statistics from their own batches; average them so the
        sharded evaluation and the weights rank 0 saves use the same statistics."""
        if not self.comm.active:
            return
        with paddle.no_grad():
            for name, tensor in self.model.state_dict().items():
                if name.endswith(("._mean", "._variance")):
                    tensor.set_value(self.comm.sum(tensor) / self.world_size)

    def evaluate(self):
        """Query-set metrics, plus the validation mAP when a validation split picks the best epoch."""
        start = time.time()
        result = dict(zip(("map", "precision_r2"), self._retrieval(self.query_loader, self.db_loader, "test")))
        result["codes"] = code_statistics(self.last_codes[0])  # of the queries: collapse shows here first
        result["collapsed"] = codes_collapsed(result["codes"], self.bit, self.num_classes)
        result["select"] = result["map"]
        if self.val_loaders is not None:
            result["val_map"], _ = self._retrieval(*self.val_loaders, "validation")
            result["select"] = result["val_map"]
        result["seconds"] = time.time() - start
        return result

    def _log_eval(self, tag, result):
        val = f"  validation mAP@{topk_label(self.topk)}: {result['val_map']:.4f}" if "val_map" in result else ""
        codes = result["codes"]
        n = round(codes["distinct"] / codes["distinct_share"])
        self.logger.info(f"[{tag}] mAP@{topk_label(self.topk)}: {result['map']:.4f}  "
                         f"precision@r2: {result['precision_r2']:.4f}{val}  codes: {codes['distinct']}/{n} distinct, "
                         f"{codes['constant_bits']} constant bits, bit balance {codes['bit_balance']:.2f}  "
                         f"({result['seconds']:.1f}s)")
        if result["collapsed"] and tag != "untrained":
            self._warn(f"[{tag}] the codes collapsed: {codes['distinct']} distinct codes for {n} queries, "
                       f"{codes['constant_bits']} of {self.bit} bits constant (lower --lr, or see docs/methods.md)")

    # -- run health: collapse, divergence, no better than untrained -----------------------------
    def _warn(self, text):
        """One warning line now, repeated in the final report."""
        self.logger.warning(text)
        self.warnings.append(text)

    def _check_loss_trend(self, epoch, losses):
        """Warn once per streak when the epoch loss rose train.loss_rise_epochs epochs in a row."""
        n = self.cfg["train"]["loss_rise_epochs"]
        rising = n > 0 and len(losses) > n and all(b > a + 1e-4 * abs(a) for a, b in zip(losses[-n - 1:-1], losses[-n:]))
        if rising and not self._rise_warned:
            self._warn(f"[epoch {epoch + 1}] the loss rose {n} epochs in a row ({losses[-n - 1]:.4f} -> "
                       f"{losses[-1]:.4f}): the run is diverging or its codes are collapsing (lower --lr)")
        self._rise_warned = rising

    def _recipe_notes(self):
        """One line each: the recipe expects ImageNet weights that were not given; or the data set
        has no config of its own and the scratch recipe was picked."""
        cfg, m = self.cfg, self.cfg["model"]
        if m["needs_backbone_weights"] and not m["backbone_weights"] and not cfg["pretrained"] and not cfg["resume"]:
            self._warn(f"{display_path(cfg['config_file']) if cfg.get('config_file') else 'this config'} is a "
                       f"fine-tuning recipe: it expects ImageNet weights (--pretrained-backbone PATH or imagenet); "
                       f"to train from scratch use -c {display_path(SCRATCH_CONFIG)}")
        elif cfg.get("config_file") == SCRATCH_CONFIG and default_config_path(cfg["dataset"]["name"]) is None:
            self.logger.info(f"data set {cfg['dataset']['name']!r} has no config of its own and no "
                             f"--pretrained-backbone was given: training with the from-scratch recipe "
                             f"{display_path(SCRATCH_CONFIG)} (pass -c to choose another)")

    # -- training ---------------------------------------------------------------------------
    def _prefix(self, kind):
        return os.path.join(self.out, f"model_{kind}_{self.bit}")

    def _save(self, kind, epoch, best, history, writer):
        """Checkpoint `kind` with the config that describes it (config_<K>.yaml, part of the same
        generation, never written before there are weights); then the log and curves follow."""
        config = {os.path.join(self.out, f"config_{self.bit}.yaml"): config_yaml(self.cfg).encode("utf-8")}
        save_checkpoint(self._prefix(kind), self.model, self._state(epoch, best, history),
                        release=kind == "best", files=config)  # best: + model_best_<K>.safetensors
        open_log_files(self.logger)
        writer.open()

    def _state(self, epoch, best, history):
        return {"optimizer": optimizer_state(self.model, self.optimizer), "scheduler": self.scheduler.state_dict(),
                "loss": self.criterion.state_dict(), "epoch": epoch, "best": best, "history": history,
                "bit": self.bit, "backbone": self.cfg["model"]["backbone"]}

    def _resume(self, prefix):
        state, prefix = load_checkpoint(self.model, prefix, self.logger)  # falls back to PREFIX.prev if corrupt
        if state.get("bit") != self.bit:
            raise UserError(f"--resume {prefix}: checkpoint is for {state.get('bit')} bits, --bit is {self.bit}")
        set_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.scheduler.set_state_dict(state["scheduler"])
        self.criterion.set_state_dict(state["loss"])
        self.logger.info(f"resumed from {prefix} after epoch {state['epoch'] + 1}")
        best = state["best"]
        best.setdefault("select", best["map"])
        return state["epoch"] + 1, best, state["history"]

    def _beta_text(self):
        """' beta 1.414' for losses with a continuation parameter, '' for the others."""
        beta = self.criterion.beta
        return "" if beta is None else f" beta {beta:.3f}"

    def _train_epoch(self, epoch, writer):
        t = self.cfg["train"]
        seed = t["seed"] * 100003 + epoch
        paddle.seed(seed)  # dropout masks of this epoch
        self.train_loader.batch_sampler.set_epoch(epoch)  # data order and (through the dataset) augmentation
        self.criterion.on_epoch_start(epoch)
        self.model.train()
        steps = len(self.train_loader)
        losses, seen, start = [], 0, time.time()
        bar = tqdm(self.train_loader, total=steps, desc=f"epoch {epoch + 1}/{t['epochs']}", leave=False,
                   disable=None if self.rank == 0 else True)
        for step, (images, labels, indices) in enumerate(bar):
            self.criterion.on_step(epoch * steps + step)
            # each rank's loss is its share of the global loss; DataParallel averages gradients,
            # so scaling by the world size makes the update that of the global loss
            loss = train_step(self.train_model, self.criterion, self.optimizer, images, labels, indices,
                              self.world_size if self.comm.active else 1)
            value = float(self.comm.sum(loss.detach()))
            if not np.isfinite(value):
                raise UserError(f"loss became {value} at epoch {epoch + 1} step {step + 1}; lower --lr")
            losses.append(value)
            seen += images.shape[0]
            writer.add("train/loss", value, epoch * steps + step)
            bar.set_postfix(loss=f"{value:.4f}")
            if (step + 1) % t["log_every"] == 0:
                self.logger.info(f"epoch {epoch + 1} step {step + 1}/{steps} loss {value:.6f} "
                                 f"lr {self.optimizer.get_lr():.2e}{self._beta_text()}")
        seconds = time.time() - start
        writer.add("train/lr", self.optimizer.get_lr(), epoch)
        writer.add("train/epoch_loss", float(np.mean(losses)), epoch)
        self.logger.info(f"epoch {epoch + 1}/{t['epochs']} loss {np.mean(losses):.4f} "
                         f"lr {self.optimizer.get_lr():.2e}{self._beta_text()} "
                         f"{seen * self.world_size / seconds:.1f} img/s ({seconds:.1f}s)")
        self.scheduler.step()
        return float(np.mean(losses))

    def train(self):
        cfg, t = self.cfg, self.cfg["train"]
        self.logger.info(f"data: {len(self.train_set)} train, {len(self.query_set)} query, "
                         f"{len(self.db_set)} database images, {self.num_classes} labels; "
                         f"{self.bit} bits, {t['epochs']} epochs, batch {t['batch_size']} x {self.world_size}")
        if self.val_loaders is not None:
            self.logger.info(f"model selection: best epoch by validation mAP ({len(self.val_loaders[0].dataset)} "
                             f"images held out of {lists_name(cfg)}, searched among the other "
                             f"{len(self.val_loaders[1].dataset)})")
        else:
            self.logger.info("model selection: best epoch by query-set mAP (as published reproductions report; "
                             "set dataset.val_fraction for a held-out validation split)")
        self.warnings, self._rise_warned, losses, untrained_weights = [], False, [], None
        self._recipe_notes()
        start_epoch, best, history = 0, {"map": -1.0, "select": -1.0, "epoch": 0}, {}
        if cfg["resume"]:
            start_epoch, best, history = self._resume(cfg["resume"])
        elif t["eval_untrained"]:
            result = self.evaluate()
            history["untrained"] = result["map"]
            self._log_eval("untrained", result)
            # the untrained network is a candidate of model selection: kept (in memory, so that a
            # failed run leaves the output folder as it was) until an epoch beats it
            best = {"map": result["map"], "select": result["select"], "precision_r2": result["precision_r2"],
                    "epoch": 0}
            self.best_codes = self.last_codes
            untrained_weights = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}

        writer = ScalarWriter(os.path.join(self.out, f"vdl_{self.bit}") if self.rank == 0 else None, deferred=True)
        try:
            self.epoch_seconds = []  # training time of each epoch of this run (no evaluation), for the report
            for epoch in range(start_epoch, t["epochs"]):
                epoch_start = time.time()
                losses.append(self._train_epoch(epoch, writer))
                self.epoch_seconds.append(time.time() - epoch_start)
                self._check_loss_trend(epoch, losses)
                self._average_batchnorm_statistics()  # before evaluating and checkpointing
                last = epoch + 1 == t["epochs"]
                if (epoch + 1) % t["eval_every"] == 0 or last:
                    result = self.evaluate()
                    self._log_eval(f"epoch {epoch + 1}", result)
                    writer.add("eval/map", result["map"], epoch + 1)
                    writer.add("eval/precision_r2", result["precision_r2"], epoch + 1)
                    history["last"] = result["map"]
                    if result["select"] > history.get("best_trained", {}).get("select", -1.0):
                        history["best_trained"] = {"map": result["map"], "select": result["select"], "epoch": epoch + 1}
                    if result["select"] > best["select"]:
                        best = {"map": result["map"], "select": result["select"],
                                "precision_r2": result["precision_r2"], "epoch": epoch + 1}
                        self.best_codes = self.last_codes
                        if self.rank == 0:
                            self._save("best", epoch, best, history, writer)
                if self.rank == 0:
                    self._save("last", epoch, best, history, writer)
            self.untrained_is_best = best["epoch"] == 0 and "best_trained" in history
            if self.untrained_is_best and untrained_weights is not None:
                # no epoch beat the untrained network: it is the best model, under the best name
                self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in untrained_weights.items()})
                if self.rank == 0:
                    self._save("best", -1, best, history, writer)
        finally:
            writer.close()
        if self.comm.active:
            self._check_ranks_agree()
        return self._report(best, history)

    def _check_ranks_agree(self):
        """Every rank must end with the same weights (BatchNorm statistics averaged at the last
        evaluation included) and the same loss memory; say so, or fail loudly."""
        tensors = list(self.model.state_dict().values())
        tensors += list(self.criterion.buffers())  # the loss's memory, centers, ... (none for batch-only losses)
        checksum = np.array([[float(np.abs(t.numpy().astype(np.float64)).sum()) for t in tensors]])
        every = self.comm.gather_numpy(checksum)
        if not (every == every[0]).all():
            raise RuntimeError(f"ranks disagree on the weights or the loss memory after training: {every.sum(axis=1)}")
        self.logger.info(f"all {self.world_size} ranks hold identical weights and loss memory "
                         f"(checksum {every[0].sum():.6f})")

    def _report(self, best, history):
        label = topk_label(self.topk)
        trained = history.get("best_trained")
        if trained is None:  # no evaluated training epoch (--epoch 0): report the untrained network
            return {"map": history.get("untrained", float("nan")), "best_epoch": 0, "history": history,
                    "precision_r2": best.get("precision_r2"), "epoch_seconds": self.epoch_seconds,
                    "warnings": self.warnings}
        if best["epoch"] == 0:
            kept = (f"{self._prefix('best')} holds the UNTRAINED weights" if os.path.exists(self._prefix("best") + ".pdparams")
                    else "the untrained weights were not kept (resumed run): no model_best was written")
            self._warn(f"no trained epoch beat the untrained network: untrained mAP@{label} "
                       f"{history.get('untrained', float('nan')):.4f}, best trained (epoch {trained['epoch']}) "
                       f"{trained['map']:.4f}; {kept} (check the recipe, --lr, and the warnings above)")
        elif "untrained" in history:
            self.logger.info(f"untrained network mAP@{label}: {history['untrained']:.4f}  ->  "
                             f"trained (best, epoch {best['epoch']}): {best['map']:.4f}")
        if self.warnings:
            self.logger.warning(f"this run has {len(self.warnings)} warning(s):")
            for text in self.warnings:
                self.logger.warning(f"  {text}")
        self.logger.info(f"best weights: {self._prefix('best')}.pdparams"
                         + (" (the untrained network)" if best["epoch"] == 0 else f" (epoch {best['epoch']})"))
        return {"map": best["map"], "best_epoch": best["epoch"], "history": history,
                "precision_r2": best.get("precision_r2"), "epoch_seconds": self.epoch_seconds,
                "warnings": self.warnings}

    def _plots(self, codes, what):
        from utils.evaluation.plots import save_retrieval_plots

        paths, _, at_n = save_retrieval_plots(*codes, self.out, self.bit)
        self.logger.info(f"plots of the {what} model: {', '.join(paths)}; precision@N "
                         + " ".join(f"{n}:{p:.3f}" for n, p in at_n.items()))

    def run(self):
        """Train (or just evaluate with --eval) and end with the `mAP@<topK>: <value>` line."""
        if self.cfg["eval_only"]:  # with --pretrained: config validation checked the pair
            result = self.evaluate()
            self._log_eval("eval", result)
            value = result["map"]
            codes = self.last_codes
        else:
            value = self.train()["map"]
            codes = getattr(self, "best_codes", None)
        if self.cfg["plots"] and self.rank == 0 and codes is not None:
            self._plots(codes, "evaluated" if self.cfg["eval_only"] else "best")
        if self.rank == 0:
            open_log_files(self.logger)  # the run succeeded: its log is written (with --eval: only now)
            summary = bad_image_summary(self.train_set, self.query_set, self.db_set)  # --skip-bad-images
            if summary:
                self.logger.warning(summary)
            print(f"mAP@{topk_label(self.topk)}: {value:.4f}", flush=True)
        return value
