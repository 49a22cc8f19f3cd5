// Skeletons: one instanced quad per primitive, shaded by a signed distance.
//
// Every instance is a capsule (the segment `a`-`b` thickened by `radius`, round caps): limbs
// and their dark halos have `a != b`, joints have `a == b` (a disc) and a rim. All sizes
// are in image pixels; the quad is the capsule's bounding box grown by one screen pixel for
// the anti-aliased edge. Coverage is `clamp(0.5 - signed_distance_in_screen_px, 0, 1)`, the
// same one-pixel soft edge as the CPU exporter (`export::annotate`). Capsules thinner than
// one screen pixel are drawn one pixel wide with their alpha scaled down instead.
//
// Colours arrive in the target's space (gamma-encoded for Unorm targets, linear for sRGB
// targets; converted on the CPU) with straight alpha; the output is premultiplied like
// egui's.
//
// Keep `Frame` in sync with `FrameUniforms` in src/render/uniforms.rs and with `Frame` in
// shaders/image.wgsl; keep `InstanceIn` in sync with `SkeletonInstance` there.

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

struct InstanceIn {
    // (a.x, a.y, b.x, b.y): segment end points, image pixel-index coordinates.
    @location(0) ends: vec4<f32>,
    // (radius, rim width, unused, unused), image pixels.
    @location(1) shape: vec4<f32>,
    // Fill colour, straight alpha.
    @location(2) fill: vec4<f32>,
    // Rim colour (used within `rim` of the edge), straight alpha.
    @location(3) rim_color: vec4<f32>,
};

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Image pixel-index coordinates of this fragment.
    @location(0) image_px: vec2<f32>,
    @location(1) @interpolate(flat) ends: vec4<f32>,
    // (radius drawn, rim width, alpha factor for sub-pixel widths, unused).
    @location(2) @interpolate(flat) shape: vec4<f32>,
    @location(3) @interpolate(flat) fill: vec4<f32>,
    @location(4) @interpolate(flat) rim_color: vec4<f32>,
};

// Screen pixels per image pixel, one number (views keep the image's aspect ratio).
fn screen_scale() -> f32 {
    return max(0.5 * (frame.screen_px_per_image_px.x + frame.screen_px_per_image_px.y), 1e-6);
}

@vertex
fn vs_main(@builtin(vertex_index) index: u32, inst: InstanceIn) -> VertexOut {
    let scale = screen_scale();
    let a = inst.ends.xy;
    let b = inst.ends.zw;
    // Never thinner than one screen pixel; fade instead.
    let min_radius = 0.5 / scale;
    let radius = max(inst.shape.x, min_radius);
    let fade = clamp(inst.shape.x / radius, 0.0, 1.0);

    let d = b - a;
    let len = length(d);
    var u = vec2<f32>(1.0, 0.0);
    if (len > 1e-6) {
        u = d / len;
    }
    let v = vec2<f32>(-u.y, u.x);
    let reach = radius + 1.0 / scale;
    // Triangle strip: (0,0), (1,0), (0,1), (1,1) over the grown bounding box.
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let along = mix(-reach, len + reach, corner.x);
    let across = mix(-reach, reach, corner.y);
    let p = a + u * along + v * across;

    var out: VertexOut;
    // Pixel-index p lies (p + 0.5) / size of the way across the image rectangle.
    let f = (p + vec2<f32>(0.5, 0.5)) / frame.image_size;
    out.position = vec4<f32>(mix(frame.clip_rect.xy, frame.clip_rect.zw, f), 0.0, 1.0);
    out.image_px = p;
    out.ends = inst.ends;
    out.shape = vec4<f32>(radius, inst.shape.y, fade, 0.0);
    out.fill = inst.fill;
    out.rim_color = inst.rim_color;
    return out;
}

// Distance from p to the segment a-b.
fn segment_distance(p: vec2<f32>, a: vec2<f32>, b: vec2<f32>) -> f32 {
    let pa = p - a;
    let ba = b - a;
    let h = clamp(dot(pa, ba) / max(dot(ba, ba), 1e-12), 0.0, 1.0);
    return length(pa - ba * h);
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let scale = screen_scale();
    let dist = segment_distance(in.image_px, in.ends.xy, in.ends.zw);
    let radius = in.shape.x;
    let rim = in.shape.y;
    // Signed distances in screen pixels: to the outer edge and to the rim's inner edge.
    let outer = (dist - radius) * scale;
    let inner = (dist - (radius - rim)) * scale;
    let coverage = clamp(0.5 - outer, 0.0, 1.0);
    var color = in.fill;
    if (rim > 0.0) {
        color = mix(in.rim_color, in.fill, clamp(0.5 - inner, 0.0, 1.0));
    }
    let alpha = color.a * coverage * in.shape.z;
    if (alpha <= 0.0) {
        discard;
    }
    // egui blends premultiplied colours.
    return vec4<f32>(color.rgb * alpha, alpha);
}
