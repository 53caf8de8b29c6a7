"""The command-line layer: flags shared by the entry points (utils.cli.flags) and the one place
where library errors become a single `error: ...` line."""
import functools
import signal
import sys

from utils.errors import UserError


def exit_on_user_error(main):
    """Wrap an entry point so a UserError (every library error class in utils.errors) ends as one
    `error: ...` line with exit 2 (an utils.errors.Interrupted: 130 / 143), Ctrl-C as
    `error: interrupted` with exit 130 and SIGTERM (utils.runtime.signals) as one line with exit 143."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (utils.runtime.signals.Terminated)
            signum = getattr(exc, "signum", signal.SIGINT)
            print("error: terminated (SIGTERM)" if signum == signal.SIGTERM else "error: interrupted", file=sys.stderr)
            sys.exit(128 + int(signum))
        except OSError as exc:
            if "KeyboardInterrupt" not in str(exc):  # Ctrl-C inside Paddle's C++ comes out as an OSError
                raise
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
