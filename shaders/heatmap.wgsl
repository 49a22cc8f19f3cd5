// Heatmap overlay: draws one single-channel map over the image through a colormap.
//
// The map is an R32Float texture at the network's output resolution (one [H, W] channel,
// or a max over joints, or a stage difference); the colormap is a lookup texture with one
// 256-texel row per colormap, filled on the CPU from `posescope::colormap::Colormap::rgb`,
// so the GPU and the CPU exporter share one definition of every colormap. The lookup
// texture is Rgba8Unorm for gamma-space targets (egui's usual Bgra8Unorm / Rgba8Unorm) and
// Rgba8UnormSrgb for sRGB targets, so the colour written always means the same sRGB value.
//
// Coordinates are pixel-index coordinates (integers are pixel centres), as everywhere in
// posescope. `image_to_map` is the inverse of an Inspection's `map_to_image` affine, so the
// overlay follows the preprocessing transform exactly; pixels whose map position lies more
// than half a map pixel outside the map (letterbox borders) are not drawn (the map covers
// the half-open range [-0.5, size - 0.5)). The map is sampled bilinearly and clamped at
// its border, like `export::annotate::blend_heatmap`.
//
// Keep `Uniforms` in sync with its `#[repr(C)]` mirror `HeatmapUniforms` in
// src/render/uniforms.rs.

struct Uniforms {
    // Where the image quad goes, in clip space: (x0, y0, x1, y1) of its top-left and
    // bottom-right corners.
    clip_rect: vec4<f32>,
    // Image pixel -> map pixel affine, rows (a, b, tx) and (c, d, ty); `w` unused.
    image_to_map_x: vec4<f32>,
    image_to_map_y: vec4<f32>,
    // (image width, image height, map width, map height), in pixels.
    sizes: vec4<f32>,
    // Values at the two ends of the colormap (value_min > value_max reverses it).
    value_min: f32,
    value_max: f32,
    // Applied to the normalised value: t' = t^gamma.
    gamma: f32,
    // Overlay opacity in [0, 1].
    opacity: f32,
    // Row of the colormap lookup texture to use.
    colormap_row: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var map_tex: texture_2d<f32>;
@group(0) @binding(2) var lut_tex: texture_2d<f32>;
@group(0) @binding(3) var lut_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Image pixel-index coordinates of this fragment.
    @location(0) image_px: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // Triangle strip over the image rectangle: (0,0), (1,0), (0,1), (1,1).
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    var out: VertexOut;
    let xy = mix(u.clip_rect.xy, u.clip_rect.zw, corner);
    out.position = vec4<f32>(xy, 0.0, 1.0);
    // The image's outer edges are at -0.5 and size - 0.5 in pixel-index coordinates.
    out.image_px = corner * u.sizes.xy - vec2<f32>(0.5, 0.5);
    return out;
}

fn map_value(x: i32, y: i32) -> f32 {
    let size = vec2<i32>(u.sizes.zw);
    let p = clamp(vec2<i32>(x, y), vec2<i32>(0, 0), size - vec2<i32>(1, 1));
    return textureLoad(map_tex, p, 0).r;
}

// Bilinear sample at a map pixel-index position, clamped to the border (R32Float textures
// are not filterable, so the four taps are loaded explicitly).
fn sample_map(m: vec2<f32>) -> f32 {
    let size = u.sizes.zw;
    let p = clamp(m, vec2<f32>(0.0, 0.0), size - vec2<f32>(1.0, 1.0));
    let p0 = floor(p);
    let f = p - p0;
    let x0 = i32(p0.x);
    let y0 = i32(p0.y);
    let top = mix(map_value(x0, y0), map_value(x0 + 1, y0), f.x);
    let bottom = mix(map_value(x0, y0 + 1), map_value(x0 + 1, y0 + 1), f.x);
    return mix(top, bottom, f.y);
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let p = vec3<f32>(in.image_px, 1.0);
    let m = vec2<f32>(dot(u.image_to_map_x.xyz, p), dot(u.image_to_map_y.xyz, p));
    let size = u.sizes.zw;
    if (any(m < vec2<f32>(-0.5, -0.5)) || any(m >= size - vec2<f32>(0.5, 0.5))) {
        discard;
    }
    let value = sample_map(m);
    let span = u.value_max - u.value_min;
    var t = 0.0;
    if (span != 0.0) {
        t = clamp((value - u.value_min) / span, 0.0, 1.0);
    }
    // NaN compares false with everything: map it to the low end like the CPU path.
    if (!(t >= 0.0 && t <= 1.0)) {
        t = 0.0;
    }
    if (t > 0.0 && u.gamma > 0.0 && u.gamma != 1.0) {
        t = pow(t, u.gamma);
    }
    let lut_size = vec2<f32>(textureDimensions(lut_tex));
    // Texel centres of the row: t = 0 -> first texel, t = 1 -> last texel.
    let uv = vec2<f32>(
        (t * (lut_size.x - 1.0) + 0.5) / lut_size.x,
        (f32(u.colormap_row) + 0.5) / lut_size.y,
    );
    let rgb = textureSampleLevel(lut_tex, lut_sampler, uv, 0.0).rgb;
    // egui blends premultiplied colours.
    return vec4<f32>(rgb * u.opacity, u.opacity);
}
