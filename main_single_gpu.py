"""Train (or evaluate) HashNet on one device: with no flag, the main job (64 bits on the generated lite
data set, ./output). README "Flags and configs" lists the config keys; -o sets any of them."""
from utils.cli.flags import config_from_args, train_parser
from utils.cli import exit_on_user_error
from utils.runtime import configure


@exit_on_user_error
def main(argv=None):
    configure()
    cfg = config_from_args(train_parser(__doc__).parse_args(argv))
    from utils.training.engine import Engine
    from utils.runtime.device import setup_device
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    setup_device(cfg["device"], cfg["threads"])
    Engine(cfg).run()


if __name__ == "__main__":
    main()
