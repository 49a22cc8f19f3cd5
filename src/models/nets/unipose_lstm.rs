//! UniPose-LSTM: the video model of Artacho, Savakis, "UniPose: Unified Human Pose
//! Estimation in Single Images and Videos", CVPR 2020. Each frame goes through the UniPose
//! body ([`crate::models::nets::unipose`]: ResNet-101, WASP without BN in its image-pooling branch, the
//! decoder); its maps and the pooled centre map feed a convolutional LSTM whose hidden
//! state is decoded into the heatmaps by five more convolutions.
//!
//! Built as in the official code `bmartacho/UniPose` (`model/uniposeLSTM.py`,
//! `model/modules/waspVideo.py`), Penn Action configuration, with the parameter names of
//! its `state_dict`:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | body | `backbone.*`, `wasp.*`, `decoder.*` | UniPose on the frame alone → `num_classes + 1` maps at stride 8 |
//! | `pool_center` | (none) | AvgPool 9×9 s8 p1 (padding counted) of the centre map → 1 map |
//! | `lstm_0` | `conv_{g,i,o}_lstm` | first frame: g = tanh, i = σ, o = σ; **cell = tanh(g·i)**, hide = o·cell |
//! | `lstm` | `conv_{g,i,o,f}{x,h}_lstm` | later frames: cell = f·c + i·g, hide = o·tanh(cell) |
//! | `conv1` … `conv5` | `weight`, `bias` | 11×11 ×3 (128 ch), 1×1, 1×1 → `num_classes + 1` maps, each followed by ReLU |
//!
//! Every gate conv is 3×3, padding 1, with bias; the gate convolutions of one step are run
//! as one fused convolution per input. The official `forward` also takes the previous
//! heatmap, which it never uses; it is not an input here.
//!
//! Input per frame: `[N, 3, H, W]` B,G,R, `(u8 − 128) / 256` (the UniPose recipe), and the
//! centre map `[N, 1, H, W]` (the CPM Gaussian, σ = 3, around the person's centre). The
//! official code hard-codes batch 1 at 368×368; any `N` and multiples of 16 work here.

use candle_core::{DType, Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::models::blocks::folded::Conv;
use crate::models::features::{CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{
    input_hw, Memory, PoseNet, RunOptions, RunOutput, RunTensors, StageTensors,
};
use crate::models::nets::unipose::{self, Unipose, UniposeOutputs};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// σ, in input pixels, of the Gaussian centre map the official Penn Action code builds
/// (the CPM recipe).
pub const CENTER_SIGMA: f64 = 3.0;

/// Width of the temporal head's convolutions.
const HEAD_CHANNELS: usize = 128;
/// Kernel of `conv1` … `conv3`.
const HEAD_KERNEL: usize = 11;

/// A UniPose-LSTM configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The per-frame UniPose body.
    pub body: unipose::Config,
}

impl Config {
    /// Penn Action: 13 joints + background (`num_classes=13`, output stride 16), 368×368.
    pub fn penn_action() -> Self {
        Self {
            body: unipose::Config::penn_action_body(),
        }
    }

    /// Channels of the LSTM input, cell and hidden maps: the body's maps plus the pooled
    /// centre map (15 for Penn Action).
    pub fn lstm_channels(&self) -> usize {
        self.body.outputs() + 1
    }

    /// Heatmaps out of `conv5` (`num_classes + 1`, 14 for Penn Action).
    pub fn outputs(&self) -> usize {
        self.body.outputs()
    }
}

/// The recurrent state carried from one frame to the next.
#[derive(Clone, Debug)]
pub struct LstmState {
    /// The LSTM cell map `[N, C, h, w]`.
    pub cell: Tensor,
    /// The LSTM hidden map `[N, C, h, w]`.
    pub hide: Tensor,
}

/// Every output and intermediate of one frame.
#[derive(Clone, Debug)]
pub struct UniposeLstmOutputs {
    /// `relu(conv5(…))`: `num_classes + 1` maps at stride 8, all ≥ 0.
    pub heatmaps: Tensor,
    /// The LSTM cell map after this frame.
    pub cell: Tensor,
    /// The LSTM hidden map after this frame.
    pub hide: Tensor,
    /// `pool_center(centermap)`: `[N, 1, h, w]`.
    pub pool_center: Tensor,
    /// Whether this frame used the first-frame cell `lstm_0` (no recurrent input).
    pub first_frame: bool,
    /// The per-frame UniPose body (its `heatmaps` are the decoder output).
    pub body: UniposeOutputs,
}

/// UniPose-LSTM with its weights (BatchNorm folded) on a device, and the temporal state.
#[derive(Clone, Debug)]
pub struct UniposeLstm {
    config: Config,
    body: Unipose,
    /// `lstm_0.conv_{g,i,o}_lstm`, fused: `3C` outputs in the order g, i, o.
    lstm0: Conv,
    /// `lstm.conv_{g,i,o,f}x_lstm`, fused: `4C` outputs in the order g, i, o, f.
    lstm_x: Conv,
    /// `lstm.conv_{g,i,o,f}h_lstm`, fused likewise.
    lstm_h: Conv,
    /// `conv1` … `conv5`, each with its ReLU.
    head: [Conv; 5],
    state: Option<LstmState>,
    device: Device,
}

/// Loads `{prefix}.conv_{gate}{suffix}_lstm` for every gate and fuses them into one
/// 3×3 convolution with the gates' outputs concatenated in `gates` order.
fn fused_gates(
    vb: &VarBuilder,
    prefix: &str,
    gates: &[&str],
    suffix: &str,
    c: usize,
) -> CResult<Conv> {
    let mut weights = Vec::with_capacity(gates.len());
    let mut biases = Vec::with_capacity(gates.len());
    for g in gates {
        let v = vb.pp(prefix).pp(format!("conv_{g}{suffix}_lstm"));
        weights.push(v.get((c, c, 3, 3), "weight")?);
        biases.push(v.get(c, "bias")?);
    }
    Conv::new(
        Tensor::cat(&weights, 0)?,
        Tensor::cat(&biases, 0)?,
        1,
        false,
    )
}

impl UniposeLstm {
    /// Builds the network from `vb` (official parameter names). Every `state_dict` tensor
    /// except `num_batches_tracked`, `decoder.conv2.*` and `decoder.bn2.*` is read exactly
    /// once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        let body = Unipose::load(vb.clone(), config.body.clone())?;
        let c = config.lstm_channels();
        let lstm0 = fused_gates(&vb, "lstm_0", &["g", "i", "o"], "", c)?;
        let lstm_x = fused_gates(&vb, "lstm", &["g", "i", "o", "f"], "x", c)?;
        let lstm_h = fused_gates(&vb, "lstm", &["g", "i", "o", "f"], "h", c)?;
        let conv = |name: &str, cin: usize, cout: usize, k: usize| {
            Conv::with_bias_strided(&vb, name, (cin, cout), k, 1, true)
        };
        let h = HEAD_CHANNELS;
        let head = [
            conv("conv1", c, h, HEAD_KERNEL)?,
            conv("conv2", h, h, HEAD_KERNEL)?,
            conv("conv3", h, h, HEAD_KERNEL)?,
            conv("conv4", h, h, 1)?,
            conv("conv5", h, config.outputs(), 1)?,
        ];
        Ok(Self {
            config,
            body,
            lstm0,
            lstm_x,
            lstm_h,
            head,
            state: None,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The state after the last frame (`None` before the first frame or after a reset).
    pub fn state(&self) -> Option<&LstmState> {
        self.state.as_ref()
    }

    /// Forgets the temporal state: the next frame is a first frame (`lstm_0`).
    pub fn reset(&mut self) {
        self.state = None;
    }

    /// Runs one frame of a sequence (`frame` `[N, 3, H, W]`, `center_map` `[N, 1, H, W]`)
    /// and keeps its state for the next call: the first frame after loading or
    /// [`reset`](Self::reset) uses `lstm_0`, later ones `lstm`.
    pub fn forward(&mut self, frame: &Tensor, center_map: &Tensor) -> CResult<UniposeLstmOutputs> {
        let out = self.step(frame, center_map, self.state.as_ref())?;
        self.state = Some(LstmState {
            cell: out.cell.clone(),
            hide: out.hide.clone(),
        });
        Ok(out)
    }

    /// [`UniposeLstm::forward`] with the wall time of each step: the body's `stem`,
    /// `layer1` … `layer4`, `wasp`, `decoder`, then `lstm` (with the centre pooling) and
    /// `head`.
    pub fn forward_profiled(
        &mut self,
        frame: &Tensor,
        center_map: &Tensor,
    ) -> CResult<(UniposeLstmOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(9);
        let mut clock = StepClock::new(&self.device, Some(&mut times));
        let out = self.forward_steps(frame, center_map, self.state.as_ref(), &mut clock)?;
        self.state = Some(LstmState {
            cell: out.cell.clone(),
            hide: out.hide.clone(),
        });
        Ok((out, times))
    }

    /// One frame from an explicit state (`None`: a first frame), without touching the
    /// stored state.
    pub fn step(
        &self,
        frame: &Tensor,
        center_map: &Tensor,
        previous: Option<&LstmState>,
    ) -> CResult<UniposeLstmOutputs> {
        let mut clock = StepClock::new(&self.device, None);
        self.forward_steps(frame, center_map, previous, &mut clock)
    }

    fn forward_steps(
        &self,
        frame: &Tensor,
        center_map: &Tensor,
        previous: Option<&LstmState>,
        clock: &mut StepClock,
    ) -> CResult<UniposeLstmOutputs> {
        let (n, _, h, w) = frame.dims4()?;
        let (cn, cc, ch, cw) = center_map.dims4()?;
        if (cn, cc, ch, cw) != (n, 1, h, w) {
            candle_core::bail!(
                "UniPose-LSTM: centre map {:?} does not match the frame {:?} (want [N, 1, H, W])",
                center_map.dims(),
                frame.dims()
            );
        }
        let body = self.body.forward_steps(frame, clock)?;
        // AvgPool2d(9, stride 8, padding 1), zero padding counted in the mean.
        let pool_center = center_map
            .to_dtype(DType::F32)?
            .pad_with_zeros(2, 1, 1)?
            .pad_with_zeros(3, 1, 1)?
            .avg_pool2d_with_stride(9, 8)?;
        let x = Tensor::cat(&[&body.heatmaps, &pool_center], 1)?;
        let c = self.config.lstm_channels();
        let (cell, hide) = match previous {
            None => {
                let gates = self.lstm0.forward(&x)?;
                let g = gates.narrow(1, 0, c)?.tanh()?;
                let i = candle_nn::ops::sigmoid(&gates.narrow(1, c, c)?)?;
                let o = candle_nn::ops::sigmoid(&gates.narrow(1, 2 * c, c)?)?;
                // The official first-frame gate: tanh of g·i, not g·i.
                let cell = (g * i)?.tanh()?;
                let hide = (o * &cell)?;
                (cell, hide)
            }
            Some(state) => {
                let gates = (self.lstm_x.forward(&x)? + self.lstm_h.forward(&state.hide)?)?;
                let g = gates.narrow(1, 0, c)?.tanh()?;
                let i = candle_nn::ops::sigmoid(&gates.narrow(1, c, c)?)?;
                let o = candle_nn::ops::sigmoid(&gates.narrow(1, 2 * c, c)?)?;
                let f = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * c, c)?)?;
                let cell = ((f * &state.cell)? + (i * g)?)?;
                let hide = (o * cell.tanh()?)?;
                (cell, hide)
            }
        };
        clock.lap("lstm")?;
        let heatmaps = self
            .head
            .iter()
            .try_fold(hide.clone(), |y, conv| conv.forward(&y))?;
        clock.lap("head")?;
        Ok(UniposeLstmOutputs {
            heatmaps,
            cell,
            hide,
            pool_center,
            first_frame: previous.is_none(),
            body,
        })
    }
}

/// UniPose-LSTM (official `uniposeLSTM.py` names), on video with its recurrent state.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "unipose-lstm",
    name: "UniPose-LSTM (UniPose per frame + convolutional LSTM over the video, heatmaps at 1/8)",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

fn load_checkpoint(
    info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    let body = unipose::config_of_checkpoint(&store, info)?;
    let (vb, usage) = crate::weights::varbuilder::var_builder(store, DType::F32, device);
    let net = UniposeLstm::load(vb, Config { body })?;
    let mut unused_keys = usage.unused_keys();
    // As UniPose: the decoder's `conv2` / `bn2` are never applied.
    unused_keys.retain(|k| !unipose::expected_unused(k));
    Ok(Loaded {
        net: Box::new(Recurrent::new(net)),
        unused_keys,
    })
}

/// UniPose-LSTM with its recurrent state behind a lock, so that [`PoseNet::run`] (`&self`)
/// can carry it from frame to frame. Cloning copies the state as it is (tensors are
/// immutable and shared, so this is cheap): a clone continues from the same point and
/// evolves independently afterwards.
#[derive(Debug)]
struct Recurrent {
    net: std::sync::Mutex<UniposeLstm>,
    center: crate::models::nets::cpm::CenterCache,
}

impl Recurrent {
    fn new(net: UniposeLstm) -> Self {
        Self {
            net: std::sync::Mutex::new(net),
            center: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UniposeLstm> {
        // A panic while holding the lock leaves at worst a stale state, never a torn one
        // (the state is replaced in one assignment).
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PoseNet for Recurrent {
    fn run(&self, input: &Tensor, options: &RunOptions) -> CResult<RunOutput> {
        let (h, w) = input_hw(input)?;
        let (cx, cy) = options.center_or_middle((w, h));
        let center = self
            .center
            .get(w, h, (cx, cy), CENTER_SIGMA, input.device())?;
        let mut net = self.lock();
        if options.memory == Memory::Reset {
            net.reset();
        }
        let (out, times) = net.forward_profiled(input, &center)?;
        let body = net.config().body.clone();
        drop(net);
        let label = if out.first_frame {
            "heatmaps (first frame)"
        } else {
            "heatmaps (with memory)"
        };
        let stage = StageTensors::heatmaps(label, "heatmaps", &out.heatmaps);
        RunTensors {
            stages: vec![stage],
            features: features(&body, &out)?,
            steps: times,
        }
        .fetch()
    }

    fn takes_center(&self) -> bool {
        true
    }

    fn is_temporal(&self) -> bool {
        true
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(Self::new(self.lock().clone()))
    }
}

/// UniPose-LSTM's features: the LSTM's cell and hidden maps after this frame (what it
/// carries to the next), the pooled centre map, then the per-frame body's (see
/// [`unipose::features`]). Every LSTM cell sees the whole input (WASP's image pooling).
fn features(body: &unipose::Config, out: &UniposeLstmOutputs) -> CResult<Vec<FeatureTensor>> {
    let mut features = vec![
        FeatureTensor::new(
            "lstm.cell",
            "LSTM cell state (carried to the next frame)",
            &out.cell,
            CellField::WholeInput,
        )?,
        FeatureTensor::new(
            "lstm.hidden",
            "LSTM hidden state (fed to the head)",
            &out.hide,
            CellField::WholeInput,
        )?,
    ];
    features.extend(unipose::features(body, &out.body)?);
    Ok(features)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn penn_action_has_14_maps_and_15_lstm_channels() {
        let c = Config::penn_action();
        assert_eq!(c.outputs(), 14);
        assert_eq!(c.lstm_channels(), 15);
        assert!(!c.body.global_bn);
    }
}
