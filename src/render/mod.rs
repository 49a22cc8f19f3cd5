//! GPU rendering of an image with a colormapped heatmap overlay and skeletons.
//!
//! This module holds the CPU-side description of *what* to draw ([`Scene`] and its layers);
//! no wgpu or egui types appear here. The drawing itself lives in:
//!
//! * [`compositor`]: wgpu only. [`Compositor`] owns the pipelines (image quad, heatmap
//!   overlay through a colormap lookup texture, instanced skeleton capsules and discs) and
//!   per-view GPU resources; `prepare` uploads, `paint` records draws into a render pass.
//! * [`offscreen`]: the same compositor rendering a [`Scene`] into a texture at the image's
//!   native resolution and reading it back ("save frame" export, tests, CLI).
//! * [`egui_bridge`]: the only file that knows both egui and wgpu: installs the compositor
//!   in egui-wgpu's callback resources and wraps it in a paint callback.
//!
//! # Coordinates
//!
//! Pixel-index coordinates everywhere (integers are pixel centres, `(x, y)`, y down), in
//! *image* pixels. A heatmap is a row-major `[H, W]` map placed by a map → image [`Affine2`]
//! (e.g. `Affine2::resample(8.0, 8.0)` for a stride-8 map covering the whole image).
//! Keypoints of a [`SkeletonLayer`] are already in image pixels.

pub mod compositor;
pub mod egui_bridge;
pub mod offscreen;
mod pipelines;
#[cfg(test)]
mod tests;
mod textures;
mod uniforms;

use std::fmt;
use std::sync::Arc;

use crate::pose::{Affine2, JointSet, Person};

pub use compositor::Compositor;
pub use offscreen::{headless_device, render_scene};
pub use pipelines::RenderTarget;
pub use uniforms::Placement;

/// Everything drawn in one view: an image, optionally a heatmap over it, optionally
/// skeletons on top (in that order). Cheap to clone (the data is behind [`Arc`]s), so one
/// can be built per frame.
#[derive(Clone)]
pub struct Scene {
    /// The image (straight, not premultiplied, alpha; sRGB). Its size defines the image
    /// pixel frame and the offscreen output size.
    pub image: Arc<image::RgbaImage>,
    /// Identity of the image's pixels: bump it whenever they change. The texture is
    /// uploaded again only when the key (or the size) differs from the last upload.
    pub image_key: u64,
    /// The overlay drawn over the image, if any.
    pub heatmap: Option<HeatmapLayer>,
    /// Vector glyphs (e.g. part-affinity fields) drawn over the heatmap, under the skeletons.
    pub vectors: Option<VectorLayer>,
    /// Skeletons drawn on top, if any.
    pub skeleton: Option<SkeletonLayer>,
}

/// One glyph of a vector field: a segment from `a` to `b` (image pixels) with a dot at `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub a: [f32; 2],
    pub b: [f32; 2],
    /// sRGB colour.
    pub color: [u8; 3],
    /// Straight alpha in `[0, 1]`.
    pub alpha: f32,
}

/// A vector field drawn as segments (with the skeleton pipeline's anti-aliased capsules).
#[derive(Clone, Debug)]
pub struct VectorLayer {
    pub segments: Arc<Vec<Segment>>,
    /// Segment thickness in image pixels.
    pub width: f32,
}

impl Scene {
    /// A scene showing only `image`.
    pub fn new(image: Arc<image::RgbaImage>, image_key: u64) -> Self {
        Self {
            image,
            image_key,
            heatmap: None,
            vectors: None,
            skeleton: None,
        }
    }

    /// `(width, height)` of the image in pixels.
    pub fn image_size(&self) -> (u32, u32) {
        self.image.dimensions()
    }
}

/// One single-channel map drawn over the image through a colormap.
#[derive(Clone)]
pub struct HeatmapLayer {
    /// The map, `[height, width]` row-major.
    pub values: Arc<Vec<f32>>,
    /// Map width (columns).
    pub width: u32,
    /// Map height (rows).
    pub height: u32,
    /// Identity of `values`: bump it whenever they change. The map texture is uploaded
    /// again only when the key (or the shape) differs from the last upload.
    pub key: u64,
    /// Map pixel-index coordinates → image pixel-index coordinates. Image pixels whose map
    /// position lies more than half a map pixel outside the map are left untouched.
    pub map_to_image: Affine2,
    /// Colormap, opacity, value range and gamma.
    pub style: OverlayStyle,
}

pub use crate::colormap::OverlayStyle;

/// Skeletons: limbs as anti-aliased capsules, joints as discs with a thin dark rim.
#[derive(Clone)]
pub struct SkeletonLayer {
    /// People with keypoints in image pixel-index coordinates.
    pub people: Arc<Vec<Person>>,
    /// The joint set the keypoints follow (limbs and colours).
    pub joints: &'static JointSet,
    /// Limb thickness in image pixels; joint discs have this radius. Lines thinner than a
    /// screen pixel are drawn one pixel wide and faded instead.
    pub line_width: f32,
    /// Keypoints scoring below this (or NaN) are not drawn, nor are limbs touching them.
    pub min_score: f32,
    /// A joint index drawn larger (and with a light rim) for every person.
    pub highlight_joint: Option<usize>,
    /// Colour each person's limbs with one colour of [`PERSON_COLORS`] (by person index)
    /// instead of the joint set's per-limb colours.
    pub person_colors: bool,
}

/// Distinct colours for telling people apart (Tableau 10).
pub const PERSON_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

// Debug output names sizes and keys instead of dumping pixels and values.
impl fmt::Debug for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scene")
            .field("image_size", &self.image.dimensions())
            .field("image_key", &self.image_key)
            .field("heatmap", &self.heatmap)
            .field("skeleton", &self.skeleton)
            .finish()
    }
}

impl fmt::Debug for HeatmapLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeatmapLayer")
            .field("values", &format_args!("[{} values]", self.values.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("key", &self.key)
            .field("map_to_image", &self.map_to_image)
            .field("style", &self.style)
            .finish()
    }
}

impl fmt::Debug for SkeletonLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkeletonLayer")
            .field("people", &self.people.len())
            .field("joints", &self.joints.id)
            .field("line_width", &self.line_width)
            .field("min_score", &self.min_score)
            .field("highlight_joint", &self.highlight_joint)
            .finish()
    }
}

/// Why a scene could not be rendered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// No wgpu adapter (GPU or software rasteriser) is available.
    #[error("no GPU adapter available: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a GPU device: {0}")]
    RequestDevice(String),
    /// The image has no pixels.
    #[error("the image is empty ({width}x{height})")]
    EmptyImage {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// A texture would exceed the device's `max_texture_dimension_2d`.
    #[error("{what} of {width}x{height} exceeds the GPU limit of {limit} pixels per side")]
    TooLarge {
        /// Which texture.
        what: &'static str,
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// The device limit.
        limit: u32,
    },
    /// The heatmap's `values` do not hold `width * height` values (or the map is empty).
    #[error("heatmap has {len} values, expected {width}x{height} (and at least one)")]
    HeatmapShape {
        /// Number of values.
        len: usize,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The heatmap's map → image transform cannot be inverted (or is not finite).
    #[error("map-to-image transform is singular or not finite: {0:?}")]
    SingularTransform(Affine2),
    /// The compositor's target format cannot be read back into an RGBA8 image.
    #[error("cannot read back render target format {0}")]
    UnsupportedFormat(String),
    /// Copying the rendered frame back to the CPU failed.
    #[error("reading the rendered frame back failed: {0}")]
    Readback(String),
    /// wgpu reported a validation or out-of-memory error.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The compositor was not installed in the egui renderer.
    #[error("the render compositor is not installed (call egui_bridge::install first)")]
    NotInstalled,
}
