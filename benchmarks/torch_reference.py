"""The same AlexNet-HashNet training step in PyTorch eager, as the yardstick of train_speed.py.

Same layers and shapes as models/alexnet.py + models/hashnet.py, the same pairwise
log-likelihood with a memory of training codes (balanced weights), SGD momentum 0.9 with weight
decay and the hash layer at 10x lr. Only used for timing: nothing in the project imports torch.
"""
import torch
from torch import nn


def _conv(cin, cout, kernel, stride, padding, batch_norm):
    layers = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.ReLU(inplace=True)]


class TorchAlexNetHashNet(nn.Module):
    def __init__(self, bit=64, fc_dim=4096, dropout=0.5, batch_norm=False):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2)  # noqa: E731
        self.features = nn.Sequential(
            *_conv(3, 64, 11, 4, 2, batch_norm), pool(),
            *_conv(64, 192, 5, 1, 2, batch_norm), pool(),
            *_conv(192, 384, 3, 1, 1, batch_norm),
            *_conv(384, 256, 3, 1, 1, batch_norm),
            *_conv(256, 256, 3, 1, 1, batch_norm), pool(),
            nn.AdaptiveAvgPool2d((6, 6)))
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(256 * 36, fc_dim), nn.ReLU(inplace=True),
                                nn.Dropout(dropout), nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True))
        self.hash_layer = nn.Linear(fc_dim, bit)

    def forward(self, x):
        return self.hash_layer(self.fc(torch.flatten(self.features(x), 1)))


class TorchHashNetLoss(nn.Module):
    def __init__(self, num_train, bit, num_classes, alpha=0.1):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("codes", torch.zeros(num_train, bit))
        self.register_buffer("labels", torch.zeros(num_train, num_classes))
        self.register_buffer("filled", torch.zeros(num_train))

    def forward(self, z, labels, indices, beta=1.0):
        h = torch.tanh(beta * z)
        with torch.no_grad():
            self.codes[indices] = h.detach()
            self.labels[indices] = labels
            self.filled[indices] = 1
        similar = (labels @ self.labels.t() > 0).float()
        valid = self.filled.unsqueeze(0).expand_as(similar)
        theta = self.alpha * h @ self.codes.t()
        nll = torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - similar * theta
        s1, s0 = (similar * valid).sum(), ((1 - similar) * valid).sum()
        total = s1 + s0
        weights = (similar * total / s1.clamp(min=1) + (1 - similar) * total / s0.clamp(min=1)) * valid
        return (nll * weights).sum() / total


def build_torch_step(bit, fc_dim, dropout, batch_norm, num_train, num_classes, lr, momentum, weight_decay,
                     hash_lr_mult, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TorchAlexNetHashNet(bit, fc_dim, dropout, batch_norm).train()
    loss_fn = TorchHashNetLoss(num_train, bit, num_classes)
    head = list(model.hash_layer.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("hash_layer.")]
    optimizer = torch.optim.SGD([{"params": rest}, {"params": head, "lr": lr * hash_lr_mult}], lr=lr,
                                momentum=momentum, weight_decay=weight_decay)

    def step(images, labels, indices):
        loss = loss_fn(model(images), labels, indices)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step, lambda a: torch.from_numpy(a)
