"""User-facing errors: one line, names the culprit, non-zero exit, no traceback."""
import functools
import sys


class UserError(Exception):
    """Bad input from the user (a file, a list line, a flag). Printed as one line."""


class WriteError(UserError):
    """A file could not be written (disk full, file size limit, quota, read-only folder): names the
    file and the cause. Raised only after the temp file was removed, so nothing half-written is left."""

    def __init__(self, path, cause):
        reason = (cause.strerror or type(cause).__name__) if isinstance(cause, OSError) else str(cause)
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.cause = path, cause


def exit_on_user_error(main):
    """Wrap an entry point so UserError (and a few OS errors) end as `error: ...` with exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
