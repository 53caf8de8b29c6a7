"""The library's errors: ordinary ValueError / ImportError / RuntimeError subclasses that also
derive from UserError, the one class the command-line layer (utils.cli.exit_on_user_error) turns
into a single `error: ...` line and a non-zero exit. Library code raises them and prints nothing;
anything else that escapes is a bug and keeps its traceback.

Messages stay one readable line whatever the input: `quote` shows at most QUOTE_LIMIT characters
of an offending value (bounded work too: a value built from YAML aliases can be huge), and a
UserError's text is cut to MESSAGE_LIMIT characters with its line breaks removed.
"""
import reprlib

QUOTE_LIMIT = 200
MESSAGE_LIMIT = 1000


class _BoundedRepr(reprlib.Repr):
    def repr_int(self, x, level):
        if x.bit_length() > 3000:  # repr() of a huge int is slow, and refused past 4300 digits
            return f"<an integer of about {int(x.bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


def _quoter(limit):
    r = _BoundedRepr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 4, limit, limit, 40
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 8
    return r


def quote(value, limit=QUOTE_LIMIT):
    """repr(value) for an error message, at most `limit` characters (and bounded work: nested
    containers are shown to a few levels and items, long strings and numbers are cut)."""
    text = _quoter(limit).repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(text, limit=MESSAGE_LIMIT):
    """text without line breaks, cut in the middle to at most about `limit` characters."""
    text = " ".join(str(text).splitlines())
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} ...[{len(text) - 2 * keep} characters cut]... {text[-keep:]}"


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a file, a list line): the CLI prints its
    message as one line. Library code raises one of the subclasses below."""

    exit_code = 2  # what utils.cli.exit_on_user_error exits with

    def __str__(self):
        return one_line(super().__str__())


class ConfigError(UserError, ValueError):
    """A config key or value, or a command-line flag, that cannot be used."""


class DataError(UserError, ValueError):
    """A list file, an image, a data folder or a data set that cannot be read or used."""


class CodeFormatError(UserError, ValueError):
    """Codes, labels or search arguments (k, radius, topK) in a form retrieval and metrics cannot take."""


class RetrievalError(UserError, ValueError):
    """An index backend or index file that cannot be used (unknown backend, server failure, bad file)."""


class WeightsError(UserError, ValueError):
    """A weights, checkpoint or exported-model file that is missing, corrupt or for another model."""


class DependencyError(UserError, ImportError):
    """An optional package that this use needs is not installed (faiss-cpu, pymilvus)."""


class DeviceError(UserError, RuntimeError):
    """The device asked for is not available in this PaddlePaddle build or machine."""


class TrainingError(UserError, RuntimeError):
    """A training run that cannot go on (the loss became inf or nan)."""


class WriteError(UserError):
    """A file could not be written (disk full, file size limit, quota, read-only folder): names the
    file and the cause. Raised only after the temp file was removed, so nothing half-written is left.
    Not an OSError on purpose: the atomic-write code turns OSErrors into WriteErrors, and must not
    wrap its own error a second time."""

    def __init__(self, path, cause):
        reason = (cause.strerror or str(cause) or type(cause).__name__) if isinstance(cause, OSError) else str(cause)
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.cause = path, cause


class Interrupted(UserError):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM at a safe point; exits 128 + the signal number
    (130, 143), as a shell reports a process that signal ended."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)
