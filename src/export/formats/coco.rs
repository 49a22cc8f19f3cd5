//! COCO keypoint results: the list pycocotools' `COCO.loadRes` reads and `COCOeval`
//! (`iouType="keypoints"`) scores.
//!
//! ```json
//! [{"image_id": 785, "file_name": "000000000785.jpg", "category_id": 1,
//!   "keypoints": [x, y, s, ... 17 triples], "score": 21.5}, ...]
//! ```
//!
//! - Joints in COCO-17 order, image pixels. A model's joints are mapped by name
//!   ([`JointMap`]): OpenPose COCO-18 loses its neck and is reordered, as OpenPose's
//!   `--write_coco_json` does; a joint set without all 17 COCO joints (the 14-joint LSP /
//!   AI Challenger / PEFM sets, MPII-16, Penn-13: no face points) is refused.
//! - Joints not found are `0, 0, 0` (OpenPose's convention). Found joints carry their
//!   score as third value; `COCOeval` ignores it. Note that `loadRes` takes a detection's
//!   box and area from the min/max of *all* its keypoints, `0, 0` ones included; this
//!   matters only for the small/medium/large breakdown of unmatched detections.
//! - `score`: the person's score (any scale; `COCOeval` only sorts by it).
//! - `image_id`: see [`ImageIds`]. `file_name` is extra (ignored by pycocotools).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{r3, triples, FrameRecord};
use crate::export::ExportError;
use crate::pose::joint_map::JointMap;
use crate::pose::skeleton::COCO17;
use crate::pose::{JointSet, Person};

/// One detection in COCO's keypoint results format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    pub image_id: u64,
    /// Extra (pycocotools ignores it); may be absent in files written elsewhere.
    #[serde(default)]
    pub file_name: String,
    pub category_id: u64,
    /// `[x, y, score]` per joint of the target set; joints not predicted are `0, 0, 0`.
    pub keypoints: Vec<f64>,
    pub score: f64,
}

/// The result for one person whose keypoints are already in the target joint order
/// (COCO-17 for `infer`, the dataset's for `eval`).
pub fn result(image_id: u64, file_name: &str, person: &Person) -> CocoResult {
    CocoResult {
        image_id,
        file_name: file_name.to_string(),
        category_id: 1,
        keypoints: triples(&person.keypoints),
        score: r3(person.score),
    }
}

/// The mapping from `joints` to COCO-17, or an error naming the COCO joints it lacks.
pub fn to_coco17(joints: &'static JointSet) -> Result<JointMap, ExportError> {
    let map = JointMap::new(joints, &COCO17);
    let missing: Vec<&str> = COCO17
        .joints
        .iter()
        .enumerate()
        .filter(|&(j, _)| !map.is_present(j))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(map);
    }
    Err(ExportError::Format(format!(
        "--write-coco: the model's joint set '{}' has no {} ({} of the 17 COCO keypoints), so \
         its people cannot be written as COCO keypoint results; --write-openpose and \
         --write-csv write any joint set",
        joints.id,
        missing.join(", "),
        missing.len()
    )))
}

/// Every person of a frame as a COCO result (keypoints mapped by `map`).
pub fn frame_results(rec: &FrameRecord, image_id: u64, map: &JointMap) -> Vec<CocoResult> {
    let file_name = rec.file_name();
    rec.people
        .iter()
        .map(|p| result(image_id, &file_name, &map.map_person(p)))
        .collect()
}

/// The results list, one detection per line.
pub fn to_bytes(results: &[CocoResult]) -> Vec<u8> {
    lines_to_bytes(&to_lines(results))
}

/// Each result as one line of JSON (no newline): the lines [`lines_to_bytes`] joins.
pub fn to_lines(results: &[CocoResult]) -> Vec<String> {
    results
        .iter()
        // Serialising plain numbers and strings cannot fail.
        .filter_map(|r| serde_json::to_string(r).ok())
        .collect()
}

/// The results file of lines from [`to_lines`]: `[`, the lines joined by `,`, `]`.
pub fn lines_to_bytes(lines: &[String]) -> Vec<u8> {
    if lines.is_empty() {
        return b"[]\n".to_vec();
    }
    format!("[\n{}\n]\n", lines.join(",\n")).into_bytes()
}

/// Reads a results file (any JSON layout) back.
///
/// # Errors
/// A message naming `path` when the file is not a COCO keypoint results list.
pub fn read_results(path: &Path) -> Result<Vec<CocoResult>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "'{}' is not a COCO keypoint results list (as infer --write-coco writes): {e}",
            path.display()
        )
    })
}

/// Merges the results files of the shards of one run (`--shard K/N`) into the single run's
/// list: the inputs are taken in the order given (shard 0 first) and their results
/// concatenated, which is the single run's order because shards are contiguous parts of
/// the input in its order. Reading and writing are exact (shortest round-trip floats), so
/// the bytes equal the single run's file.
///
/// # Errors
/// An unreadable input, or an image (same `image_id` and `file_name`) found in two
/// inputs: shards that overlap, or a file given twice.
pub fn merge(inputs: &[&Path]) -> Result<Vec<CocoResult>, String> {
    let mut seen: BTreeMap<(u64, String), usize> = BTreeMap::new();
    let mut all = Vec::new();
    for (i, path) in inputs.iter().enumerate() {
        let results = read_results(path)?;
        for r in &results {
            let key = (r.image_id, r.file_name.clone());
            match seen.get(&key) {
                Some(&j) if j != i => {
                    return Err(format!(
                        "image '{}' (image_id {}) is in both '{}' and '{}': the inputs overlap \
                         (the same shard twice, or shards of different splits)",
                        r.file_name,
                        r.image_id,
                        inputs[j].display(),
                        path.display()
                    ))
                }
                _ => {
                    seen.insert(key, i);
                }
            }
        }
        all.extend(results);
    }
    Ok(all)
}

/// Where a frame's COCO `image_id` comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ImageIds {
    /// The last number in the image's file name, COCO's convention (`000000196141.jpg`,
    /// `COCO_val2014_000000196141.jpg` → 196141); video and camera frames: the frame index.
    #[default]
    FileName,
    /// As [`ImageIds::FileName`], with the frame index for a file name without a number
    /// (the app's batch export, which has no annotation file to ask).
    FileNameOrIndex,
    /// The id of the image of the same file name (directories ignored) in an annotation
    /// file (`--annotations`).
    Annotations {
        path: String,
        by_name: BTreeMap<String, u64>,
    },
}

impl ImageIds {
    /// The ids of an annotation file's images (`(file name, id)` pairs; the caller reads
    /// the file, e.g. with `eval::datasets::read`), looked up by file name without folders.
    pub fn from_images<'a>(
        path: &Path,
        images: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> ImageIds {
        let mut by_name = BTreeMap::new();
        for (file_name, id) in images {
            by_name.entry(base_name(file_name)).or_insert(id);
        }
        ImageIds::Annotations {
            path: path.display().to_string(),
            by_name,
        }
    }

    /// The image id of a frame.
    pub fn id(&self, rec: &FrameRecord) -> Result<u64, ExportError> {
        match self {
            ImageIds::FileName => match &rec.image_path {
                Some(p) => number_in_name(p).ok_or_else(|| {
                    ExportError::Format(format!(
                        "--write-coco: no number in the file name of '{}' to use as its COCO \
                         image_id (COCO names its images by id, e.g. 000000196141.jpg); pass \
                         --annotations FILE to look the ids up by file name",
                        p.display()
                    ))
                }),
                None => Ok(rec.index),
            },
            ImageIds::FileNameOrIndex => Ok(rec
                .image_path
                .as_deref()
                .and_then(number_in_name)
                .unwrap_or(rec.index)),
            ImageIds::Annotations { path, by_name } => {
                let name = rec.file_name();
                by_name.get(&name).copied().ok_or_else(|| {
                    ExportError::Format(format!(
                        "--write-coco: image '{name}' is not in the annotation file '{path}'"
                    ))
                })
            }
        }
    }
}

fn base_name(file_name: &str) -> String {
    Path::new(file_name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file_name.to_string())
}

/// The last run of ASCII digits in a path's file stem.
fn number_in_name(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    let end = stem.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = stem[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    stem[start..end].parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_data;
    use super::*;
    use crate::pose::skeleton::{ALL, HEAD_NECK_14, LSP14, OPENPOSE_COCO18};

    #[test]
    fn openpose_coco18_becomes_coco17_as_openpose_writes_it() {
        let map = to_coco17(&OPENPOSE_COCO18).unwrap();
        // OpenPose's own table (`--write_coco_json`): COCO joint j ← OpenPose joint.
        let expect = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10];
        for (j, &i) in expect.iter().enumerate() {
            assert_eq!(
                map.sources[j],
                crate::pose::joint_map::JointSource::Same(i),
                "{}",
                COCO17.joints[j]
            );
        }
    }

    #[test]
    fn joint_sets_without_a_face_are_refused_by_name() {
        let e = to_coco17(&HEAD_NECK_14).unwrap_err().to_string();
        assert_eq!(
            e,
            "--write-coco: the model's joint set 'head-neck-14' has no nose, left_eye, \
             right_eye, left_ear, right_ear (5 of the 17 COCO keypoints), so its people cannot \
             be written as COCO keypoint results; --write-openpose and --write-csv write any \
             joint set"
        );
        assert!(to_coco17(&LSP14).is_err());
        let ok: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|&s| to_coco17(s).is_ok())
            .map(|s| s.id)
            .collect();
        assert_eq!(ok, ["openpose-coco18", "coco17"]);
    }

    #[test]
    fn exact_results_text() {
        let rec = test_data::frame();
        let map = to_coco17(rec.joints).unwrap();
        let results = frame_results(&rec, 785, &map);
        assert_eq!(results.len(), 2);
        let text = String::from_utf8(to_bytes(&results[1..])).unwrap();
        // Nose (OpenPose 0), left eye (OpenPose 15); the neck (OpenPose 1) is dropped.
        let mut kps = vec!["10.25,20.0,0.9", "12.0,18.0,0.7"];
        kps.extend(["0.0,0.0,0.0"; 15]);
        assert_eq!(
            text,
            format!(
                "[\n{{\"image_id\":785,\"file_name\":\"000000000785.jpg\",\"category_id\":1,\
                 \"keypoints\":[{}],\"score\":2.0}}\n]\n",
                kps.join(",")
            )
        );
        // The full person: COCO's right shoulder (6) is OpenPose's 2.
        let full = &results[0];
        assert_eq!(full.keypoints.len(), 51);
        assert_eq!(&full.keypoints[18..21], &[102.0, 202.5, 0.5]);
        assert_eq!(full.score, 21.5);
        assert_eq!(to_bytes(&[]), b"[]\n");
    }

    #[test]
    fn image_ids_from_file_names() {
        let mut rec = test_data::frame();
        assert_eq!(ImageIds::FileName.id(&rec).unwrap(), 785);
        rec.image_path = Some("val/COCO_val2014_000000196141.jpg".into());
        assert_eq!(ImageIds::FileName.id(&rec).unwrap(), 196141);
        rec.image_path = Some("img2b.png".into());
        assert_eq!(ImageIds::FileName.id(&rec).unwrap(), 2);
        rec.image_path = Some("dir7/person.png".into());
        let e = ImageIds::FileName.id(&rec).unwrap_err().to_string();
        assert!(
            e.contains("dir7/person.png") && e.contains("--annotations"),
            "{e}"
        );
        assert_eq!(ImageIds::FileNameOrIndex.id(&rec).unwrap(), 3);
        // Video frames: the frame index.
        rec.image_path = None;
        assert_eq!(ImageIds::FileName.id(&rec).unwrap(), 3);
    }

    #[test]
    fn image_ids_from_annotations() {
        let ids = ImageIds::from_images(Path::new("ann.json"), [("val/000000000785.jpg", 42)]);
        let mut rec = test_data::frame();
        assert_eq!(ids.id(&rec).unwrap(), 42);
        rec.image_path = Some("other.jpg".into());
        let e = ids.id(&rec).unwrap_err().to_string();
        assert!(e.contains("other.jpg") && e.contains("ann.json"), "{e}");
    }
}
