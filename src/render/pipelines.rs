//! The compositor's fixed GPU objects, created once per render target: bind group
//! layouts, the three pipelines (image quad, heatmap overlay, skeleton), samplers and the
//! colormap lookup texture (wgpu only).

use eframe::wgpu;

use super::textures;
use super::uniforms::SkeletonInstance;

const FRAGMENT: wgpu::ShaderStages = wgpu::ShaderStages::FRAGMENT;
const BOTH: wgpu::ShaderStages = wgpu::ShaderStages::VERTEX_FRAGMENT;

/// What the compositor's pipelines render into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderTarget {
    /// Colour attachment format. Unorm formats receive sRGB-encoded values (egui's usual
    /// `Bgra8Unorm` / `Rgba8Unorm`), sRGB formats linear ones.
    pub format: wgpu::TextureFormat,
    /// MSAA sample count of the render pass (egui: `NativeOptions::multisampling`, 1 when 0).
    pub sample_count: u32,
    /// Depth-stencil format of the render pass, if it has one (egui: `depth_buffer`).
    pub depth_format: Option<wgpu::TextureFormat>,
}

impl RenderTarget {
    /// A single-sampled colour target without depth (eframe's default).
    pub fn new(format: wgpu::TextureFormat) -> Self {
        Self {
            format,
            sample_count: 1,
            depth_format: None,
        }
    }
}

/// Pipelines, layouts, samplers and the colormap lookup texture.
pub struct Pipelines {
    /// `shaders/image.wgsl`: the image quad.
    pub image: wgpu::RenderPipeline,
    /// `shaders/heatmap.wgsl`: the colormapped overlay.
    pub heatmap: wgpu::RenderPipeline,
    /// `shaders/skeleton.wgsl`: instanced capsules and discs.
    pub skeleton: wgpu::RenderPipeline,
    /// Frame uniforms, image texture, image sampler.
    pub image_layout: wgpu::BindGroupLayout,
    /// Heatmap uniforms, map texture (`R32Float`), lookup texture, lookup sampler.
    pub heatmap_layout: wgpu::BindGroupLayout,
    /// Frame uniforms.
    pub skeleton_layout: wgpu::BindGroupLayout,
    /// Nearest when magnifying, trilinear when minifying.
    pub image_sampler: wgpu::Sampler,
    /// Linear, clamped.
    pub lut_sampler: wgpu::Sampler,
    /// The colormap lookup texture.
    pub lut_view: wgpu::TextureView,
}

impl Pipelines {
    /// Creates everything for `target` (wgpu errors go to the caller's error scope).
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, target: &RenderTarget) -> Self {
        let srgb = target.format.is_srgb();
        let image_layout = layout(
            device,
            "posescope image",
            &[uniform(0, BOTH), texture(1, true), sampler(2)],
        );
        let heatmap_layout = layout(
            device,
            "posescope heatmap",
            &[
                uniform(0, BOTH),
                texture(1, false),
                texture(2, true),
                sampler(3),
            ],
        );
        let skeleton_layout = layout(device, "posescope skeleton", &[uniform(0, BOTH)]);
        let instance_layout = wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<SkeletonInstance>() as wgpu::BufferAddress,
            step_mode: wgpu::VertexStepMode::Instance,
            attributes: &wgpu::vertex_attr_array![
                0 => Float32x4, 1 => Float32x4, 2 => Float32x4, 3 => Float32x4
            ],
        };
        let image_pipeline = pipeline(
            device,
            target,
            "image",
            include_str!("../../shaders/image.wgsl"),
            &image_layout,
            &[],
        );
        let heatmap_pipeline = pipeline(
            device,
            target,
            "heatmap",
            include_str!("../../shaders/heatmap.wgsl"),
            &heatmap_layout,
            &[],
        );
        let skeleton_pipeline = pipeline(
            device,
            target,
            "skeleton",
            include_str!("../../shaders/skeleton.wgsl"),
            &skeleton_layout,
            &[Some(instance_layout)],
        );
        let image_sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("posescope image sampler"),
            // Nearest when zoomed in (pixels stay pixels), trilinear when zoomed out.
            mag_filter: wgpu::FilterMode::Nearest,
            min_filter: wgpu::FilterMode::Linear,
            mipmap_filter: wgpu::MipmapFilterMode::Linear,
            ..Default::default()
        });
        let lut_sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("posescope colormap sampler"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let lut_view = textures::create_lut(device, queue, srgb);
        Self {
            image: image_pipeline,
            heatmap: heatmap_pipeline,
            skeleton: skeleton_pipeline,
            image_layout,
            heatmap_layout,
            skeleton_layout,
            image_sampler,
            lut_sampler,
            lut_view,
        }
    }
}

fn uniform(binding: u32, visibility: wgpu::ShaderStages) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn texture(binding: u32, filterable: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

fn sampler(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: FRAGMENT,
        ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        count: None,
    }
}

fn layout(
    device: &wgpu::Device,
    label: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    })
}

/// A bind group with `resources` at bindings 0, 1, 2, ...
pub fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<_> = resources
        .iter()
        .zip(0..)
        .map(|(resource, binding)| wgpu::BindGroupEntry {
            binding,
            resource: resource.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// A premultiplied-alpha triangle-strip pipeline with entry points `vs_main` / `fs_main`.
fn pipeline(
    device: &wgpu::Device,
    target: &RenderTarget,
    name: &str,
    source: &str,
    bind_group_layout: &wgpu::BindGroupLayout,
    buffers: &[Option<wgpu::VertexBufferLayout<'_>>],
) -> wgpu::RenderPipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(bind_group_layout)],
        immediate_size: 0,
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers,
        },
        primitive: wgpu::PrimitiveState {
            topology: wgpu::PrimitiveTopology::TriangleStrip,
            ..Default::default()
        },
        depth_stencil: target.depth_format.map(|format| wgpu::DepthStencilState {
            format,
            depth_write_enabled: Some(false),
            depth_compare: Some(wgpu::CompareFunction::Always),
            stencil: wgpu::StencilState::default(),
            bias: wgpu::DepthBiasState::default(),
        }),
        multisample: wgpu::MultisampleState {
            count: target.sample_count.max(1),
            ..Default::default()
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: target.format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}
