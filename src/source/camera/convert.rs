//! Camera pixel formats to 8-bit RGB: pure functions over one frame's bytes.
//!
//! Webcams deliver Motion-JPEG (every frame a JPEG) or packed 4:2:2 YUV (`YUYV`, `UYVY`)
//! almost always; a few deliver NV12, RGB, BGR or grey. YUV is converted with the BT.601
//! limited-range matrix, which is what UVC webcams send.

use image::RgbImage;

/// Four-character codes, little-endian as V4L2 stores them.
pub const MJPG: u32 = u32::from_le_bytes(*b"MJPG");
pub const JPEG: u32 = u32::from_le_bytes(*b"JPEG");
pub const YUYV: u32 = u32::from_le_bytes(*b"YUYV");
pub const UYVY: u32 = u32::from_le_bytes(*b"UYVY");
pub const NV12: u32 = u32::from_le_bytes(*b"NV12");
pub const RGB3: u32 = u32::from_le_bytes(*b"RGB3");
pub const BGR3: u32 = u32::from_le_bytes(*b"BGR3");
pub const GREY: u32 = u32::from_le_bytes(*b"GREY");

/// Formats [`to_rgb`] converts.
pub fn decodable(fourcc: u32) -> bool {
    matches!(
        fourcc,
        MJPG | JPEG | YUYV | UYVY | NV12 | RGB3 | BGR3 | GREY
    )
}

/// How much a format costs to turn into RGB, for choosing a default (lower is cheaper).
pub fn decode_cost(fourcc: u32) -> u32 {
    match fourcc {
        RGB3 | BGR3 | GREY => 0,
        YUYV | UYVY | NV12 => 1,
        _ => 2,
    }
}

/// One frame of `fourcc` pixels (`width`×`height`, rows `stride` bytes apart for packed
/// formats; 0 = tightly packed) as RGB.
///
/// # Errors
/// A message saying what is wrong: a short buffer, a corrupt JPEG, an unknown format.
pub fn to_rgb(
    fourcc: u32,
    width: u32,
    height: u32,
    stride: u32,
    data: &[u8],
) -> Result<RgbImage, String> {
    let (w, h) = (width as usize, height as usize);
    let packed = |bpp: usize| {
        let row = if stride as usize >= w * bpp {
            stride as usize
        } else {
            w * bpp
        };
        let need = row * h.saturating_sub(1) + w * bpp;
        if data.len() < need {
            Err(format!(
                "{}x{} frame needs {need} bytes, the camera gave {}",
                width,
                height,
                data.len()
            ))
        } else {
            Ok(row)
        }
    };
    let mut out = vec![0u8; w * h * 3];
    match fourcc {
        MJPG | JPEG => return decode_jpeg(data, width, height),
        YUYV | UYVY => {
            let row = packed(2)?;
            let (y0, u, y1, v) = if fourcc == YUYV {
                (0, 1, 2, 3)
            } else {
                (1, 0, 3, 2)
            };
            for y in 0..h {
                let src = &data[y * row..y * row + w * 2];
                let dst = &mut out[y * w * 3..(y + 1) * w * 3];
                for (x, px) in src.chunks_exact(4).enumerate() {
                    let (cb, cr) = (px[u], px[v]);
                    put(dst, 2 * x, yuv(px[y0], cb, cr));
                    if 2 * x + 1 < w {
                        put(dst, 2 * x + 1, yuv(px[y1], cb, cr));
                    }
                }
            }
        }
        NV12 => {
            let row = packed(1)?;
            let chroma = row * h;
            let need = chroma + row * h.div_ceil(2);
            if data.len() < need {
                return Err(format!(
                    "{width}x{height} NV12 frame needs {need} bytes, the camera gave {}",
                    data.len()
                ));
            }
            for y in 0..h {
                for x in 0..w {
                    let c = chroma + (y / 2) * row + (x / 2) * 2;
                    put(
                        &mut out[y * w * 3..],
                        x,
                        yuv(data[y * row + x], data[c], data[c + 1]),
                    );
                }
            }
        }
        RGB3 | BGR3 => {
            let row = packed(3)?;
            for y in 0..h {
                for x in 0..w {
                    let p = &data[y * row + x * 3..y * row + x * 3 + 3];
                    let rgb = if fourcc == RGB3 {
                        [p[0], p[1], p[2]]
                    } else {
                        [p[2], p[1], p[0]]
                    };
                    put(&mut out[y * w * 3..], x, rgb);
                }
            }
        }
        GREY => {
            let row = packed(1)?;
            for y in 0..h {
                for x in 0..w {
                    let g = data[y * row + x];
                    put(&mut out[y * w * 3..], x, [g, g, g]);
                }
            }
        }
        other => {
            return Err(format!(
                "pixel format {} is not supported",
                super::fourcc_text(other)
            ))
        }
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| "frame size overflow".to_string())
}

fn put(row: &mut [u8], x: usize, rgb: [u8; 3]) {
    row[x * 3..x * 3 + 3].copy_from_slice(&rgb);
}

/// BT.601 limited range (16..235 luma, 16..240 chroma) to full-range RGB.
fn yuv(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// A Motion-JPEG frame. Many webcams leave out the Huffman tables (as MJPEG allows); the
/// decoder used here supplies the standard ones.
fn decode_jpeg(data: &[u8], width: u32, height: u32) -> Result<RgbImage, String> {
    let img = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
        .map_err(|e| format!("corrupt Motion-JPEG frame ({} bytes): {e}", data.len()))?
        .to_rgb8();
    if img.dimensions() != (width, height) && width > 0 && height > 0 {
        tracing::debug!(
            "MJPEG frame is {}x{}, the negotiated size {width}x{height}",
            img.width(),
            img.height()
        );
    }
    Ok(img)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yuv_extremes() {
        assert_eq!(yuv(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range.
        let [r, g, b] = yuv(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }

    #[test]
    fn yuyv_and_uyvy_agree() {
        // 2x1: one macropixel.
        let yuyv = [81u8, 90, 145, 240];
        let uyvy = [90u8, 81, 240, 145];
        let a = to_rgb(YUYV, 2, 1, 0, &yuyv).unwrap();
        let b = to_rgb(UYVY, 2, 1, 0, &uyvy).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get_pixel(0, 0).0, yuv(81, 90, 240));
        assert_eq!(a.get_pixel(1, 0).0, yuv(145, 90, 240));
    }

    #[test]
    fn stride_is_honoured() {
        // 1x2 grey with 4-byte rows.
        let data = [10u8, 99, 99, 99, 20];
        let img = to_rgb(GREY, 1, 2, 4, &data).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [10, 10, 10]);
        assert_eq!(img.get_pixel(0, 1).0, [20, 20, 20]);
        let bgr = to_rgb(BGR3, 1, 1, 0, &[1, 2, 3]).unwrap();
        assert_eq!(bgr.get_pixel(0, 0).0, [3, 2, 1]);
    }

    #[test]
    fn short_buffers_and_bad_jpeg_are_errors() {
        let e = to_rgb(YUYV, 640, 480, 0, &[0; 100]).unwrap_err();
        assert!(e.contains("640x480") && e.contains("100"), "{e}");
        let e = to_rgb(MJPG, 640, 480, 0, &[0xff, 0xd8, 0, 1]).unwrap_err();
        assert!(e.contains("Motion-JPEG"), "{e}");
        let e = to_rgb(u32::from_le_bytes(*b"H264"), 2, 2, 0, &[0; 16]).unwrap_err();
        assert!(e.contains("H264"), "{e}");
    }

    #[test]
    fn mjpeg_round_trip() {
        let src = RgbImage::from_fn(16, 8, |x, y| {
            image::Rgb([(x * 16) as u8, (y * 32) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(src.clone())
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let img = to_rgb(MJPG, 16, 8, 0, &jpeg).unwrap();
        assert_eq!(img.dimensions(), (16, 8));
        let err: i32 = img
            .pixels()
            .zip(src.pixels())
            .map(|(a, b)| (i32::from(a.0[0]) - i32::from(b.0[0])).abs())
            .max()
            .unwrap();
        assert!(err < 20, "max error {err}");
    }

    #[test]
    fn nv12() {
        // 2x2 luma then one interleaved UV pair.
        let data = [16u8, 235, 16, 235, 128, 128];
        let img = to_rgb(NV12, 2, 2, 0, &data).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 1).0, [255, 255, 255]);
    }
}
