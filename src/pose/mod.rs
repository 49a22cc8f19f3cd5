//! Pure pose math: no candle, egui or wgpu types. Maps, coordinate transforms, joint sets,
//! decoding and grouping.

pub mod affine;
pub mod aggregate;
pub mod associative;
pub mod decode;
pub mod edit;
pub mod jitter;
pub mod joint_map;
pub mod maps;
pub mod metrics;
pub mod munkres;
pub mod paf;
pub mod peaks;
pub mod person;
pub mod single;
pub mod skeleton;
pub mod target;
pub mod versus;

pub use affine::{Affine2, GridAlign};
pub use decode::Decoding;
pub use maps::Maps;
pub use person::{Keypoint, Person};
pub use skeleton::JointSet;
