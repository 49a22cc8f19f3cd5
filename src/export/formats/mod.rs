//! Keypoints in other tools' formats, for `infer --write-coco / --write-openpose /
//! --write-csv`:
//!
//! - [`coco`]: a COCO keypoint results list over the whole run (pycocotools' `loadRes`
//!   input), COCO-17 joints only (OpenPose COCO-18 is converted; sets without the face
//!   joints are refused);
//! - [`openpose`]: one `<stem>_keypoints.json` per frame in OpenPose's format, in the
//!   model's joint order;
//! - [`csv`]: one row per frame × person × joint over the whole run.
//!
//! The formats are pure functions of a [`FrameRecord`] (what they need of an
//! [`Inspection`]); [`FormatWriter`] writes the per-frame files as frames come and keeps the
//! run-wide ones in memory until [`FormatWriter::finish`] writes them (atomically), so an
//! interrupted or failed run still leaves complete files of the frames it finished.

pub mod coco;
pub mod csv;
pub mod openpose;

use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::ExportError;
use crate::inspection::Inspection;
use crate::pose::{JointSet, Keypoint, Person};

/// What the formats need of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameRecord {
    pub index: u64,
    /// Seconds from the start of the video (0 for still images).
    pub time_s: f64,
    /// The image file, for still images and folders (`None` for video and camera frames).
    pub image_path: Option<PathBuf>,
    /// Base name of the frame's output files.
    pub stem: String,
    pub joints: &'static JointSet,
    /// Image pixels (pixel-index coordinates), the model's joint order.
    pub people: Vec<Person>,
}

impl FrameRecord {
    /// The record of one processed frame.
    pub fn from_inspection(ins: &Inspection) -> FrameRecord {
        FrameRecord {
            index: ins.frame.index,
            time_s: ins.frame.timestamp.as_secs_f64(),
            image_path: ins
                .frame
                .path
                .clone()
                .filter(|p| crate::source::is_image_path(p)),
            stem: ins.frame.output_stem.clone(),
            joints: ins.joints,
            people: ins.people.clone(),
        }
    }

    /// The image's file name, else the output stem (video and camera frames).
    pub fn file_name(&self) -> String {
        self.image_path
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.stem.clone())
    }
}

/// Which files [`FormatWriter`] writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormatOptions {
    /// The COCO keypoint results file.
    pub coco: Option<PathBuf>,
    /// Where the COCO results' `image_id`s come from.
    pub image_ids: coco::ImageIds,
    /// The directory of the per-frame OpenPose files (created if needed).
    pub openpose: Option<PathBuf>,
    /// The CSV file.
    pub csv: Option<PathBuf>,
    /// Replace existing files instead of refusing.
    pub overwrite: bool,
}

impl FormatOptions {
    /// Whether any format is asked for.
    pub fn any(&self) -> bool {
        self.coco.is_some() || self.openpose.is_some() || self.csv.is_some()
    }
}

/// Writes the formats of [`FormatOptions`] over a run: see the module documentation.
#[derive(Debug)]
pub struct FormatWriter {
    opts: FormatOptions,
    /// COCO results so far, one JSON object per line ([`coco::to_lines`]).
    coco: Vec<String>,
    csv: String,
    frames: usize,
}

/// One frame's share of the run-wide files, as the text that goes into them: what
/// `infer --resume` keeps per frame (see `export::resume`) to rebuild those files exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameParts {
    /// The frame's COCO results, one JSON object per line, each line ending in `\n`
    /// (empty without --write-coco or without people).
    pub coco: String,
    /// The frame's CSV rows ([`csv::rows`]; empty without --write-csv or without people).
    pub csv: String,
}

impl FormatWriter {
    /// Checks before the run what can be: that `joints` can become COCO-17 (with
    /// `--write-coco`), that the run-wide files do not exist yet (unless overwriting), and
    /// creates the OpenPose directory.
    pub fn new(opts: FormatOptions, joints: &'static JointSet) -> Result<Self, ExportError> {
        if opts.coco.is_some() {
            coco::to_coco17(joints)?;
        }
        if !opts.overwrite {
            if let Some(p) = [&opts.coco, &opts.csv]
                .into_iter()
                .flatten()
                .find(|p| p.exists())
            {
                return Err(ExportError::Exists(p.display().to_string()));
            }
        }
        if let Some(dir) = &opts.openpose {
            std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(FormatWriter {
            opts,
            coco: Vec::new(),
            csv: csv::HEADER.to_string(),
            frames: 0,
        })
    }

    /// Adds one frame: everything is converted first, then its OpenPose file is written
    /// (atomically) and its COCO results and CSV rows are kept for [`FormatWriter::finish`].
    /// A frame that fails adds nothing.
    pub fn add(&mut self, rec: &FrameRecord) -> Result<(), ExportError> {
        let parts = self.parts(rec)?;
        if let Some((path, bytes)) = self.openpose_file(rec) {
            write_atomic(&path, &bytes, self.opts.overwrite)?;
        }
        self.add_parts(&parts);
        Ok(())
    }

    /// The frame's share of the run-wide files (converted, nothing written or kept).
    pub fn parts(&self, rec: &FrameRecord) -> Result<FrameParts, ExportError> {
        let coco = match &self.opts.coco {
            Some(_) => {
                let map = coco::to_coco17(rec.joints)?;
                let id = self.opts.image_ids.id(rec)?;
                coco::to_lines(&coco::frame_results(rec, id, &map))
                    .into_iter()
                    .map(|l| l + "\n")
                    .collect()
            }
            None => String::new(),
        };
        let csv = match &self.opts.csv {
            Some(_) => csv::rows(rec),
            None => String::new(),
        };
        Ok(FrameParts { coco, csv })
    }

    /// The frame's OpenPose file and its bytes (with --write-openpose), not written.
    pub fn openpose_file(&self, rec: &FrameRecord) -> Option<(PathBuf, Vec<u8>)> {
        let dir = self.opts.openpose.as_ref()?;
        Some((
            dir.join(openpose::file_name(&rec.stem)),
            openpose::to_bytes(&rec.people),
        ))
    }

    /// Where the frame of output stem `stem` has its OpenPose file (with --write-openpose).
    pub fn openpose_path(&self, stem: &str) -> Option<PathBuf> {
        Some(self.opts.openpose.as_ref()?.join(openpose::file_name(stem)))
    }

    /// Keeps one frame's share (from [`FormatWriter::parts`], now or in an earlier run) for
    /// [`FormatWriter::finish`]; frames are kept in the order added.
    pub fn add_parts(&mut self, parts: &FrameParts) {
        if self.opts.coco.is_some() {
            self.coco.extend(parts.coco.lines().map(str::to_string));
        }
        if self.opts.csv.is_some() {
            self.csv.push_str(&parts.csv);
        }
        self.frames += 1;
    }

    /// What is asked for.
    pub fn options(&self) -> &FormatOptions {
        &self.opts
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Writes the run-wide files (COCO, CSV), each atomically; returns their paths.
    pub fn finish(self) -> Result<Vec<PathBuf>, ExportError> {
        let mut written = Vec::new();
        if let Some(path) = &self.opts.coco {
            write_atomic(path, &coco::lines_to_bytes(&self.coco), self.opts.overwrite)?;
            written.push(path.clone());
        }
        if let Some(path) = &self.opts.csv {
            write_atomic(path, self.csv.as_bytes(), self.opts.overwrite)?;
            written.push(path.clone());
        }
        Ok(written)
    }
}

/// Rounds to 1/1000 (pixels, scores): readable files, sub-pixel precision kept.
pub(crate) fn r3(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

/// `x, y, score` per joint, flat, `0, 0, 0` for joints not found (OpenPose's and COCO
/// results' convention).
fn triples(keypoints: &[Option<Keypoint>]) -> Vec<f64> {
    keypoints
        .iter()
        .flat_map(|k| match k {
            Some(k) => [r3(k.x), r3(k.y), r3(k.score)],
            None => [0.0; 3],
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_data {
    use super::FrameRecord;
    use crate::pose::skeleton::OPENPOSE_COCO18;
    use crate::pose::{Keypoint, Person};

    /// A hand-made frame: two OpenPose COCO-18 people, the second with three joints.
    pub fn frame() -> FrameRecord {
        let full: Vec<Option<Keypoint>> = (0..18)
            .map(|j| {
                Some(Keypoint {
                    x: 100.0 + j as f32,
                    y: 200.5 + j as f32,
                    score: 0.5,
                })
            })
            .collect();
        let mut sparse = vec![None; 18];
        sparse[0] = Some(Keypoint {
            x: 10.25,
            y: 20.0,
            score: 0.9,
        });
        sparse[1] = Some(Keypoint {
            x: 11.0,
            y: 30.0,
            score: 0.8,
        });
        sparse[15] = Some(Keypoint {
            x: 12.0,
            y: 18.0,
            score: 0.7,
        });
        FrameRecord {
            index: 3,
            time_s: 0.12,
            image_path: Some("data/000000000785.jpg".into()),
            stem: "coco_000003".into(),
            joints: &OPENPOSE_COCO18,
            people: vec![
                Person {
                    score: 21.5,
                    keypoints: full,
                },
                Person {
                    score: 2.0,
                    keypoints: sparse,
                },
            ],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::skeleton::{COCO17, HEAD_NECK_14};

    #[test]
    fn writer_writes_per_frame_and_run_wide_files() {
        let dir = tempfile::tempdir().unwrap();
        let opts = FormatOptions {
            coco: Some(dir.path().join("r.json")),
            openpose: Some(dir.path().join("op")),
            csv: Some(dir.path().join("k.csv")),
            ..FormatOptions::default()
        };
        let mut w =
            FormatWriter::new(opts.clone(), &crate::pose::skeleton::OPENPOSE_COCO18).unwrap();
        let rec = test_data::frame();
        w.add(&rec).unwrap();
        assert!(dir.path().join("op/coco_000003_keypoints.json").is_file());
        // Nothing run-wide before the end.
        assert!(!dir.path().join("r.json").exists());
        assert_eq!(w.frames(), 1);
        let written = w.finish().unwrap();
        assert_eq!(
            written,
            vec![dir.path().join("r.json"), dir.path().join("k.csv")]
        );
        let csv = std::fs::read_to_string(dir.path().join("k.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 2 * 18);
        let coco: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
        assert_eq!(coco.as_array().unwrap().len(), 2);
        // A second run refuses to replace the run-wide files before it starts.
        let e = FormatWriter::new(opts, &COCO17).unwrap_err();
        assert!(matches!(e, ExportError::Exists(_)), "{e}");
    }

    #[test]
    fn writer_refuses_a_coco_file_for_joints_without_a_face() {
        let opts = FormatOptions {
            coco: Some("never-written.json".into()),
            ..FormatOptions::default()
        };
        let e = FormatWriter::new(opts, &HEAD_NECK_14).unwrap_err();
        assert!(e.to_string().contains("nose"), "{e}");
        assert!(!Path::new("never-written.json").exists());
    }

    #[test]
    fn file_name_is_the_image_or_the_stem() {
        let mut rec = test_data::frame();
        assert_eq!(rec.file_name(), "000000000785.jpg");
        rec.image_path = None;
        assert_eq!(rec.file_name(), "coco_000003");
    }
}
