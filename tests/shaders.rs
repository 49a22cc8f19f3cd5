//! Every WGSL shader in `shaders/` parses and validates with naga (the shader compiler wgpu
//! uses), so a broken shader fails here rather than at run time on a user's GPU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn every_wgsl_shader_validates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
            panic!("{}: {}", path.display(), e.emit_to_string(&source));
        });
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        let entry_points: Vec<_> = module.entry_points.iter().map(|e| e.name.clone()).collect();
        println!("{}: valid, entry points {entry_points:?}", path.display());
        checked.push(path);
    }
    assert!(
        !checked.is_empty(),
        "no .wgsl files found in {}",
        dir.display()
    );
}

#[test]
fn the_validator_rejects_a_broken_shader() {
    // A type error that only validation (not parsing) catches would be ideal; a call to an
    // undefined function is rejected by the front end, and a wrong return type by both.
    let bad = "@fragment fn fs_main() -> @location(0) vec4<f32> { return vec3<f32>(1.0); }";
    let rejected = match naga::front::wgsl::parse_str(bad) {
        Err(_) => true,
        Ok(module) => naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .is_err(),
    };
    assert!(rejected);
}
