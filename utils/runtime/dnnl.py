"""The oneDNN C API through ctypes: the libdnnl.so.3 that the paddle wheel ships (no compiler, no
headers). utils.runtime.onednn_conv builds its convolutions on this.

The enum values below are copied by hand from oneDNN's public headers (dnnl_types.h,
dnnl_common_types.h) of version WRITTEN_FOR; a C library reports nothing when they drift, so the
binding refuses any other major.minor at load time (library() then returns None and says so in one
log line, and training falls back to paddle's own conv2d).
"""
import ctypes
import logging
import os

import paddle

log = logging.getLogger(__name__)

# oneDNN major.minor whose headers the constants were copied from (paddle 3.3.1 ships 3.6.2)
WRITTEN_FOR = (3, 6)

# --- oneDNN v3 C API constants (values from oneDNN's public dnnl_types.h / dnnl_common_types.h).
SUCCESS = 0
ENGINE_CPU = 1
STREAM_IN_ORDER = 0x1
BF16, F32 = 2, 3  # dnnl_data_type_t
TAG_ANY, TAG_A, TAG_ABCD = 1, 2, 5
FORWARD_TRAINING = 64  # backward-data/-weights descriptors take no prop kind in v3
CONVOLUTION_DIRECT = 0x1
QUERY_SRC_MD, QUERY_DIFF_SRC_MD, QUERY_WEIGHTS_MD = 129, 130, 131
QUERY_DIFF_WEIGHTS_MD, QUERY_DST_MD, QUERY_DIFF_DST_MD = 132, 133, 134
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 17, 33, 41
ARG_DIFF_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS, ARG_DIFF_BIAS = 129, 145, 161, 169
ARG_FROM, ARG_TO = ARG_SRC, ARG_DST
MEMORY_ALLOCATE = ctypes.c_void_p(-1 & (2 ** (8 * ctypes.sizeof(ctypes.c_void_p)) - 1))
MAX_DIMS = 12

_Dims = ctypes.c_int64 * MAX_DIMS
_vp = ctypes.c_void_p


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _vp)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


# name -> argtypes; every function listed returns dnnl_status_t.
_STATUS_FUNCS = {
    "dnnl_engine_create": [ctypes.POINTER(_vp), ctypes.c_int, ctypes.c_size_t],
    "dnnl_stream_create": [ctypes.POINTER(_vp), _vp, ctypes.c_uint],
    "dnnl_stream_wait": [_vp],
    "dnnl_memory_desc_create_with_tag": [ctypes.POINTER(_vp), ctypes.c_int, _Dims, ctypes.c_int,
                                         ctypes.c_int],
    "dnnl_convolution_forward_primitive_desc_create": [
        ctypes.POINTER(_vp), _vp, ctypes.c_int, ctypes.c_int, _vp, _vp, _vp, _vp,
        _Dims, _Dims, _Dims, _Dims, _vp],
    "dnnl_convolution_backward_data_primitive_desc_create": [
        ctypes.POINTER(_vp), _vp, ctypes.c_int, _vp, _vp, _vp, _Dims, _Dims, _Dims, _Dims,
        _vp, _vp],
    "dnnl_convolution_backward_weights_primitive_desc_create": [
        ctypes.POINTER(_vp), _vp, ctypes.c_int, _vp, _vp, _vp, _vp, _Dims, _Dims, _Dims, _Dims,
        _vp, _vp],
    "dnnl_reorder_primitive_desc_create": [ctypes.POINTER(_vp), _vp, _vp, _vp, _vp, _vp],
    "dnnl_primitive_create": [ctypes.POINTER(_vp), _vp],
    "dnnl_memory_create": [ctypes.POINTER(_vp), _vp, _vp, _vp],
    "dnnl_memory_set_data_handle": [_vp, _vp],
    "dnnl_primitive_execute": [_vp, _vp, ctypes.c_int, ctypes.POINTER(_ExecArg)],
    "dnnl_memory_desc_destroy": [_vp],
    "dnnl_primitive_desc_destroy": [_vp],
    "dnnl_primitive_destroy": [_vp],
    "dnnl_memory_destroy": [_vp],
}

# create function -> the function that frees what it returns
_DESTROY = {
    "dnnl_memory_desc_create_with_tag": "dnnl_memory_desc_destroy",
    "dnnl_convolution_forward_primitive_desc_create": "dnnl_primitive_desc_destroy",
    "dnnl_convolution_backward_data_primitive_desc_create": "dnnl_primitive_desc_destroy",
    "dnnl_convolution_backward_weights_primitive_desc_create": "dnnl_primitive_desc_destroy",
    "dnnl_reorder_primitive_desc_create": "dnnl_primitive_desc_destroy",
    "dnnl_primitive_create": "dnnl_primitive_destroy",
    "dnnl_memory_create": "dnnl_memory_destroy",
}


class _Lib:
    """The loaded libdnnl with typed functions, one CPU engine and one stream."""

    def __init__(self):
        path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so.3")
        self.dll = ctypes.CDLL(path)
        self.dll.dnnl_version.restype = ctypes.POINTER(_Version)
        v = self.dll.dnnl_version().contents
        self.version = (v.major, v.minor, v.patch)
        check_version(self.version, path)
        for name, argtypes in _STATUS_FUNCS.items():
            fn = getattr(self.dll, name)
            fn.argtypes, fn.restype = argtypes, ctypes.c_int
        self.dll.dnnl_primitive_desc_query_md.argtypes = [_vp, ctypes.c_int, ctypes.c_int]
        self.dll.dnnl_primitive_desc_query_md.restype = _vp
        self.dll.dnnl_memory_desc_equal.argtypes = [_vp, _vp]
        self.dll.dnnl_memory_desc_equal.restype = ctypes.c_int
        self.omp = _omp_of_dnnl()
        self.paddle_omp = _paddle_omp()
        self.engine = self.out("dnnl_engine_create", ENGINE_CPU, 0)
        self.stream = self.out("dnnl_stream_create", self.engine, STREAM_IN_ORDER)

    def call(self, name, *args):
        status = getattr(self.dll, name)(*args)
        if status != SUCCESS:
            raise RuntimeError(f"oneDNN {name} failed with status {status}")

    def out(self, name, *args, owner=None):
        """Call a create-style function whose first argument is the handle it returns; with
        owner (a list), record how to free the handle."""
        handle = _vp()
        self.call(name, ctypes.byref(handle), *args)
        if owner is not None:
            owner.append((_DESTROY[name], handle))
        return handle

    def md(self, dims, tag, owner, dtype=F32):
        return self.out("dnnl_memory_desc_create_with_tag", len(dims), to_dims(dims), dtype, tag,
                        owner=owner)

    def memory(self, md, owner, handle=None):
        return self.out("dnnl_memory_create", md, self.engine, handle, owner=owner)

    def free(self, owner):
        while owner:
            name, handle = owner.pop()
            getattr(self.dll, name)(handle)

    def query(self, pd, what):
        return _vp(self.dll.dnnl_primitive_desc_query_md(pd, what, 0))

    def same(self, md_a, md_b):
        return bool(self.dll.dnnl_memory_desc_equal(md_a, md_b))

    def execute(self, prim, args):
        arr = (_ExecArg * len(args))(*[_ExecArg(a, m) for a, m in args])
        self.call("dnnl_primitive_execute", prim, self.stream, len(args), arr)
        self.call("dnnl_stream_wait", self.stream)

    def match_threads(self):
        """oneDNN here runs on GNU OpenMP (libgomp), which paddle's set_num_threads (Intel
        OpenMP / MKL) does not reach: give it paddle's count."""
        if self.omp is not None and self.paddle_omp is not None:
            want = int(self.paddle_omp.omp_get_max_threads())
            if want and self.omp.omp_get_max_threads() != want:
                self.omp.omp_set_num_threads(want)

    def threads(self):
        return int(self.omp.omp_get_max_threads()) if self.omp is not None else 0


def check_version(version, path="libdnnl"):
    """RuntimeError unless version (major, minor, patch) is the WRITTEN_FOR release line."""
    if tuple(version[:2]) != tuple(WRITTEN_FOR):
        raise RuntimeError(f"{path} is oneDNN {'.'.join(map(str, version))}; this binding's constants were "
                           f"copied from oneDNN {'.'.join(map(str, WRITTEN_FOR))}")


def to_dims(values):
    d = _Dims()
    for i, v in enumerate(values):
        d[i] = int(v)
    return d


def _omp_of_dnnl():
    """libgomp as libdnnl loaded it (same soname, so the same instance), else None."""
    try:
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def _paddle_omp():
    """Intel OpenMP from paddle/libs: core.set_num_threads writes its thread count."""
    try:
        return ctypes.CDLL(os.path.join(os.path.dirname(paddle.__file__), "libs", "libiomp5.so"))
    except OSError:
        return None


_LIB = None
_LIB_ERROR = None


def library():
    """The oneDNN binding, or None (one log line, once) when libdnnl is missing or another version."""
    global _LIB, _LIB_ERROR
    if _LIB is None and _LIB_ERROR is None:
        try:
            _LIB = _Lib()
        except (OSError, AttributeError, RuntimeError) as exc:
            _LIB_ERROR = str(exc)
            log.warning("oneDNN conv disabled, using paddle's conv2d: %s", exc)
    return _LIB
