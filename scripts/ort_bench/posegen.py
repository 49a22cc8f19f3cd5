"""posegen-v1: the deterministic weight generator of shared/fixtures/posegen/README.md, in numpy.

seed = FNV-1a-64(key); value i from splitmix64(seed + (i+1)*golden); u = top 24 bits / 2^24;
the per-key rule maps u to the tensor's value (f64, rounded once to f32).
"""

import hashlib
import math

import numpy as np

_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & _M64
    return h


def splitmix_u(seed: int, n: int) -> np.ndarray:
    """u_i in [0, 1) (float64) for i in 0..n, all arithmetic wrapping uint64."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def generate(name: str, shape, gain: float) -> np.ndarray:
    """The posegen-v1 tensor for state_dict key `name` with `shape` (float32, or int64 0 for
    num_batches_tracked)."""
    shape = tuple(int(s) for s in shape)
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    n = int(np.prod(shape)) if shape else 1
    u = splitmix_u(fnv1a64(name.encode("utf-8")), n)
    if name.endswith("running_mean"):
        v = (2.0 * u - 1.0) * 0.2
    elif name.endswith("running_var"):
        v = 0.5 + u
    elif name.endswith(".weight") and len(shape) == 1:
        v = 0.5 + u
    elif name.endswith(".bias"):
        v = (2.0 * u - 1.0) * 0.1
    elif name.endswith(".weight") and len(shape) >= 2:
        fan = n // shape[0]
        v = ((2.0 * u - 1.0) * math.sqrt(6.0 / float(fan))) * gain
    else:
        raise ValueError(f"posegen-v1 has no rule for key {name!r}")
    return v.astype(np.float32).reshape(shape)


def read_keys(path):
    """keys.txt -> list of (key, dtype, shape) in state_dict order."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, dtype, shape = line.split("\t")
            dims = [int(s) for s in shape.strip("[]").split(",") if s.strip()]
            out.append((key, dtype, tuple(dims)))
    return out


def read_sha256(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                k, h = line.split("\t")
                out[k] = h
    return out


def self_test():
    """The README's test vectors; raises AssertionError on a mismatch."""
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"conv1.weight") == 0x69A29A2CEE47D254
    with np.errstate(over="ignore"):
        z = np.uint64(0) + np.uint64(1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
        z = z ^ (z >> np.uint64(31))
    assert int(z) == 0xE220A8397B1DCDAF
    vectors = [
        ("stage4.2.branches.3.3.conv2.weight", [256, 256, 3, 3], 0.45, "bc3c2ba1 3c409c3b bc864321"),
        ("deconv_layers.0.0.0.weight", [66, 32, 4, 4], 0.45, "bc48f789 3d307e62 3cd8bcc0"),
        ("stage3.1.fuse_layers.2.0.0.1.running_mean", [32], 0.45, "be4139a0 3e2dec58 be374468"),
        ("layer1.0.bn3.running_var", [256], 0.45, "3fab2c12 3f9c1d86 3f504b35"),
        ("transition2.2.0.1.weight", [128], 0.45, "3fa9c202 3f7b746a 3fb3b2a6"),
        ("final_layers.0.bias", [34], 0.45, "3d9f8f68 3db312e2 bdcb4f8b"),
        ("Mconv1_stage6.weight", [128, 48, 11, 11], 1.0, "3c1de86d 3d00099c bc5e7a1c"),
        ("conv7_stage1.bias", [15], 1.0, "bd0e11ad 3d8cace5 bd3f7433"),
    ]
    for key, shape, g, want in vectors:
        got = " ".join(f"{b:08x}" for b in generate(key, shape, g).reshape(-1)[:3].view(np.uint32))
        assert got == want, f"posegen test vector {key}: got {got}, want {want}"


def generate_state_dict(keys_txt, sha_txt, gain, check_sha=True):
    """Every non-num_batches_tracked key of keys.txt, generated and (optionally) checked
    against posegen_sha256.txt. Returns an ordered dict name -> float32 array."""
    keys = read_keys(keys_txt)
    sha = read_sha256(sha_txt) if check_sha else {}
    out = {}
    bad = []
    for key, dtype, shape in keys:
        t = generate(key, shape, gain)
        if check_sha:
            h = hashlib.sha256(np.ascontiguousarray(t).astype(t.dtype.newbyteorder("<")).tobytes()).hexdigest()
            if sha.get(key) != h:
                bad.append(key)
        if not key.endswith("num_batches_tracked"):
            out[key] = t
    if bad:
        raise AssertionError(f"posegen sha256 mismatch for {len(bad)} keys, e.g. {bad[:3]}")
    return out
