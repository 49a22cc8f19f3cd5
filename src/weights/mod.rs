//! Checkpoint readers and a name → tensor store with clear errors.
//!
//! Readers turn a file in its original format into a [`TensorStore`] keyed by the original
//! parameter names and holding tensors in the original layout (e.g. TensorFlow's HWIO);
//! each model converts layouts itself when it loads.

pub mod caffe;
pub mod mmpose;
pub mod posegen;
pub mod protobuf;
pub mod pth;
pub mod tf_graphdef;
pub mod tflite;
pub mod varbuilder;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

/// What can go wrong while reading weights or taking tensors out of them.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights file '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("weights file '{file}' is not a valid {format}: {message}")]
    Format {
        file: String,
        format: &'static str,
        message: String,
    },
    #[error("weights file '{file}' has no tensor '{name}'")]
    Missing { file: String, name: String },
    #[error("weights file '{file}': tensor '{name}' has shape {actual:?}, expected {expected:?}")]
    Shape {
        file: String,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("weights file '{file}': tensor '{name}': {source}")]
    Tensor {
        file: String,
        name: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// Tensors by their original names, with the file they came from for error messages.
#[derive(Debug)]
pub struct TensorStore {
    file: String,
    tensors: HashMap<String, Tensor>,
}

impl TensorStore {
    pub fn new(file: impl Into<String>, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            file: file.into(),
            tensors,
        }
    }

    /// The file (or embedded asset) the tensors came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tensors.keys().map(String::as_str)
    }

    /// The tensor `name` whatever its shape.
    pub fn get_any(&self, name: &str) -> Result<Tensor, WeightsError> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| WeightsError::Missing {
                file: self.file.clone(),
                name: name.to_string(),
            })
    }

    /// The tensors by name.
    pub fn into_tensors(self) -> HashMap<String, Tensor> {
        self.tensors
    }

    /// The tensor `name`, which must have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, WeightsError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::Missing {
                file: self.file.clone(),
                name: name.to_string(),
            })?;
        if t.dims() != shape {
            return Err(WeightsError::Shape {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                actual: t.dims().to_vec(),
            });
        }
        Ok(t.clone())
    }

    /// Applies a conversion (layout change, building an op) to a tensor, naming it if
    /// candle fails.
    pub fn convert<T>(
        &self,
        name: &str,
        t: Tensor,
        f: impl FnOnce(Tensor) -> candle_core::Result<T>,
    ) -> Result<T, WeightsError> {
        f(t).map_err(|source| WeightsError::Tensor {
            file: self.file.clone(),
            name: name.to_string(),
            source: Box::new(source),
        })
    }
}

/// Reads a TensorFlow frozen graph's float constants into a [`TensorStore`] on `device`.
/// `file` names the source in error messages.
pub fn load_graphdef(
    bytes: &[u8],
    file: &str,
    device: &Device,
) -> Result<TensorStore, WeightsError> {
    let format_err = |message: String| WeightsError::Format {
        file: file.to_string(),
        format: "TensorFlow GraphDef",
        message,
    };
    let graph = tf_graphdef::GraphDef::parse(bytes).map_err(|e| format_err(e.to_string()))?;
    let mut tensors = HashMap::new();
    for c in graph.constants() {
        if !c.dtype.is_float() {
            continue;
        }
        let data = c.to_f32().map_err(|e| format_err(e.to_string()))?;
        let t = Tensor::from_vec(data, c.shape.as_slice(), device).map_err(|source| {
            WeightsError::Tensor {
                file: file.to_string(),
                name: c.name.clone(),
                source: Box::new(source),
            }
        })?;
        tensors.insert(c.name.clone(), t);
    }
    if tensors.is_empty() {
        return Err(format_err("the graph holds no float constants".into()));
    }
    Ok(TensorStore::new(file, tensors))
}

/// The checkpoint formats [`load_checkpoint`] accepts, for error messages.
pub const CHECKPOINT_FORMATS: &str = "PyTorch zip checkpoint (.pth/.pt/.pth.tar/.bin), \
     Caffe (.caffemodel), safetensors (.safetensors), TensorFlow frozen graph (.pb), \
     TensorFlow Lite (.tflite)";

/// Reads a checkpoint in any supported format into a [`TensorStore`] on `device`, each in
/// its original naming and layout:
/// - a zip archive (by content, whatever the extension), or a `.pth`/`.pt`/`.tar`/`.bin`
///   file: PyTorch, via [`pth::load_pth`] with [`pth::PthOptions::default`] (wrappers
///   unwrapped, `module.` prefixes stripped, integer buffers skipped);
/// - `.caffemodel`: [`caffe::load_caffemodel`];
/// - `.safetensors`: float tensors as `f32` (integer ones such as `num_batches_tracked`
///   are skipped, as for PyTorch files);
/// - `.pb`: [`load_graphdef`].
///
/// Anything else is a [`WeightsError::Format`] naming the file and the accepted formats.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<TensorStore, WeightsError> {
    let bytes = read_file(path)?;
    load_checkpoint_bytes(&bytes, &path.display().to_string(), device)
}

/// [`load_checkpoint`] on bytes already read; `file` is the file's path or label (its
/// extension picks the format where the content does not).
pub fn load_checkpoint_bytes(
    bytes: &[u8],
    file: &str,
    device: &Device,
) -> Result<TensorStore, WeightsError> {
    let file = file.to_string();
    let name = file.to_ascii_lowercase();
    let has_ext = |exts: &[&str]| exts.iter().any(|e| name.ends_with(e));
    if bytes.starts_with(pth::ZIP_MAGIC)
        || bytes.starts_with(pth::LEGACY_MAGIC)
        || has_ext(&[".pth", ".pt", ".tar", ".bin", ".ckpt"])
    {
        return pth::load_pth(bytes, &file, &pth::PthOptions::default(), device).map(|c| c.store);
    }
    if has_ext(&[".caffemodel"]) {
        return caffe::load_caffemodel(bytes, &file, device).map(|(store, _)| store);
    }
    if has_ext(&[".safetensors"]) {
        return load_safetensors(bytes, &file, device);
    }
    if has_ext(&[".pb"]) {
        return load_graphdef(bytes, &file, device);
    }
    if has_ext(&[".tflite"]) || bytes.get(4..8) == Some(b"TFL3") {
        return tflite::load_tflite(bytes, &file, device);
    }
    Err(WeightsError::Format {
        file,
        format: "weights file",
        message: format!("unrecognised format; accepted formats: {CHECKPOINT_FORMATS}"),
    })
}

/// Reads a safetensors file's float tensors as `f32` on `device`; integer tensors are
/// skipped.
pub fn load_safetensors(
    bytes: &[u8],
    file: &str,
    device: &Device,
) -> Result<TensorStore, WeightsError> {
    let tensors =
        candle_core::safetensors::load_buffer(bytes, device).map_err(|e| WeightsError::Format {
            file: file.to_string(),
            format: "safetensors file",
            message: e.to_string(),
        })?;
    let mut out = HashMap::new();
    for (name, t) in tensors {
        if !t.dtype().is_float() {
            continue;
        }
        let t = t
            .to_dtype(candle_core::DType::F32)
            .map_err(|source| WeightsError::Tensor {
                file: file.to_string(),
                name: name.clone(),
                source: Box::new(source),
            })?;
        out.insert(name, t);
    }
    Ok(TensorStore::new(file, out))
}

/// Reads a file fully, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>, WeightsError> {
    std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.display().to_string(),
        source,
    })
}
