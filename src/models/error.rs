//! Why a model could not be loaded or run.

use crate::weights::WeightsError;

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
    #[error(
        "model '{id}' ({name}) cannot re-run its stages from edited maps: its stages do not \
         read the previous stage's maps, or the network does not describe how (intervention \
         works on CPM, the mobile CPM and hourglass, OpenPose MobileNet-thin)"
    )]
    NotResumable { id: String, name: String },
    #[error("running model '{id}': {source}")]
    Run {
        id: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}
