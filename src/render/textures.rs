//! Texture creation and uploads for the [`Compositor`](super::Compositor) (wgpu only).

use eframe::wgpu;
use image::RgbaImage;

use crate::colormap::{lookup_table_rgba8, Colormap, LUT_WIDTH};

/// Texture format for sRGB-encoded 8-bit data: `Rgba8UnormSrgb` on sRGB targets (sampled
/// as linear, re-encoded on write), `Rgba8Unorm` on gamma-space targets (passed through).
pub fn rgba8_format(srgb_target: bool) -> wgpu::TextureFormat {
    if srgb_target {
        wgpu::TextureFormat::Rgba8UnormSrgb
    } else {
        wgpu::TextureFormat::Rgba8Unorm
    }
}

fn extent(width: u32, height: u32) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    }
}

fn write(queue: &wgpu::Queue, texture: &wgpu::Texture, level: u32, data: &[u8], w: u32, h: u32) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: level,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            // 4 bytes per texel for every format used here (RGBA8, R32Float).
            bytes_per_row: Some(4 * w),
            rows_per_image: Some(h),
        },
        extent(w, h),
    );
}

/// The colormap lookup texture: one [`LUT_WIDTH`]-texel row per colormap.
pub fn create_lut(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    srgb_target: bool,
) -> wgpu::TextureView {
    let rows = Colormap::all().len() as u32;
    let width = LUT_WIDTH as u32;
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("posescope colormap lut"),
        size: extent(width, rows),
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: rgba8_format(srgb_target),
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    write(queue, &texture, 0, &lookup_table_rgba8(), width, rows);
    texture.create_view(&wgpu::TextureViewDescriptor::default())
}

/// Number of mip levels of a full chain for a `width × height` texture.
fn mip_levels(width: u32, height: u32) -> u32 {
    32 - width.max(height).max(1).leading_zeros()
}

/// A texture for `width × height` RGBA8 image data with a full mip chain.
pub fn create_image_texture(
    device: &wgpu::Device,
    width: u32,
    height: u32,
    srgb_target: bool,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("posescope image"),
        size: extent(width, height),
        mip_level_count: mip_levels(width, height),
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: rgba8_format(srgb_target),
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Uploads `image` and its mip chain (2×2 box filter) into `texture`, which must have been
/// made by [`create_image_texture`] for the image's size.
pub fn upload_image(queue: &wgpu::Queue, texture: &wgpu::Texture, image: &RgbaImage) {
    let (w, h) = image.dimensions();
    write(queue, texture, 0, image.as_raw(), w, h);
    let mut level = 1;
    let mut prev = halve(image);
    while level < texture.mip_level_count() {
        write(
            queue,
            texture,
            level,
            prev.as_raw(),
            prev.width(),
            prev.height(),
        );
        level += 1;
        if level < texture.mip_level_count() {
            prev = halve(&prev);
        }
    }
}

/// The next mip level: each texel the mean of (up to) a 2×2 block.
fn halve(src: &RgbaImage) -> RgbaImage {
    let (w, h) = src.dimensions();
    let (nw, nh) = ((w / 2).max(1), (h / 2).max(1));
    RgbaImage::from_fn(nw, nh, |x, y| {
        let xs = [2 * x, (2 * x + 1).min(w.saturating_sub(1))];
        let ys = [2 * y, (2 * y + 1).min(h.saturating_sub(1))];
        let mut sum = [0u32; 4];
        for &sy in &ys {
            for &sx in &xs {
                let p = src.get_pixel_checked(sx, sy).map_or([0; 4], |p| p.0);
                for (s, c) in sum.iter_mut().zip(p) {
                    *s += u32::from(c);
                }
            }
        }
        image::Rgba(sum.map(|s| ((s + 2) / 4) as u8))
    })
}

/// An `R32Float` texture for a `width × height` map.
pub fn create_map_texture(device: &wgpu::Device, width: u32, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("posescope heatmap"),
        size: extent(width, height),
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::R32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Uploads row-major `values` (`width * height` of them) into a map texture.
pub fn upload_map(queue: &wgpu::Queue, texture: &wgpu::Texture, values: &[f32]) {
    let (w, h) = (texture.width(), texture.height());
    write(queue, texture, 0, bytemuck::cast_slice(values), w, h);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mip_chain_sizes() {
        assert_eq!(mip_levels(1, 1), 1);
        assert_eq!(mip_levels(64, 48), 7);
        assert_eq!(mip_levels(1280, 720), 11);
        let img = RgbaImage::from_fn(5, 3, |x, _| image::Rgba([(x * 50) as u8, 0, 0, 255]));
        let half = halve(&img);
        assert_eq!(half.dimensions(), (2, 1));
        assert_eq!(half.get_pixel(0, 0).0, [25, 0, 0, 255]);
    }
}
