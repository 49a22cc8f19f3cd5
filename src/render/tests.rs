//! Headless GPU tests of the compositor through the offscreen path (lavapipe in CI).
//!
//! Without an adapter a test fails when `CI` is set and is skipped otherwise.

use std::sync::Arc;

use eframe::wgpu;
use image::{Rgba, RgbaImage};

use super::*;
use crate::colormap::Colormap;
use crate::pose::skeleton::OPENPOSE_COCO18;
use crate::pose::Keypoint;

/// A device, or `None` (test skipped) when there is no adapter outside CI.
pub(crate) fn gpu() -> Option<(wgpu::Device, wgpu::Queue)> {
    match headless_device() {
        Ok(dq) => Some(dq),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter in CI: {e}"),
        Err(e) => {
            println!("SKIPPED: {e}");
            None
        }
    }
}

fn compositor(device: &wgpu::Device, queue: &wgpu::Queue) -> Compositor {
    Compositor::new(device, queue, wgpu::TextureFormat::Rgba8Unorm).unwrap()
}

fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Arc<RgbaImage> {
    Arc::new(RgbaImage::from_pixel(
        width,
        height,
        Rgba([rgb[0], rgb[1], rgb[2], 255]),
    ))
}

/// The 8×6 map with a single 1.0 at map pixel (3, 2).
fn peak_map(map_to_image: Affine2) -> HeatmapLayer {
    let mut values = vec![0.0f32; 8 * 6];
    values[2 * 8 + 3] = 1.0;
    HeatmapLayer {
        values: Arc::new(values),
        width: 8,
        height: 6,
        key: 1,
        map_to_image,
        style: OverlayStyle {
            colormap: Colormap::Inferno,
            opacity: 1.0,
            range: (0.0, 1.0),
            gamma: 1.0,
        },
    }
}

fn luminance(p: &Rgba<u8>) -> u32 {
    p.0[..3].iter().map(|&c| u32::from(c)).sum()
}

/// The pixels of maximal brightness.
fn brightest(img: &RgbaImage) -> Vec<(u32, u32)> {
    let max = img.pixels().map(luminance).max().unwrap();
    img.enumerate_pixels()
        .filter(|(_, _, p)| luminance(p) == max)
        .map(|(x, y, _)| (x, y))
        .collect()
}

fn assert_near(points: &[(u32, u32)], at: (f32, f32), tol: f32) {
    assert!(!points.is_empty());
    for &(x, y) in points {
        let d = (x as f32 - at.0).hypot(y as f32 - at.1);
        assert!(d <= tol, "pixel ({x}, {y}) is {d} px from {at:?}");
    }
    let n = points.len() as f32;
    let cx = points.iter().map(|p| p.0 as f32).sum::<f32>() / n;
    let cy = points.iter().map(|p| p.1 as f32).sum::<f32>() / n;
    println!("brightest pixels {points:?}, centroid ({cx}, {cy}), expected {at:?}");
}

#[test]
fn overlay_peak_lands_on_the_transformed_map_pixel() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let mut scene = Scene::new(solid(64, 48, [0, 0, 0]), 1);
    scene.heatmap = Some(peak_map(Affine2::resample(8.0, 8.0)));
    let out = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    assert_eq!(out.dimensions(), (64, 48));
    let peak = brightest(&out);
    assert_near(&peak, (27.5, 19.5), 1.0);
    // Bilinear weight at those pixels: (1 - 1/16)^2.
    let want = Colormap::Inferno.rgb(0.9375 * 0.9375);
    let got = out.get_pixel(27, 19).0;
    for c in 0..3 {
        assert!(got[c].abs_diff(want[c]) <= 2, "{got:?} vs {want:?}");
    }
}

#[test]
fn letterbox_border_keeps_the_image() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let grey = [90, 120, 150];
    let mut scene = Scene::new(solid(64, 64, grey), 1);
    // The map covers image rows 7.5 ..= 55.5: rows 0-7 and 56-63 are letterbox.
    scene.heatmap = Some(peak_map(Affine2::scale_translate(8.0, 8.0, 3.5, 11.5)));
    let out = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    let zero = Colormap::Inferno.rgb(0.0);
    for x in 0..64 {
        for y in (0..8).chain(56..64) {
            assert_eq!(out.get_pixel(x, y).0[..3], grey, "border pixel ({x}, {y})");
        }
        for y in [8, 40, 55] {
            if (x as i32 - 27).abs() > 10 {
                let p = out.get_pixel(x, y).0;
                assert!(p[..3].iter().zip(zero).all(|(a, b)| a.abs_diff(b) <= 1));
            }
        }
    }
    // x = 3.5 + 8 * 3, y = 11.5 + 8 * 2.
    assert_near(&brightest(&out), (27.5, 27.5), 1.0);
}

#[test]
fn skeleton_joint_and_heatmap_peak_share_the_pixel() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let mut scene = Scene::new(solid(64, 48, [0, 0, 0]), 1);
    scene.heatmap = Some(peak_map(Affine2::resample(8.0, 8.0)));
    let heat = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    let peak = brightest(&heat);

    let k = |x: f32, y: f32| Some(Keypoint { x, y, score: 0.9 });
    let mut keypoints = vec![None; OPENPOSE_COCO18.len()];
    keypoints[1] = k(27.5, 19.5); // neck
    keypoints[2] = k(45.5, 19.5); // right shoulder
    keypoints[0] = k(27.5, 5.5); // nose
    keypoints[3] = Some(Keypoint {
        x: 50.0,
        y: 40.0,
        score: 0.01, // below min_score: neither joint nor limb
    });
    scene.skeleton = Some(SkeletonLayer {
        people: Arc::new(vec![Person {
            score: 1.0,
            keypoints,
        }]),
        joints: &OPENPOSE_COCO18,
        line_width: 3.0,
        min_score: 0.1,
        highlight_joint: None,
        person_colors: false,
    });
    let both = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    let neck = OPENPOSE_COCO18.joint_color(1);
    for &(x, y) in &peak {
        assert_eq!(
            both.get_pixel(x, y).0[..3],
            neck,
            "joint colour at ({x}, {y})"
        );
    }
    // The limb neck → right shoulder, and nothing around the weak elbow.
    assert_eq!(
        both.get_pixel(36, 19).0[..3],
        OPENPOSE_COCO18.limb_colors[0]
    );
    assert_eq!(both.get_pixel(50, 40).0, heat.get_pixel(50, 40).0);
}

/// The CPU exporter's formula: bilinear sample (clamped, half-open coverage), normalise,
/// colormap, alpha blend in 8-bit sRGB.
fn cpu_overlay(img: &RgbaImage, layer: &HeatmapLayer) -> RgbaImage {
    let (w, h) = (layer.width as usize, layer.height as usize);
    let inv = layer.map_to_image.inverse().unwrap();
    let at = |x: usize, y: usize| layer.values[y * w + x];
    let tap = |m: f64, n: usize| {
        if !(m >= -0.5 && m < n as f64 - 0.5) {
            return None;
        }
        let mc = m.clamp(0.0, (n - 1) as f64);
        let i0 = mc.floor() as usize;
        Some((i0, (i0 + 1).min(n - 1), (mc - i0 as f64) as f32))
    };
    let (lo, hi) = layer.style.range;
    let a = layer.style.opacity;
    let mut out = img.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (mx, my) = inv.apply(f64::from(x), f64::from(y));
        let (Some((x0, x1, fx)), Some((y0, y1, fy))) = (tap(mx, w), tap(my, h)) else {
            continue;
        };
        let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
        let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
        let v = top + (bottom - top) * fy;
        let t = ((v - lo) / (hi - lo))
            .clamp(0.0, 1.0)
            .powf(layer.style.gamma);
        let c = layer.style.colormap.rgb(t);
        for (d, s) in px.0.iter_mut().zip(c) {
            *d = (f32::from(*d) * (1.0 - a) + f32::from(s) * a).round() as u8;
        }
    }
    out
}

#[test]
fn gpu_overlay_matches_the_cpu_formula() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let (mw, mh) = (23u32, 17u32);
    let values: Vec<f32> = (0..mh)
        .flat_map(|y| (0..mw).map(move |x| (x as f32, y as f32)))
        .map(|(x, y)| {
            let g = (-((x - 9.0).powi(2) + (y - 7.0).powi(2)) / 30.0).exp();
            (0.6 * g + 0.25 * (0.4 * x).sin() * (0.3 * y).cos() + 0.25).clamp(0.0, 1.0)
        })
        .collect();
    let image = Arc::new(RgbaImage::from_fn(200, 150, |x, y| {
        Rgba([(x + y) as u8, (3 * x) as u8, (255 - y) as u8, 255])
    }));
    // A letterboxed stride-8 map that does not cover the image exactly.
    let layer = HeatmapLayer {
        values: Arc::new(values),
        width: mw,
        height: mh,
        key: 7,
        map_to_image: Affine2::scale_translate(8.0, 8.0, 7.25, 3.5),
        style: OverlayStyle {
            colormap: Colormap::Turbo,
            opacity: 0.7,
            range: (0.0, 1.0),
            gamma: 1.0,
        },
    };
    let want = cpu_overlay(&image, &layer);
    let mut scene = Scene::new(image, 1);
    scene.heatmap = Some(layer);
    let got = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    let mut sum = [0u64; 3];
    let mut max = [0u8; 3];
    for (g, w) in got.pixels().zip(want.pixels()) {
        for c in 0..3 {
            let d = g.0[c].abs_diff(w.0[c]);
            sum[c] += u64::from(d);
            max[c] = max[c].max(d);
        }
    }
    let n = f64::from(got.width() * got.height());
    let mean = sum.map(|s| s as f64 / n);
    println!("GPU vs CPU: mean abs diff per channel {mean:?}, max {max:?}");
    assert!(mean.iter().all(|&m| m <= 3.0), "mean {mean:?}");
    assert!(max.iter().all(|&m| m <= 12), "max {max:?}");
}

#[test]
fn textures_upload_only_when_keys_change() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let mut scene = Scene::new(solid(32, 24, [10, 20, 30]), 1);
    scene.heatmap = Some(peak_map(Affine2::resample(4.0, 4.0)));
    let place = Placement::native((32, 24));
    let prepare = |comp: &mut Compositor, view: u64, scene: &Scene| {
        comp.prepare(&device, &queue, view, scene, &place).unwrap();
        comp.upload_count()
    };
    assert_eq!(prepare(&mut comp, 1, &scene), 2);
    for _ in 0..5 {
        assert_eq!(prepare(&mut comp, 1, &scene), 2, "unchanged keys");
    }
    if let Some(h) = scene.heatmap.as_mut() {
        h.key = 2;
        h.style.opacity = 0.3; // style changes are uniforms, not uploads
    }
    assert_eq!(prepare(&mut comp, 1, &scene), 3);
    scene.image_key = 2;
    assert_eq!(prepare(&mut comp, 1, &scene), 4);
    assert_eq!(
        prepare(&mut comp, 2, &scene),
        6,
        "a new view has its own textures"
    );
    assert_eq!(comp.view_count(), 2);
    // Offscreen rendering caches its textures too.
    render_scene(&device, &queue, &mut comp, &scene).unwrap();
    render_scene(&device, &queue, &mut comp, &scene).unwrap();
    assert_eq!(comp.upload_count(), 8);
    comp.remove_view(2);
    assert_eq!(comp.view_count(), 2);
}

#[test]
fn invalid_heatmap_is_reported_and_skipped() {
    let Some((device, queue)) = gpu() else { return };
    let mut comp = compositor(&device, &queue);
    let mut scene = Scene::new(solid(16, 16, [1, 2, 3]), 1);
    let mut layer = peak_map(Affine2::resample(2.0, 2.0));
    layer.width = 9;
    scene.heatmap = Some(layer.clone());
    let err = render_scene(&device, &queue, &mut comp, &scene).unwrap_err();
    assert!(
        matches!(err, RenderError::HeatmapShape { len: 48, .. }),
        "{err}"
    );
    layer.width = 8;
    layer.map_to_image = Affine2::scale_translate(0.0, 1.0, 0.0, 0.0);
    scene.heatmap = Some(layer);
    let err = render_scene(&device, &queue, &mut comp, &scene).unwrap_err();
    assert!(matches!(err, RenderError::SingularTransform(_)), "{err}");
    assert_eq!(comp.view_error(offscreen::OFFSCREEN_VIEW_ID), Some(&err));
    scene.heatmap = None;
    let out = render_scene(&device, &queue, &mut comp, &scene).unwrap();
    assert_eq!(out.get_pixel(5, 5).0, [1, 2, 3, 255]);
    let empty = Scene::new(Arc::new(RgbaImage::new(0, 4)), 1);
    let err = render_scene(&device, &queue, &mut comp, &empty).unwrap_err();
    assert!(matches!(err, RenderError::EmptyImage { .. }));
}

#[test]
fn every_target_format_reads_back_the_image() {
    let Some((device, queue)) = gpu() else { return };
    let image = Arc::new(RgbaImage::from_fn(37, 21, |x, y| {
        Rgba([(7 * x) as u8, (11 * y) as u8, (x * y) as u8, 255])
    }));
    let scene = Scene::new(image.clone(), 1);
    let formats = [
        wgpu::TextureFormat::Rgba8Unorm,
        wgpu::TextureFormat::Bgra8Unorm,
        wgpu::TextureFormat::Rgba8UnormSrgb,
        wgpu::TextureFormat::Bgra8UnormSrgb,
    ];
    for format in formats {
        for sample_count in [1, 4] {
            let target = RenderTarget {
                format,
                sample_count,
                depth_format: (sample_count > 1).then_some(wgpu::TextureFormat::Depth24Plus),
            };
            let mut comp = Compositor::with_target(&device, &queue, target).unwrap();
            let out = render_scene(&device, &queue, &mut comp, &scene).unwrap();
            let worst = out
                .as_raw()
                .iter()
                .zip(image.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(
                worst <= Some(1),
                "{format:?} x{sample_count}: off by {worst:?}"
            );
        }
    }
}

#[test]
fn srgb_targets_draw_the_same_colours() {
    let Some((device, queue)) = gpu() else { return };
    let mut scene = Scene::new(solid(40, 30, [200, 30, 60]), 1);
    scene.skeleton = Some(SkeletonLayer {
        people: Arc::new(vec![Person {
            score: 1.0,
            keypoints: (0..18)
                .map(|j| {
                    Some(Keypoint {
                        x: 4.0 + 8.0 * j as f32,
                        y: 15.0,
                        score: 1.0,
                    })
                })
                .collect(),
        }]),
        joints: &OPENPOSE_COCO18,
        line_width: 2.0,
        min_score: 0.1,
        highlight_joint: Some(1),
        person_colors: false,
    });
    let render = |format| {
        let mut comp = Compositor::new(&device, &queue, format).unwrap();
        render_scene(&device, &queue, &mut comp, &scene).unwrap()
    };
    let gamma = render(wgpu::TextureFormat::Rgba8Unorm);
    let linear = render(wgpu::TextureFormat::Rgba8UnormSrgb);
    // Opaque pixels agree; blended edges differ (linear vs gamma blending).
    let fill = OPENPOSE_COCO18.joint_color(1);
    let at = |img: &RgbaImage| img.get_pixel(12, 15).0;
    assert_eq!(at(&gamma)[..3], fill);
    assert!(at(&linear)[..3]
        .iter()
        .zip(fill)
        .all(|(a, b)| a.abs_diff(b) <= 1));
    assert_eq!(gamma.get_pixel(0, 0), linear.get_pixel(0, 0));
}
