//! The wgpu side of scene rendering (no egui here): pipelines created once per target
//! format, per-view GPU resources, `prepare` (uploads and uniform writes) and `paint`
//! (draw calls into an already begun render pass).
//!
//! A view draws into the render pass's current viewport; [`Placement`] says where the
//! image rectangle lies in it (normally it fills it exactly). Drawing order: the image
//! quad, the heatmap overlay (`shaders/heatmap.wgsl`), the skeleton
//! (`shaders/skeleton.wgsl`), all blended with premultiplied alpha like egui.

use std::collections::HashMap;

use eframe::wgpu;

use super::pipelines::{bind_group, Pipelines, RenderTarget};
use super::textures;
use super::uniforms::{
    finite_range, skeleton_instances, vector_instances, FrameUniforms, HeatmapUniforms,
    OutputSpace, Placement, SkeletonInstance,
};
use super::{HeatmapLayer, RenderError, Scene};

/// An uploaded texture and the key of the data in it.
struct Uploaded {
    key: u64,
    texture: wgpu::Texture,
    bind_group: wgpu::BindGroup,
}

/// GPU resources of one view.
struct ViewGpu {
    frame_buffer: wgpu::Buffer,
    heatmap_buffer: wgpu::Buffer,
    skeleton_bind_group: wgpu::BindGroup,
    image: Option<Uploaded>,
    /// The map and its finite value range.
    map: Option<(Uploaded, (f32, f32))>,
    instances: Option<wgpu::Buffer>,
    /// What `paint` draws, as decided by the last `prepare`.
    draw_image: bool,
    draw_heatmap: bool,
    instance_count: u32,
    /// The error of the last `prepare`, if any.
    error: Option<RenderError>,
}

/// Draws [`Scene`]s with wgpu. Create one per render target format and keep it (egui:
/// in the renderer's callback resources); it serves any number of views, each identified
/// by a `u64` of the caller's choosing and owning its textures and uniform buffers.
/// Textures are uploaded again only when a scene's `image_key` / heatmap `key` changes.
pub struct Compositor {
    target: RenderTarget,
    space: OutputSpace,
    pipelines: Pipelines,
    views: HashMap<u64, ViewGpu>,
    uploads: u64,
}

impl Compositor {
    /// Pipelines for a single-sampled `target_format` pass without depth.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        target_format: wgpu::TextureFormat,
    ) -> Result<Self, RenderError> {
        Self::with_target(device, queue, RenderTarget::new(target_format))
    }

    /// Pipelines for `target`. Fails (instead of panicking) if wgpu rejects a shader or
    /// pipeline.
    pub fn with_target(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        target: RenderTarget,
    ) -> Result<Self, RenderError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipelines = Pipelines::new(device, queue, &target);
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(RenderError::Gpu(err.to_string()));
        }
        Ok(Self {
            target,
            space: if target.format.is_srgb() {
                OutputSpace::Linear
            } else {
                OutputSpace::Gamma
            },
            pipelines,
            views: HashMap::new(),
            uploads: 0,
        })
    }

    /// The target the pipelines were built for.
    pub fn target(&self) -> RenderTarget {
        self.target
    }

    /// Number of texture uploads (image or heatmap) since creation; unchanged keys upload
    /// nothing.
    pub fn upload_count(&self) -> u64 {
        self.uploads
    }

    /// Number of views holding GPU resources.
    pub fn view_count(&self) -> usize {
        self.views.len()
    }

    /// The error of the last [`Compositor::prepare`] of `view_id`, if it failed.
    pub fn view_error(&self, view_id: u64) -> Option<&RenderError> {
        self.views.get(&view_id).and_then(|v| v.error.as_ref())
    }

    /// Frees the GPU resources of a view that is no longer shown.
    pub fn remove_view(&mut self, view_id: u64) {
        self.views.remove(&view_id);
    }

    /// Keeps only the views for which `keep` returns true.
    pub fn retain_views(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.views.retain(|id, _| keep(*id));
    }

    /// Uploads what changed in `scene` for view `view_id` and writes its uniforms; the
    /// next [`Compositor::paint`] of that view draws it at `placement`.
    ///
    /// On error the view draws what is still valid (an invalid heatmap is skipped, an
    /// invalid image skips the whole view); the error is returned and also kept until the
    /// next `prepare` of the view ([`Compositor::view_error`]).
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view_id: u64,
        scene: &Scene,
        placement: &Placement,
    ) -> Result<(), RenderError> {
        let result = self.prepare_view(device, queue, view_id, scene, placement);
        if let Some(view) = self.views.get_mut(&view_id) {
            view.error = result.as_ref().err().cloned();
        }
        result
    }

    fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view_id: u64,
        scene: &Scene,
        placement: &Placement,
    ) -> Result<(), RenderError> {
        let (width, height) = scene.image_size();
        let limit = device.limits().max_texture_dimension_2d;
        let view = self
            .views
            .entry(view_id)
            .or_insert_with(|| new_view(device, &self.pipelines.skeleton_layout));
        view.draw_image = false;
        view.draw_heatmap = false;
        view.instance_count = 0;
        check_size("image", width, height, limit)?;

        // The image.
        let same = |u: &Option<Uploaded>, key: u64, w: u32, h: u32| {
            u.as_ref()
                .is_some_and(|u| u.key == key && u.texture.width() == w && u.texture.height() == h)
        };
        if !same(&view.image, scene.image_key, width, height) {
            let texture = match view.image.take() {
                Some(u) if u.texture.width() == width && u.texture.height() == height => u.texture,
                _ => textures::create_image_texture(
                    device,
                    width,
                    height,
                    self.target.format.is_srgb(),
                ),
            };
            textures::upload_image(queue, &texture, &scene.image);
            let tex_view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind_group = bind_group(
                device,
                &self.pipelines.image_layout,
                &[
                    view.frame_buffer.as_entire_binding(),
                    wgpu::BindingResource::TextureView(&tex_view),
                    wgpu::BindingResource::Sampler(&self.pipelines.image_sampler),
                ],
            );
            view.image = Some(Uploaded {
                key: scene.image_key,
                texture,
                bind_group,
            });
            self.uploads += 1;
        }
        let frame = FrameUniforms::new(width, height, placement);
        queue.write_buffer(&view.frame_buffer, 0, bytemuck::bytes_of(&frame));
        view.draw_image = true;

        // The heatmap.
        let mut result = Ok(());
        if let Some(layer) = &scene.heatmap {
            let uploaded = ensure_map(device, queue, view, layer, limit, &self.pipelines);
            match uploaded.and_then(|(fresh, range)| {
                self.uploads += u64::from(fresh);
                HeatmapUniforms::new(layer, (width, height), placement, range)
            }) {
                Ok(u) => {
                    queue.write_buffer(&view.heatmap_buffer, 0, bytemuck::bytes_of(&u));
                    view.draw_heatmap = u.opacity > 0.0;
                }
                Err(e) => result = Err(e),
            }
        }

        // Vector glyphs, then the skeleton (one instanced draw, in this order).
        let mut instances = Vec::new();
        if let Some(layer) = &scene.vectors {
            instances.extend(vector_instances(layer, self.space));
        }
        if let Some(layer) = &scene.skeleton {
            instances.extend(skeleton_instances(layer, self.space));
        }
        view.instance_count = 0;
        {
            let bytes: &[u8] = bytemuck::cast_slice(&instances);
            if !bytes.is_empty() {
                let needed = bytes.len() as wgpu::BufferAddress;
                if view.instances.as_ref().is_none_or(|b| b.size() < needed) {
                    view.instances = Some(device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("posescope skeleton instances"),
                        size: needed.next_power_of_two(),
                        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }));
                }
                if let Some(buffer) = &view.instances {
                    queue.write_buffer(buffer, 0, bytes);
                    view.instance_count = u32::try_from(instances.len()).unwrap_or(u32::MAX);
                }
            }
        }
        result
    }

    /// Draws view `view_id` as last prepared: image, heatmap, skeleton. Does nothing for a
    /// view that was never prepared.
    pub fn paint(&self, view_id: u64, render_pass: &mut wgpu::RenderPass<'_>) {
        let Some(view) = self.views.get(&view_id) else {
            return;
        };
        if let (true, Some(image)) = (view.draw_image, &view.image) {
            render_pass.set_pipeline(&self.pipelines.image);
            render_pass.set_bind_group(0, &image.bind_group, &[]);
            render_pass.draw(0..4, 0..1);
        }
        if let (true, Some((map, _))) = (view.draw_heatmap, &view.map) {
            render_pass.set_pipeline(&self.pipelines.heatmap);
            render_pass.set_bind_group(0, &map.bind_group, &[]);
            render_pass.draw(0..4, 0..1);
        }
        if let (n @ 1.., Some(buffer)) = (view.instance_count, &view.instances) {
            let size = u64::from(n) * std::mem::size_of::<SkeletonInstance>() as u64;
            render_pass.set_pipeline(&self.pipelines.skeleton);
            render_pass.set_bind_group(0, &view.skeleton_bind_group, &[]);
            render_pass.set_vertex_buffer(0, buffer.slice(..size));
            render_pass.draw(0..4, 0..n);
        }
    }
}

/// Uploads the layer's map into the view unless it is already there. Returns whether it
/// uploaded, and the map's finite value range.
fn ensure_map(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    view: &mut ViewGpu,
    layer: &HeatmapLayer,
    limit: u32,
    pipelines: &Pipelines,
) -> Result<(bool, (f32, f32)), RenderError> {
    let (w, h) = (layer.width, layer.height);
    let expected = (w as usize).checked_mul(h as usize);
    if expected != Some(layer.values.len()) || layer.values.is_empty() {
        return Err(RenderError::HeatmapShape {
            len: layer.values.len(),
            width: w,
            height: h,
        });
    }
    check_size("heatmap", w, h, limit)?;
    if let Some((map, range)) = &view.map {
        let t = &map.texture;
        if map.key == layer.key && t.width() == w && t.height() == h {
            return Ok((false, *range));
        }
    }
    let texture = match view.map.take() {
        Some((u, _)) if u.texture.width() == w && u.texture.height() == h => u.texture,
        _ => textures::create_map_texture(device, w, h),
    };
    textures::upload_map(queue, &texture, &layer.values);
    let map_view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let bind_group = bind_group(
        device,
        &pipelines.heatmap_layout,
        &[
            view.heatmap_buffer.as_entire_binding(),
            wgpu::BindingResource::TextureView(&map_view),
            wgpu::BindingResource::TextureView(&pipelines.lut_view),
            wgpu::BindingResource::Sampler(&pipelines.lut_sampler),
        ],
    );
    let range = finite_range(&layer.values);
    view.map = Some((
        Uploaded {
            key: layer.key,
            texture,
            bind_group,
        },
        range,
    ));
    Ok((true, range))
}

fn check_size(what: &'static str, width: u32, height: u32, limit: u32) -> Result<(), RenderError> {
    if width == 0 || height == 0 {
        if what == "image" {
            return Err(RenderError::EmptyImage { width, height });
        }
    } else if width <= limit && height <= limit {
        return Ok(());
    }
    Err(RenderError::TooLarge {
        what,
        width,
        height,
        limit,
    })
}

fn new_view(device: &wgpu::Device, skeleton_layout: &wgpu::BindGroupLayout) -> ViewGpu {
    let buffer = |label: &str, size: usize| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size as wgpu::BufferAddress,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let frame_buffer = buffer(
        "posescope frame uniforms",
        std::mem::size_of::<FrameUniforms>(),
    );
    let heatmap_buffer = buffer(
        "posescope heatmap uniforms",
        std::mem::size_of::<HeatmapUniforms>(),
    );
    let skeleton_bind_group =
        bind_group(device, skeleton_layout, &[frame_buffer.as_entire_binding()]);
    ViewGpu {
        frame_buffer,
        heatmap_buffer,
        skeleton_bind_group,
        image: None,
        map: None,
        instances: None,
        draw_image: false,
        draw_heatmap: false,
        instance_count: 0,
        error: None,
    }
}
