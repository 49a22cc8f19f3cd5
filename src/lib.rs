//! posescope: run 2D human-pose networks and look inside them.
//!
//! Data flows one way: [`source`] (frames) → [`preprocess`] (resize, keep the affine) →
//! [`models`] (every stage's maps) → [`pose`] (decoding, pure math) →
//! [`inspection::Inspection`] → [`export`] / CLI / UI. [`pipeline`] strings the steps
//! together and runs them on a worker thread.
//!
//! Coordinates everywhere are pixel-index coordinates, `(x, y)` order: integers are pixel
//! centres. Maps are channel-first `[K, H, W]`.

#[cfg(feature = "cli")]
pub mod cli;
pub mod colormap;
pub mod device;
pub mod eval;
pub mod experiments;
pub mod export;
#[cfg(feature = "fetch")]
pub mod fetch;
#[doc(hidden)]
pub mod fuzzing;
pub mod inspection;
pub mod kernels;
pub mod memory;
pub mod models;
pub mod pipeline;
pub mod player;
pub mod pose;
pub mod preprocess;
#[cfg(feature = "gui")]
pub mod render;
pub mod shard;
pub mod source;
#[cfg(feature = "gui")]
pub mod ui;
pub mod weights;

/// The bundled sample photo (two people, full body; see [`source::sample`]).
pub use source::SAMPLE_IMAGE;
