//! Offscreen rendering: the [`Compositor`] drawing a [`Scene`] into a texture at the
//! image's native resolution, read back as an [`RgbaImage`]. This is the one rendering
//! path shared by the viewport and "save frame" export; there is no CPU re-implementation.

use std::sync::mpsc;
use std::time::Duration;

use eframe::wgpu;
use image::RgbaImage;

use super::compositor::Compositor;
use super::uniforms::Placement;
use super::{RenderError, Scene};

/// The view id [`render_scene`] prepares; its textures stay cached in the compositor, so
/// exporting many frames of the same image uploads it once.
pub const OFFSCREEN_VIEW_ID: u64 = u64::MAX;

/// How long a readback may take before it is reported as failed (software rasterisers on
/// large images are slow; a lost device must not hang the caller forever).
const READBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// A device and queue for tests and the CLI, without a window. Prefers a CPU adapter
/// (lavapipe, WARP, llvmpipe) for reproducible output, like `egui_kittest`'s default
/// setup, and falls back to any other adapter (discrete GPUs first).
pub fn headless_device() -> Result<(wgpu::Device, wgpu::Queue), RenderError> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends =
        wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY | wgpu::Backends::GL);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        let device = match info.device_type {
            wgpu::DeviceType::Cpu => 0,
            wgpu::DeviceType::DiscreteGpu => 1,
            _ => 2,
        };
        let backend = match info.backend {
            wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
            _ => 1,
        };
        (device, backend)
    });
    let adapter = adapters.into_iter().next().ok_or_else(|| {
        RenderError::NoAdapter(format!(
            "wgpu found no adapter for backends {backends:?} \
             (install a Vulkan driver, e.g. Mesa's lavapipe: mesa-vulkan-drivers)"
        ))
    })?;
    let limits = if adapter.get_info().backend == wgpu::Backend::Gl {
        wgpu::Limits::downlevel_webgl2_defaults()
    } else {
        wgpu::Limits::default()
    }
    .using_resolution(adapter.limits());
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("posescope headless device"),
        required_limits: limits,
        ..Default::default()
    }))
    .map_err(|e| RenderError::RequestDevice(e.to_string()))
}

/// Renders `scene` with `compositor` into a texture of the image's size and reads it back
/// (straight alpha, RGBA8 sRGB). The compositor's target format must be an RGBA8 or BGRA8
/// (sRGB or not) format; MSAA and depth targets are handled.
pub fn render_scene(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    compositor: &mut Compositor,
    scene: &Scene,
) -> Result<RgbaImage, RenderError> {
    let target = compositor.target();
    let bgra = match target.format {
        wgpu::TextureFormat::Rgba8Unorm | wgpu::TextureFormat::Rgba8UnormSrgb => false,
        wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb => true,
        other => return Err(RenderError::UnsupportedFormat(format!("{other:?}"))),
    };
    let (width, height) = scene.image_size();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    compositor.prepare(
        device,
        queue,
        OFFSCREEN_VIEW_ID,
        scene,
        &Placement::native((width, height)),
    )?;

    let size = wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    };
    let attachment = |label: &str, format, samples, usage| {
        device
            .create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size,
                mip_level_count: 1,
                sample_count: samples,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            })
            .create_view(&wgpu::TextureViewDescriptor::default())
    };
    let usage = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC;
    let output = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("posescope offscreen target"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: target.format,
        usage,
        view_formats: &[],
    });
    let output_view = output.create_view(&wgpu::TextureViewDescriptor::default());
    let samples = target.sample_count.max(1);
    let msaa_view = (samples > 1).then(|| {
        let usage = wgpu::TextureUsages::RENDER_ATTACHMENT;
        attachment("posescope offscreen msaa", target.format, samples, usage)
    });
    let depth_view = target.depth_format.map(|format| {
        let usage = wgpu::TextureUsages::RENDER_ATTACHMENT;
        (
            attachment("posescope offscreen depth", format, samples, usage),
            format,
        )
    });

    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("posescope offscreen"),
    });
    {
        let (view, resolve_target) = match &msaa_view {
            Some(msaa) => (msaa, Some(&output_view)),
            None => (&output_view, None),
        };
        let depth_stencil_attachment =
            depth_view
                .as_ref()
                .map(|(view, format)| wgpu::RenderPassDepthStencilAttachment {
                    view,
                    depth_ops: format.has_depth_aspect().then_some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(1.0),
                        store: wgpu::StoreOp::Discard,
                    }),
                    stencil_ops: format.has_stencil_aspect().then_some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(0),
                        store: wgpu::StoreOp::Discard,
                    }),
                });
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("posescope offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        compositor.paint(OFFSCREEN_VIEW_ID, &mut pass);
    }

    let unpadded = 4 * width;
    let align = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let padded = unpadded.div_ceil(align) * align;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("posescope offscreen readback"),
        size: u64::from(padded) * u64::from(height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_texture_to_buffer(
        output.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded),
                rows_per_image: Some(height),
            },
        },
        size,
    );
    let submission = queue.submit(Some(encoder.finish()));
    if let Some(err) = pollster::block_on(scope.pop()) {
        return Err(RenderError::Gpu(err.to_string()));
    }

    let slice = readback.slice(..);
    let (tx, rx) = mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: Some(READBACK_TIMEOUT),
        })
        .map_err(|e| RenderError::Readback(e.to_string()))?;
    rx.recv_timeout(READBACK_TIMEOUT)
        .map_err(|e| RenderError::Readback(e.to_string()))?
        .map_err(|e| RenderError::Readback(e.to_string()))?;
    let mut pixels = Vec::with_capacity(unpadded as usize * height as usize);
    {
        let mapped = slice
            .get_mapped_range()
            .map_err(|e| RenderError::Readback(e.to_string()))?;
        for row in mapped.chunks_exact(padded as usize) {
            pixels.extend_from_slice(row.get(..unpadded as usize).unwrap_or(&[]));
        }
    }
    readback.unmap();
    for px in pixels.chunks_exact_mut(4) {
        if bgra {
            px.swap(0, 2);
        }
        unpremultiply(px);
    }
    RgbaImage::from_raw(width, height, pixels)
        .ok_or_else(|| RenderError::Readback("short readback buffer".to_string()))
}

/// Premultiplied → straight alpha, in place (opaque and fully transparent pixels are left
/// as they are).
fn unpremultiply(px: &mut [u8]) {
    if let [r, g, b, a] = px {
        let a = u32::from(*a);
        if a != 0 && a != 255 {
            for c in [r, g, b] {
                *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}
