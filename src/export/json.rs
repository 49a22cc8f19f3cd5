//! The per-frame JSON document.
//!
//! ```json
//! {"model": "openpose-mobilenet-thin", "joints": ["nose", ...],
//!  "image": {"path": "x.jpg", "width": 640, "height": 480},
//!  "frame": {"index": 0, "timestamp_s": 0.0},
//!  "input_size": [432, 328], "map_to_image": [a, b, tx, c, d, ty],
//!  "people": [{"score": 21.3, "keypoints": [[x, y, score], null, ...]}],
//!  "timing_ms": {"preprocess": 2.1, "backbone": 40.2, "stage1": 9.8, ..., "forward": 95.0,
//!                "decode": 3.0, "total": 101.0}}
//! ```
//! Keypoints are in original-image pixel-index coordinates (integers are pixel centres),
//! one entry per joint of the model's joint set, in its order; `null` where not found.
//! Single-person models add `"center": [x, y]` (the person centre given to the network,
//! image pixels); top-down and box modes add `"crops": [{"box": [x0, y0, x1, y1], "score":
//! s}]` (box mode: the one padded crop round the user's box, score 1) and `"focus"` (the crop whose maps `map_to_image` and the maps file describe).
//! Associative-embedding models (HigherHRNet) add `"grouping"`: the parameters used
//! (`detection_threshold`, `tag_threshold`, …) and per person its mean `tag` (one value per
//! tag dimension: per pass of flip test) in `people[i].tag`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::formats::r3;
use crate::inspection::Inspection;

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Builds the JSON value for one inspection.
pub fn to_json(ins: &Inspection) -> Value {
    let people: Vec<Value> = ins
        .people
        .iter()
        .map(|p| {
            let kps: Vec<Value> = p
                .keypoints
                .iter()
                .map(|k| match k {
                    Some(k) => json!([r3(k.x), r3(k.y), r3(k.score)]),
                    None => Value::Null,
                })
                .collect();
            json!({"score": r3(p.score), "keypoints": kps})
        })
        .collect();
    let mut timing = Map::new();
    timing.insert("preprocess".into(), json!(ms(ins.timings.preprocess)));
    for s in &ins.timings.steps {
        timing.insert(s.name.clone(), json!(ms(s.time)));
    }
    timing.insert("forward".into(), json!(ms(ins.timings.forward)));
    timing.insert("decode".into(), json!(ms(ins.timings.decode)));
    timing.insert("total".into(), json!(ms(ins.timings.total)));
    let path = ins
        .frame
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ins.frame.output_stem.clone());
    let mut doc = json!({
        "model": ins.model_id,
        "joints": ins.joints.joints,
        "image": {"path": path, "width": ins.frame.width, "height": ins.frame.height},
        "frame": {"index": ins.frame.index, "timestamp_s": ins.frame.timestamp.as_secs_f64()},
        "input_size": [ins.input_size.0, ins.input_size.1],
        "map_to_image": ins.map_to_image.m,
        "people": people,
        "timing_ms": Value::Object(timing),
    });
    if let Some(obj) = doc.as_object_mut() {
        if let Some((x, y)) = ins.center {
            obj.insert("center".into(), json!([x, y]));
        }
        if let Some(ae) = &ins.grouping {
            obj.insert("grouping".into(), json!(ae.params));
            if let Some(Value::Array(people)) = obj.get_mut("people") {
                for (p, g) in people.iter_mut().zip(&ae.grouping.people) {
                    let tags: Vec<&Vec<f32>> = g
                        .keypoints
                        .iter()
                        .flatten()
                        .filter(|k| !k.refined)
                        .map(|k| &k.tag)
                        .collect();
                    let dims = tags.first().map_or(0, |t| t.len());
                    let mean: Vec<f64> = (0..dims)
                        .map(|d| {
                            let sum: f32 = tags.iter().filter_map(|t| t.get(d)).sum();
                            r3(sum / tags.len() as f32)
                        })
                        .collect();
                    if let Some(o) = p.as_object_mut() {
                        o.insert("tag".into(), json!(mean));
                    }
                }
            }
        }
        if !ins.crops.is_empty() {
            let crops: Vec<Value> = ins
                .crops
                .iter()
                .map(|c| json!({"box": c.bbox, "score": r3(c.score)}))
                .collect();
            obj.insert("crops".into(), Value::Array(crops));
            obj.insert("focus".into(), json!(ins.focus));
        }
    }
    doc
}

/// Pretty-printed JSON bytes.
pub fn to_bytes(ins: &Inspection) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::new());
    // Serialising a `Value` into memory cannot fail.
    let _ = to_json(ins).serialize(&mut ser);
    out.push(b'\n');
    out
}
