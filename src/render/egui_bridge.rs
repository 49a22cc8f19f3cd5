//! The bridge between egui and the [`Compositor`]: the only file that imports both egui
//! and wgpu.
//!
//! [`install`] puts a compositor for the window's target format into egui-wgpu's callback
//! resources once; every frame, each view adds a [`paint_callback`] (a small value: the
//! view id, two rects and the [`Scene`], whose data sits behind `Arc`s) to its painter.
//! egui-wgpu then calls `prepare` (uploads what changed, writes uniforms) before its render
//! pass and `paint` (draw calls) inside it, with the viewport set to the callback rect
//! (clamped to the screen) and the scissor to the painter's clip rect, which `paint`
//! narrows to the viewport. [`export_scene`] renders through the same installed
//! compositor offscreen, so a saved frame is exactly what the view shows.

use eframe::egui;
use eframe::egui_wgpu;
use eframe::wgpu;
use image::RgbaImage;

use super::compositor::Compositor;
use super::offscreen::render_scene;
use super::pipelines::RenderTarget;
use super::uniforms::Placement;
use super::{RenderError, Scene};

/// Stored in the callback resources instead of a compositor when [`install`] failed.
struct InstallFailed(RenderError);

/// Installs a compositor for `render_state.target_format` (single-sampled, no depth:
/// eframe's defaults) into the renderer's callback resources. Call once, e.g. from the
/// app's creation closure with `cc.wgpu_render_state`.
///
/// If wgpu rejects the pipelines, views draw nothing and [`view_error`] /
/// [`export_scene`] report why; use [`try_install`] to handle the error directly.
pub fn install(render_state: &egui_wgpu::RenderState) {
    if let Err(e) = try_install(render_state, RenderTarget::new(render_state.target_format)) {
        render_state
            .renderer
            .write()
            .callback_resources
            .insert(InstallFailed(e));
    }
}

/// Installs a compositor for `target`: use it when `NativeOptions::multisampling` or
/// `depth_buffer` are set (the render pass's sample count and depth format must match).
pub fn try_install(
    render_state: &egui_wgpu::RenderState,
    target: RenderTarget,
) -> Result<(), RenderError> {
    let compositor = Compositor::with_target(&render_state.device, &render_state.queue, target)?;
    let mut renderer = render_state.renderer.write();
    renderer.callback_resources.remove::<InstallFailed>();
    renderer.callback_resources.insert(compositor);
    Ok(())
}

/// A paint callback drawing `scene` for view `view_id`.
///
/// `viewport` is the area the view may draw in (the widget's rect; the callback rect) and
/// `image_rect` where the whole image lands, in points: it may be larger than the viewport
/// or offset from it (zoom and pan) and is cropped to it; keep the image's aspect ratio.
/// `view_id` identifies the view's GPU resources: use a stable id per on-screen view, and
/// each id at most once per frame.
pub fn paint_callback(
    view_id: u64,
    viewport: egui::Rect,
    image_rect: egui::Rect,
    scene: Scene,
) -> egui::PaintCallback {
    egui_wgpu::Callback::new_paint_callback(
        viewport,
        SceneCallback {
            view_id,
            viewport,
            image_rect,
            scene,
        },
    )
}

/// Renders `scene` offscreen at the image's native resolution with the installed
/// compositor's pipelines (the same path as the viewport).
pub fn export_scene(
    render_state: &egui_wgpu::RenderState,
    scene: &Scene,
) -> Result<RgbaImage, RenderError> {
    let mut renderer = render_state.renderer.write();
    let resources = &mut renderer.callback_resources;
    if let Some(InstallFailed(e)) = resources.get::<InstallFailed>() {
        return Err(e.clone());
    }
    let compositor = resources
        .get_mut::<Compositor>()
        .ok_or(RenderError::NotInstalled)?;
    render_scene(&render_state.device, &render_state.queue, compositor, scene)
}

/// Why view `view_id` did not draw (completely) in its latest frame, if it did not: the
/// error of its latest `prepare` (the view keeps drawing what is valid), or why there is
/// no compositor. For showing in the UI instead of logging every frame.
pub fn view_error(render_state: &egui_wgpu::RenderState, view_id: u64) -> Option<RenderError> {
    let renderer = render_state.renderer.read();
    let resources = &renderer.callback_resources;
    if let Some(InstallFailed(e)) = resources.get::<InstallFailed>() {
        return Some(e.clone());
    }
    match resources.get::<Compositor>() {
        Some(compositor) => compositor.view_error(view_id).cloned(),
        None => Some(RenderError::NotInstalled),
    }
}

/// Frees the GPU resources of views for which `keep` returns false (e.g. after the grid
/// of small multiples shrank).
pub fn retain_views(render_state: &egui_wgpu::RenderState, mut keep: impl FnMut(u64) -> bool) {
    let mut renderer = render_state.renderer.write();
    if let Some(compositor) = renderer.callback_resources.get_mut::<Compositor>() {
        compositor.retain_views(&mut keep);
    }
}

/// The per-frame callback value.
struct SceneCallback {
    view_id: u64,
    viewport: egui::Rect,
    image_rect: egui::Rect,
    scene: Scene,
}

impl SceneCallback {
    /// Where the image lies in the viewport egui will set: the callback rect clamped to the
    /// screen and rounded to whole pixels.
    fn placement(&self, screen: &egui_wgpu::ScreenDescriptor) -> Placement {
        let ppp = screen.pixels_per_point;
        let vp =
            egui::epaint::ViewportInPixels::from_points(&self.viewport, ppp, screen.size_in_pixels);
        let (vw, vh) = (vp.width_px.max(1) as f32, vp.height_px.max(1) as f32);
        let (left, top) = (vp.left_px as f32, vp.top_px as f32);
        let to_clip = |p: egui::Pos2| {
            [
                2.0 * (p.x * ppp - left) / vw - 1.0,
                1.0 - 2.0 * (p.y * ppp - top) / vh,
            ]
        };
        let size = self.image_rect.size() * ppp;
        let (w, h) = self.scene.image_size();
        Placement {
            clip_min: to_clip(self.image_rect.min),
            clip_max: to_clip(self.image_rect.max),
            // A mirrored view has a flipped rect (negative width): the clip corners carry the
            // mirroring, the pixel scale is a magnitude.
            screen_px_per_image_px: [
                size.x.abs() / w.max(1) as f32,
                size.y.abs() / h.max(1) as f32,
            ],
        }
    }
}

impl egui_wgpu::CallbackTrait for SceneCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(compositor) = callback_resources.get_mut::<Compositor>() {
            let placement = self.placement(screen_descriptor);
            // Errors are kept per view (see `view_error`), not reported every frame.
            let _ = compositor.prepare(device, queue, self.view_id, &self.scene, &placement);
        }
        Vec::new()
    }

    fn paint(
        &self,
        info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        // egui's scissor is the painter's clip rect; keep the image inside the viewport too.
        let (clip, vp) = (info.clip_rect_in_pixels(), info.viewport_in_pixels());
        let x0 = clip.left_px.max(vp.left_px);
        let y0 = clip.top_px.max(vp.top_px);
        let x1 = (clip.left_px + clip.width_px).min(vp.left_px + vp.width_px);
        let y1 = (clip.top_px + clip.height_px).min(vp.top_px + vp.height_px);
        let (Ok(x), Ok(y), Ok(w), Ok(h)) = (
            u32::try_from(x0),
            u32::try_from(y0),
            u32::try_from(x1 - x0),
            u32::try_from(y1 - y0),
        ) else {
            return;
        };
        if w == 0 || h == 0 {
            return;
        }
        render_pass.set_scissor_rect(x, y, w, h);
        if let Some(compositor) = callback_resources.get::<Compositor>() {
            compositor.paint(self.view_id, render_pass);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use egui_kittest::wgpu::{create_render_state, default_wgpu_setup, WgpuTestRenderer};
    use egui_kittest::Harness;
    use image::Rgba;

    use super::*;
    use crate::pose::skeleton::OPENPOSE_COCO18;
    use crate::pose::{Affine2, Keypoint, Person};
    use crate::render::{HeatmapLayer, OverlayStyle, SkeletonLayer};

    fn scene() -> Scene {
        let image =
            RgbaImage::from_fn(64, 48, |x, y| Rgba([(4 * x) as u8, (5 * y) as u8, 90, 255]));
        let values: Vec<f32> = (0..48).map(|i| (i % 8) as f32 / 7.0).collect();
        let k = |x, y| Some(Keypoint { x, y, score: 1.0 });
        let mut keypoints = vec![None; OPENPOSE_COCO18.len()];
        keypoints[1] = k(27.5, 19.5);
        keypoints[2] = k(45.5, 30.0);
        Scene {
            image: Arc::new(image),
            image_key: 1,
            heatmap: Some(HeatmapLayer {
                values: Arc::new(values),
                width: 8,
                height: 6,
                key: 1,
                map_to_image: Affine2::resample(8.0, 8.0),
                style: OverlayStyle::default(),
            }),
            vectors: None,
            skeleton: Some(SkeletonLayer {
                people: Arc::new(vec![Person {
                    score: 1.0,
                    keypoints,
                }]),
                joints: &OPENPOSE_COCO18,
                line_width: 3.0,
                min_score: 0.1,
                highlight_joint: Some(2),
                person_colors: false,
            }),
        }
    }

    /// The view egui paints equals the exported frame, pixel for pixel, also when the view
    /// is partly off screen (egui clamps the viewport) and on a HiDPI screen.
    #[test]
    fn egui_view_matches_the_exported_frame() {
        if crate::render::tests::gpu().is_none() {
            return;
        }
        // (top-left in physical pixels, pixels per point)
        for (origin, ppp) in [((10, 20), 1.0), ((-20, -7), 1.0), ((6, 4), 2.0)] {
            let render_state =
                create_render_state(default_wgpu_setup(), egui_wgpu::RendererOptions::default());
            install(&render_state);
            let scene = scene();
            let exported = export_scene(&render_state, &scene).unwrap();
            let min = egui::pos2(origin.0 as f32 / ppp, origin.1 as f32 / ppp);
            let rect = egui::Rect::from_min_size(min, egui::vec2(64.0 / ppp, 48.0 / ppp));
            let shown = scene.clone();
            let mut harness = Harness::builder()
                .with_size(egui::vec2(100.0 / ppp, 80.0 / ppp))
                .with_pixels_per_point(ppp)
                .renderer(WgpuTestRenderer::from_render_state(render_state.clone()))
                .build_ui(move |ui| {
                    let layer = egui::LayerId::new(
                        egui::Order::Foreground,
                        egui::Id::unique("posescope test view"),
                    );
                    let painter = ui.ctx().layer_painter(layer);
                    painter.add(paint_callback(3, rect, rect, shown.clone()));
                });
            let shot = harness.render().unwrap();
            assert_eq!(shot.dimensions(), (100, 80));
            let mut compared = 0;
            for (x, y, want) in exported.enumerate_pixels() {
                let (sx, sy) = (x as i32 + origin.0, y as i32 + origin.1);
                if sx < 0 || sy < 0 || sx >= 100 || sy >= 80 {
                    continue;
                }
                let got = shot.get_pixel(sx as u32, sy as u32);
                let diff = got.0.iter().zip(want.0).map(|(a, b)| a.abs_diff(b)).max();
                assert!(
                    diff <= Some(1),
                    "{origin:?} @{ppp}: ({x}, {y}) {got:?} vs {want:?}"
                );
                compared += 1;
            }
            assert!(compared >= 64 * 48 / 2);
            assert_eq!(view_error(&render_state, 3), None);
        }
    }

    /// Zoomed and panned: the image rect is larger than the viewport and starts before it;
    /// only the viewport is drawn, each image pixel as a 2×2 block (nearest magnification).
    #[test]
    fn zoomed_view_is_cropped_to_the_viewport() {
        if crate::render::tests::gpu().is_none() {
            return;
        }
        let render_state =
            create_render_state(default_wgpu_setup(), egui_wgpu::RendererOptions::default());
        install(&render_state);
        let mut scene = scene();
        scene.heatmap = None;
        scene.skeleton = None;
        let exported = export_scene(&render_state, &scene).unwrap();
        let viewport = egui::Rect::from_min_max(egui::pos2(10.0, 12.0), egui::pos2(90.0, 70.0));
        let image_rect =
            egui::Rect::from_min_size(egui::pos2(-30.0, -20.0), egui::vec2(128.0, 96.0));
        let background = Rgba([255, 0, 255, 255]);
        let mut harness = Harness::builder()
            .with_size(egui::vec2(100.0, 80.0))
            .renderer(WgpuTestRenderer::from_render_state(render_state.clone()))
            .build_ui(move |ui| {
                let layer = egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("zoom"));
                let painter = ui.ctx().layer_painter(layer);
                let [r, g, b, _] = background.0;
                painter.rect_filled(
                    ui.ctx().content_rect(),
                    0.0,
                    egui::Color32::from_rgb(r, g, b),
                );
                painter.add(paint_callback(5, viewport, image_rect, scene.clone()));
            });
        let shot = harness.render().unwrap();
        for (x, y, got) in shot.enumerate_pixels() {
            let inside = (10..90).contains(&x) && (12..70).contains(&y);
            if inside {
                let want = exported.get_pixel((x + 30) / 2, (y + 20) / 2);
                assert_eq!(got, want, "({x}, {y})");
            } else {
                assert_eq!(*got, background, "({x}, {y}) is outside the viewport");
            }
        }
    }

    #[test]
    fn export_without_install_fails_cleanly() {
        if crate::render::tests::gpu().is_none() {
            return;
        }
        let render_state =
            create_render_state(default_wgpu_setup(), egui_wgpu::RendererOptions::default());
        assert_eq!(
            export_scene(&render_state, &scene()).unwrap_err(),
            RenderError::NotInstalled
        );
        assert_eq!(
            view_error(&render_state, 0),
            Some(RenderError::NotInstalled)
        );
    }
}
