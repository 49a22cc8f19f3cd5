//! A candle [`VarBuilder`] over a [`TensorStore`], with errors that name the file, the
//! tensor and both shapes, and a record of which checkpoint keys the model used.
//!
//! ```no_run
//! # use posescope::weights::{load_checkpoint, varbuilder::var_builder};
//! # fn main() -> anyhow::Result<()> {
//! let device = candle_core::Device::Cpu;
//! let store = load_checkpoint(std::path::Path::new("pose.pth"), &device)?;
//! let (vb, usage) = var_builder(store, candle_core::DType::F32, &device);
//! let conv = candle_nn::conv2d(3, 64, 3, Default::default(), vb.pp("conv1"))?;
//! for key in usage.unused_keys() {
//!     eprintln!("note: checkpoint tensor '{key}' is not used by the model");
//! }
//! # let _ = conv; Ok(()) }
//! ```
//!
//! Errors from the backend are [`WeightsError`]s wrapped in `candle_core::Error::Wrapped`,
//! so their message reads like the rest of this module's errors.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::{TensorStore, WeightsError};

/// Which keys of a checkpoint the model asked for. Cheap to clone; shared with the
/// backend, so it reflects every load made through the [`VarBuilder`] so far.
#[derive(Debug, Clone)]
pub struct UsageReport {
    file: String,
    all: Arc<BTreeSet<String>>,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl UsageReport {
    /// The file the tensors came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every key in the checkpoint, sorted.
    pub fn all_keys(&self) -> Vec<String> {
        self.all.iter().cloned().collect()
    }

    /// Keys the model loaded, sorted.
    pub fn used_keys(&self) -> Vec<String> {
        lock(&self.used).iter().cloned().collect()
    }

    /// Keys the model never asked for, sorted. Worth telling the user about (a renamed
    /// layer, a checkpoint for a bigger variant) but not an error in itself.
    pub fn unused_keys(&self) -> Vec<String> {
        let used = lock(&self.used);
        self.all
            .iter()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }
}

fn lock(m: &Mutex<BTreeSet<String>>) -> MutexGuard<'_, BTreeSet<String>> {
    // A poisoned set of names is still a valid set of names.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The backend: the store plus the shared record of used keys.
struct StoreBackend {
    store: TensorStore,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl StoreBackend {
    fn take(&self, name: &str, shape: Option<&Shape>) -> Result<Tensor, WeightsError> {
        let t = match shape {
            Some(s) => self.store.get(name, s.dims())?,
            None => self.store.get_any(name)?,
        };
        lock(&self.used).insert(name.to_string());
        Ok(t)
    }

    fn convert(
        &self,
        name: &str,
        t: Tensor,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.store
            .convert(name, t, |t| t.to_device(dev)?.to_dtype(dtype))
            .map_err(candle_core::Error::wrap)
    }
}

impl SimpleBackend for StoreBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self
            .take(name, Some(&s))
            .map_err(candle_core::Error::wrap)?;
        self.convert(name, t, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.take(name, None).map_err(candle_core::Error::wrap)?;
        self.convert(name, t, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.store.contains(name)
    }
}

/// A [`VarBuilder`] that takes its tensors from `store` (converting them to `dtype` on
/// `device`), and the [`UsageReport`] that records which keys were used.
pub fn var_builder(
    store: TensorStore,
    dtype: DType,
    device: &Device,
) -> (VarBuilder<'static>, UsageReport) {
    let used = Arc::new(Mutex::new(BTreeSet::new()));
    let report = UsageReport {
        file: store.file().to_string(),
        all: Arc::new(store.names().map(str::to_string).collect()),
        used: Arc::clone(&used),
    };
    let backend = StoreBackend { store, used };
    (
        VarBuilder::from_backend(Box::new(backend), dtype, device.clone()),
        report,
    )
}
