#!/usr/bin/env python3
"""Writes the small seed inputs of the fuzz targets into fuzz/corpus/<target>/.

Every seed is written here from scratch (protobuf and FlatBuffer bytes by hand, JSON by
hand, ffmpeg/ffprobe output of a generated test pattern), except the PyTorch seeds, which
are copies of the repository's own tiny test checkpoints (tests/data/pth). Needs only
Python 3 with the `flatbuffers` package (PyPI) and, for the ffprobe/showinfo seeds, the
ffmpeg CLI.

    python3 fuzz/make_seeds.py
"""
import json
import os
import struct
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- protobuf wire format
def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wt):
    return varint(field << 3 | wt)


def f_varint(field, v):
    return tag(field, 0) + varint(v)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return tag(field, 2) + varint(len(b)) + b


def f_fixed32(field, v):
    return tag(field, 5) + struct.pack("<f", v)


def packed_f32(field, vals):
    return f_bytes(field, b"".join(struct.pack("<f", v) for v in vals))


def packed_f64(field, vals):
    return f_bytes(field, b"".join(struct.pack("<d", v) for v in vals))


def packed_varint(field, vals):
    return f_bytes(field, b"".join(varint(v) for v in vals))


# ---------------------------------------------------------------- TensorFlow GraphDef
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BFLOAT16, DT_HALF = 1, 2, 3, 9, 14, 19


def tf_shape(dims):
    return b"".join(f_bytes(2, f_varint(1, d)) for d in dims)


def tf_attr(key, value):
    return f_bytes(5, f_bytes(1, key) + f_bytes(2, value))


def tf_const(name, dtype, dims, body):
    tensor = f_varint(1, dtype) + f_bytes(2, tf_shape(dims)) + body
    return f_bytes(
        1,
        f_bytes(1, name)
        + f_bytes(2, "Const")
        + tf_attr("dtype", f_varint(6, dtype))
        + tf_attr("value", f_bytes(8, tensor)),
    )


def tf_node(name, op, inputs, attrs):
    body = f_bytes(1, name) + f_bytes(2, op)
    for i in inputs:
        body += f_bytes(3, i)
    for k, v in attrs:
        body += tf_attr(k, v)
    return f_bytes(1, body)


def graphdefs():
    versions = f_bytes(4, f_varint(1, 27))
    content = b"".join(struct.pack("<f", v) for v in [0.5, -1.0, 2.0, 0.25, 3.0, -0.75])
    g1 = (
        tf_node("input", "Placeholder", [], [("dtype", f_varint(6, DT_FLOAT)),
                                             ("shape", f_bytes(7, tf_shape([1, 4, 4, 1])))])
        + tf_const("w", DT_FLOAT, [1, 1, 1, 6], f_bytes(4, content))
        + tf_const("b", DT_FLOAT, [6], packed_f32(5, [0.1]))
        + tf_node("conv", "Conv2D", ["input", "w"], [
            ("T", f_varint(6, DT_FLOAT)),
            ("strides", f_bytes(1, packed_varint(3, [1, 1, 1, 1]))),
            ("padding", f_bytes(2, "SAME")),
            ("data_format", f_bytes(2, "NHWC")),
            ("dilations", f_bytes(1, packed_varint(3, [1, 1, 1, 1])))])
        + tf_node("out", "BiasAdd", ["conv", "b"], [("T", f_varint(6, DT_FLOAT))])
        + versions
    )
    write("tf_graphdef", "conv_const_content_and_broadcast.pb", g1)
    half = b"".join(struct.pack("<H", h) for h in [0x3C00, 0xBC00, 0x0001, 0x7C00])
    g2 = (
        tf_const("h", DT_HALF, [2, 2], packed_varint(13, [0x3C00, 0x4000, 0x0400, 0x8001]))
        + tf_const("hc", DT_HALF, [4], f_bytes(4, half))
        + tf_const("bf", DT_BFLOAT16, [2], packed_varint(13, [0x3F80, 0xC000]))
        + tf_const("d", DT_DOUBLE, [3], packed_f64(6, [1.5, -2.5, 1e-3]))
        + tf_const("i", DT_INT32, [2], packed_varint(7, [3, (1 << 64) - 1]))
        + tf_const("l", DT_INT64, [], packed_varint(10, [7]))
        + tf_node("r", "ResizeBilinear", ["h", "i"], [("align_corners", f_varint(5, 1)),
                                                      ("scale", f_fixed32(4, 0.5)),
                                                      ("n", f_varint(3, 2))])
        + versions
    )
    write("tf_graphdef", "half_bf16_double_int_consts.pb", g2)


# ---------------------------------------------------------------- Caffe NetParameter
def caffe_blob_shape(dims, data):
    return f_bytes(7, packed_varint(1, dims)) + packed_f32(5, data)


def caffe_blob_legacy(n, c, h, w, data):
    return (f_varint(1, n) + f_varint(2, c) + f_varint(3, h) + f_varint(4, w)
            + packed_f32(5, data))


def caffes():
    conv = (f_bytes(1, "conv1") + f_bytes(2, "Convolution")
            + f_bytes(7, caffe_blob_shape([2, 1, 1, 1], [0.5, -0.5]))
            + f_bytes(7, caffe_blob_shape([2], [0.1, 0.2])))
    ip = (f_bytes(1, "fc") + f_bytes(2, "InnerProduct")
          + f_bytes(7, caffe_blob_legacy(1, 1, 2, 3, [1, 2, 3, 4, 5, 6]))
          + f_bytes(7, caffe_blob_legacy(1, 1, 1, 2, [0.0, 1.0])))
    dbl = (f_bytes(1, "scale") + f_bytes(2, "Scale")
           + f_bytes(7, f_bytes(7, packed_varint(1, [2])) + packed_f64(8, [2.0, 0.5])))
    write("caffe", "v2_layers.caffemodel",
          f_bytes(1, "tiny") + f_bytes(100, f_bytes(1, "data") + f_bytes(2, "Input"))
          + f_bytes(100, conv) + f_bytes(100, ip) + f_bytes(100, dbl))
    # V1 layers (type as an enum: 4 = CONVOLUTION, 14 = INNER_PRODUCT), one wrapping a V0 layer.
    v1 = (f_bytes(4, "conv1") + f_varint(5, 4)
          + f_bytes(6, caffe_blob_legacy(2, 1, 1, 1, [1.0, 2.0]))
          + f_bytes(6, caffe_blob_legacy(1, 1, 1, 2, [0.5, 0.25])))
    v0 = f_bytes(1, (f_bytes(1, "fc") + f_bytes(2, "innerproduct")
                     + f_bytes(50, caffe_blob_legacy(1, 1, 1, 2, [3.0, 4.0]))))
    unpacked = f_bytes(6, f_varint(1, 1) + f_varint(2, 1) + f_varint(3, 1) + f_varint(4, 2)
                       + f_fixed32(5, 1.0) + f_fixed32(5, -1.0))
    write("caffe", "v1_v0_layers.caffemodel",
          f_bytes(1, "old") + f_bytes(2, v1) + f_bytes(2, v0)
          + f_bytes(2, f_bytes(4, "relu") + f_varint(5, 18))
          + f_bytes(2, f_bytes(4, "bn") + f_varint(5, 39) + unpacked))


# ---------------------------------------------------------------- TFLite FlatBuffer
FLOAT32, FLOAT16 = 0, 1  # TensorType
CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE = 3, 4, 6  # BuiltinOperator


def tflite_model(with_f16):
    import flatbuffers  # pip install flatbuffers

    b = flatbuffers.Builder(0)

    def vec(prepend, size, vals, align=None):
        b.StartVector(size, len(vals), align or size)
        for v in reversed(vals):
            prepend(v)
        return b.EndVector()

    def offsets(vals):
        return vec(b.PrependUOffsetTRelative, 4, vals)

    def table(fields):
        """fields: (slot, kind, value), kind 'off' or a Builder Prepend*Slot suffix."""
        b.StartObject(max(f[0] for f in fields) + 1 if fields else 0)
        for slot, kind, value in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(b, "Prepend%sSlot" % kind)(slot, value, 0)
        return b.EndObject()

    f32 = lambda vals: b"".join(struct.pack("<f", v) for v in vals)
    f16 = lambda vals: b"".join(struct.pack("<e", v) for v in vals)
    data = [None, f32([0.5, -1.0, 2.0, 0.25]), f32([0.1, 0.2]),
            f16([1.0, -2.0, 0.5, 3.0]) if with_f16 else f32([1.0, 2.0, 3.0, 4.0])]
    buffers = []
    for d in data:
        if d is None:
            buffers.append(table([]))
        else:
            v = vec(b.PrependUint8, 1, list(d), 16)
            buffers.append(table([(0, "off", v)]))

    def tensor(name, shape, ttype, buffer):
        s = vec(b.PrependInt32, 4, shape)
        n = b.CreateString(name)
        return table([(0, "off", s), (1, "Int8", ttype), (2, "Uint32", buffer), (3, "off", n)])

    tensors = [
        tensor("input", [1, 2, 2, 1], FLOAT32, 0),
        tensor("conv/w", [2, 1, 1, 1], FLOAT32, 1),
        tensor("conv/b", [2], FLOAT32, 2),
        tensor("conv/out", [1, 2, 2, 2], FLOAT32, 0),
        tensor("dw/w16" if with_f16 else "dw/w", [1, 1, 1, 4],
               FLOAT16 if with_f16 else FLOAT32, 3),
        tensor("dw/w", [1, 1, 1, 4], FLOAT32, 0),
        tensor("out", [1, 2, 2, 4], FLOAT32, 0),
    ]
    # Conv2DOptions: padding 0 (SAME), stride_w, stride_h, fused_activation 1 (RELU).
    conv_opts = table([(1, "Int32", 1), (2, "Int32", 1), (3, "Int8", 1)])
    # DepthwiseConv2DOptions: padding 1 (VALID), stride_w, stride_h, depth_multiplier.
    dw_opts = table([(0, "Int8", 1), (1, "Int32", 1), (2, "Int32", 1), (3, "Int32", 2)])

    def op(index, inputs, outputs, opts_type=None, opts=None):
        i = vec(b.PrependInt32, 4, inputs)
        o = vec(b.PrependInt32, 4, outputs)
        fields = [(0, "Uint32", index), (1, "off", i), (2, "off", o)]
        if opts is not None:
            fields += [(3, "Uint8", opts_type), (4, "off", opts)]
        return table(fields)

    ops = [op(0, [0, 1, 2], [3], 1, conv_opts)]
    if with_f16:
        ops.append(op(2, [4], [5]))
    ops.append(op(1, [3, 5, -1], [6], 2, dw_opts))
    codes = [table([(0, "Int8", CONV_2D), (2, "Int32", 1), (3, "Int32", CONV_2D)]),
             table([(0, "Int8", DEPTHWISE_CONV_2D), (2, "Int32", 2)]),
             table([(0, "Int8", DEQUANTIZE)])]
    t, ins, outs, opv, name = (offsets(tensors), vec(b.PrependInt32, 4, [0]),
                               vec(b.PrependInt32, 4, [6]), offsets(ops), b.CreateString("main"))
    subgraph = table([(0, "off", t), (1, "off", ins), (2, "off", outs), (3, "off", opv),
                      (4, "off", name)])
    fields = [(0, "Uint32", 3), (1, "off", offsets(codes)), (2, "off", offsets([subgraph])),
              (3, "off", b.CreateString("seed")), (4, "off", offsets(buffers))]
    b.Finish(table(fields), file_identifier=b"TFL3")
    return bytes(b.Output())


# ---------------------------------------------------------------- safetensors
def safetensors(tensors):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


# ---------------------------------------------------------------- annotations
LSP14 = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
         "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
         "left_wrist", "neck", "head_top"]
COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def annotations():
    lsp = {"joint_names": LSP14,
           "images": [{"file_name": "a.jpg",
                       "joints": [[10 + i, 20.5 + i, i % 2] for i in range(14)]},
                      {"file_name": "b.jpg", "joints": [[0, 0, 0]] * 14}]}
    write("annotations", "lsp.json", json.dumps(lsp, separators=(",", ":")))
    mpii = [{"image": "m.jpg", "joints": [[5 + j, 7 + j] for j in range(16)],
             "joints_vis": [1] * 15 + [0], "center": [12, 14], "scale": 0.5,
             "head_size": 8.5},
            {"image": "m.jpg", "joints": [[-1, -1]] * 16, "joints_vis": [0] * 16,
             "center": [1, 1], "scale": 1, "headbox": [[1, 2], [11, 14]]}]
    write("annotations", "mpii.json", json.dumps(mpii, separators=(",", ":")))
    kp = []
    for j in range(17):
        kp += [20 + j, 30 + j, 2 if j % 3 else 0]
    coco = {"images": [{"id": 1, "file_name": "c.jpg", "width": 64, "height": 64}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kp,
                             "num_keypoints": 11, "bbox": [18, 28, 20, 20], "area": 300.5,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person", "keypoints": COCO17,
                            "skeleton": [[16, 14]]}]}
    write("annotations", "coco.json", json.dumps(coco, separators=(",", ":")))
    results = [{"image_id": 1, "category_id": 1, "keypoints": [v + 0.5 for v in kp],
                "score": 0.9}]
    write("annotations", "coco_results.json", json.dumps(results, separators=(",", ":")))


# ---------------------------------------------------------------- ffprobe / showinfo
def video():
    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mkv")
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc=size=32x24:rate=25:duration=0.2", "-c:v", "ffv1", clip],
                       check=True)
        # The arguments of src/source/video.rs (FFPROBE_ARGS).
        args = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                "stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,duration"
                ":stream_side_data=rotation:stream_tags=rotate:format=duration",
                "-of", "json", "-i"]
        write("ffprobe", "mkv.json", subprocess.run(args + [clip], capture_output=True,
                                                    check=True).stdout)
        err = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "level+info", "-i", clip,
                              "-map", "0:v:0", "-vf", "showinfo=checksum=0", "-fps_mode",
                              "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-y",
                              os.devnull], capture_output=True, check=True).stderr
        write("showinfo", "ffmpeg_stderr.txt", err)
    # What ffprobe prints for a phone video with rotation metadata (both places it can be).
    write("ffprobe", "rotated_mp4.json", json.dumps({
        "programs": [], "streams": [{
            "width": 1920, "height": 1080, "r_frame_rate": "30000/1001",
            "avg_frame_rate": "0/0", "nb_frames": "41", "duration": "1.368033",
            "tags": {"rotate": "90"},
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}],
        "format": {"duration": "N/A"}}, indent=4))
    write("showinfo", "problems.txt",
          "[h264 @ 0x55d1] [error] corrupt macroblock 3 2\r"
          "[Parsed_showinfo_0 @ 0x1] [info] n:   0 pts:NOPTS pts_time:NOPTS pos: 1 s:2x2\n"
          "[mov,mp4 @ 0x2] [warning] stream 0, timescale not set\n"
          "[Parsed_showinfo_0 @ 0x1] [info] n:   1 pts:   512 pts_time:0.04 s:2x2 i:P\n"
          "[fatal] Conversion failed!\n")


def main():
    graphdefs()
    caffes()
    write("tflite", "conv_depthwise_f32.tflite", tflite_model(False))
    write("tflite", "conv_dequantize_f16.tflite", tflite_model(True))
    f32 = lambda vals: b"".join(struct.pack("<f", v) for v in vals)
    write("safetensors", "f32_f16_i64.safetensors", safetensors({
        "conv.weight": ("F32", [2, 1, 1, 1], f32([0.5, -0.5])),
        "conv.bias": ("F16", [2], struct.pack("<2e", 1.0, -2.0)),
        "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 7)),
    }))
    write("safetensors", "bf16_f64.safetensors", safetensors({
        "a": ("BF16", [2, 2], struct.pack("<4H", 0x3F80, 0x4000, 0xBF80, 0)),
        "b": ("F64", [1], struct.pack("<d", 0.125)),
    }))
    pth = os.path.join(ROOT, "tests", "data", "pth")
    for target, name in [("pth_zip", "zip_wrapped.pth"), ("pth_zip", "stems/u.pth"),
                         ("pth_legacy", "legacy_wrapped.pth")]:
        with open(os.path.join(pth, name), "rb") as f:
            write(target, os.path.basename(name), f.read())
    annotations()
    video()


if __name__ == "__main__":
    main()
