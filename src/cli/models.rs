//! `posescope models` and `posescope cameras`.

use super::ModelsArgs;
use crate::fetch::Checksum;
use crate::models::{WeightsLocation, CATALOG};

pub(super) fn run(args: &ModelsArgs) -> anyhow::Result<()> {
    if args.json {
        let list: Vec<serde_json::Value> = CATALOG
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id,
                    "aliases": m.aliases,
                    "architecture": m.architecture.name(),
                    "joint_set": m.joints.id,
                    "joints": m.joints.joints,
                    "input_size": [m.input_size.0, m.input_size.1],
                    "map_grid": m.architecture.grid.name(),
                    "weights_file": m.file_name,
                    "source": m.source,
                    "licence": m.licence,
                    "sha256": m.sha256,
                    "sha256_prefix": m.sha256_prefix,
                    "check": Checksum::of(m).describe(),
                    "published_accuracy": m.published_accuracy,
                    "url": m.url,
                    "downloadable": m.url.is_some(),
                    "present": m.locate(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for m in CATALOG {
        println!("{}", m.id);
        println!("  architecture  {}", m.architecture.name());
        println!(
            "  joints        {} ({} joints)",
            m.joints.id,
            m.joints.len()
        );
        println!("  input size    {}x{}", m.input_size.0, m.input_size.1);
        println!(
            "  resize        {}, {} filter (--resize, --filter)",
            m.resize.name(),
            m.filter.name()
        );
        println!(
            "  map grid      {} (where map cells sit on the input; --grid)",
            m.architecture.grid.name()
        );
        println!("  weights       {} ({})", m.file_name, m.source);
        println!("  licence       {}", m.licence);
        if !m.published_accuracy.is_empty() {
            println!("  published     {}", m.published_accuracy);
        }
        if matches!(m.weights, WeightsLocation::File(_)) {
            println!("  check         {}", Checksum::of(m).describe());
        }
        match (m.weights, m.url) {
            (WeightsLocation::Embedded(_), _) => println!("  download      no (embedded)"),
            (_, Some(url)) => println!("  download      {url} (posescope fetch {})", m.id),
            (_, None) => println!("  download      no (get it by hand, see weights)"),
        }
        match m.locate() {
            Some(at) => println!("  present       yes ({at})"),
            None => println!("  present       no"),
        }
        if !m.aliases.is_empty() {
            println!("  aliases       {}", m.aliases.join(", "));
        }
    }
    Ok(())
}

pub(super) fn cameras() -> anyhow::Result<()> {
    let cams = crate::source::list_cameras()?;
    if cams.is_empty() {
        println!("no cameras found");
        return Ok(());
    }
    for c in cams {
        println!("{c}");
        let default = crate::source::camera::default_mode(&c.modes);
        for m in &c.modes {
            let mark = if Some(m) == default.as_ref() {
                "  (default)"
            } else {
                ""
            };
            println!("    {m}{mark}");
        }
    }
    println!(
        "record one with `posescope infer --input camera:N --out DIR`; choose a mode with \
         `camera:N@WxH` or `camera:N@WxH@FPS`"
    );
    Ok(())
}
