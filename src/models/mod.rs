//! Networks (one file per family), the catalogue, and a loaded-model handle that turns a
//! preprocessed input into every stage's maps.

pub mod bias_act;
pub mod catalog;
pub(crate) mod checkpoint_shapes;
pub mod cpm;
pub(crate) mod cpu_util;
pub mod depthwise_cpu;
pub mod features;
pub mod flops;
pub(crate) mod folded;
pub mod higher_hrnet;
pub mod hrnet;
pub mod hrnet_backbone;
pub mod im2col_cpu;
pub mod mobile_blocks;
pub mod openpose_mobilenet;
pub mod ops;
pub mod pefm_cpm;
pub mod pefm_hourglass;
pub mod pointwise_cpu;
pub mod receptive;
pub mod simple_baseline;
pub mod stacked_hourglass;
pub mod timing;
pub mod unipose;
pub mod unipose_lstm;
pub mod winograd_cpu;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use catalog::{
    Architecture, Background, Decoding, ModelInfo, WeightsLocation, CATALOG, DEFAULT_MODEL,
    TOPDOWN_BOX_PADDING,
};
pub use features::{CellField, FeatureMap};
pub use receptive::ReceptiveField;
pub use timing::{StepClock, StepTime};

use crate::pose::{JointSet, Maps};
use crate::weights::{self, TensorStore, WeightsError};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model '{name}': not a catalogue id ({known}) and no such file")]
    Unknown { name: String, known: String },
    #[error(
        "cannot tell the format of weights file '{0}': expected a TensorFlow frozen graph (.pb), \
         a TFLite file (.tflite: mobile CPM / hourglass), a Caffe model (.caffemodel: CPM) or a \
         PyTorch checkpoint / safetensors file (.pth, .pth.tar, .safetensors: HigherHRNet, \
         official or MMPose naming; top-down HRNet, SimpleBaseline, Stacked Hourglass; \
         UniPose; CPM PyTorch port)"
    )]
    UnknownFormat(String),
    #[error("model '{id}' cannot be built from '{file}': {source}")]
    Build {
        id: String,
        file: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error(
        "no trained weights are present for model '{id}': its weights file '{file}' was not \
         found in {dirs}. {hint}"
    )]
    NotPresent {
        id: String,
        file: String,
        dirs: String,
        /// How to supply the file.
        hint: String,
    },
    #[error(transparent)]
    Weights(#[from] Box<WeightsError>),
    #[error("running model '{id}': {source}")]
    Run {
        id: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// One stage's maps on the CPU, `[K, H, W]`. Stages of one model may differ in resolution
/// (e.g. the levels of an hourglass); each map grid spans the whole network input.
#[derive(Clone, Debug, PartialEq)]
pub struct StageOutput {
    /// What the stage is called in the model (e.g. `stage 3`, `hourglass_out_1`).
    pub label: String,
    /// The stage's name in the maps file (`{key}.heatmaps`, `{key}.pafs`, `{key}.tags`):
    /// `stage{t}` (1-based) for staged networks, `res0` / `res1` / `aggregated` for
    /// HigherHRNet's resolutions.
    pub key: String,
    /// Joint confidence maps: the joints in the model's [`JointSet`] order first, then any
    /// background channel (moved there from wherever the network puts it).
    pub heatmaps: Maps,
    /// Part affinity fields, for PAF models.
    pub pafs: Option<Maps>,
    /// Associative-embedding tag maps `[K, H, W]` (one tag per joint), for bottom-up AE
    /// models (HigherHRNet); with flip test or several scales, the tag dimensions are
    /// stacked as `K × L` channels, dimension-major (`l * K + k`).
    pub tags: Option<Maps>,
}

/// What [`Model::run`] returns: every stage's maps, the intermediate activations the model
/// exposes (empty for most), and the time of each step.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    pub stages: Vec<StageOutput>,
    pub features: Vec<FeatureMap>,
    pub steps: Vec<StepTime>,
}

impl RunOutput {
    /// Stages without features.
    fn stages(stages: Vec<StageOutput>, steps: Vec<StepTime>) -> Self {
        Self {
            stages,
            features: Vec::new(),
            steps,
        }
    }
}

/// Per-frame inputs of a run besides the image.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// The person's centre in network-input pixels, for single-person models that take a
    /// centre map (CPM, UniPose-LSTM); `None` = the centre of the input.
    pub center: Option<(f64, f64)>,
    /// Temporal models (UniPose-LSTM): whether this frame continues the clip of the
    /// previous run or starts a new one. Ignored by the other models.
    pub memory: Memory,
}

/// How a temporal model ([`Model::is_temporal`]) treats its recurrent state on a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Memory {
    /// The frame follows the previous run's frame: the state kept from that run is fed in
    /// (a first frame when there is none yet), and the new state is kept.
    #[default]
    Carry,
    /// The frame is the first of a clip (after a seek, on a new source, or always for the
    /// "without memory" comparison): the stored state is dropped, the first-frame cell is
    /// used, and the new state is kept for the next [`Memory::Carry`] run.
    Reset,
}

/// UniPose-LSTM with its recurrent state behind a lock, so that [`Model::run`] (`&self`)
/// can carry it from frame to frame. Cloning copies the state as it is (tensors are
/// immutable and shared, so this is cheap): a clone continues from the same point and
/// evolves independently afterwards.
#[derive(Debug)]
struct Recurrent {
    net: std::sync::Mutex<unipose_lstm::UniposeLstm>,
}

impl Recurrent {
    fn new(net: unipose_lstm::UniposeLstm) -> Self {
        Self {
            net: std::sync::Mutex::new(net),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, unipose_lstm::UniposeLstm> {
        // A panic while holding the lock leaves at worst a stale state, never a torn one
        // (the state is replaced in one assignment).
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clone for Recurrent {
    fn clone(&self) -> Self {
        Self::new(self.lock().clone())
    }
}

/// The networks the crate can run.
#[derive(Clone, Debug)]
enum Network {
    OpenPoseMobileNet(openpose_mobilenet::OpenPoseMobileNet),
    Cpm(cpm::Cpm),
    PefmCpm(pefm_cpm::PefmCpm),
    PefmHourglass(pefm_hourglass::PefmHourglass),
    HigherHrnet(higher_hrnet::HigherHrnet),
    TopDownHrnet(Box<hrnet::Hrnet>),
    SimpleBaseline(Box<simple_baseline::SimpleBaseline>),
    StackedHourglass(Box<stacked_hourglass::StackedHourglass>),
    Unipose(Box<unipose::Unipose>),
    UniposeLstm(Box<Recurrent>),
}

/// A model ready to run: its catalogue facts and its network on a device.
#[derive(Clone, Debug)]
pub struct Model {
    id: String,
    info: &'static ModelInfo,
    network: Network,
    device: Device,
    /// Checkpoint keys the network did not read (see [`Model::unused_keys`]).
    unused_keys: Vec<String>,
}

impl Model {
    /// Loads a catalogue model by id or alias, or a weights file by path (its architecture
    /// taken from its format; for PyTorch / safetensors checkpoints from its keys, see
    /// `top_down_entry`). Checkpoint keys the network does not read are kept in
    /// [`Model::unused_keys`].
    pub fn load(name_or_path: &str, device: &Device) -> Result<Model, ModelError> {
        if let Some(info) = catalog::find(name_or_path) {
            let bytes = match info.weights {
                WeightsLocation::Embedded(b) => std::borrow::Cow::Borrowed(b),
                WeightsLocation::File(file) => {
                    let path = info.locate().ok_or_else(|| not_present(info, file))?;
                    std::borrow::Cow::Owned(weights::read_file(Path::new(&path)).map_err(Box::new)?)
                }
            };
            let label = match info.weights {
                WeightsLocation::Embedded(_) => format!("embedded {}", info.file_name),
                WeightsLocation::File(f) => f.to_string(),
            };
            return Self::from_bytes(info, info.id.to_string(), &bytes, &label, device);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(ModelError::Unknown {
                name: name_or_path.to_string(),
                known: CATALOG.iter().map(|m| m.id).collect::<Vec<_>>().join(", "),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let bytes = weights::read_file(path).map_err(Box::new)?;
        let label = path.display().to_string();
        let stem = |info: &ModelInfo| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .map(|s| s.trim_end_matches(".pth"))
                .unwrap_or(info.id)
                .to_string()
        };
        if let Some("pth" | "pt" | "tar" | "bin" | "safetensors") = ext.as_deref() {
            // A PyTorch-side checkpoint: HigherHRNet (official or MMPose names), a top-down
            // network, UniPose or the CPM port, told apart by its keys.
            let store = checkpoint_store(&bytes, &label, device)?;
            let info = if higher_hrnet_keys(&store) {
                higher_hrnet_entry(&store)
            } else if let Some(info) = top_down_entry(&store) {
                Some(info)
            } else if let Some(info) = unipose_entry(&store) {
                Some(info)
            } else if unipose_lstm_keys(&store) {
                catalog::find("unipose-lstm-penn")
            } else {
                catalog::find("cpm-lsp-pytorch")
            }
            .ok_or_else(|| ModelError::UnknownFormat(label.clone()))?;
            return Self::from_store(info, stem(info), store, &label, device);
        }
        let info = match ext.as_deref() {
            Some("pb") => catalog::find(DEFAULT_MODEL),
            Some("tflite") => Some(guess_tflite(&bytes)),
            Some("caffemodel") => Some(guess_cpm_caffe(&bytes)),
            _ => None,
        }
        .ok_or_else(|| ModelError::UnknownFormat(label.clone()))?;
        Self::from_bytes(info, stem(info), &bytes, &label, device)
    }

    /// Loads the catalogue model `id` (or alias) with the weights in `weights` instead of
    /// its own file (`posescope infer --model higherhrnet-w32-512 --weights my.pth`). The
    /// file is read in the architecture's format; for HigherHRNet any width loads (the
    /// configuration comes from the tensor shapes) and MMPose names are mapped; likewise any
    /// width / ResNet depth / stack count for the top-down HRNet, SimpleBaseline and
    /// Stacked Hourglass.
    pub fn load_with_weights(
        id: &str,
        weights: &Path,
        device: &Device,
    ) -> Result<Model, ModelError> {
        let info = catalog::find(id).ok_or_else(|| ModelError::Unknown {
            name: id.to_string(),
            known: CATALOG.iter().map(|m| m.id).collect::<Vec<_>>().join(", "),
        })?;
        let bytes = weights::read_file(weights).map_err(Box::new)?;
        Self::from_bytes(
            info,
            info.id.to_string(),
            &bytes,
            &weights.display().to_string(),
            device,
        )
    }

    /// Builds a checkpoint-based network (CPM, HigherHRNet) from an already read store.
    fn from_store(
        info: &'static ModelInfo,
        id: String,
        store: TensorStore,
        label: &str,
        device: &Device,
    ) -> Result<Model, ModelError> {
        let build_err = |source| ModelError::Build {
            id: id.clone(),
            file: label.to_string(),
            source: Box::new(source),
        };
        let (network, unused_keys) = match info.architecture {
            Architecture::HigherHrnet => {
                let mmpose = weights::mmpose::is_mmpose(store.names());
                // Errors name tensors by their official names; say so for MMPose files.
                let note = |e: candle_core::Error| {
                    if mmpose {
                        e.context(
                            "an MMPose checkpoint: tensor names below are the official ones, \
                             which the file has under 'backbone.' / 'keypoint_head.'",
                        )
                    } else {
                        e
                    }
                };
                let store = weights::mmpose::to_official(store);
                let config = higher_hrnet::Config::from_shapes(|k| {
                    store.get_any(k).ok().map(|t| t.dims().to_vec())
                })
                .map_err(|e| build_err(note(candle_core::Error::wrap(e))))?;
                let (vb, usage) =
                    weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
                let net = Network::HigherHrnet(
                    higher_hrnet::HigherHrnet::load(vb, config).map_err(|e| build_err(note(e)))?,
                );
                (net, usage.unused_keys())
            }
            Architecture::TopDownHrnet
            | Architecture::SimpleBaseline
            | Architecture::StackedHourglass => {
                let shape = |k: &str| store.get_any(k).ok().map(|t| t.dims().to_vec());
                let (h, w) = (info.input_size.1 as usize, info.input_size.0 as usize);
                let (vb, usage) = match info.architecture {
                    Architecture::TopDownHrnet => {
                        let config =
                            hrnet::Config::from_shapes(shape, (h, w)).map_err(build_err)?;
                        let (vb, usage) = weights::varbuilder::var_builder(
                            store,
                            candle_core::DType::F32,
                            device,
                        );
                        let net = hrnet::Hrnet::load(vb, config).map_err(build_err)?;
                        (Network::TopDownHrnet(Box::new(net)), usage)
                    }
                    Architecture::SimpleBaseline => {
                        let config = simple_baseline::Config::from_shapes(shape, (h, w))
                            .map_err(build_err)?;
                        let (vb, usage) = weights::varbuilder::var_builder(
                            store,
                            candle_core::DType::F32,
                            device,
                        );
                        let net =
                            simple_baseline::SimpleBaseline::load(vb, config).map_err(build_err)?;
                        (Network::SimpleBaseline(Box::new(net)), usage)
                    }
                    _ => {
                        let config = stacked_hourglass::Config::from_shapes(shape, (h, w))
                            .map_err(build_err)?;
                        let (vb, usage) = weights::varbuilder::var_builder(
                            store,
                            candle_core::DType::F32,
                            device,
                        );
                        let net = stacked_hourglass::StackedHourglass::load(vb, config)
                            .map_err(build_err)?;
                        (Network::StackedHourglass(Box::new(net)), usage)
                    }
                };
                let mut unused = usage.unused_keys();
                // The hourglass's `skip_layer`s exist in every Residual but are applied only
                // where the width changes; the unread ones are expected.
                if matches!(vb, Network::StackedHourglass(_)) {
                    unused.retain(|k| !k.contains(".skip_layer."));
                }
                (vb, unused)
            }
            Architecture::CpmLsp | Architecture::CpmMpii => {
                let mut config = match info.architecture {
                    Architecture::CpmMpii => cpm::Config::mpii(),
                    _ => cpm::Config::lsp(),
                };
                config.joints = info.joints.len();
                // The Caffe release's test code uses sigma 21 for every model; the PyTorch
                // port's `cpm_test.py` uses 3.
                config.center_sigma = if info.background == Background::First {
                    3.0
                } else {
                    21.0
                };
                let (vb, usage) =
                    weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
                (
                    Network::Cpm(cpm::Cpm::load(vb, config).map_err(build_err)?),
                    usage.unused_keys(),
                )
            }
            Architecture::Unipose => {
                let config = unipose_config(&store, info).map_err(build_err)?;
                let (vb, usage) =
                    weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
                let net = unipose::Unipose::load(vb, config).map_err(build_err)?;
                let mut unused = usage.unused_keys();
                // `decoder.conv2` / `decoder.bn2` are in every official checkpoint but never
                // applied (their call is commented out in the official decoder).
                unused
                    .retain(|k| !k.starts_with("decoder.conv2.") && !k.starts_with("decoder.bn2."));
                (Network::Unipose(Box::new(net)), unused)
            }
            Architecture::UniposeLstm => {
                let body = unipose_config(&store, info).map_err(build_err)?;
                let (vb, usage) =
                    weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
                let net = unipose_lstm::UniposeLstm::load(vb, unipose_lstm::Config { body })
                    .map_err(build_err)?;
                let mut unused = usage.unused_keys();
                // As UniPose: the decoder's `conv2` / `bn2` are never applied.
                unused
                    .retain(|k| !k.starts_with("decoder.conv2.") && !k.starts_with("decoder.bn2."));
                (Network::UniposeLstm(Box::new(Recurrent::new(net))), unused)
            }
            Architecture::OpenPoseMobileNetThin
            | Architecture::PefmCpm
            | Architecture::PefmHourglass => {
                return Err(ModelError::UnknownFormat(label.to_string()));
            }
        };
        Ok(Model {
            id,
            info,
            network,
            device: device.clone(),
            unused_keys,
        })
    }

    fn from_bytes(
        info: &'static ModelInfo,
        id: String,
        bytes: &[u8],
        label: &str,
        device: &Device,
    ) -> Result<Model, ModelError> {
        let network = match info.architecture {
            Architecture::OpenPoseMobileNetThin => {
                let store = weights::load_graphdef(bytes, label, device).map_err(Box::new)?;
                Network::OpenPoseMobileNet(
                    openpose_mobilenet::OpenPoseMobileNet::load(
                        &store,
                        openpose_mobilenet::Config::mobilenet_thin(),
                        device,
                    )
                    .map_err(Box::new)?,
                )
            }
            Architecture::PefmCpm => {
                let store = weights::tflite::load_tflite(bytes, label, device).map_err(Box::new)?;
                Network::PefmCpm(
                    pefm_cpm::PefmCpm::load(&store, pefm_cpm::Config::released(), device)
                        .map_err(Box::new)?,
                )
            }
            Architecture::PefmHourglass => {
                let store = weights::tflite::load_tflite(bytes, label, device).map_err(Box::new)?;
                Network::PefmHourglass(
                    pefm_hourglass::PefmHourglass::load(
                        &store,
                        pefm_hourglass::Config::released(),
                        device,
                    )
                    .map_err(Box::new)?,
                )
            }
            Architecture::CpmLsp
            | Architecture::CpmMpii
            | Architecture::HigherHrnet
            | Architecture::TopDownHrnet
            | Architecture::SimpleBaseline
            | Architecture::StackedHourglass
            | Architecture::Unipose
            | Architecture::UniposeLstm => {
                let store = checkpoint_store(bytes, label, device)?;
                return Self::from_store(info, id, store, label, device);
            }
        };
        Ok(Model {
            id,
            info,
            network,
            device: device.clone(),
            unused_keys: Vec::new(),
        })
    }

    /// The id shown in outputs: the catalogue id, or the weights file's stem.
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn info(&self) -> &'static ModelInfo {
        self.info
    }
    pub fn joints(&self) -> &'static JointSet {
        self.info.joints
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Keys of the checkpoint the network did not read, sorted: worth a note to the user (a
    /// renamed layer, a checkpoint of a bigger variant, an optimizer state), never an error.
    /// Empty for formats that are not read key by key, and without the Stacked Hourglass's
    /// `skip_layer`s, which the official model holds but never applies where the width
    /// stays the same.
    pub fn unused_keys(&self) -> &[String] {
        &self.unused_keys
    }

    /// Runs the network on `input` (`[1, 3, H, W]` as the model expects it) and returns every
    /// stage's maps and the exposed features on the CPU, with the time of each step.
    ///
    /// The forward runs on a thread of rayon's pool (the caller waits), so that the CPU
    /// kernels' parallel loops start there instead of being handed from the caller's thread
    /// to the pool and back once per operation: with `RAYON_NUM_THREADS=1` every loop then
    /// runs inline, and the pool's thread no longer spins between the hand-offs. The work it
    /// counts ([`flops`]) is handed back to the caller's thread.
    pub fn run(&self, input: &Tensor, options: &RunOptions) -> Result<RunOutput, ModelError> {
        let (out, work) = rayon::scope(|_| flops::count(|| self.run_here(input, options)));
        flops::add_flops(work);
        out
    }

    fn run_here(&self, input: &Tensor, options: &RunOptions) -> Result<RunOutput, ModelError> {
        let err = |source| ModelError::Run {
            id: self.id.clone(),
            source: Box::new(source),
        };
        let heat = |t: &Tensor| -> candle_core::Result<Maps> {
            let m = to_maps(t)?;
            reorder_background(m, self.info.background)
        };
        // Heatmap-only stages, copied to the CPU and labelled by index.
        let stages_of = |maps: &[Tensor],
                         label: &dyn Fn(usize) -> String|
         -> candle_core::Result<Vec<StageOutput>> {
            maps.iter()
                .enumerate()
                .map(|(t, m)| {
                    Ok(StageOutput {
                        label: label(t),
                        key: format!("stage{}", t + 1),
                        heatmaps: heat(m)?,
                        pafs: None,
                        tags: None,
                    })
                })
                .collect()
        };
        let stage_label = |t: usize| format!("stage {}", t + 1);
        // The one "heatmaps" stage of single-output networks.
        let heatmaps_stage = |t: &Tensor| -> candle_core::Result<StageOutput> {
            Ok(StageOutput {
                label: "heatmaps".into(),
                key: "heatmaps".into(),
                heatmaps: heat(t)?,
                pafs: None,
                tags: None,
            })
        };
        // The network input `(height, width)`, for the features' labels.
        let size = {
            let (_, _, h, w) = input.dims4().map_err(err)?;
            (h, w)
        };
        match &self.network {
            Network::OpenPoseMobileNet(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let stages = out
                    .stages
                    .iter()
                    .enumerate()
                    .map(|(t, s)| {
                        Ok(StageOutput {
                            label: stage_label(t),
                            key: format!("stage{}", t + 1),
                            heatmaps: heat(&s.heatmaps)?,
                            pafs: Some(to_maps(&s.pafs)?),
                            tags: None,
                        })
                    })
                    .collect::<candle_core::Result<Vec<_>>>()
                    .map_err(err)?;
                Ok(RunOutput::stages(stages, times))
            }
            Network::Cpm(net) => {
                let (_, _, h, w) = input.dims4().map_err(err)?;
                let (cx, cy) = options
                    .center
                    .unwrap_or(((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0));
                let center =
                    cpm::center_map_tensor(w, h, cx, cy, net.config().center_sigma, input.device())
                        .map_err(err)?;
                let (out, times) = net.forward_profiled(input, &center).map_err(err)?;
                Ok(RunOutput::stages(
                    stages_of(&out.stages, &stage_label).map_err(err)?,
                    times,
                ))
            }
            Network::PefmCpm(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                Ok(RunOutput::stages(
                    stages_of(&out.stages, &stage_label).map_err(err)?,
                    times,
                ))
            }
            Network::PefmHourglass(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let label = |t: usize| format!("hourglass_out_{t}");
                Ok(RunOutput::stages(
                    stages_of(&out.outputs, &label).map_err(err)?,
                    times,
                ))
            }
            Network::HigherHrnet(net) => {
                // One raw pass: no flip, no aggregation of the two resolutions (the
                // pipeline's test-time procedure does that).
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let (heat0, tags0) =
                    higher_hrnet::split_output0(&out.output_0, net.config().joints).map_err(err)?;
                let stages = vec![
                    StageOutput {
                        label: "1/4 resolution (output_0)".into(),
                        key: "res0".into(),
                        heatmaps: to_maps(&heat0).map_err(err)?,
                        pafs: None,
                        tags: tags0.as_ref().map(to_maps).transpose().map_err(err)?,
                    },
                    StageOutput {
                        label: "1/2 resolution (output_1)".into(),
                        key: "res1".into(),
                        heatmaps: to_maps(&out.output_1).map_err(err)?,
                        pafs: None,
                        tags: None,
                    },
                ];
                let mut features =
                    features::numbered("stage4.branch", "branch", size, &out.stage4_branches)
                        .map_err(err)?;
                features.push(
                    FeatureMap::from_tensor(
                        "deconv",
                        features::with_stride("deconv", size, &out.deconv).map_err(err)?,
                        &out.deconv,
                        CellField::Unknown,
                    )
                    .map_err(err)?,
                );
                Ok(RunOutput {
                    stages,
                    features,
                    steps: times,
                })
            }
            Network::TopDownHrnet(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let stage = heatmaps_stage(&out.heatmaps).map_err(err)?;
                // The last stage-4 module's branches, each at its own resolution.
                let features =
                    features::numbered("stage4.branch", "branch", size, &out.stage4_branches)
                        .map_err(err)?;
                Ok(RunOutput {
                    stages: vec![stage],
                    features,
                    steps: times,
                })
            }
            Network::SimpleBaseline(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let stage = heatmaps_stage(&out.heatmaps).map_err(err)?;
                // The backbone's output, then each deconvolution's.
                let [_, _, _, layer4] = &out.layers;
                let mut features = vec![FeatureMap::from_tensor(
                    "layer4",
                    features::with_stride("backbone layer4", size, layer4).map_err(err)?,
                    layer4,
                    CellField::Unknown,
                )
                .map_err(err)?];
                features.extend(
                    features::numbered("deconv", "deconv", size, &out.deconv).map_err(err)?,
                );
                Ok(RunOutput {
                    stages: vec![stage],
                    features,
                    steps: times,
                })
            }
            Network::Unipose(net) => {
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let stage = heatmaps_stage(&out.heatmaps).map_err(err)?;
                let features = unipose_features(net.config(), &out).map_err(err)?;
                Ok(RunOutput {
                    stages: vec![stage],
                    features,
                    steps: times,
                })
            }
            Network::UniposeLstm(rec) => {
                let (_, _, h, w) = input.dims4().map_err(err)?;
                let (cx, cy) = options
                    .center
                    .unwrap_or(((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0));
                let center = cpm::center_map_tensor(
                    w,
                    h,
                    cx,
                    cy,
                    unipose_lstm::CENTER_SIGMA,
                    input.device(),
                )
                .map_err(err)?;
                let mut net = rec.lock();
                if options.memory == Memory::Reset {
                    net.reset();
                }
                let (out, times) = net.forward_profiled(input, &center).map_err(err)?;
                let body = net.config().body.clone();
                drop(net);
                let stage = StageOutput {
                    label: if out.first_frame {
                        "heatmaps (first frame)".into()
                    } else {
                        "heatmaps (with memory)".into()
                    },
                    key: "heatmaps".into(),
                    heatmaps: heat(&out.heatmaps).map_err(err)?,
                    pafs: None,
                    tags: None,
                };
                let features = unipose_lstm_features(&body, &out).map_err(err)?;
                Ok(RunOutput {
                    stages: vec![stage],
                    features,
                    steps: times,
                })
            }
            Network::StackedHourglass(net) => {
                // One stage per stack (intermediate supervision): the stage slider steps
                // through them; the last is the prediction.
                let (out, times) = net.forward_profiled(input).map_err(err)?;
                let label = |t: usize| format!("stack {}", t + 1);
                Ok(RunOutput::stages(
                    stages_of(&out.stacks, &label).map_err(err)?,
                    times,
                ))
            }
        }
    }
}

impl Model {
    /// Whether the network takes a person-centre map (CPM, UniPose-LSTM).
    pub fn takes_center(&self) -> bool {
        matches!(self.network, Network::Cpm(_) | Network::UniposeLstm(_))
    }

    /// Whether the network carries a state from frame to frame (UniPose-LSTM): see
    /// [`RunOptions::memory`].
    pub fn is_temporal(&self) -> bool {
        matches!(self.network, Network::UniposeLstm(_))
    }

    /// The theoretical receptive field of every stage's map cells for an input of
    /// `(width, height)` pixels, `(along x, along y)`, computed from the network's layer list.
    pub fn receptive_fields(
        &self,
        (width, height): (u32, u32),
    ) -> Vec<(ReceptiveField, ReceptiveField)> {
        let (w, h) = (width as usize, height as usize);
        match &self.network {
            Network::OpenPoseMobileNet(net) => (0..net.config().stages)
                .map(|t| {
                    (
                        ReceptiveField::of_chain(&net.receptive_chain(t, w)),
                        ReceptiveField::of_chain(&net.receptive_chain(t, h)),
                    )
                })
                .collect(),
            Network::Cpm(net) => (0..net.config().stages)
                .map(|t| {
                    let rf = ReceptiveField::of_chain(&net.receptive_chain(t));
                    (rf, rf)
                })
                .collect(),
            Network::PefmCpm(net) => (0..net.config().stages)
                .map(|t| {
                    (
                        ReceptiveField::of_chain(&net.receptive_chain(t, (w, w))),
                        ReceptiveField::of_chain(&net.receptive_chain(t, (h, h))),
                    )
                })
                .collect(),
            Network::PefmHourglass(net) => (0..net.config().depth)
                .map(|t| {
                    (
                        ReceptiveField::of_chain(&net.receptive_chain(t, (w, w))),
                        ReceptiveField::of_chain(&net.receptive_chain(t, (h, h))),
                    )
                })
                .collect(),
            // Not computed for the multi-branch / recursive graphs.
            Network::HigherHrnet(_)
            | Network::TopDownHrnet(_)
            | Network::SimpleBaseline(_)
            | Network::StackedHourglass(_) => Vec::new(),
            // UniPose's heatmaps depend on the whole input (WASP's image pooling); the
            // WASP branches' fields are on their features.
            Network::Unipose(_) | Network::UniposeLstm(_) => Vec::new(),
        }
    }
}

/// The `NotPresent` error for a catalogue entry whose file `file` is in no model directory,
/// with how to supply it.
fn not_present(info: &ModelInfo, file: &str) -> ModelError {
    let supply = "pass the file with `--weights <file>` (CLI, with `--model` naming this \
                  model), open it with \"Open weights…\" in the app, or put it in a \
                  directory listed in POSESCOPE_MODELS";
    let hint = if info.url.is_some() {
        format!(
            "Run `posescope fetch {}` to download it, or {supply}.",
            info.id
        )
    } else {
        format!(
            "It cannot be downloaded automatically; get it by hand (see `posescope models` \
             for where it is published), then {supply}."
        )
    };
    ModelError::NotPresent {
        id: info.id.to_string(),
        file: file.to_string(),
        dirs: catalog::model_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint,
    }
}

/// Reads a PyTorch / safetensors checkpoint into a store. A `model.module.` or `module.`
/// prefix on every key (what `nn.DataParallel` adds; `.pth` files have it stripped by the
/// reader already) is removed from safetensors files too.
fn checkpoint_store(bytes: &[u8], label: &str, device: &Device) -> Result<TensorStore, ModelError> {
    let store = weights::load_checkpoint_bytes(bytes, label, device).map_err(Box::new)?;
    let prefix = ["model.module.", "module."]
        .into_iter()
        .find(|p| !store.is_empty() && store.names().all(|k| k.starts_with(p)));
    Ok(match prefix {
        Some(p) => {
            let file = store.file().to_string();
            let tensors = store
                .into_tensors()
                .into_iter()
                .map(|(k, t)| (k[p.len()..].to_string(), t))
                .collect();
            TensorStore::new(file, tensors)
        }
        None => store,
    })
}

/// Whether a checkpoint (official or MMPose names) holds a HigherHRNet: the 1/2-resolution
/// final layer and the deconvolution.
fn higher_hrnet_keys(store: &TensorStore) -> bool {
    let has = |k: &str| {
        store.contains(k) || store.contains(&format!("{}{k}", weights::mmpose::HEAD_PREFIX))
    };
    has("final_layers.1.weight") && has("deconv_layers.0.0.0.weight")
}

/// The catalogue entry closest to a HigherHRNet checkpoint: W48 → `higherhrnet-w48-640`,
/// anything else → `higherhrnet-w32-512` (the configuration itself comes from the shapes).
fn higher_hrnet_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let key = "transition1.0.0.weight";
    let width = store
        .get_any(key)
        .or_else(|_| store.get_any(&format!("{}{key}", weights::mmpose::BACKBONE_PREFIX)))
        .ok()
        .and_then(|t| t.dims().first().copied());
    catalog::find(if width == Some(48) {
        "higherhrnet-w48-640"
    } else {
        "higherhrnet-w32-512"
    })
}

/// The catalogue entry of a top-down checkpoint, by its keys: `final_layer.weight` with
/// `stage4.*` → top-down HRNet (W48 → `hrnet-w48-256x192`, else `hrnet-w32-256x192`);
/// `deconv_layers.*`, `layer4.*` and `final_layer.weight` → SimpleBaseline (the entry of its
/// ResNet depth at 256×192); `hgs.*`, `features.*` and `outs.*` → Stacked Hourglass
/// (`hourglass-2stack-mpii` for two stacks, else the 8-stack entry). The configuration
/// itself comes from the shapes.
fn top_down_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    let final_layer = store.contains("final_layer.weight");
    if final_layer && any("stage4.") {
        let width = store
            .get_any("transition1.0.0.weight")
            .ok()
            .and_then(|t| t.dims().first().copied());
        return catalog::find(if width == Some(48) {
            "hrnet-w48-256x192"
        } else {
            "hrnet-w32-256x192"
        });
    }
    if final_layer && any("deconv_layers.") && any("layer4.") {
        let blocks = |l: usize| {
            (0..)
                .take_while(|b| store.contains(&format!("layer{l}.{b}.conv1.weight")))
                .count()
        };
        let id = match (blocks(2), blocks(3)) {
            (_, 23) => "simplebaseline-res101-256x192",
            (8, _) | (_, 36) => "simplebaseline-res152-256x192",
            _ => "simplebaseline-res50-256x192",
        };
        return catalog::find(id);
    }
    if any("hgs.") && any("features.") && any("outs.") {
        let stacks = (0..)
            .take_while(|i| store.contains(&format!("outs.{i}.conv.weight")))
            .count();
        return catalog::find(if stacks == 2 {
            "hourglass-2stack-mpii"
        } else {
            "hourglass-8stack-mpii"
        });
    }
    None
}

/// Whether a checkpoint holds a single-image UniPose (the official `unipose` names:
/// `backbone.*`, `wasp.aspp1.*`, `decoder.last_conv.8.weight`; not the LSTM video model,
/// whose checkpoints add `lstm*` keys), and its catalogue entry: `unipose-mpii` for 16 joints
/// (17 maps), else `unipose-lsp`.
fn unipose_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    if !(any("backbone.layer4.")
        && store.contains("wasp.aspp1.atrous_conv.weight")
        && store.contains("decoder.last_conv.8.weight"))
        || any("lstm")
    {
        return None;
    }
    let maps = store
        .get_any("decoder.last_conv.8.weight")
        .ok()
        .and_then(|t| t.dims().first().copied());
    catalog::find(if maps == Some(17) {
        "unipose-mpii"
    } else {
        "unipose-lsp"
    })
}

/// Whether a checkpoint holds a UniPose-LSTM (the official `uniposeLSTM.py` names: the
/// UniPose body's `backbone.*`, `wasp.*`, `decoder.*` plus `lstm_0.*`, `lstm.*` and the head
/// `conv1` … `conv5`).
fn unipose_lstm_keys(store: &TensorStore) -> bool {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    any("backbone.layer4.")
        && store.contains("decoder.last_conv.8.weight")
        && store.contains("lstm_0.conv_g_lstm.weight")
        && store.contains("lstm.conv_gx_lstm.weight")
        && store.contains("conv5.weight")
}

/// The UniPose configuration of a checkpoint for catalogue entry `info`: the joints from
/// `decoder.last_conv.8.weight` (joints + background maps), which must match the entry's
/// joint set; the image-pooling BatchNorm when `wasp.global_avg_pool.2.weight` is present.
fn unipose_config(
    store: &TensorStore,
    info: &ModelInfo,
) -> Result<unipose::Config, candle_core::Error> {
    let key = "decoder.last_conv.8.weight";
    let maps = store.get_any(key).map_err(|_| {
        candle_core::Error::Msg(format!("UniPose: the checkpoint has no tensor '{key}'"))
    })?;
    let outputs = maps.dims().first().copied().unwrap_or(0);
    let joints = info.joints.len();
    if outputs != joints + 1 {
        candle_core::bail!(
            "UniPose: tensor '{key}' has {outputs} output maps {:?}; model '{}' needs {}              ({joints} joints + background)",
            maps.dims(),
            info.id,
            joints + 1
        );
    }
    Ok(unipose::Config {
        global_bn: store.contains("wasp.global_avg_pool.2.weight"),
        input_size: (info.input_size.1 as usize, info.input_size.0 as usize),
        ..unipose::Config::image(joints)
    })
}

/// UniPose's features: the four WASP branches (with their receptive fields), the image
/// pooling branch, the WASP output and the decoder's features before the classifier.
fn unipose_features(
    config: &unipose::Config,
    out: &unipose::UniposeOutputs,
) -> candle_core::Result<Vec<FeatureMap>> {
    let dilations = config.wasp_dilations()?;
    let mut features = Vec::with_capacity(7);
    for (i, (t, d)) in out.aspp.iter().zip(dilations).enumerate() {
        let rf = ReceptiveField::of_chain(&config.wasp_chain(i)?);
        let what = if i == 0 {
            "1×1".to_string()
        } else {
            format!("dilation {d}")
        };
        features.push(FeatureMap::from_tensor(
            format!("wasp.aspp{}", i + 1),
            format!("WASP branch {} ({what})", i + 1),
            t,
            CellField::Local(rf, rf),
        )?);
    }
    features.push(FeatureMap::from_tensor(
        "wasp.global_avg_pool",
        "WASP global branch (image pooling)",
        &out.global_pool,
        CellField::WholeInput,
    )?);
    // After the fusion every cell has seen the image-pooling branch: the whole input.
    features.push(FeatureMap::from_tensor(
        "wasp",
        "WASP output (fused)",
        &out.wasp,
        CellField::WholeInput,
    )?);
    features.push(FeatureMap::from_tensor(
        "decoder",
        "decoder output (before the classifier)",
        &out.decoder,
        CellField::WholeInput,
    )?);
    Ok(features)
}

/// UniPose-LSTM's features: the LSTM's cell and hidden maps after this frame (what it
/// carries to the next), the pooled centre map, then the per-frame body's (see
/// [`unipose_features`]). Every LSTM cell sees the whole input (WASP's image pooling).
fn unipose_lstm_features(
    body: &unipose::Config,
    out: &unipose_lstm::UniposeLstmOutputs,
) -> candle_core::Result<Vec<FeatureMap>> {
    let mut features = vec![
        FeatureMap::from_tensor(
            "lstm.cell",
            "LSTM cell state (carried to the next frame)",
            &out.cell,
            CellField::WholeInput,
        )?,
        FeatureMap::from_tensor(
            "lstm.hidden",
            "LSTM hidden state (fed to the head)",
            &out.hide,
            CellField::WholeInput,
        )?,
    ];
    features.extend(unipose_features(body, &out.body)?);
    Ok(features)
}

/// Moves a leading background channel to the end (joints first, as [`StageOutput`] says).
fn reorder_background(maps: Maps, background: Background) -> candle_core::Result<Maps> {
    if background != Background::First || maps.channels() < 2 {
        return Ok(maps);
    }
    let (k, h, w) = (maps.channels(), maps.height(), maps.width());
    let mut data = maps.into_vec();
    data.rotate_left(h * w);
    Maps::new(data, k, h, w).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// The TFLite architecture of a file by its graph: the hourglass has `hourglass_out_*`
/// tensors, anything else is taken as the mobile CPM.
fn guess_tflite(bytes: &[u8]) -> &'static ModelInfo {
    let hourglass = bytes.windows(14).any(|w| w == b"hourglass_out_");
    let id = if hourglass {
        "pefm-hourglass"
    } else {
        "pefm-cpm"
    };
    catalog::find(id).unwrap_or(&CATALOG[0])
}

/// CPM's Caffe models by their layer names: the VGG trunk (`conv4_7_CPM`) is the MPII
/// layout, otherwise the LSP layout.
fn guess_cpm_caffe(bytes: &[u8]) -> &'static ModelInfo {
    let vgg = bytes.windows(11).any(|w| w == b"conv4_7_CPM");
    let id = if vgg { "cpm-mpii" } else { "cpm-lsp" };
    catalog::find(id).unwrap_or(&CATALOG[0])
}

/// Copies the first item of an `[N, K, H, W]` tensor to CPU maps.
pub fn to_maps(t: &Tensor) -> candle_core::Result<Maps> {
    let (_, k, h, w) = t.dims4()?;
    let data: Vec<f32> = t
        .get(0)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    Maps::new(data, k, h, w).map_err(|e| candle_core::Error::Msg(e.to_string()))
}
