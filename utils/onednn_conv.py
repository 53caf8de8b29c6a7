"""oneDNN convolution for paddle dygraph training on CPU (not thread-safe: one caller at a time).

Why: in dygraph, paddle 3.3's CPU conv2d / conv2d_grad run paddle's own im2col + MKL GEMM kernel
and never oneDNN (FLAGS_use_onednn changes nothing; ONEDNN_VERBOSE shows no primitive), while the
wheel ships oneDNN 3.x as paddle/libs/libdnnl.so.3. This module drives that library through its
C API with ctypes (no compiler, no headers) and wraps it in a paddle PyLayer, so the model's
nn.Conv2D layers keep their parameters (names, state_dict) and only their forward changes.

Use: `enable_onednn_conv(model)` after building the model. The oneDNN path runs only in dygraph,
on CPU, for float32 NCHW, groups 1, dilation 1; everything else (to_static export, GPU, other
dtypes) goes through paddle's F.conv2d as before.
"""
import collections
import ctypes
import logging
import os

import paddle
import paddle.nn.functional as F

log = logging.getLogger(__name__)

# --- oneDNN v3 C API constants (values from oneDNN's public dnnl_types.h / dnnl_common_types.h).
_SUCCESS = 0
_ENGINE_CPU = 1
_STREAM_IN_ORDER = 0x1
_F32 = 3
_TAG_ANY, _TAG_A, _TAG_ABCD = 1, 2, 5
_FORWARD_TRAINING = 64  # backward-data/-weights descriptors take no prop kind in v3
_CONVOLUTION_DIRECT = 0x1
_QUERY_SRC_MD, _QUERY_DIFF_SRC_MD, _QUERY_WEIGHTS_MD = 129, 130, 131
_QUERY_DIFF_WEIGHTS_MD, _QUERY_DST_MD, _QUERY_DIFF_DST_MD = 132, 133, 134
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_BIAS = 1, 17, 33, 41
_ARG_DIFF_SRC, _ARG_DIFF_DST, _ARG_DIFF_WEIGHTS, _ARG_DIFF_BIAS = 129, 145, 161, 169
_ARG_FROM, _ARG_TO = _ARG_SRC, _ARG_DST
_MEMORY_ALLOCATE = ctypes.c_void_p(-1 & (2 ** (8 * ctypes.sizeof(ctypes.c_void_p)) - 1))
_MAX_DIMS = 12

_Dims = ctypes.c_int64 * _MAX_DIMS
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
        if v.major != 3:
            raise RuntimeError(f"{path} is oneDNN {v.major}.{v.minor}, this binding needs 3.x")
        for name, argtypes in _STATUS_FUNCS.items():
            fn = getattr(self.dll, name)
            fn.argtypes, fn.restype = argtypes, ctypes.c_int
        self.dll.dnnl_primitive_desc_query_md.argtypes = [_vp, ctypes.c_int, ctypes.c_int]
        self.dll.dnnl_primitive_desc_query_md.restype = _vp
        self.dll.dnnl_memory_desc_equal.argtypes = [_vp, _vp]
        self.dll.dnnl_memory_desc_equal.restype = ctypes.c_int
        self.omp = _omp_of_dnnl()
        self.paddle_omp = _paddle_omp()
        self.engine = self.out("dnnl_engine_create", _ENGINE_CPU, 0)
        self.stream = self.out("dnnl_stream_create", self.engine, _STREAM_IN_ORDER)

    def call(self, name, *args):
        status = getattr(self.dll, name)(*args)
        if status != _SUCCESS:
            raise RuntimeError(f"oneDNN {name} failed with status {status}")

    def out(self, name, *args, owner=None):
        """Call a create-style function whose first argument is the handle it returns; with
        owner (a list), record how to free the handle."""
        handle = _vp()
        self.call(name, ctypes.byref(handle), *args)
        if owner is not None:
            owner.append((_DESTROY[name], handle))
        return handle

    def md(self, dims, tag, owner):
        return self.out("dnnl_memory_desc_create_with_tag", len(dims), _dims(dims), _F32, tag,
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


def _dims(values):
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
    """The oneDNN binding, or None (logged once) when libdnnl is missing or not 3.x."""
    global _LIB, _LIB_ERROR
    if _LIB is None and _LIB_ERROR is None:
        try:
            _LIB = _Lib()
        except (OSError, AttributeError, RuntimeError) as exc:
            _LIB_ERROR = str(exc)
            log.warning("oneDNN conv disabled, using paddle's conv2d: %s", exc)
    return _LIB


class _Plan:
    """Primitives and memory objects of one conv configuration.

    plain=True: every tensor in paddle's own layout (abcd / a), no reorders.
    plain=False: oneDNN picks its layouts (tag any); reorders to and from paddle's layout.
    Memory objects are created once without data and pointed at paddle's buffers per call.
    The oneDNN objects are freed with the plan (the cache and any pending backward hold it).
    """

    def __init__(self, lib, x_shape, w_shape, has_bias, stride, padding, need_x_grad, plain):
        self.lib, self.has_bias = lib, has_bias
        self.handles = own = []
        n, _, h, w = x_shape
        co, _, kh, kw = w_shape
        oh = (h + 2 * padding[0] - kh) // stride[0] + 1
        ow = (w + 2 * padding[1] - kw) // stride[1] + 1
        self.y_shape = [n, co, oh, ow]
        # dilation 0 is oneDNN's "none"; paddle pads both sides alike (oneDNN's output size
        # formula then floors like paddle's).
        strides, dil, pad = _dims(stride), _dims((0, 0)), _dims(padding)
        shapes = {"x": x_shape, "w": w_shape, "y": self.y_shape}
        user = {k: lib.md(shape, _TAG_ABCD, own) for k, shape in shapes.items()}
        user["b"] = lib.md([co], _TAG_A, own)
        tag = _TAG_ABCD if plain else _TAG_ANY
        req = {k: lib.md(shape, tag, own) for k, shape in shapes.items()}
        bias = user["b"] if has_bias else None
        fwd = lib.out("dnnl_convolution_forward_primitive_desc_create", lib.engine,
                      _FORWARD_TRAINING, _CONVOLUTION_DIRECT, req["x"], req["w"], bias, req["y"],
                      strides, dil, pad, pad, None, owner=own)
        bwd_w = lib.out("dnnl_convolution_backward_weights_primitive_desc_create", lib.engine,
                        _CONVOLUTION_DIRECT, req["x"], req["w"], bias, req["y"],
                        strides, dil, pad, pad, fwd, None, owner=own)
        self.fwd = _Step(lib, fwd, {_ARG_SRC: ("x", _QUERY_SRC_MD), _ARG_WEIGHTS: ("w", _QUERY_WEIGHTS_MD),
                                    _ARG_DST: ("y", _QUERY_DST_MD)}, user, own)
        self.bwd_w = _Step(lib, bwd_w, {_ARG_SRC: ("x", _QUERY_SRC_MD),
                                        _ARG_DIFF_DST: ("y", _QUERY_DIFF_DST_MD),
                                        _ARG_DIFF_WEIGHTS: ("w", _QUERY_DIFF_WEIGHTS_MD)}, user, own)
        self.bwd_d = None
        if need_x_grad:
            bwd_d = lib.out("dnnl_convolution_backward_data_primitive_desc_create", lib.engine,
                            _CONVOLUTION_DIRECT, req["x"], req["w"], req["y"],
                            strides, dil, pad, pad, fwd, None, owner=own)
            self.bwd_d = _Step(lib, bwd_d, {_ARG_DIFF_DST: ("y", _QUERY_DIFF_DST_MD),
                                            _ARG_WEIGHTS: ("w", _QUERY_WEIGHTS_MD),
                                            _ARG_DIFF_SRC: ("x", _QUERY_DIFF_SRC_MD)}, user, own)

    def forward(self, x, w, b):
        y = paddle.empty(self.y_shape, dtype="float32")
        extra = {_ARG_BIAS: b} if self.has_bias else {}
        self.fwd.run({_ARG_SRC: x, _ARG_WEIGHTS: w, _ARG_DST: y}, extra, outputs=(_ARG_DST,))
        return y

    def backward(self, x, w, dy, weights=True):
        """(dx, dw, db): dx None without backward-data, dw and db None when weights=False."""
        dx = None
        if self.bwd_d is not None:
            dx = paddle.empty(x.shape, dtype="float32")
            self.bwd_d.run({_ARG_DIFF_DST: dy, _ARG_WEIGHTS: w, _ARG_DIFF_SRC: dx}, {},
                           outputs=(_ARG_DIFF_SRC,))
        if not weights:
            return dx, None, None
        dw = paddle.empty(w.shape, dtype="float32")
        extra, db = {}, None
        if self.has_bias:
            db = paddle.empty([w.shape[0]], dtype="float32")
            extra = {_ARG_DIFF_BIAS: db}
        self.bwd_w.run({_ARG_SRC: x, _ARG_DIFF_DST: dy, _ARG_DIFF_WEIGHTS: dw}, extra,
                       outputs=(_ARG_DIFF_WEIGHTS,))
        return dx, dw, db

    def __del__(self):
        try:
            self.lib.free(self.handles)
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


class _Step:
    """One primitive plus, per 4-D argument, the reorder between paddle's layout and its own."""

    def __init__(self, lib, pd, args, user_mds, own):
        self.lib = lib
        self.prim = lib.out("dnnl_primitive_create", pd, owner=own)
        self.mem = {}       # arg -> memory object the primitive reads/writes
        self.user_mem = {}  # arg -> memory in paddle's layout (set per call)
        self.reorder = {}   # arg -> reorder primitive (user->prim for inputs, prim->user for outputs)
        for arg, (key, what) in args.items():
            prim_md, user_md = lib.query(pd, what), user_mds[key]
            self.user_mem[arg] = lib.memory(user_md, own)
            if lib.same(prim_md, user_md):
                self.mem[arg] = self.user_mem[arg]
                continue
            self.mem[arg] = lib.memory(prim_md, own, _MEMORY_ALLOCATE)
            is_output = arg in (_ARG_DST, _ARG_DIFF_SRC, _ARG_DIFF_WEIGHTS)
            src, dst = (prim_md, user_md) if is_output else (user_md, prim_md)
            rpd = lib.out("dnnl_reorder_primitive_desc_create", src, lib.engine, dst, lib.engine,
                          None, owner=own)
            self.reorder[arg] = lib.out("dnnl_primitive_create", rpd, owner=own)
        self.bias_mem = lib.memory(user_mds["b"], own)

    def run(self, tensors, bias, outputs):
        lib = self.lib
        for arg, t in tensors.items():
            lib.call("dnnl_memory_set_data_handle", self.user_mem[arg], _vp(t.data_ptr()))
        for arg, rp in self.reorder.items():
            if arg not in outputs:
                lib.execute(rp, [(_ARG_FROM, self.user_mem[arg]), (_ARG_TO, self.mem[arg])])
        args = [(arg, self.mem[arg]) for arg in tensors]
        for arg, t in bias.items():
            lib.call("dnnl_memory_set_data_handle", self.bias_mem, _vp(t.data_ptr()))
            args.append((arg, self.bias_mem))
        lib.execute(self.prim, args)
        for arg in outputs:
            if arg in self.reorder:
                lib.execute(self.reorder[arg], [(_ARG_FROM, self.mem[arg]), (_ARG_TO, self.user_mem[arg])])


_PLANS = collections.OrderedDict()  # least recently used first
_MAX_PLANS = 32  # conv layers x batch shapes seen (train, eval, last partial batch)
# False: oneDNN's own (blocked) layouts + reorders; measured faster than True (paddle's NCHW/OIHW
# throughout, no reorders) for every AlexNet conv (batch 32, AMD EPYC AVX-512, fwd + bwd CPU time
# about 0.65-0.9x). True stays for tests and comparisons.
PLAIN_LAYOUT = False


def _plan(x, w, has_bias, stride, padding, need_x_grad):
    """Cached per configuration and thread count: oneDNN splits the work among the OpenMP
    threads it sees when a primitive is created."""
    lib = library()
    lib.match_threads()
    key = (tuple(x.shape), tuple(w.shape), has_bias, stride, padding, need_x_grad, PLAIN_LAYOUT,
           lib.threads())
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _Plan(lib, x.shape, w.shape, has_bias, stride, padding,
                                   need_x_grad, PLAIN_LAYOUT)
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    _PLANS.move_to_end(key)
    return plan


class OneDNNConv2D(paddle.autograd.PyLayer):
    """conv2d whose forward and backward are oneDNN primitives (NCHW float32, groups 1)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        x, weight = x.contiguous(), weight.contiguous()
        plan = _plan(x, weight, bias is not None, stride, padding, not x.stop_gradient)
        ctx.plan = plan
        # paddle wants None as the gradient of every input that has stop_gradient set
        ctx.wants = [not t.stop_gradient for t in (x, weight, bias) if t is not None]
        ctx.save_for_backward(x, weight)
        return plan.forward(x, weight, bias)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensor()
        grads = ctx.plan.backward(x, weight, dy.contiguous(), weights=any(ctx.wants[1:]))
        return tuple(g if want else None for g, want in zip(grads, ctx.wants))


def _pair(v):
    """2 -> (2, 2); [2] -> (2, 2); (2, 3) -> (2, 3)."""
    v = [v] if isinstance(v, int) else list(v)
    return tuple(int(i) for i in (v * 2 if len(v) == 1 else v))


def usable(x, weight, groups=1, dilation=1, padding=0, data_format="NCHW"):
    """True when the oneDNN path applies: dygraph, CPU, float32 4-D NCHW, groups 1, dilation 1,
    numeric symmetric padding, and libdnnl 3.x loaded."""
    if not paddle.in_dynamic_mode() or data_format != "NCHW" or groups != 1:
        return False
    if _pair(dilation) != (1, 1) or isinstance(padding, str):
        return False
    if isinstance(padding, (list, tuple)) and len(padding) not in (1, 2):
        return False
    if x.dtype != paddle.float32 or weight.dtype != paddle.float32 or x.ndim != 4:
        return False
    if not x.place.is_cpu_place():
        return False
    return library() is not None


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, data_format="NCHW"):
    """F.conv2d with the oneDNN path where usable() says so."""
    if usable(x, weight, groups, dilation, padding, data_format):
        return OneDNNConv2D.apply(x, weight, bias, _pair(stride), _pair(padding))
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, data_format=data_format)


class Conv2D(paddle.nn.Conv2D):
    """nn.Conv2D whose dygraph forward runs oneDNN where usable(); same parameters and names.
    enable_onednn_conv() switches existing layers to this class."""

    def forward(self, x):
        if (self._padding_mode == "zeros" and self._padding_algorithm != "SAME"
                and usable(x, self.weight, self._groups, self._dilation, self._updated_padding,
                           self._data_format)):
            return OneDNNConv2D.apply(x, self.weight, self.bias, _pair(self._stride),
                                      _pair(self._updated_padding))
        return super().forward(x)


def enable_onednn_conv(model):
    """Route every nn.Conv2D of `model` (exactly that class) through oneDNN in dygraph; the
    parameters, their names and state_dict are untouched. Returns how many layers were switched
    (0 when libdnnl 3.x is not available)."""
    if library() is None:
        return 0
    count = 0
    for layer in model.sublayers(include_self=True):
        if type(layer) is paddle.nn.Conv2D:
            layer.__class__ = Conv2D
            count += 1
    return count


def apply_setting(model, setting):
    """Config train.onednn_conv -> conv layers switched. "auto": when paddle's device is the CPU
    (on GPU the layers would fall back anyway); True: always; False: never."""
    if setting not in ("auto", True, False):
        from utils.errors import UserError

        raise UserError(f"train.onednn_conv: expected auto, true or false, got {setting!r}")
    if setting is False or (setting == "auto" and not paddle.get_device().startswith("cpu")):
        return 0
    return enable_onednn_conv(model)
