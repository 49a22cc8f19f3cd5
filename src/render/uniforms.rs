//! Plain-old-data layouts shared with the WGSL shaders, and the CPU code that fills them
//! from a [`Scene`](super::Scene). No wgpu types here.
//!
//! Every struct is `#[repr(C)]` + [`bytemuck::Pod`] and mirrored field by field in WGSL
//! (uniform structs use 16-byte-aligned `vec4`s first so the layouts agree without
//! implicit padding). Keep them in sync with the shaders named on each struct.

use bytemuck::{Pod, Zeroable};

use super::{HeatmapLayer, RenderError, SkeletonLayer};

/// Where the image rectangle lies in the render pass's current viewport.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Clip-space `(x, y)` of the image's top-left outer corner (`(-1, 1)` when the image
    /// fills the viewport).
    pub clip_min: [f32; 2],
    /// Clip-space `(x, y)` of the image's bottom-right outer corner (`(1, -1)` when the
    /// image fills the viewport).
    pub clip_max: [f32; 2],
    /// Physical screen pixels per image pixel along x and y (sets the anti-aliasing width).
    pub screen_px_per_image_px: [f32; 2],
}

impl Placement {
    /// The image (`image_size` pixels) fills a viewport of `viewport_px` physical pixels.
    pub fn fill_viewport(image_size: (u32, u32), viewport_px: [f32; 2]) -> Self {
        let per = |v: f32, n: u32| if n > 0 { v / n as f32 } else { 1.0 };
        Self {
            clip_min: [-1.0, 1.0],
            clip_max: [1.0, -1.0],
            screen_px_per_image_px: [
                per(viewport_px[0], image_size.0),
                per(viewport_px[1], image_size.1),
            ],
        }
    }

    /// The image fills the viewport at its native resolution (offscreen rendering).
    pub fn native(image_size: (u32, u32)) -> Self {
        Self::fill_viewport(image_size, [image_size.0 as f32, image_size.1 as f32])
    }

    /// `(x0, y0, x1, y1)` as the shaders take it.
    pub fn clip_rect(&self) -> [f32; 4] {
        [
            self.clip_min[0],
            self.clip_min[1],
            self.clip_max[0],
            self.clip_max[1],
        ]
    }
}

/// Per-view uniforms of the image quad and the skeleton.
///
/// Keep in sync with `Frame` in `shaders/image.wgsl` and `shaders/skeleton.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FrameUniforms {
    /// Clip-space `(x0, y0, x1, y1)` of the image's top-left and bottom-right outer edges.
    pub clip_rect: [f32; 4],
    /// `(width, height)` of the image in pixels.
    pub image_size: [f32; 2],
    /// Physical screen pixels per image pixel along x and y.
    pub screen_px_per_image_px: [f32; 2],
}

impl FrameUniforms {
    /// The frame of a `width × height` image placed by `placement`.
    pub fn new(width: u32, height: u32, placement: &Placement) -> Self {
        Self {
            clip_rect: placement.clip_rect(),
            image_size: [width as f32, height as f32],
            screen_px_per_image_px: placement.screen_px_per_image_px,
        }
    }
}

/// Per-view uniforms of the heatmap overlay.
///
/// Keep in sync with `Uniforms` in `shaders/heatmap.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct HeatmapUniforms {
    /// Clip-space `(x0, y0, x1, y1)` of the image's top-left and bottom-right outer edges.
    pub clip_rect: [f32; 4],
    /// First row `(a, b, tx, 0)` of the image → map affine.
    pub image_to_map_x: [f32; 4],
    /// Second row `(c, d, ty, 0)` of the image → map affine.
    pub image_to_map_y: [f32; 4],
    /// `(image width, image height, map width, map height)` in pixels.
    pub sizes: [f32; 4],
    /// Value at colormap `t = 0`.
    pub value_min: f32,
    /// Value at colormap `t = 1`.
    pub value_max: f32,
    /// Exponent applied to the normalised value.
    pub gamma: f32,
    /// Overlay opacity in `[0, 1]`.
    pub opacity: f32,
    /// Row of the colormap lookup texture.
    pub colormap_row: u32,
    /// Padding to a multiple of 16 bytes.
    pub _pad: [u32; 3],
}

impl HeatmapUniforms {
    /// Uniforms drawing `layer` over a `width × height` image. `map_range` is the map's
    /// finite `(min, max)`, used for range bounds that are not finite.
    pub fn new(
        layer: &HeatmapLayer,
        (width, height): (u32, u32),
        placement: &Placement,
        map_range: (f32, f32),
    ) -> Result<Self, RenderError> {
        let inv = layer
            .map_to_image
            .inverse()
            .filter(|t| t.m.iter().all(|v| v.is_finite()))
            .ok_or(RenderError::SingularTransform(layer.map_to_image))?;
        let [a, b, tx, c, d, ty] = inv.m.map(|v| v as f32);
        let style = &layer.style;
        let (value_min, value_max) = style.resolved_range(map_range);
        let gamma = style.effective_gamma();
        Ok(Self {
            clip_rect: placement.clip_rect(),
            image_to_map_x: [a, b, tx, 0.0],
            image_to_map_y: [c, d, ty, 0.0],
            sizes: [
                width as f32,
                height as f32,
                layer.width as f32,
                layer.height as f32,
            ],
            value_min,
            value_max,
            gamma,
            opacity: sanitize_opacity(style.opacity),
            colormap_row: style.colormap.lut_row(),
            _pad: [0; 3],
        })
    }
}

/// Opacity clamped to `[0, 1]`, NaN → 0.
pub fn sanitize_opacity(opacity: f32) -> f32 {
    if opacity.is_nan() {
        0.0
    } else {
        opacity.clamp(0.0, 1.0)
    }
}

/// The finite `(min, max)` of `values`, `(0, 1)` when there is none.
pub fn finite_range(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f32, f32)>, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 1.0))
}

/// One skeleton primitive (capsule or rimmed disc), an instance of the skeleton quad.
///
/// Keep in sync with `InstanceIn` in `shaders/skeleton.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SkeletonInstance {
    /// `(a.x, a.y, b.x, b.y)`: segment end points in image pixels (`a == b` for discs).
    pub ends: [f32; 4],
    /// `(radius, rim width, 0, 0)` in image pixels.
    pub shape: [f32; 4],
    /// Fill colour in the target's colour space, straight alpha.
    pub fill: [f32; 4],
    /// Rim colour in the target's colour space, straight alpha.
    pub rim_color: [f32; 4],
}

/// How colours must be written for the render target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputSpace {
    /// Unorm target: write sRGB-encoded values (what egui does on such targets).
    Gamma,
    /// sRGB target: write linear values; the GPU encodes them.
    Linear,
}

impl OutputSpace {
    /// An 8-bit sRGB colour with straight `alpha`, converted for this output.
    pub fn color(self, [r, g, b]: [u8; 3], alpha: f32) -> [f32; 4] {
        let conv = |c: u8| {
            let v = f32::from(c) / 255.0;
            match self {
                OutputSpace::Gamma => v,
                OutputSpace::Linear if v <= 0.04045 => v / 12.92,
                OutputSpace::Linear => ((v + 0.055) / 1.055).powf(2.4),
            }
        };
        [conv(r), conv(g), conv(b), alpha]
    }
}

/// Rim of joint discs, as in the CPU exporter.
const RIM: [u8; 3] = [20, 20, 20];
/// Rim of the highlighted joint.
const HIGHLIGHT_RIM: [u8; 3] = [245, 245, 245];
/// Halo under limbs, as in the CPU exporter.
const OUTLINE: [u8; 3] = [0, 0, 0];
const OUTLINE_ALPHA: f32 = 0.6;
/// Radius factor of the highlighted joint.
const HIGHLIGHT_SCALE: f32 = 1.75;

/// The skeleton's primitives in drawing order: person by person, dark halos under the
/// limbs, the limbs, then the joints. Missing, low-scoring (or NaN-scoring) and non-finite
/// keypoints are skipped, as are limbs touching them.
pub fn skeleton_instances(layer: &SkeletonLayer, space: OutputSpace) -> Vec<SkeletonInstance> {
    let line = layer.line_width;
    if !(line.is_finite() && line > 0.0) {
        return Vec::new();
    }
    let half = line / 2.0;
    let halo = half + (line * 0.25).max(1.0);
    let joints = layer.joints;
    let mut out = Vec::new();
    for (pi, person) in layer.people.iter().enumerate() {
        let person_color = super::PERSON_COLORS[pi % super::PERSON_COLORS.len()];
        let point = |j: usize| {
            let k = person.keypoints.get(j).copied().flatten()?;
            let ok = k.score >= layer.min_score && k.x.is_finite() && k.y.is_finite();
            ok.then_some([k.x, k.y])
        };
        let limbs: Vec<_> = joints
            .limbs
            .iter()
            .zip(joints.limb_colors)
            .filter_map(|(&(a, b), &color)| {
                let color = if layer.person_colors {
                    person_color
                } else {
                    color
                };
                Some((point(a)?, point(b)?, color))
            })
            .collect();
        let capsule = |a: [f32; 2], b: [f32; 2], radius: f32, fill: [f32; 4]| SkeletonInstance {
            ends: [a[0], a[1], b[0], b[1]],
            shape: [radius, 0.0, 0.0, 0.0],
            fill,
            rim_color: fill,
        };
        let outline = space.color(OUTLINE, OUTLINE_ALPHA);
        out.extend(limbs.iter().map(|&(a, b, _)| capsule(a, b, halo, outline)));
        out.extend(
            limbs
                .iter()
                .map(|&(a, b, c)| capsule(a, b, half, space.color(c, 1.0))),
        );
        for j in 0..joints.len() {
            let Some(p) = point(j) else { continue };
            let highlighted = layer.highlight_joint == Some(j);
            let (radius, rim) = if highlighted {
                (line * HIGHLIGHT_SCALE, HIGHLIGHT_RIM)
            } else {
                (line, RIM)
            };
            out.push(SkeletonInstance {
                ends: [p[0], p[1], p[0], p[1]],
                shape: [radius, (radius * 0.2).max(0.75), 0.0, 0.0],
                fill: space.color(joints.joint_color(j), 1.0),
                rim_color: space.color(rim, 1.0),
            });
        }
    }
    out
}

/// A vector field's glyphs: a capsule per segment and a dot at its tip.
pub fn vector_instances(layer: &super::VectorLayer, space: OutputSpace) -> Vec<SkeletonInstance> {
    let w = layer.width;
    if !(w.is_finite() && w > 0.0) {
        return Vec::new();
    }
    let finite = |p: [f32; 2]| p[0].is_finite() && p[1].is_finite();
    let mut out = Vec::with_capacity(layer.segments.len() * 2);
    for s in layer.segments.iter().filter(|s| finite(s.a) && finite(s.b)) {
        let fill = space.color(s.color, s.alpha.clamp(0.0, 1.0));
        out.push(SkeletonInstance {
            ends: [s.a[0], s.a[1], s.b[0], s.b[1]],
            shape: [w / 2.0, 0.0, 0.0, 0.0],
            fill,
            rim_color: fill,
        });
        out.push(SkeletonInstance {
            ends: [s.b[0], s.b[1], s.b[0], s.b[1]],
            shape: [w, 0.0, 0.0, 0.0],
            fill,
            rim_color: fill,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pose::skeleton::OPENPOSE_COCO18;
    use crate::pose::{Keypoint, Person};

    #[test]
    fn layouts_match_the_wgsl_structs() {
        // WGSL sizes: Frame = vec4 + 2 * vec2; Uniforms = 4 * vec4 + 4 f32 + 4 u32;
        // InstanceIn = 4 * vec4.
        assert_eq!(std::mem::size_of::<FrameUniforms>(), 32);
        assert_eq!(std::mem::size_of::<HeatmapUniforms>(), 96);
        assert_eq!(std::mem::size_of::<SkeletonInstance>(), 64);
    }

    #[test]
    fn skeleton_skips_missing_and_weak_joints() {
        let k = |x: f32, score: f32| Some(Keypoint { x, y: 5.0, score });
        let mut keypoints = vec![None; 18];
        keypoints[1] = k(10.0, 0.9); // neck
        keypoints[2] = k(20.0, 0.9); // right shoulder
        keypoints[5] = k(0.0, 0.05); // left shoulder, too weak
        keypoints[3] = k(f32::NAN, 0.9); // right elbow, not finite
        let layer = SkeletonLayer {
            people: Arc::new(vec![Person {
                score: 1.0,
                keypoints,
            }]),
            joints: &OPENPOSE_COCO18,
            line_width: 4.0,
            min_score: 0.1,
            highlight_joint: Some(2),
            person_colors: false,
        };
        let inst = skeleton_instances(&layer, OutputSpace::Gamma);
        // One limb (neck-right shoulder): halo + limb, then two joints.
        assert_eq!(inst.len(), 4);
        assert_eq!(inst[1].ends, [10.0, 5.0, 20.0, 5.0]);
        assert_eq!(inst[1].shape[0], 2.0);
        assert_eq!(inst[1].fill, [1.0, 0.0, 0.0, 1.0]);
        assert_eq!(inst[2].shape[0], 4.0);
        assert_eq!(inst[3].shape[0], 4.0 * HIGHLIGHT_SCALE);

        // Colour by person: the limb takes the first person colour.
        let by_person = SkeletonLayer {
            person_colors: true,
            ..layer
        };
        let inst = skeleton_instances(&by_person, OutputSpace::Gamma);
        assert_eq!(
            inst[1].fill,
            OutputSpace::Gamma.color(crate::render::PERSON_COLORS[0], 1.0)
        );
    }

    #[test]
    fn vector_glyphs_are_a_capsule_and_a_tip() {
        let layer = crate::render::VectorLayer {
            segments: Arc::new(vec![crate::render::Segment {
                a: [1.0, 2.0],
                b: [5.0, 2.0],
                color: [255, 0, 0],
                alpha: 0.5,
            }]),
            width: 2.0,
        };
        let inst = vector_instances(&layer, OutputSpace::Gamma);
        assert_eq!(inst.len(), 2);
        assert_eq!(inst[0].ends, [1.0, 2.0, 5.0, 2.0]);
        assert_eq!(inst[1].ends, [5.0, 2.0, 5.0, 2.0]);
        assert_eq!(inst[0].fill, [1.0, 0.0, 0.0, 0.5]);
    }

    #[test]
    fn linear_output_linearises() {
        let c = OutputSpace::Linear.color([255, 128, 0], 0.5);
        assert!((c[1] - 0.2158).abs() < 1e-3, "{c:?}");
        assert_eq!((c[0], c[2], c[3]), (1.0, 0.0, 0.5));
        assert_eq!(finite_range(&[f32::NAN, 2.0, -1.0]), (-1.0, 2.0));
        assert_eq!(finite_range(&[]), (0.0, 1.0));
    }
}
