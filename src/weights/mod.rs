//! Checkpoint readers and a name → tensor store with clear errors.
//!
//! Readers turn a file in its original format into a [`TensorStore`] keyed by the original
//! parameter names and holding tensors in the original layout (e.g. TensorFlow's HWIO);
//! each model converts layouts itself when it loads.

pub mod protobuf;
pub mod tf_graphdef;
pub mod tflite;

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

/// Reads a file fully, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>, WeightsError> {
    std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.display().to_string(),
        source,
    })
}
