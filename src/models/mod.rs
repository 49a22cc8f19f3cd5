//! Networks (one file per family), the catalogue, and a loaded-model handle that turns a
//! preprocessed input into every stage's maps.

pub mod catalog;
pub mod cpm;
pub mod depthwise_cpu;
pub mod mobile_blocks;
pub mod openpose_mobilenet;
pub mod ops;
pub mod pefm_cpm;
pub mod pefm_hourglass;
pub mod receptive;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use catalog::{Architecture, Decoding, ModelInfo, WeightsLocation, CATALOG, DEFAULT_MODEL};
pub use openpose_mobilenet::StepTime;
pub use receptive::ReceptiveField;

use crate::pose::{JointSet, Maps};
use crate::weights::{self, WeightsError};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model '{name}': not a catalogue id ({known}) and no such file")]
    Unknown { name: String, known: String },
    #[error(
        "cannot tell the format of weights file '{0}': expected a TensorFlow frozen graph (.pb)"
    )]
    UnknownFormat(String),
    #[error("model '{id}': weights file '{file}' not found in {dirs}")]
    NotPresent {
        id: String,
        file: String,
        dirs: String,
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
    /// Joint confidence maps: the joints in the model's [`JointSet`] order first, then any
    /// background channel (moved there from wherever the network puts it).
    pub heatmaps: Maps,
    /// Part affinity fields, for PAF models.
    pub pafs: Option<Maps>,
}

/// Per-frame inputs of a run besides the image.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// The person's centre in network-input pixels, for single-person models that take a
    /// centre map (CPM); `None` = the centre of the input.
    pub center: Option<(f64, f64)>,
}

/// The networks the crate can run.
#[derive(Clone, Debug)]
enum Network {
    OpenPoseMobileNet(openpose_mobilenet::OpenPoseMobileNet),
}

/// A model ready to run: its catalogue facts and its network on a device.
#[derive(Clone, Debug)]
pub struct Model {
    id: String,
    info: &'static ModelInfo,
    network: Network,
    device: Device,
}

impl Model {
    /// Loads a catalogue model by id or alias, or a weights file by path (its architecture
    /// taken from its format).
    pub fn load(name_or_path: &str, device: &Device) -> Result<Model, ModelError> {
        if let Some(info) = catalog::find(name_or_path) {
            let bytes = match info.weights {
                WeightsLocation::Embedded(b) => std::borrow::Cow::Borrowed(b),
                WeightsLocation::File(file) => {
                    let path = info.locate().ok_or_else(|| ModelError::NotPresent {
                        id: info.id.to_string(),
                        file: file.to_string(),
                        dirs: catalog::model_dirs()
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
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
        let info = match ext.as_deref() {
            Some("pb") => catalog::find(DEFAULT_MODEL),
            _ => None,
        }
        .ok_or_else(|| ModelError::UnknownFormat(path.display().to_string()))?;
        let bytes = weights::read_file(path).map_err(Box::new)?;
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(info.id)
            .to_string();
        Self::from_bytes(info, id, &bytes, &path.display().to_string(), device)
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
        };
        Ok(Model {
            id,
            info,
            network,
            device: device.clone(),
        })
    }

    /// Whether the network takes a person-centre map (CPM).
    pub fn takes_center(&self) -> bool {
        false
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

    /// Runs the network on `input` (`[1, 3, H, W]` as the model expects it) and returns every
    /// stage's maps on the CPU, with the time of each step.
    pub fn run(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> Result<(Vec<StageOutput>, Vec<StepTime>), ModelError> {
        let err = |source| ModelError::Run {
            id: self.id.clone(),
            source: Box::new(source),
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
                            label: format!("stage {}", t + 1),
                            heatmaps: to_maps(&s.heatmaps)?,
                            pafs: Some(to_maps(&s.pafs)?),
                        })
                    })
                    .collect::<candle_core::Result<Vec<_>>>()
                    .map_err(err)?;
                Ok((stages, times))
            }
        }
    }
}

impl Model {
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
        }
    }
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
