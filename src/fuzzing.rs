//! The byte-slice entry of every file reader, as the fuzz targets in `fuzz/` call them and
//! `tests/fuzz_corpora.rs` replays their corpora: one function per target, each feeding
//! arbitrary bytes through the same loader a user's file goes through (parsed all the way
//! to tensors or annotation structures). Each returns whether the input was accepted; a
//! rejected input is an `Err` from the reader, a panic is a bug.
//!
//! See docs/fuzzing.md.

use std::path::Path;
use std::sync::mpsc;

use candle_core::Device;

use crate::eval::datasets;
use crate::source::video;
use crate::weights;

/// A fuzz target's name (its `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`) and
/// its entry.
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    ("tf_graphdef", tf_graphdef),
    ("tflite", tflite),
    ("caffe", caffe),
    ("pth_zip", pth_zip),
    ("pth_legacy", pth_legacy),
    ("safetensors", safetensors),
    ("annotations", annotations),
    ("ffprobe", ffprobe),
    ("showinfo", showinfo),
];

/// A checkpoint through [`weights::load_checkpoint_bytes`], the format told by `label`'s
/// extension (or the content) as for a file of that name.
fn checkpoint(data: &[u8], label: &str) -> bool {
    weights::load_checkpoint_bytes(data, label, &Device::Cpu).is_ok()
}

/// A TensorFlow frozen graph (`.pb`): protobuf `GraphDef`, every float constant to a tensor.
pub fn tf_graphdef(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.pb")
}

/// A TensorFlow Lite flatbuffer (`.tflite`): every weight tensor, dequantised as loaded.
pub fn tflite(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.tflite")
}

/// A Caffe `.caffemodel` (protobuf `NetParameter`): every layer's blobs.
pub fn caffe(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.caffemodel")
}

/// A PyTorch zip checkpoint (`torch.save` since 1.6): zip directory, pickle, storages.
pub fn pth_zip(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.pth")
}

/// A legacy PyTorch checkpoint (pickle stream followed by raw storages). The same entry as
/// [`pth_zip`]; the content decides the format, the corpora differ.
pub fn pth_legacy(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.pth")
}

/// A `.safetensors` file.
pub fn safetensors(data: &[u8]) -> bool {
    checkpoint(data, "fuzz.safetensors")
}

/// An annotation file (LSP-style, MPII or COCO keypoints JSON, told by its structure) and,
/// for the same bytes, a COCO keypoint results file, then the two together as COCO
/// evaluation joins them.
pub fn annotations(data: &[u8]) -> bool {
    let path = Path::new("fuzz.json");
    let dataset = datasets::from_bytes(data, path);
    let results = datasets::coco_results_from_bytes(data, path);
    match (dataset, results) {
        (Ok(d), Ok(r)) => d.coco_images(r).is_ok(),
        (d, r) => {
            let accepted = d.is_ok() || r.is_ok();
            if let Ok(d) = d {
                // Every annotated person as COCO ground truth, as evaluation reads them.
                let _ = d.coco_images(Vec::new());
            }
            accepted
        }
    }
}

/// ffprobe's JSON answer (`-of json`) for a video's first stream.
pub fn ffprobe(data: &[u8]) -> bool {
    video::parse_probe(&String::from_utf8_lossy(data)).is_ok()
}

/// ffmpeg's stderr while decoding (`showinfo` frame lines, warnings and errors), through
/// the reader the decoding thread runs. Accepted when at least one frame line was parsed.
pub fn showinfo(data: &[u8]) -> bool {
    let (tx, rx) = mpsc::channel();
    let _summary = video::read_stderr(data, tx);
    rx.try_iter().count() > 0
}
