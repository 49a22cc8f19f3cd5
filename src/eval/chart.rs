//! A PNG summary of a [`Report`]: accuracy per stage (left: a line with a dot per stage)
//! and the final stage's per-joint scores (right: one bar per dataset joint, in the joint's
//! skeleton colour; joints never counted have no bar, only a grey tick). Both panels share
//! the vertical scale 0..1 with grid lines every 0.1 (stronger at 0.5 and 1). No text: the
//! numbers are in the report.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::Report;
use crate::export::{atomic::write_atomic, png_bytes, ExportError};
use crate::pose::skeleton;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 400;
const MARGIN: i64 = 30;
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([60, 60, 60]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const GRID_STRONG: Rgb<u8> = Rgb([190, 190, 190]);
const LINE: Rgb<u8> = Rgb([31, 119, 180]);

/// A plotting rectangle in pixels: `x0..x1` left to right, `y0` top, `y1` bottom (value 0).
#[derive(Clone, Copy)]
struct Panel {
    x0: i64,
    x1: i64,
    y0: i64,
    y1: i64,
}

impl Panel {
    /// Pixel row of a value in 0..1 (clamped).
    fn y(&self, v: f64) -> i64 {
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.y1 - (v * (self.y1 - self.y0) as f64).round() as i64
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    for y in y0.min(y1)..=y0.max(y1) {
        for x in x0.min(x1)..=x0.max(x1) {
            put(img, x, y, c);
        }
    }
}

/// A line `radius` pixels thick (square brush), stepping one pixel along the longer axis.
fn line(img: &mut RgbImage, a: (i64, i64), b: (i64, i64), radius: i64, c: Rgb<u8>) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let x = a.0 + ((b.0 - a.0) as f64 * t).round() as i64;
        let y = a.1 + ((b.1 - a.1) as f64 * t).round() as i64;
        fill(img, x - radius, y - radius, x + radius, y + radius, c);
    }
}

fn dot(img: &mut RgbImage, c: (i64, i64), r: i64, color: Rgb<u8>) {
    for y in -r..=r {
        for x in -r..=r {
            if x * x + y * y <= r * r {
                put(img, c.0 + x, c.1 + y, color);
            }
        }
    }
}

/// Grid lines, the axes and ticks on the value axis.
fn frame(img: &mut RgbImage, p: Panel) {
    for i in 0..=10 {
        let y = p.y(f64::from(i) / 10.0);
        let c = if i % 5 == 0 { GRID_STRONG } else { GRID };
        line(img, (p.x0, y), (p.x1, y), 0, c);
        line(img, (p.x0 - 5, y), (p.x0, y), 0, AXIS);
    }
    line(img, (p.x0, p.y0), (p.x0, p.y1), 0, AXIS);
    line(img, (p.x0, p.y1), (p.x1, p.y1), 0, AXIS);
}

/// Draws the chart.
pub fn render(report: &Report) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, BACKGROUND);
    let w = i64::from(WIDTH);
    let h = i64::from(HEIGHT);
    let split = w * 2 / 5;
    let left = Panel {
        x0: MARGIN,
        x1: split - MARGIN / 2,
        y0: MARGIN,
        y1: h - MARGIN,
    };
    let right = Panel {
        x0: split + MARGIN / 2,
        x1: w - MARGIN,
        y0: MARGIN,
        y1: h - MARGIN,
    };
    frame(&mut img, left);
    frame(&mut img, right);

    // Accuracy per stage.
    let n = report.stages.len();
    let x_of = |t: usize| -> i64 {
        let inner = (left.x1 - left.x0 - 20) as f64;
        if n <= 1 {
            left.x0 + 10 + (inner / 2.0) as i64
        } else {
            left.x0 + 10 + (inner * t as f64 / (n - 1) as f64).round() as i64
        }
    };
    for t in 0..n {
        line(
            &mut img,
            (x_of(t), left.y1),
            (x_of(t), left.y1 + 5),
            0,
            AXIS,
        );
    }
    let points: Vec<Option<(i64, i64)>> = report
        .stages
        .iter()
        .enumerate()
        .map(|(t, s)| s.value.map(|v| (x_of(t), left.y(v))))
        .collect();
    for pair in points.windows(2) {
        if let [Some(a), Some(b)] = pair {
            line(&mut img, *a, *b, 1, LINE);
        }
    }
    for p in points.iter().flatten() {
        dot(&mut img, *p, 4, LINE);
    }

    // Per-joint bars of the final stage.
    let set = skeleton::by_id(&report.settings.dataset_joints);
    let k = report.per_joint.len();
    if k > 0 {
        let slot = (right.x1 - right.x0 - 10) as f64 / k as f64;
        for (j, s) in report.per_joint.iter().enumerate() {
            let xa = right.x0 + 5 + (slot * j as f64).round() as i64;
            let xb = right.x0 + 5 + (slot * (j + 1) as f64).round() as i64;
            let pad = ((xb - xa) / 6).max(1);
            let color = Rgb(set.map_or([120, 120, 120], |s| s.joint_color(j)));
            match s.value {
                Some(v) => {
                    if v > 0.0 {
                        fill(
                            &mut img,
                            xa + pad,
                            right.y(v),
                            xb - pad,
                            right.y1 - 1,
                            color,
                        );
                    }
                    line(
                        &mut img,
                        (xa + pad, right.y1 + 2),
                        (xb - pad, right.y1 + 2),
                        1,
                        color,
                    );
                }
                None => line(
                    &mut img,
                    (xa + pad, right.y1 + 2),
                    (xb - pad, right.y1 + 2),
                    1,
                    GRID_STRONG,
                ),
            }
        }
    }
    img
}

/// Renders the chart and writes it to `path` atomically (replacing any file there).
pub fn write_png(report: &Report, path: &Path) -> Result<(), ExportError> {
    let bytes = png_bytes(&render(report))?;
    write_atomic(path, &bytes, true)
}
