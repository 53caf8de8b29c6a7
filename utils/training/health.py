"""Run health: the warnings a run gives while it trains (a rising loss, collapsed codes, a recipe
used without what it expects), each said once when it happens and again in the final report."""
from utils.config import SCRATCH_CONFIG
from utils.storage.fileio import display_path


class RunHealth:
    def __init__(self, logger, loss_rise_epochs=3):
        self.logger = logger
        self.loss_rise_epochs = loss_rise_epochs
        self.warnings = []  # collapse, divergence, recipe: repeated in the final report
        self._rise_warned = False

    def warn(self, text):
        """One warning line now, repeated in the final report."""
        self.logger.warning(text)
        self.warnings.append(text)

    def check_loss_trend(self, epoch, losses):
        """Warn once per streak when the epoch loss rose loss_rise_epochs epochs in a row (0: never)."""
        n = self.loss_rise_epochs
        rising = n > 0 and len(losses) > n and all(b > a + 1e-4 * abs(a) for a, b in zip(losses[-n - 1:-1], losses[-n:]))
        if rising and not self._rise_warned:
            self.warn(f"[epoch {epoch + 1}] the loss rose {n} epochs in a row ({losses[-n - 1]:.4f} -> "
                      f"{losses[-1]:.4f}): the run is diverging or its codes are collapsing (lower --lr)")
        self._rise_warned = rising

    def check_codes(self, tag, codes, bit, collapsed):
        if collapsed and tag != "untrained":
            n = round(codes["distinct"] / codes["distinct_share"])
            self.warn(f"[{tag}] the codes collapsed: {codes['distinct']} distinct codes for {n} queries, "
                      f"{codes['constant_bits']} of {bit} bits constant (lower --lr, or see docs/methods.md)")

    def recipe_notes(self, cfg):
        """One line each: the recipe expects ImageNet weights that were not given; or no -c was given
        and the data set has no config of its own, so a recipe was picked (the scratch recipe, or the
        default unsupervised method for lists without labels): which and why."""
        m = cfg["model"]
        if m["needs_backbone_weights"] and not m["backbone_weights"] and not cfg["pretrained"] and not cfg["resume"]:
            self.warn(f"{display_path(cfg['config_file']) if cfg.get('config_file') else 'this config'} is a "
                      f"fine-tuning recipe: it expects ImageNet weights (--pretrained-backbone PATH or imagenet); "
                      f"to train from scratch use -c {display_path(SCRATCH_CONFIG)}")
        elif cfg.get("config_choice"):  # no -c: build_config picked the recipe (scratch, unsupervised) and why
            self.logger.info(cfg["config_choice"])

    def report(self):
        if self.warnings:
            self.logger.warning(f"this run has {len(self.warnings)} warning(s):")
            for text in self.warnings:
                self.logger.warning(f"  {text}")
