"""The library's errors: ordinary ValueError / ImportError / RuntimeError subclasses that also
derive from UserError, the one class the command-line layer (utils.cli.exit_on_user_error) turns
into a single `error: ...` line and a non-zero exit. Library code raises them and prints nothing;
anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user (a flag, a config value, a file, a list line): the CLI prints its
    message as one line. Library code raises one of the subclasses below."""


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
        reason = (cause.strerror or type(cause).__name__) if isinstance(cause, OSError) else str(cause)
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.cause = path, cause
