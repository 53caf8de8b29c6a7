"""oneDNN convolution for paddle dygraph training on CPU (not thread-safe: one caller at a time).

Why: in dygraph, paddle 3.3's CPU conv2d / conv2d_grad run paddle's own im2col + MKL GEMM kernel
and never oneDNN (FLAGS_use_onednn changes nothing; ONEDNN_VERBOSE shows no primitive), while the
wheel ships oneDNN 3.x as paddle/libs/libdnnl.so.3. This module drives that library through its
C API (utils.runtime.dnnl, version-checked at load) and wraps it in a paddle PyLayer, so the
model's nn.Conv2D layers keep their parameters (names, state_dict) and only their forward changes.

Use: `enable_onednn_conv(model)` after building the model. The oneDNN path runs only in dygraph,
on CPU, for float32 NCHW, groups 1, dilation 1; everything else (to_static export, GPU, other
dtypes) goes through paddle's F.conv2d as before.

`enable_onednn_conv(model, bf16=True)` (train.amp: bf16 on CPU) computes the convolutions in bf16:
oneDNN's reorders turn the float32 input, weights and output gradient into bf16 on the way in, the
primitives accumulate in fp32 and write float32 outputs, input gradients and bias gradients; the
weight gradient is computed in bf16 (as PyTorch's autocast does; with a float32 weight gradient
oneDNN 3.6's bf16 backward-weights kernel took ~0.5 s for the lite model's 3x3 maps, 50x fp32) and
reordered to float32, so paddle sees float32 tensors and keeps fp32 master weights. In training mode only (evaluation and encoding stay fp32).
Only for CPUs with avx512_bf16 or amx_bf16 (the caller checks).
"""
import collections
import ctypes

import paddle
import paddle.nn.functional as F

from utils.runtime import dnnl


class _Plan:
    """Primitives and memory objects of one conv configuration.

    plain=True: every tensor in paddle's own layout (abcd / a), no reorders.
    plain=False: oneDNN picks its layouts (tag any); reorders to and from paddle's layout.
    Memory objects are created once without data and pointed at paddle's buffers per call.
    The oneDNN objects are freed with the plan (the cache and any pending backward hold it).
    """

    def __init__(self, lib, x_shape, w_shape, has_bias, stride, padding, need_x_grad, plain, bf16=False):
        self.lib, self.has_bias = lib, has_bias
        self.handles = own = []
        n, _, h, w = x_shape
        co, _, kh, kw = w_shape
        oh = (h + 2 * padding[0] - kh) // stride[0] + 1
        ow = (w + 2 * padding[1] - kw) // stride[1] + 1
        self.y_shape = [n, co, oh, ow]
        # dilation 0 is oneDNN's "none"; paddle pads both sides alike (oneDNN's output size
        # formula then floors like paddle's).
        strides, dil, pad = dnnl.to_dims(stride), dnnl.to_dims((0, 0)), dnnl.to_dims(padding)
        shapes = {"x": x_shape, "w": w_shape, "y": self.y_shape}
        user = {k: lib.md(shape, dnnl.TAG_ABCD, own) for k, shape in shapes.items()}
        user["b"] = lib.md([co], dnnl.TAG_A, own)
        tag = dnnl.TAG_ABCD if plain else dnnl.TAG_ANY
        req = {k: lib.md(shape, tag, own) for k, shape in shapes.items()}  # float32: outputs, gradients
        # bf16=True: what the primitives read (src, weights, diff_dst) and the weight gradient in bf16
        low = {k: lib.md(shape, tag, own, dnnl.BF16) for k, shape in shapes.items()} if bf16 else req
        bias = user["b"] if has_bias else None
        fwd = lib.out("dnnl_convolution_forward_primitive_desc_create", lib.engine,
                      dnnl.FORWARD_TRAINING, dnnl.CONVOLUTION_DIRECT, low["x"], low["w"], bias, req["y"],
                      strides, dil, pad, pad, None, owner=own)
        bwd_w = lib.out("dnnl_convolution_backward_weights_primitive_desc_create", lib.engine,
                        dnnl.CONVOLUTION_DIRECT, low["x"], low["w"], bias, low["y"],
                        strides, dil, pad, pad, fwd, None, owner=own)
        self.fwd = _Step(lib, fwd, {dnnl.ARG_SRC: ("x", dnnl.QUERY_SRC_MD),
                                    dnnl.ARG_WEIGHTS: ("w", dnnl.QUERY_WEIGHTS_MD),
                                    dnnl.ARG_DST: ("y", dnnl.QUERY_DST_MD)}, user, own)
        self.bwd_w = _Step(lib, bwd_w, {dnnl.ARG_SRC: ("x", dnnl.QUERY_SRC_MD),
                                        dnnl.ARG_DIFF_DST: ("y", dnnl.QUERY_DIFF_DST_MD),
                                        dnnl.ARG_DIFF_WEIGHTS: ("w", dnnl.QUERY_DIFF_WEIGHTS_MD)}, user, own)
        self.bwd_d = None
        if need_x_grad:
            bwd_d = lib.out("dnnl_convolution_backward_data_primitive_desc_create", lib.engine,
                            dnnl.CONVOLUTION_DIRECT, req["x"], low["w"], low["y"],
                            strides, dil, pad, pad, fwd, None, owner=own)
            self.bwd_d = _Step(lib, bwd_d, {dnnl.ARG_DIFF_DST: ("y", dnnl.QUERY_DIFF_DST_MD),
                                            dnnl.ARG_WEIGHTS: ("w", dnnl.QUERY_WEIGHTS_MD),
                                            dnnl.ARG_DIFF_SRC: ("x", dnnl.QUERY_DIFF_SRC_MD)}, user, own)

    def forward(self, x, w, b):
        y = paddle.empty(self.y_shape, dtype="float32")
        extra = {dnnl.ARG_BIAS: b} if self.has_bias else {}
        self.fwd.run({dnnl.ARG_SRC: x, dnnl.ARG_WEIGHTS: w, dnnl.ARG_DST: y}, extra, outputs=(dnnl.ARG_DST,))
        return y

    def backward(self, x, w, dy, weights=True):
        """(dx, dw, db): dx None without backward-data, dw and db None when weights=False."""
        dx = None
        if self.bwd_d is not None:
            dx = paddle.empty(x.shape, dtype="float32")
            self.bwd_d.run({dnnl.ARG_DIFF_DST: dy, dnnl.ARG_WEIGHTS: w, dnnl.ARG_DIFF_SRC: dx}, {},
                           outputs=(dnnl.ARG_DIFF_SRC,))
        if not weights:
            return dx, None, None
        dw = paddle.empty(w.shape, dtype="float32")
        extra, db = {}, None
        if self.has_bias:
            db = paddle.empty([w.shape[0]], dtype="float32")
            extra = {dnnl.ARG_DIFF_BIAS: db}
        self.bwd_w.run({dnnl.ARG_SRC: x, dnnl.ARG_DIFF_DST: dy, dnnl.ARG_DIFF_WEIGHTS: dw}, extra,
                       outputs=(dnnl.ARG_DIFF_WEIGHTS,))
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
            self.mem[arg] = lib.memory(prim_md, own, dnnl.MEMORY_ALLOCATE)
            is_output = arg in (dnnl.ARG_DST, dnnl.ARG_DIFF_SRC, dnnl.ARG_DIFF_WEIGHTS)
            src, dst = (prim_md, user_md) if is_output else (user_md, prim_md)
            rpd = lib.out("dnnl_reorder_primitive_desc_create", src, lib.engine, dst, lib.engine,
                          None, owner=own)
            self.reorder[arg] = lib.out("dnnl_primitive_create", rpd, owner=own)
        self.bias_mem = lib.memory(user_mds["b"], own)

    def run(self, tensors, bias, outputs):
        lib = self.lib
        for arg, t in tensors.items():
            lib.call("dnnl_memory_set_data_handle", self.user_mem[arg], ctypes.c_void_p(t.data_ptr()))
        for arg, rp in self.reorder.items():
            if arg not in outputs:
                lib.execute(rp, [(dnnl.ARG_FROM, self.user_mem[arg]), (dnnl.ARG_TO, self.mem[arg])])
        args = [(arg, self.mem[arg]) for arg in tensors]
        for arg, t in bias.items():
            lib.call("dnnl_memory_set_data_handle", self.bias_mem, ctypes.c_void_p(t.data_ptr()))
            args.append((arg, self.bias_mem))
        lib.execute(self.prim, args)
        for arg in outputs:
            if arg in self.reorder:
                lib.execute(self.reorder[arg], [(dnnl.ARG_FROM, self.mem[arg]), (dnnl.ARG_TO, self.user_mem[arg])])


_PLANS = collections.OrderedDict()  # least recently used first
_MAX_PLANS = 32  # conv layers x batch shapes seen (train, eval, last partial batch)
# False: oneDNN's own (blocked) layouts + reorders; measured faster than True (paddle's NCHW/OIHW
# throughout, no reorders) for every AlexNet conv (batch 32, AMD EPYC AVX-512, fwd + bwd CPU time
# about 0.65-0.9x). True stays for tests and comparisons.
PLAIN_LAYOUT = False


def _plan(x, w, has_bias, stride, padding, need_x_grad, bf16=False):
    """Cached per configuration and thread count: oneDNN splits the work among the OpenMP
    threads it sees when a primitive is created."""
    lib = dnnl.library()
    lib.match_threads()
    key = (tuple(x.shape), tuple(w.shape), has_bias, stride, padding, need_x_grad, PLAIN_LAYOUT,
           lib.threads(), bf16)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _Plan(lib, x.shape, w.shape, has_bias, stride, padding,
                                   need_x_grad, PLAIN_LAYOUT, bf16)
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    _PLANS.move_to_end(key)
    return plan


class OneDNNConv2D(paddle.autograd.PyLayer):
    """conv2d whose forward and backward are oneDNN primitives (NCHW float32, groups 1; computed in
    bf16 with bf16=True)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, bf16=False):
        x, weight = x.contiguous(), weight.contiguous()
        plan = _plan(x, weight, bias is not None, stride, padding, not x.stop_gradient, bf16)
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
    return dnnl.library() is not None


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, data_format="NCHW"):
    """F.conv2d with the oneDNN path where usable() says so."""
    if usable(x, weight, groups, dilation, padding, data_format):
        return OneDNNConv2D.apply(x, weight, bias, _pair(stride), _pair(padding))
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, data_format=data_format)


# Private attributes of paddle's nn.Conv2D that Conv2D.forward reads (paddle 3.3). A layer that
# lacks one of them (another paddle version) is left as it is.
CONV2D_ATTRIBUTES = ("_padding_mode", "_padding_algorithm", "_groups", "_dilation", "_updated_padding",
                     "_data_format", "_stride")


class Conv2D(paddle.nn.Conv2D):
    """nn.Conv2D whose dygraph forward runs oneDNN where usable(); same parameters and names.
    enable_onednn_conv() switches existing layers to this class (and sets onednn_bf16)."""

    onednn_bf16 = False  # compute in bf16 in training mode (train.amp: bf16 on CPU); evaluation stays fp32

    def forward(self, x):
        if (self._padding_mode == "zeros" and self._padding_algorithm != "SAME"
                and usable(x, self.weight, self._groups, self._dilation, self._updated_padding,
                           self._data_format)):
            return OneDNNConv2D.apply(x, self.weight, self.bias, _pair(self._stride),
                                      _pair(self._updated_padding), self.onednn_bf16 and self.training)
        return super().forward(x)


def enable_onednn_conv(model, bf16=False):
    """Route every nn.Conv2D of `model` (exactly that class) through oneDNN in dygraph, in bf16 with
    bf16=True; the parameters, their names and state_dict are untouched. Returns how many layers
    were switched (0 when the oneDNN binding is not available, utils.runtime.dnnl)."""
    if dnnl.library() is None:
        return 0
    count = 0
    for layer in model.sublayers(include_self=True):
        if type(layer) is paddle.nn.Conv2D and all(hasattr(layer, name) for name in CONV2D_ATTRIBUTES):
            layer.__class__ = Conv2D
            layer.onednn_bf16 = bool(bf16)
            count += 1
    return count


def apply_setting(model, setting, bf16=False):
    """Config train.onednn_conv -> conv layers switched (computing in bf16 with bf16=True: train.amp
    bf16 on CPU). "auto": when paddle's device is the CPU (on GPU the layers would fall back
    anyway); True: always; False: never."""
    if setting not in ("auto", True, False):
        from utils.errors import ConfigError

        raise ConfigError(f"train.onednn_conv: expected auto, true or false, got {setting!r}")
    if setting is False or (setting == "auto" and not paddle.get_device().startswith("cpu")):
        return 0
    return enable_onednn_conv(model, bf16)
