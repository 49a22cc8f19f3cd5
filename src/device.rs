//! Compute device selection: `cpu`, `cuda[:N]`, `metal`.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

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
    #[error("cannot open device {spec}: {source}")]
    Open {
        spec: DeviceSpec,
        #[source]
        source: candle_core::Error,
    },
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
                Device::new_cuda(i).map_err(|source| DeviceError::Open { spec: self, source })
            }
            DeviceSpec::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(DeviceError::NotCompiled { feature: "metal" });
                }
                Device::new_metal(0).map_err(|source| DeviceError::Open { spec: self, source })
            }
        }
    }
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
