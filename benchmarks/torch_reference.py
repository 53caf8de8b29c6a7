"""The same AlexNet-HashNet training step in PyTorch eager, as the yardstick of train_speed.py.

    python -m benchmarks.torch_reference [--batch-size 32] [--steps 8] [--threads 2]   # alone
    python -m benchmarks.torch_reference --amp bf16          # forward under torch.autocast('cpu', bfloat16)
    python -m benchmarks.torch_reference --infer --batch-size 16 --amp bf16   # inference ms/image (bench_speed.py)

Same layers and shapes as models/alexnet.py + models/hashnet.py, the same pairwise
log-likelihood with a memory of training codes (balanced weights), SGD momentum 0.9 with weight
decay and the hash layer at 10x lr; the defaults are the COCO recipe's (AlexNet, 224x224, 64
bits). With --amp bf16 the network runs under torch.autocast('cpu', dtype=torch.bfloat16) except
the hash layer and the loss, kept in fp32 (as the project's train.amp). Run alone it prints its
own timing; train_speed.py and bench_speed.py start it the same way (one process, nothing else
alive) with --json. It imports torch, numpy and the standard library only: never
paddle or the project. Only used for timing: nothing in the project imports torch.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.torch_reference [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import statistics


import torch
from torch import nn

from benchmarks.harness import fixed_inputs, time_steps
from benchmarks.machine import machine_line


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

    def forward(self, x, amp=None):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
            features = self.fc(torch.flatten(self.features(x), 1))
        return self.hash_layer(features.float())  # the code layer in fp32


class TorchHashNetLoss(nn.Module):
    def __init__(self, num_train, bit, num_classes, alpha):
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
                     hash_lr_mult, threads, alpha=0.1, amp=None):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TorchAlexNetHashNet(bit, fc_dim, dropout, batch_norm).train()
    loss_fn = TorchHashNetLoss(num_train, bit, num_classes, alpha)
    head = list(model.hash_layer.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("hash_layer.")]
    optimizer = torch.optim.SGD([{"params": rest}, {"params": head, "lr": lr * hash_lr_mult}], lr=lr,
                                momentum=momentum, weight_decay=weight_decay)

    def step(images, labels, indices):
        loss = loss_fn(model(images, amp), labels, indices)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def build_torch_infer(bit, fc_dim, batch_norm, threads, amp=None):
    """Eval-mode encoding (+-1 codes) of a batch, as Paddle Inference's export computes it."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TorchAlexNetHashNet(bit, fc_dim, 0.5, batch_norm).eval()

    def step(images, labels, indices):
        with torch.no_grad():
            return float((model(images, amp) >= 0).sum())

    return step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--steps", type=int, default=8, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and OMP_NUM_THREADS)")
    p.add_argument("--crop", type=int, default=224, help="input size")
    p.add_argument("--bit", type=int, default=64, help="code length")
    p.add_argument("--fc-dim", type=int, default=4096, help="width of fc6/fc7")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout before fc6/fc7")
    p.add_argument("--batch-norm", action="store_true", help="BatchNorm after each conv (the lite network)")
    p.add_argument("--num-train", type=int, default=10000, help="loss memory size")
    p.add_argument("--num-classes", type=int, default=80, help="labels per image vector")
    p.add_argument("--lr", type=float, default=0.001, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of the PyTorch step (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0005, help="SGD weight decay of the PyTorch step (default 0.0005)")
    p.add_argument("--hash-lr-mult", type=float, default=10.0, help="learning-rate multiplier of the hash layer")
    p.add_argument("--alpha", type=float, default=0.1, help="theta = alpha * <h_i, h_j>")
    p.add_argument("--amp", choices=["bf16"], default=None, help="bf16: torch.autocast('cpu', bfloat16)")
    p.add_argument("--infer", action="store_true", help="time eval-mode encoding instead of a training step")
    p.add_argument("--json", action="store_true", help="print the step times as one JSON line (train_speed.py)")
    args = p.parse_args(argv)
    for name in ("batch_size", "steps", "threads", "crop", "bit", "fc_dim", "num_train", "num_classes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.infer:
        step = build_torch_infer(args.bit, args.fc_dim, args.batch_norm, args.threads, args.amp)
    else:
        step = build_torch_step(args.bit, args.fc_dim, args.dropout, args.batch_norm, args.num_train,
                                args.num_classes, args.lr, args.momentum, args.weight_decay, args.hash_lr_mult,
                                args.threads, args.alpha, args.amp)
    inputs = [torch.from_numpy(a) for a in fixed_inputs(args.batch_size, args.crop, args.num_classes)]
    result = time_steps(step, inputs, args.warmup, args.steps)
    if args.json:
        print(json.dumps({**result, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
        return
    median = statistics.median(result["wall"])
    print(machine_line())
    what = ("inference" if args.infer else "training") + (" with bf16 autocast" if args.amp else "")
    print(f"PyTorch {torch.__version__} eager {what}, batch {args.batch_size}, {args.crop}x{args.crop}, {args.bit} bits, "
          f"{torch.get_num_threads()} threads: median step {median * 1000:.1f} ms, "
          f"{args.batch_size / median:.1f} img/s, cpu {statistics.median(result['cpu']):.2f} s/step")


if __name__ == "__main__":
    main()
