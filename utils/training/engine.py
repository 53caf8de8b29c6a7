"""The one training engine behind main_single_gpu.py and main_multi_gpu.py.

It owns the loop (train, evaluate, checkpoint, resume); entry points only parse flags and
start processes. What a run is built from comes from utils.training.builders (data, network,
training parts, in that order); what changes while it trains is its RunState. Determinism: the
data order, the augmentations and the dropout masks of an epoch derive from (seed, epoch) alone,
so a run resumed from the checkpoint of epoch e ends with the same weights as one that was never
interrupted. SIGINT / SIGTERM stop a run after its current step (utils.training.interrupt): one
line saying where and how to resume, exit 130 / 143, the last checkpoint complete.

A method that learns without labels never sees them: its training set has no label columns, and
model selection keeps the latest evaluated epoch (no labels decide it); evaluation still reports
mAP when the query and database lists have labels, else code health. A shallow method (ITQ, PCAH,
LSH, spectral hashing) is fitted instead of trained (utils/training/shallow.py).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np
import paddle
from tqdm import tqdm

from utils.config import config_yaml
from utils.data.dataset import bad_image_summary
from utils.errors import ConfigError, Interrupted, TrainingError, WeightsError
from utils.losses import is_shallow, loss_class
from utils.runtime.distributed import Comm
from utils.runtime.log import ScalarWriter, open_log_files, setup_logger
from utils.storage.run_folder import RunFolder, weights_path
from utils.training.amp import amp_step, check_amp_device, keep_code_layer_fp32
from utils.training.builders import build_data, build_network, build_training, seed_everything
from utils.training.checkpoint import load_checkpoint, optimizer_state, save_checkpoint, set_optimizer_state
from utils.training.evaluate import eval_line, evaluate, health_text, save_plots, topk_label
from utils.training.folder_guard import check_replaceable, mark_finished, mark_unfinished
from utils.training.health import RunHealth
from utils.training.interrupt import StopOnSignal, signal_name, stop_requested


def train_step(model, criterion, optimizer, images, labels, indices, loss_scale=1):
    """One SGD step; benchmarks/train_speed.py times exactly this."""
    loss = criterion(model(images), labels, indices)
    (loss * loss_scale if loss_scale != 1 else loss).backward()
    optimizer.step()
    optimizer.clear_grad()
    return loss


@dataclasses.dataclass
class RunState:
    """What changes while a run trains (restored by --resume from the checkpoint's state)."""
    start_epoch: int = 0
    best: dict = dataclasses.field(default_factory=lambda: {"map": -1.0, "select": -1.0, "epoch": 0})
    history: dict = dataclasses.field(default_factory=dict)
    losses: list = dataclasses.field(default_factory=list)  # epoch losses of this process's epochs
    epoch_seconds: list = dataclasses.field(default_factory=list)  # training time of each epoch (no evaluation)
    last_codes: tuple | None = None  # (query codes, db codes, query labels, db labels) of the latest test evaluation
    best_codes: tuple | None = None  # the same, of the best model
    untrained_weights: dict | None = None  # a model-selection candidate, kept in memory until an epoch beats it


class Engine:
    """One run: Engine(cfg).run() trains (or with eval_only evaluates) and prints the last line.

    save_checkpoints=False: no weights, training state or config file is written (benchmarks and tests
    that only need the numbers; the log and the curves are still written). show_progress=False: no
    progress bars (the log says the same)."""

    def __init__(self, cfg: Any, rank: int = 0, world_size: int = 1, *, save_checkpoints: bool = True,
                 show_progress: bool = True) -> None:
        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        self.comm = Comm(rank, world_size)
        self.bit = cfg["model"]["bit"]
        self.folder = RunFolder(cfg["output_dir"])
        self.out = self.folder.path
        self.topk = cfg["dataset"]["topk"]
        self.shallow = is_shallow(cfg["loss"]["name"])
        self.label_free = not loss_class(cfg["loss"]["name"]).SUPERVISED  # model selection without labels
        if self.shallow and cfg["resume"]:
            raise ConfigError(f"--resume: loss {cfg['loss']['name']!r} is fitted in one pass, there is nothing to "
                              f"resume; run it again")
        self.save_checkpoints = save_checkpoints
        self.show_progress = show_progress and rank == 0
        if save_checkpoints and not cfg["eval_only"]:  # before anything is written: never replace another model
            check_replaceable(self.folder, cfg)
        os.makedirs(self.out, exist_ok=True)
        mode = "eval" if cfg["eval_only"] else "train"
        # the log file waits until the run has weights (or, with --eval, a result): a run that fails
        # before leaves the output folder as it was
        self.logger = setup_logger(self.out, filename=RunFolder.log_name(mode, self.bit), rank=rank, deferred=True)
        self.health = RunHealth(self.logger, cfg["train"]["loss_rise_epochs"])
        self.state = RunState()
        amp, device = cfg["train"]["amp"] and not cfg["eval_only"], paddle.device.get_device().split(":")[0]
        if amp:  # before the data: a run that cannot train says so at once
            check_amp_device(cfg["train"]["amp"], device, cfg["train"]["onednn_conv"])
        seed_everything(cfg["train"]["seed"])
        self.data = build_data(cfg, rank, world_size)
        self.model = build_network(cfg, self.data.num_classes, self.logger)
        self.parts: Any = None if cfg["eval_only"] else build_training(cfg, self.data, self.model, self.comm, world_size)
        self.step = train_step
        self._saved_last = False  # this run wrote the last checkpoint (what --resume continues from)
        if amp:
            step = amp_step(cfg["train"]["amp"], device)
            if step is not None:  # paddle.amp (GPU); bf16 on CPU: the plain step, bf16 convolutions
                self.step = step
                keep_code_layer_fp32(self.model)

    # what benchmarks and tests read of a run
    query_set = property(lambda self: self.data.query_set)
    db_set = property(lambda self: self.data.db_set)
    train_set = property(lambda self: self.data.train_set)
    query_loader = property(lambda self: self.data.query_loader)
    db_loader = property(lambda self: self.data.db_loader)
    best_codes = property(lambda self: self.state.best_codes)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Query-set metrics, plus the validation mAP when a validation split picks the best epoch."""
        result = evaluate(self.model, self.data, self.topk, self.bit, self.comm, show_progress=self.show_progress)
        self.state.last_codes = result["test_codes"]
        return result

    def _log_eval(self, tag, result):
        self.logger.info(eval_line(tag, result, self.topk))
        self.health.check_codes(tag, result["codes"], self.bit, result["collapsed"])

    def _average_batchnorm_statistics(self):
        """Ranks collect BatchNorm running statistics from their own batches; average them so the
        sharded evaluation and the weights rank 0 saves use the same statistics."""
        if not self.comm.active:
            return
        with paddle.no_grad():
            for name, tensor in self.model.state_dict().items():
                if name.endswith(("._mean", "._variance")):
                    tensor.set_value(self.comm.sum(tensor) / self.world_size)

    # -- checkpoints ------------------------------------------------------------------------
    def _prefix(self, kind):
        return self.folder.checkpoint(kind, self.bit)

    def _save(self, kind, epoch, writer):
        """Checkpoint `kind` with the config that describes it (config_<K>.yaml, part of the same
        generation, never written before there are weights); then the log and curves follow."""
        if self.save_checkpoints:
            save_checkpoint(self._prefix(kind), self.model, self._checkpoint_state(epoch),
                            release=kind == "best", files=self._config_file())  # best: + the released .safetensors
            mark_unfinished(self.folder, self.bit)  # these weights are this run's, not a finished run's
            self._saved_last = self._saved_last or kind == "last"
        open_log_files(self.logger)
        writer.open()

    def _checkpoint_state(self, epoch):
        p, s = self.parts, self.state
        return {"optimizer": optimizer_state(self.model, p.optimizer), "scheduler": p.scheduler.state_dict(),
                "loss": p.criterion.state_dict(), "epoch": epoch, "best": s.best, "history": s.history,
                "bit": self.bit, "backbone": self.cfg["model"]["backbone"]}

    def _resume(self, prefix):
        state, prefix = load_checkpoint(self.model, prefix, self.logger)  # falls back to PREFIX.prev if corrupt
        if state.get("bit") != self.bit:
            raise WeightsError(f"--resume {prefix}: checkpoint is for {state.get('bit')} bits, --bit is {self.bit}")
        set_optimizer_state(self.model, self.parts.optimizer, state["optimizer"])
        self.parts.scheduler.set_state_dict(state["scheduler"])
        self.parts.criterion.set_state_dict(state["loss"])
        self.logger.info(f"resumed from {prefix} after epoch {state['epoch'] + 1}")
        best = state["best"]
        best.setdefault("select", best["map"])
        self.state.start_epoch, self.state.best, self.state.history = state["epoch"] + 1, best, state["history"]

    # -- training ---------------------------------------------------------------------------
    def _beta_text(self):
        """' beta 1.414' for losses with a continuation parameter, '' for the others."""
        beta = self.parts.criterion.beta
        return "" if beta is None else f" beta {beta:.3f}"

    def _train_epoch(self, epoch, writer):
        t, p = self.cfg["train"], self.parts
        paddle.seed(t["seed"] * 100003 + epoch)  # dropout masks of this epoch
        self.data.train_loader.batch_sampler.set_epoch(epoch)  # data order and (through the dataset) augmentation
        p.criterion.on_epoch_start(epoch)
        self.model.train()
        steps = len(self.data.train_loader)
        losses, seen, start = [], 0, time.time()
        bar = tqdm(self.data.train_loader, total=steps, desc=f"epoch {epoch + 1}/{t['epochs']}", leave=False,
                   disable=None if self.show_progress else True)
        for step, (images, labels, indices) in enumerate(bar):
            p.criterion.on_step(epoch * steps + step)
            # each rank's loss is its share of the global loss; DataParallel averages gradients,
            # so scaling by the world size makes the update that of the global loss
            loss = self.step(p.train_model, p.criterion, p.optimizer, images, labels, indices,
                             self.world_size if self.comm.active else 1)
            value, stop = self._step_result(loss)
            if not np.isfinite(value):
                raise TrainingError(f"loss became {value} at epoch {epoch + 1} step {step + 1}; lower --lr")
            if stop is not None:
                raise Interrupted(f"interrupted at epoch {epoch + 1} step {step + 1}", stop)
            losses.append(value)
            seen += images.shape[0]
            writer.add("train/loss", value, epoch * steps + step)
            bar.set_postfix(loss=f"{value:.4f}")
            if (step + 1) % t["log_every"] == 0:
                self.logger.info(f"epoch {epoch + 1} step {step + 1}/{steps} loss {value:.6f} "
                                 f"lr {p.optimizer.get_lr():.2e}{self._beta_text()}")
        seconds = time.time() - start
        writer.add("train/lr", p.optimizer.get_lr(), epoch)
        writer.add("train/epoch_loss", float(np.mean(losses)), epoch)
        self.logger.info(f"epoch {epoch + 1}/{t['epochs']} loss {np.mean(losses):.4f} "
                         f"lr {p.optimizer.get_lr():.2e}{self._beta_text()} "
                         f"{seen * self.world_size / seconds:.1f} img/s ({seconds:.1f}s)")
        p.scheduler.step()
        return float(np.mean(losses))

    def _step_result(self, loss):
        """(the global loss of a step, the signal any rank was asked to stop with or None): one
        collective for both, so that every rank stops after the same step."""
        asked = stop_requested()
        if not self.comm.active:
            return float(loss), asked
        both = paddle.concat([loss.detach().astype("float32").reshape([1]),
                              paddle.to_tensor([0.0 if asked is None else 1.0], "float32")])
        total = self.comm.sum(both).numpy()
        return float(total[0]), (asked or 2) if total[1] > 0 else None  # 2: SIGINT, for a rank not signalled

    def _interrupted(self, exc, epoch):
        """The one line of a run stopped by a signal: where, and how to go on."""
        where = str(exc) if "epoch" in str(exc) else f"{exc} of epoch {epoch + 1}"
        if self._saved_last or self.cfg["resume"]:
            hint = f"resume with --resume {self._prefix('last') if self._saved_last else self.cfg['resume']}"
        else:
            hint = "no checkpoint was written yet (the first comes after epoch 1): start the run again"
        return Interrupted(f"{where} ({signal_name(exc.signum)}); {hint}", exc.signum)

    def _log_start(self):
        d, t = self.data, self.cfg["train"]
        self.logger.info(f"data: {len(d.train_set)} train, {len(d.query_set)} query, "
                         f"{len(d.db_set)} database images, {d.num_classes} labels; "
                         f"{self.bit} bits, {t['epochs']} epochs, batch {t['batch_size']} x {self.world_size}")
        if self.label_free:
            self.logger.info(f"model selection: the last evaluated epoch (loss {self.cfg['loss']['name']!r} learns "
                             f"without labels, so none pick the epoch)")
        elif d.val_loaders is not None:
            self.logger.info(f"model selection: best epoch by validation mAP ({len(d.val_loaders[0].dataset)} "
                             f"images held out of {d.train_list}, searched among the other "
                             f"{len(d.val_loaders[1].dataset)})")
        else:
            self.logger.info("model selection: best epoch by query-set mAP (as published reproductions report; "
                             "set dataset.val_fraction for a held-out validation split)")

    def _evaluate_untrained(self):
        """The untrained network is a candidate of model selection: kept (in memory, so that a failed
        run leaves the output folder as it was) until an epoch beats it (without labels any epoch does)."""
        result = self.evaluate()
        if self.label_free:
            result["select"] = 0.0
        s = self.state
        s.history["untrained"] = result["map"]
        self._log_eval("untrained", result)
        s.best = {"map": result["map"], "select": result["select"], "precision_r2": result["precision_r2"], "epoch": 0,
                  "codes": result["codes"]}
        s.best_codes = s.last_codes
        s.untrained_weights = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}

    def _evaluate_epoch(self, epoch, writer):
        result = self.evaluate()
        if self.label_free:  # no labels pick the epoch: the latest one is the model
            result["select"] = float(epoch + 1)
        s = self.state
        self._log_eval(f"epoch {epoch + 1}", result)
        for key in ("map", "precision_r2"):
            if result[key] is not None:
                writer.add(f"eval/{key}", result[key], epoch + 1)
        writer.add("eval/bit_balance", result["codes"]["bit_balance"], epoch + 1)
        s.history["last"] = result["map"]
        if result["select"] > s.history.get("best_trained", {}).get("select", -1.0):
            s.history["best_trained"] = {"map": result["map"], "select": result["select"], "epoch": epoch + 1}
        if result["select"] > s.best["select"]:
            s.best = {"map": result["map"], "select": result["select"], "precision_r2": result["precision_r2"],
                      "epoch": epoch + 1, "codes": result["codes"]}
            s.best_codes = s.last_codes
            if self.rank == 0:
                self._save("best", epoch, writer)

    def train(self) -> dict[str, Any]:
        if self.shallow:  # fitted, not trained (benchmarks and tests call train() for any method)
            return self.fit()
        cfg, t = self.cfg, self.cfg["train"]
        self._log_start()
        self.health, self.state = RunHealth(self.logger, t["loss_rise_epochs"]), RunState()
        self.health.recipe_notes(cfg)
        writer = ScalarWriter(self.folder.curves(self.bit) if self.rank == 0 else None, deferred=True)
        self._epoch = 0
        try:
            with StopOnSignal():  # SIGINT / SIGTERM: stop after the current step
                if cfg["resume"]:
                    self._resume(cfg["resume"])
                elif t["eval_untrained"]:
                    self._evaluate_untrained()
                self._train_epochs(writer)
        except Interrupted as exc:
            raise self._interrupted(exc, self._epoch) from None
        finally:
            writer.close()
        if self.comm.active:
            self._check_ranks_agree()
        return self._report()

    def _train_epochs(self, writer):
        s, t = self.state, self.cfg["train"]
        for epoch in range(s.start_epoch, t["epochs"]):
            self._epoch = epoch
            epoch_start = time.time()
            s.losses.append(self._train_epoch(epoch, writer))
            s.epoch_seconds.append(time.time() - epoch_start)
            self.health.check_loss_trend(epoch, s.losses)
            self._average_batchnorm_statistics()  # before evaluating and checkpointing
            if (epoch + 1) % t["eval_every"] == 0 or epoch + 1 == t["epochs"]:
                self._evaluate_epoch(epoch, writer)
            if self.rank == 0:
                self._save("last", epoch, writer)
        if s.best["epoch"] == 0 and "best_trained" in s.history and s.untrained_weights is not None:
            # no epoch beat the untrained network: it is the best model, under the best name
            self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in s.untrained_weights.items()})
            if self.rank == 0:
                self._save("best", -1, writer)

    def _check_ranks_agree(self):
        """Every rank must end with the same weights (BatchNorm statistics averaged at the last
        evaluation included) and the same loss memory; say so, or fail loudly."""
        tensors = list(self.model.state_dict().values())
        tensors += list(self.parts.criterion.buffers())  # the loss's memory, centers, ... (none for batch-only losses)
        checksum = np.array([[float(np.abs(t.numpy().astype(np.float64)).sum()) for t in tensors]])
        every = self.comm.gather_numpy(checksum)
        if not (every == every[0]).all():
            raise RuntimeError(f"ranks disagree on the weights or the loss memory after training: {every.sum(axis=1)}")
        self.logger.info(f"all {self.world_size} ranks hold identical weights and loss memory "
                         f"(checksum {every[0].sum():.6f})")

    def _report(self):
        label, best, history = topk_label(self.topk), self.state.best, self.state.history
        trained = history.get("best_trained")
        result = {"map": best["map"], "best_epoch": best["epoch"], "history": history,
                  "precision_r2": best.get("precision_r2"), "epoch_seconds": self.state.epoch_seconds,
                  "warnings": self.health.warnings}
        if trained is None:  # no evaluated training epoch (--epoch 0): report the untrained network
            return {**result, "map": history.get("untrained", float("nan")), "best_epoch": 0}
        if best["epoch"] == 0:
            kept = (f"{self._prefix('best')} holds the UNTRAINED weights" if os.path.exists(weights_path(self._prefix("best")))
                    else f"the untrained weights were not kept (resumed run): no {self._prefix('best')} was written")
            self.health.warn(f"no trained epoch beat the untrained network: untrained mAP@{label} "
                             f"{history.get('untrained', float('nan')):.4f}, best trained (epoch {trained['epoch']}) "
                             f"{trained['map']:.4f}; {kept} (check the recipe, --lr, and the warnings above)")
        elif best["map"] is None:  # no labels: what the codes look like
            self.logger.info(f"trained (epoch {best['epoch']}): {health_text(best['codes'])}")
        elif "untrained" in history:
            self.logger.info(f"untrained network mAP@{label}: {history['untrained']:.4f}  ->  "
                             f"trained (best, epoch {best['epoch']}): {best['map']:.4f}")
        self.health.report()
        self.logger.info(f"best weights: {weights_path(self._prefix('best'))}"
                         + (" (the untrained network)" if best["epoch"] == 0 else f" (epoch {best['epoch']})"))
        return result

    def fit(self) -> dict[str, Any]:
        """A shallow method: fitted instead of trained, evaluated and saved like a trained model."""
        from utils.training.shallow import fit_run

        return fit_run(self)

    def _config_file(self):
        return {self.folder.config(self.bit): config_yaml(self.cfg).encode("utf-8")}

    def run(self) -> float:
        """Train (or fit, or just evaluate with --eval) and end with the `mAP@<topK>: <value>` line (without
        labels: the code health line)."""
        if self.cfg["eval_only"]:  # with --pretrained: config validation checked the pair
            result = self.evaluate()
            self._log_eval("eval", result)
            value, codes, health = result["map"], self.state.last_codes, result["codes"]
        else:
            result = self.train()
            value, codes, health = result["map"], self.state.best_codes, self.state.best.get("codes")
            if self.rank == 0 and self.save_checkpoints and (self._saved_last or self.shallow):  # scripts/test_*.sh
                mark_finished(self.folder, self.cfg, result)
        if self.cfg["plots"] and self.rank == 0 and codes is not None and value is not None:
            save_plots(codes, "evaluated" if self.cfg["eval_only"] else "best", self.out, self.bit, self.logger)
        if self.rank == 0:
            open_log_files(self.logger)  # the run succeeded: its log is written (with --eval: only now)
            summary = bad_image_summary(self.data.train_set, self.data.query_set, self.data.db_set)  # --skip-bad-images
            if summary:
                self.logger.warning(summary)
            if value is None:
                print(f"no labels to compute mAP; {health_text(health)}", flush=True)
            else:
                print(f"mAP@{topk_label(self.topk)}: {value:.4f}", flush=True)
        return value
