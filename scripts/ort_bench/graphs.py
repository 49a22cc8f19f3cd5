"""ONNX graphs built with onnx.helper from PyTorch-style state dicts (name -> numpy array):
HigherHRNet (official HRNet/HigherHRNet-Human-Pose-Estimation layout) and CPM (namedBen
Convolutional-Pose-Machines-Pytorch, CPM(k=14)). Also: the FLOP count of any ONNX graph.

The builders are written from the architecture descriptions (shared/fixtures/posegen/README.md,
posescope's src/models/{higher_hrnet,hrnet_backbone,cpm}.rs); every weight is looked up by its
official state_dict key and the builder asserts that each key is used exactly once.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

OPSET = 17


class Builder:
    def __init__(self, weights):
        self.w = weights
        self.used = set()
        self.nodes = []
        self.inits = {}
        self._n = 0

    # -- plumbing ---------------------------------------------------------------------------
    def _name(self, hint):
        self._n += 1
        return f"{hint}__{self._n}"

    def param(self, key):
        if key not in self.w:
            raise KeyError(f"weight {key!r} missing from the state dict")
        if key in self.used:
            raise KeyError(f"weight {key!r} used twice")
        self.used.add(key)
        self.inits[key] = numpy_helper.from_array(np.ascontiguousarray(self.w[key], dtype=np.float32), key)
        return key

    def const(self, hint, arr):
        name = self._name(hint)
        self.inits[name] = numpy_helper.from_array(np.asarray(arr), name)
        return name

    def has(self, key):
        return key in self.w

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self._name(hint or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # -- layers -----------------------------------------------------------------------------
    def conv(self, x, prefix, stride=1, pad=None, bias=None):
        wkey = prefix + ".weight"
        k = self.w[wkey].shape[2]
        if pad is None:
            pad = k // 2
        ins = [x, self.param(wkey)]
        if bias is None:
            bias = self.has(prefix + ".bias")
        if bias:
            ins.append(self.param(prefix + ".bias"))
        return self.op("Conv", ins, prefix, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad, pad, pad, pad])

    def bn(self, x, prefix, eps=1e-5):
        return self.op("BatchNormalization",
                       [x, self.param(prefix + ".weight"), self.param(prefix + ".bias"),
                        self.param(prefix + ".running_mean"), self.param(prefix + ".running_var")],
                       prefix, epsilon=eps)

    def relu(self, x):
        return self.op("Relu", [x])

    def add(self, a, b):
        return self.op("Add", [a, b])

    def concat(self, xs):
        return self.op("Concat", xs, axis=1)

    def upsample_nearest(self, x, factor):
        # PyTorch nn.Upsample(scale_factor=f, mode='nearest'): src = floor(dst / f).
        scales = self.const("scales", np.array([1, 1, factor, factor], dtype=np.float32))
        return self.op("Resize", [x, "", scales], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def maxpool(self, x, k, s, p):
        return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    def avgpool(self, x, k, s, p):
        return self.op("AveragePool", [x], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p],
                       count_include_pad=1)

    def conv_transpose(self, x, prefix, k, s, p):
        return self.op("ConvTranspose", [x, self.param(prefix + ".weight")], prefix,
                       kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    # -- model ------------------------------------------------------------------------------
    def finish(self, name, inputs, outputs):
        unused = [k for k in self.w if k not in self.used]
        if unused:
            raise KeyError(f"{len(unused)} weights not used by the graph, e.g. {unused[:5]}")
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            initializer=list(self.inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="posescope-ort-bench")
        model.ir_version = 8
        # Give the outputs their inferred shapes (the checker wants a shape on every output).
        inferred = shape_inference.infer_shapes(model)
        known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
                 if vi.type.tensor_type.HasField("shape")}
        for o in model.graph.output:
            if o.name in known:
                o.CopyFrom(known[o.name])
        onnx.checker.check_model(model)
        return model

    def rename_output(self, x, name):
        self.nodes.append(helper.make_node("Identity", [x], [name], name=name))
        return name


# ---------------------------------------------------------------------------------------------
# HigherHRNet (pose_higher_hrnet.py): stem, layer1 (Bottlenecks), stages 2-4 of
# HighResolutionModules with BasicBlock branches, final_layers.0 (1x1, heatmaps + tags),
# deconv (cat(x, output_0) -> ConvT k4 s2 p1 + BN + ReLU + BasicBlocks) and final_layers.1.

def _basic(b, x, p):
    y = b.relu(b.bn(b.conv(x, p + ".conv1", pad=1), p + ".bn1"))
    y = b.bn(b.conv(y, p + ".conv2", pad=1), p + ".bn2")
    res = x
    if b.has(p + ".downsample.0.weight"):
        res = b.bn(b.conv(x, p + ".downsample.0", pad=0), p + ".downsample.1")
    return b.relu(b.add(y, res))


def _bottleneck(b, x, p):
    y = b.relu(b.bn(b.conv(x, p + ".conv1", pad=0), p + ".bn1"))
    y = b.relu(b.bn(b.conv(y, p + ".conv2", pad=1), p + ".bn2"))
    y = b.bn(b.conv(y, p + ".conv3", pad=0), p + ".bn3")
    res = x
    if b.has(p + ".downsample.0.weight"):
        res = b.bn(b.conv(x, p + ".downsample.0", pad=0), p + ".downsample.1")
    return b.relu(b.add(y, res))


def _count(b, fmt):
    n = 0
    while any(k.startswith(fmt.format(n)) for k in b.w):
        n += 1
    return n


def _hr_module(b, xs, p):
    nb = len(xs)
    xs = list(xs)
    for i in range(nb):
        for k in range(_count(b, f"{p}.branches.{i}.{{}}.")):
            xs[i] = _basic(b, xs[i], f"{p}.branches.{i}.{k}")
    if nb == 1:
        return xs
    n_out = _count(b, f"{p}.fuse_layers.{{}}.")
    outs = []
    for i in range(n_out):
        y = None
        for j in range(nb):
            if j == i:
                t = xs[j]
            elif j > i:
                q = f"{p}.fuse_layers.{i}.{j}"
                t = b.bn(b.conv(xs[j], q + ".0", pad=0), q + ".1")
                t = b.upsample_nearest(t, 2 ** (j - i))
            else:
                t = xs[j]
                for k in range(i - j):
                    q = f"{p}.fuse_layers.{i}.{j}.{k}"
                    t = b.bn(b.conv(t, q + ".0", stride=2, pad=1), q + ".1")
                    if k < i - j - 1:
                        t = b.relu(t)
            y = t if y is None else b.add(y, t)
        outs.append(b.relu(y))
    return outs


def _transition(b, ys, t, n_next):
    xs = []
    for i in range(n_next):
        p = f"transition{t}.{i}"
        if b.has(p + ".0.weight"):  # same index, different width: conv3x3 + BN + ReLU
            xs.append(b.relu(b.bn(b.conv(ys[-1], p + ".0", pad=1), p + ".1")))
        elif b.has(p + ".0.0.weight"):  # a new branch: stride-2 convs from the last branch
            x = ys[-1]
            for k in range(_count(b, p + ".{}.")):
                x = b.relu(b.bn(b.conv(x, f"{p}.{k}.0", stride=2, pad=1), f"{p}.{k}.1"))
            xs.append(x)
        else:
            xs.append(ys[i])
    return xs


def _n_branches(b, stage):
    return _count(b, f"stage{stage}.0.branches.{{}}.")


def build_higherhrnet(weights, size):
    b = Builder(weights)
    x = "input"
    x = b.relu(b.bn(b.conv(x, "conv1", stride=2, pad=1), "bn1"))
    x = b.relu(b.bn(b.conv(x, "conv2", stride=2, pad=1), "bn2"))
    for k in range(_count(b, "layer1.{}.")):
        x = _bottleneck(b, x, f"layer1.{k}")
    ys = [x]
    for stage in (2, 3, 4):
        xs = _transition(b, ys, stage - 1, _n_branches(b, stage))
        for m in range(_count(b, f"stage{stage}.{{}}.")):
            xs = _hr_module(b, xs, f"stage{stage}.{m}")
        ys = xs
    x = ys[0]
    out0 = b.conv(x, "final_layers.0", pad=0)
    outs = [out0]
    y = out0
    for d in range(_count(b, "deconv_layers.{}.")):
        x = b.concat([x, y])
        p = f"deconv_layers.{d}"
        x = b.relu(b.bn(b.conv_transpose(x, p + ".0.0", 4, 2, 1), p + ".0.1"))
        for k in range(1, _count(b, p + ".{}.")):
            x = _basic(b, x, f"{p}.{k}.0")
        y = b.conv(x, f"final_layers.{d + 1}", pad=0)
        outs.append(y)
    names = [b.rename_output(o, f"output_{i}") for i, o in enumerate(outs)]
    return b.finish("higherhrnet", [("input", [1, 3, size, size])], names)


# ---------------------------------------------------------------------------------------------
# CPM (namedBen cpm_model.py, CPM(k=14)).

def build_cpm(weights, size=368):
    b = Builder(weights)

    def cr(x, name):
        return b.relu(b.conv(x, name))

    img, cmap = "image", "center_map"
    pool_center = b.avgpool(cmap, 9, 8, 1)
    # stage 1
    x = b.maxpool(cr(img, "conv1_stage1"), 3, 2, 1)
    x = b.maxpool(cr(x, "conv2_stage1"), 3, 2, 1)
    x = b.maxpool(cr(x, "conv3_stage1"), 3, 2, 1)
    x = cr(x, "conv4_stage1")
    x = cr(x, "conv5_stage1")
    x = cr(x, "conv6_stage1")
    beliefs = [b.conv(x, "conv7_stage1")]
    # shared image trunk of stages >= 2
    m = b.maxpool(cr(img, "conv1_stage2"), 3, 2, 1)
    m = b.maxpool(cr(m, "conv2_stage2"), 3, 2, 1)
    pool3_stage2 = b.maxpool(cr(m, "conv3_stage2"), 3, 2, 1)
    t = 2
    while b.has(f"Mconv1_stage{t}.weight"):
        feat = cr(pool3_stage2, "conv4_stage2" if t == 2 else f"conv1_stage{t}")
        x = b.concat([feat, beliefs[-1], pool_center])
        for i in (1, 2, 3, 4):
            x = cr(x, f"Mconv{i}_stage{t}")
        beliefs.append(b.conv(x, f"Mconv5_stage{t}"))
        t += 1
    names = [b.rename_output(o, f"stage{i + 1}") for i, o in enumerate(beliefs)]
    return b.finish("cpm", [("image", [1, 3, size, size]), ("center_map", [1, 1, size, size])], names)


# ---------------------------------------------------------------------------------------------
# FLOPs (2 per multiply-add) of Conv / ConvTranspose / MatMul / Gemm, from onnx shape inference.

def _dims(vi):
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if not d.HasField("dim_value"):
            return None
        out.append(d.dim_value)
    return out


def count_flops(model):
    """Returns (total FLOPs, {op_type: FLOPs}, number of nodes whose shapes were unknown).

    Conv: 2*Cin/groups*kh*kw*Cout*Hout*Wout (x batch). ConvTranspose: 2*Cin*kh*kw*Cout/groups*Hin*Win
    (every input pixel scatters a kh*kw*Cout/groups patch; the same convention as posescope's
    counter). MatMul: 2*prod(output)*K. Gemm: 2*M*N*K."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        d = _dims(vi)
        if d is not None:
            shapes[vi.name] = d
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    by_op = {}
    unknown = 0
    for n in g.node:
        if n.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        try:
            if n.op_type == "Conv":
                w = shapes[n.input[1]]
                y = shapes[n.output[0]]
                f = 2 * int(np.prod(y)) * int(np.prod(w[1:]))
            elif n.op_type == "ConvTranspose":
                w = shapes[n.input[1]]  # [Cin, Cout/groups, kh, kw]
                x = shapes[n.input[0]]
                f = 2 * int(np.prod(x)) * int(np.prod(w[1:]))
            elif n.op_type == "MatMul":
                a = shapes[n.input[0]]
                y = shapes[n.output[0]]
                f = 2 * int(np.prod(y)) * a[-1]
            else:
                a = shapes[n.input[0]]
                y = shapes[n.output[0]]
                k = a[0] if attrs.get("transA", 0) else a[-1]
                f = 2 * int(np.prod(y)) * k
        except KeyError:
            unknown += 1
            continue
        total += f
        by_op[n.op_type] = by_op.get(n.op_type, 0) + f
    return total, by_op, unknown
