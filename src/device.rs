//! Compute device selection (`cpu`, `cuda[:N]`, `metal`) and the count of the host↔device
//! copies posescope makes.
//!
//! Per frame, posescope copies the network input to the device once ([`upload`]) and reads
//! every map of a run back in one copy ([`note_download`], called by
//! `models::net::RunTensors::fetch`); the decoders, the overlay and the exporters all read
//! that one host copy. The counters are process-wide and count on every device, the CPU
//! included (there the copies are plain memory copies, or none): they say what would cross
//! the bus on a GPU. `posescope bench --json` reports them per frame.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{Device, Shape, Tensor};

/// A device request as written on the command line or in settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
    Metal,
}

/// Why a device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': use cpu, cuda, cuda:N or metal")]
    Unknown(String),
    #[error("this posescope was built without {feature} support: rebuild with `cargo build --release --features {feature}`")]
    NotCompiled { feature: &'static str },
    /// The backend is compiled in but the device cannot be opened: no GPU, no driver, or
    /// an index past the last device.
    #[error("no usable {spec} device: {}", no_device_reason(.spec, .source))]
    NoDevice {
        spec: DeviceSpec,
        #[source]
        source: candle_core::Error,
    },
}

/// The plain reason for [`DeviceError::NoDevice`], with the driver's own words after it.
fn no_device_reason(spec: &DeviceSpec, source: &candle_core::Error) -> String {
    let detail = source.to_string();
    let plain = match spec {
        DeviceSpec::Cuda(_) if detail.contains("CUDA_ERROR_NO_DEVICE") => {
            "no CUDA-capable GPU is present"
        }
        DeviceSpec::Cuda(_) if detail.contains("CUDA_ERROR_INVALID_DEVICE") => {
            "there is no CUDA device with that index"
        }
        DeviceSpec::Cuda(_) if detail.contains("CUDA_ERROR_STUB_LIBRARY") => {
            "the CUDA driver library found is a stub (no NVIDIA driver installed)"
        }
        DeviceSpec::Cuda(_) if detail.contains("CUDA_ERROR_INSUFFICIENT_DRIVER") => {
            "the NVIDIA driver is older than this build's CUDA 13 (driver 580 or newer needed)"
        }
        DeviceSpec::Cuda(_) => "the CUDA driver reports no usable GPU",
        _ => "the device cannot be opened",
    };
    // The driver's words on one line (candle adds a backtrace note on later lines).
    let first = detail.lines().next().unwrap_or_default();
    format!("{plain} ({first})")
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::Metal => write!(f, "metal"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            "metal" => Ok(DeviceSpec::Metal),
            _ => match t.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(DeviceSpec::Cuda(i)),
                _ => Err(DeviceError::Unknown(s.to_string())),
            },
        }
    }
}

impl DeviceSpec {
    /// The devices this build can use (CUDA and Metal only with their cargo features).
    pub fn compiled() -> Vec<&'static str> {
        let mut v = vec!["cpu"];
        if cfg!(feature = "cuda") {
            v.push("cuda");
        }
        if cfg!(feature = "metal") {
            v.push("metal");
        }
        v
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => {
                if !cfg!(feature = "cuda") {
                    return Err(DeviceError::NotCompiled { feature: "cuda" });
                }
                Device::new_cuda(i).map_err(|source| DeviceError::NoDevice { spec: self, source })
            }
            DeviceSpec::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(DeviceError::NotCompiled { feature: "metal" });
                }
                Device::new_metal(0).map_err(|source| DeviceError::NoDevice { spec: self, source })
            }
        }
    }
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);
static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Host↔device copies counted since the process started (see the module docs); the
/// difference of two readings ([`Copies::since`]) is what happened in between, in every
/// thread of the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Copies {
    /// Host→device copies (network inputs).
    pub uploads: u64,
    /// Device→host copies (a run's maps).
    pub downloads: u64,
    /// Bytes moved, both directions.
    pub bytes: u64,
}

impl Copies {
    /// The counters now.
    pub fn now() -> Self {
        Self {
            uploads: UPLOADS.load(Ordering::Relaxed),
            downloads: DOWNLOADS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    /// The copies made between `earlier` and `self`.
    pub fn since(self, earlier: Copies) -> Copies {
        Copies {
            uploads: self.uploads.saturating_sub(earlier.uploads),
            downloads: self.downloads.saturating_sub(earlier.downloads),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// Copies `data` (f32, laid out as `shape`) to `device` as a tensor: the one upload of a
/// frame's network input. Counted (see [`Copies`]).
pub fn upload<S: Into<Shape>>(
    data: Vec<f32>,
    shape: S,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let bytes = (data.len() * std::mem::size_of::<f32>()) as u64;
    let t = Tensor::from_vec(data, shape, device)?;
    UPLOADS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
    Ok(t)
}

/// Counts one device→host copy of `bytes` (made by the caller).
pub fn note_download(bytes: u64) {
    DOWNLOADS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn no_device_is_one_plain_line() {
        let driver = |text: &str| DeviceError::NoDevice {
            spec: DeviceSpec::Cuda(0),
            source: candle_core::Error::Msg(format!("{text}\nstack backtrace: …")),
        };
        let e =
            driver(r#"DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")"#)
                .to_string();
        assert_eq!(
            e,
            r#"no usable cuda:0 device: no CUDA-capable GPU is present (DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"))"#
        );
        let e = driver(
            "DriverError(CUDA_ERROR_STUB_LIBRARY, \"<Failure when calling cuGetErrorString()>\")",
        )
        .to_string();
        assert!(e.contains("is a stub (no NVIDIA driver installed)"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn copies_count_uploads() {
        let before = Copies::now();
        let t = upload(vec![0f32; 6], (2, 3), &Device::Cpu).unwrap();
        assert_eq!(t.dims(), [2, 3]);
        let d = Copies::now().since(before);
        // Other tests may copy at the same time: at least this one.
        assert!(d.uploads >= 1 && d.bytes >= 24, "{d:?}");
    }

    #[test]
    fn missing_backend_is_a_clear_error() {
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        if !cfg!(feature = "metal") {
            let e = DeviceSpec::Metal.open().unwrap_err().to_string();
            assert!(e.contains("--features metal"), "{e}");
        }
    }
}
