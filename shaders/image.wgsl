// Image quad: draws the scene's RGBA image over the whole image rectangle.
//
// The texture is Rgba8Unorm (gamma-space output, egui's usual target) or Rgba8UnormSrgb
// (sRGB targets, where the GPU linearises on sampling and re-encodes on writing), chosen by
// the compositor, so this shader never converts colour spaces. It carries a mip chain, so
// small views (a grid of joints) do not alias; at native resolution level 0 is sampled
// exactly at texel centres.
//
// Keep `Frame` in sync with `FrameUniforms` in src/render/uniforms.rs and with `Frame`
// in shaders/skeleton.wgsl.

struct Frame {
    // Where the image quad goes in clip space: (x0, y0, x1, y1) of the outer edges of its
    // top-left and bottom-right pixels.
    clip_rect: vec4<f32>,
    // (width, height) of the image in pixels.
    image_size: vec2<f32>,
    // Physical screen pixels per image pixel along x and y (1 offscreen).
    screen_px_per_image_px: vec2<f32>,
};

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var image_tex: texture_2d<f32>;
@group(0) @binding(2) var image_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // Triangle strip over the image rectangle: (0,0), (1,0), (0,1), (1,1).
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    var out: VertexOut;
    out.position = vec4<f32>(mix(frame.clip_rect.xy, frame.clip_rect.zw, corner), 0.0, 1.0);
    out.uv = corner;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let c = textureSample(image_tex, image_sampler, in.uv);
    // egui blends premultiplied colours.
    return vec4<f32>(c.rgb * c.a, c.a);
}
