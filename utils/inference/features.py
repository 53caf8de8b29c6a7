"""A network's backbone features, and the unsupervised baselines (utils.evaluation.baselines) fitted
on them: the LSH/ITQ floor of a results table, on the same features as the trained model."""
import numpy as np
import paddle

from utils.errors import ConfigError
from utils.evaluation.baselines import BASELINES


@paddle.no_grad()
def backbone_features(model, loader):
    """Backbone features (eval mode) and labels of every item of a loader, in loader order."""
    was_training = model.training
    model.eval()
    features, labels = [], []
    for images, batch_labels, _ in loader:
        features.append(model.backbone(images).numpy().astype(np.float64))
        labels.append(batch_labels.numpy())
    if was_training:
        model.train()
    return np.concatenate(features), np.concatenate(labels)


def baseline_codes(name, model, train_loader, query_loader, db_loader, bit, seed=0):
    """Fit baseline `name` (lsh | itq) on the backbone features of train_loader's images (use an
    un-augmented loader) and encode the query and database sets with it.
    Returns (query_codes, db_codes, query_labels, db_labels), codes int8 +-1 [n, bit]."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    train_features, _ = backbone_features(model, train_loader)
    hasher = BASELINES[name](train_features, bit, seed=seed)
    q_features, q_labels = backbone_features(model, query_loader)
    db_features, db_labels = backbone_features(model, db_loader)
    return hasher.encode(q_features), hasher.encode(db_features), q_labels, db_labels
