"""Data-parallel HashNet training on several processes/devices (same flags as main_single_gpu.py).

Start it with paddle's launcher (one process per device; gloo on CPU, NCCL on GPU):
    python -m paddle.distributed.launch --nproc_per_node 2 main_multi_gpu.py ...   # CPU processes
    python -m paddle.distributed.launch --gpus 0,1 main_multi_gpu.py ...           # GPUs
    python -m paddle.distributed.launch --ips IP1,IP2 --gpus 0,1 main_multi_gpu.py ...  # 2 machines
or let it start N processes itself: python main_multi_gpu.py --nprocs 2 ...
The batch size is per process; the learning rate scales with the global batch.
"""
import os

from utils.cli import exit_on_user_error
from utils.cli.flags import config_from_args, train_parser
from utils.errors import ConfigError
from utils.runtime import configure


# the block paddle's init_parallel_env prints about the flags that differ from their defaults
MODIFIED_FLAGS_REPORT = r"^(=+ Modified FLAGS detected =+|FLAGS\(name='\w+', current_value=.*|=+)$"


def worker(cfg):
    configure()  # a spawned process starts fresh (the launcher's run main() instead)
    import paddle.distributed as dist

    from utils.training.engine import Engine
    from utils.runtime.device import resolve_device, setup_device
    from utils.runtime.log import native_stderr_without, quiet_library_logging

    quiet_library_logging()
    device = resolve_device(cfg["device"])
    local = int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1")))
    setup_device(device, cfg["threads"], local_processes=local,
                 device_id=dist.ParallelEnv().device_id if device == "gpu" else None)
    with native_stderr_without(MODIFIED_FLAGS_REPORT):  # paddle lists the flags it changed itself, every process
        dist.init_parallel_env()
    Engine(cfg, rank=dist.get_rank(), world_size=dist.get_world_size()).run()


@exit_on_user_error
def main(argv=None):
    configure()
    parser = train_parser(__doc__)
    parser.add_argument("--nprocs", type=int, default=None,
                        help="start this many processes with paddle.distributed.spawn (instead of the launcher)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.nprocs is not None:
        if args.nprocs < 1:
            raise ConfigError(f"--nprocs must be >= 1, got {args.nprocs}")
        from utils.cli.spawn import spawn_training

        os.environ["PADDLE_LOCAL_SIZE"] = str(args.nprocs)
        spawn_training(worker, cfg, args.nprocs, "gloo" if cfg["device"] == "cpu" else "auto")
    else:
        worker(cfg)


if __name__ == "__main__":
    main()
