//! posegen-v1: deterministic weights generated from a tensor's name and shape, so that a
//! reimplementation and the original code can be compared without shipping checkpoints
//! (spec: `../shared/fixtures/posegen/README.md` §1).
//!
//! For a state_dict key `N` with shape `S` and `n` elements, `seed = FNV-1a-64(N)`; element
//! `i` (C order) draws `u ∈ [0, 1)` from a splitmix64-style stream, and the value is
//! computed in f64 and rounded once to f32 by the first rule that matches `N`:
//!
//! | key ends with | value |
//! |---|---|
//! | `running_mean` | `(2u − 1) · 0.2` |
//! | `running_var` | `0.5 + u` |
//! | `num_batches_tracked` | int64 `0` (0-dim) |
//! | `.weight`, 1 dim | `0.5 + u` |
//! | `.bias` | `(2u − 1) · 0.1` |
//! | `.weight`, ≥ 2 dims | `(2u − 1) · sqrt(6 / F) · G`, `F = n / S[0]` |
//!
//! `G` is one gain per model (0.45 for HigherHRNet, 1.0 for CPM).
//!
//! [`PosegenBackend`] serves these tensors to a `candle_nn::VarBuilder`: the model asks for
//! `(name, shape)` and gets the generated tensor, so a network built with
//! [`var_builder`] runs on posegen weights with no file. The [`Recorder`] it returns lists
//! every request, so a test can check the names and shapes against the original
//! state_dict's `keys.txt`.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

/// FNV-1a-64 offset basis.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a-64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// splitmix64 increment (the golden ratio).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The gain `G` for HigherHRNet (every width).
pub const GAIN_HIGHERHRNET: f64 = 0.45;
/// The gain `G` for CPM.
pub const GAIN_CPM: f64 = 1.0;
/// The gain `G` for the top-down HRNet (the same as HigherHRNet).
pub const GAIN_HRNET: f64 = 0.45;
/// The gain `G` for SimpleBaseline (ResNet).
pub const GAIN_SIMPLEBASELINE: f64 = 0.75;
/// The gain `G` for the 8-stack Stacked Hourglass.
pub const GAIN_HOURGLASS: f64 = 0.35;
/// The gain `G` for UniPose (LSP, ResNet-101 + WASP + decoder).
pub const GAIN_UNIPOSE: f64 = 0.65;
/// The gain `G` for UniPose-LSTM keys under `backbone.`, `wasp.` and `decoder.`.
pub const GAIN_UNIPOSE_LSTM_BODY: f64 = 0.65;
/// The gain `G` for every other UniPose-LSTM key (`lstm_0.*`, `lstm.*`, `conv1.*` … `conv5.*`).
pub const GAIN_UNIPOSE_LSTM_HEAD: f64 = 1.5;

/// The UniPose-LSTM gain of key `name`: [`GAIN_UNIPOSE_LSTM_BODY`] for the per-frame body
/// (`backbone.`, `wasp.`, `decoder.`), [`GAIN_UNIPOSE_LSTM_HEAD`] for the temporal head.
pub fn gain_unipose_lstm(name: &str) -> f64 {
    if ["backbone.", "wasp.", "decoder."]
        .iter()
        .any(|p| name.starts_with(p))
    {
        GAIN_UNIPOSE_LSTM_BODY
    } else {
        GAIN_UNIPOSE_LSTM_HEAD
    }
}

/// Why a tensor could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum PosegenError {
    #[error("posegen: tensor '{name}' with shape {shape:?} matches no posegen-v1 rule")]
    NoRule { name: String, shape: Vec<usize> },
    #[error("posegen: tensor '{name}' with shape {shape:?}: {message}")]
    BadShape {
        name: String,
        shape: Vec<usize>,
        message: &'static str,
    },
    #[error("posegen: tensor '{name}' needs its shape (get_unchecked is not supported)")]
    NeedsShape { name: String },
}

/// FNV-1a, 64 bit, over `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_BASIS, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The `i`-th (0-based) 64-bit output of the stream seeded with `seed` (splitmix64's
/// finaliser applied to `seed + (i + 1) · golden`).
pub fn stream_u64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th uniform draw in `[0, 1)`: the top 24 bits of [`stream_u64`], exactly.
pub fn stream_unit(seed: u64, i: u64) -> f64 {
    (stream_u64(seed, i) >> 40) as f64 / (1u64 << 24) as f64
}

/// Which posegen-v1 rule a key follows (the first that matches, in the spec's order).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    RunningMean,
    RunningVar,
    /// An int64 scalar 0; loaders skip it.
    NumBatchesTracked,
    /// A 1-dim `.weight` (BatchNorm gamma).
    NormWeight,
    Bias,
    /// A `.weight` with ≥ 2 dims, with fan-in `F = n / S[0]`.
    Weight {
        fan_in: usize,
    },
}

impl Rule {
    /// The rule for key `name` with `shape`, or `None` when no rule matches.
    pub fn of(name: &str, shape: &[usize]) -> Option<Rule> {
        if name.ends_with("running_mean") {
            Some(Rule::RunningMean)
        } else if name.ends_with("running_var") {
            Some(Rule::RunningVar)
        } else if name.ends_with("num_batches_tracked") {
            Some(Rule::NumBatchesTracked)
        } else if name.ends_with(".weight") && shape.len() == 1 {
            Some(Rule::NormWeight)
        } else if name.ends_with(".bias") {
            Some(Rule::Bias)
        } else if name.ends_with(".weight") && shape.len() >= 2 {
            let n: usize = shape.iter().product();
            let out = shape.first().copied().unwrap_or(0);
            Some(Rule::Weight {
                fan_in: n.checked_div(out).unwrap_or(0),
            })
        } else {
            None
        }
    }
}

/// The float values of key `name` with `shape` (C order), for gain `gain`. Errors for
/// `num_batches_tracked` (an integer; see [`tensor`]) and for keys matching no rule.
pub fn values(name: &str, shape: &[usize], gain: f64) -> Result<Vec<f32>, PosegenError> {
    let rule = Rule::of(name, shape).ok_or_else(|| PosegenError::NoRule {
        name: name.to_string(),
        shape: shape.to_vec(),
    })?;
    let bad = |message| PosegenError::BadShape {
        name: name.to_string(),
        shape: shape.to_vec(),
        message,
    };
    let n: usize = shape.iter().product();
    let seed = fnv1a64(name.as_bytes());
    let f: Box<dyn Fn(f64) -> f64> = match rule {
        Rule::RunningMean => Box::new(|u| (2.0 * u - 1.0) * 0.2),
        Rule::RunningVar | Rule::NormWeight => Box::new(|u| 0.5 + u),
        Rule::Bias => Box::new(|u| (2.0 * u - 1.0) * 0.1),
        Rule::Weight { fan_in } => {
            if fan_in == 0 {
                return Err(bad("a weight with no elements per output channel"));
            }
            let scale = (6.0 / fan_in as f64).sqrt();
            Box::new(move |u| ((2.0 * u - 1.0) * scale) * gain)
        }
        Rule::NumBatchesTracked => {
            return Err(bad("num_batches_tracked is an int64 counter, not floats"))
        }
    };
    Ok((0..n as u64)
        .map(|i| f(stream_unit(seed, i)) as f32)
        .collect())
}

/// The generated tensor for key `name` with `shape` on `device`: f32 values, or for
/// `num_batches_tracked` an int64 scalar 0 (whatever `shape` says).
pub fn tensor(
    name: &str,
    shape: &[usize],
    gain: f64,
    device: &Device,
) -> Result<Tensor, candle_core::Error> {
    if Rule::of(name, shape) == Some(Rule::NumBatchesTracked) {
        return Tensor::new(0i64, device);
    }
    let v = values(name, shape, gain).map_err(candle_core::Error::wrap)?;
    Tensor::from_vec(v, shape, device)
}

/// A tensor request: its full name and shape.
pub type Request = (String, Vec<usize>);

/// The `(name, shape)` of every tensor requested from a [`PosegenBackend`], in order.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Vec<Request>>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Vec<Request>> {
        // A panic while holding the lock cannot leave the list half-written.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every request so far, in order (repeats included).
    pub fn requests(&self) -> Vec<Request> {
        self.lock().clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn push(&self, name: &str, shape: &[usize]) {
        self.lock().push((name.to_string(), shape.to_vec()));
    }

    /// Compares the requests with an expected key list (e.g. a state_dict's `keys.txt`):
    /// every expected key that is not `num_batches_tracked` must be requested exactly
    /// once with its shape, and nothing else may be requested. Returns one line per
    /// problem (empty when everything matches).
    pub fn mismatches(&self, expected: &[Request]) -> Vec<String> {
        let requests = self.requests();
        let mut problems = Vec::new();
        let wanted: Vec<&Request> = expected
            .iter()
            .filter(|(k, s)| Rule::of(k, s) != Some(Rule::NumBatchesTracked))
            .collect();
        for (key, shape) in &wanted {
            let hits: Vec<&Vec<usize>> = requests
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, s)| s)
                .collect();
            match hits.as_slice() {
                [] => problems.push(format!("'{key}' {shape:?} was never requested")),
                [s] if *s == shape => {}
                [s] => problems.push(format!("'{key}' requested as {s:?}, expected {shape:?}")),
                many => problems.push(format!("'{key}' requested {} times", many.len())),
            }
        }
        for (key, shape) in &requests {
            if !wanted.iter().any(|(k, _)| k == key) {
                problems.push(format!("'{key}' {shape:?} is not an expected key"));
            }
        }
        problems
    }
}

/// A `VarBuilder` backend that generates every tensor with posegen-v1.
#[derive(Clone, Debug)]
pub struct PosegenBackend {
    gain: f64,
    recorder: Recorder,
}

impl PosegenBackend {
    /// A backend with gain `G` = `gain`.
    pub fn new(gain: f64) -> Self {
        Self {
            gain,
            recorder: Recorder::default(),
        }
    }

    /// The list of requests this backend (and its clones) received.
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }
}

impl SimpleBackend for PosegenBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.recorder.push(name, s.dims());
        let t = tensor(name, s.dims(), self.gain, dev)?;
        if t.dtype() == dtype || t.dtype() == DType::I64 {
            Ok(t)
        } else {
            t.to_dtype(dtype)
        }
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        Err(candle_core::Error::wrap(PosegenError::NeedsShape {
            name: name.to_string(),
        }))
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// A f32 `VarBuilder` on `device` whose tensors are posegen-v1 with gain `gain`, and the
/// recorder of what the model asked for.
pub fn var_builder(gain: f64, device: &Device) -> (VarBuilder<'static>, Recorder) {
    let backend = PosegenBackend::new(gain);
    let recorder = backend.recorder();
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
    (vb, recorder)
}

/// Parses a fixture `keys.txt` (`key<TAB>dtype<TAB>[d0, d1, …]` lines; `#` lines are
/// comments) into `(key, shape)` pairs in file order.
pub fn parse_keys(text: &str) -> Result<Vec<Request>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(key), Some(_dtype), Some(shape)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(format!(
                "keys.txt line {}: expected 3 tab-separated columns",
                n + 1
            ));
        };
        let inner = shape
            .trim()
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("keys.txt line {}: shape '{shape}' is not [..]", n + 1))?;
        let dims = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|e| format!("keys.txt line {}: dim '{s}': {e}", n + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((key.to_string(), dims));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fnv_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"conv1.weight"), 0x69a29a2cee47d254);
    }

    #[test]
    fn splitmix_first_value() {
        assert_eq!(stream_u64(0, 0), 0xe220a8397b1dcdaf);
    }

    #[test]
    fn readme_f32_bit_table() {
        let rows: [(&str, &[usize], f64, [u32; 3]); 8] = [
            (
                "stage4.2.branches.3.3.conv2.weight",
                &[256, 256, 3, 3],
                0.45,
                [0xbc3c2ba1, 0x3c409c3b, 0xbc864321],
            ),
            (
                "deconv_layers.0.0.0.weight",
                &[66, 32, 4, 4],
                0.45,
                [0xbc48f789, 0x3d307e62, 0x3cd8bcc0],
            ),
            (
                "stage3.1.fuse_layers.2.0.0.1.running_mean",
                &[32],
                0.45,
                [0xbe4139a0, 0x3e2dec58, 0xbe374468],
            ),
            (
                "layer1.0.bn3.running_var",
                &[256],
                0.45,
                [0x3fab2c12, 0x3f9c1d86, 0x3f504b35],
            ),
            (
                "transition2.2.0.1.weight",
                &[128],
                0.45,
                [0x3fa9c202, 0x3f7b746a, 0x3fb3b2a6],
            ),
            (
                "final_layers.0.bias",
                &[34],
                0.45,
                [0x3d9f8f68, 0x3db312e2, 0xbdcb4f8b],
            ),
            (
                "Mconv1_stage6.weight",
                &[128, 48, 11, 11],
                1.0,
                [0x3c1de86d, 0x3d00099c, 0xbc5e7a1c],
            ),
            (
                "conv7_stage1.bias",
                &[15],
                1.0,
                [0xbd0e11ad, 0x3d8cace5, 0xbd3f7433],
            ),
        ];
        for (name, shape, gain, bits) in rows {
            let v = values(name, shape, gain).unwrap();
            let got: Vec<u32> = v.iter().take(3).map(|x| x.to_bits()).collect();
            assert_eq!(got, bits.to_vec(), "{name}");
        }
    }

    #[test]
    fn rules_follow_the_spec_order() {
        assert_eq!(Rule::of("bn.running_mean", &[4]), Some(Rule::RunningMean));
        assert_eq!(
            Rule::of("bn.num_batches_tracked", &[]),
            Some(Rule::NumBatchesTracked)
        );
        assert_eq!(Rule::of("bn.weight", &[4]), Some(Rule::NormWeight));
        assert_eq!(
            Rule::of("c.weight", &[8, 4, 3, 3]),
            Some(Rule::Weight { fan_in: 36 })
        );
        assert_eq!(Rule::of("c.scale", &[4]), None);
        assert!(matches!(
            values("c.scale", &[4], 1.0),
            Err(PosegenError::NoRule { .. })
        ));
    }

    #[test]
    fn backend_generates_records_and_refuses_unchecked() {
        let dev = Device::Cpu;
        let (vb, rec) = var_builder(1.0, &dev);
        let t = vb.pp("conv7_stage1").get(15, "bias").unwrap();
        let want = values("conv7_stage1.bias", &[15], 1.0).unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), want);
        let n = vb.get((), "bn.num_batches_tracked").unwrap();
        assert_eq!(n.dtype(), DType::I64);
        assert!(vb.contains_tensor("anything"));
        let err = vb.get_unchecked("conv7_stage1.bias").unwrap_err();
        assert!(err.to_string().contains("conv7_stage1.bias"), "{err}");
        assert_eq!(
            rec.requests(),
            vec![
                ("conv7_stage1.bias".to_string(), vec![15]),
                ("bn.num_batches_tracked".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn parses_keys_and_reports_mismatches() {
        let keys =
            parse_keys("# h\na.weight\tfloat32\t[2, 3]\nbn.num_batches_tracked\tint64\t[]\n")
                .unwrap();
        assert_eq!(
            keys,
            vec![
                ("a.weight".to_string(), vec![2, 3]),
                ("bn.num_batches_tracked".to_string(), vec![]),
            ]
        );
        let rec = Recorder::default();
        rec.push("a.weight", &[2, 3]);
        assert!(rec.mismatches(&keys).is_empty());
        rec.push("a.weight", &[2, 3]);
        rec.push("b.bias", &[1]);
        assert_eq!(rec.mismatches(&keys).len(), 2);
    }
}
