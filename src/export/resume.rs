//! `infer --resume`: which frames an earlier, interrupted run of the same command finished,
//! and that run's share of the run-wide files (`--write-coco FILE`, `--write-csv FILE`).
//!
//! The run-wide files are written once, when a run ends, from memory: a run killed before
//! that (SIGKILL, a preempted cluster task) leaves none. So with `--resume` each frame
//! also writes its share of them as small files in `<out>/.posescope-resume/`
//! (`<stem>.coco.jsonl`, `<stem>.csv`: the exact text that goes into the run-wide file),
//! together with its other files. A frame counts as finished when every file it writes
//! exists (each is written atomically, so existing means complete); a rerun skips it and
//! takes its share from these files, recomputes the others (overwriting what a kill between
//! two of a frame's files left), and writes the run-wide files from all shares in frame
//! order: each frame exactly once, whenever the earlier run was killed.

use std::path::{Path, PathBuf};

use super::formats::FrameParts;
use super::ExportError;

/// The folder inside the output folder that holds the frames' shares.
pub const DIR: &str = ".posescope-resume";

/// Where the per-frame shares of one run go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    dir: PathBuf,
    coco: bool,
    csv: bool,
}

impl Resume {
    /// Shares in `<out>/.posescope-resume`, of the COCO file and/or the CSV file (the
    /// folder is created when one is asked for).
    pub fn new(out: &Path, coco: bool, csv: bool) -> Result<Resume, ExportError> {
        let dir = out.join(DIR);
        if coco || csv {
            std::fs::create_dir_all(&dir).map_err(|source| ExportError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Resume { dir, coco, csv })
    }

    fn coco_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.coco.jsonl"))
    }

    fn csv_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.csv"))
    }

    /// The share files of the frame with output stem `stem`, encoded (not written).
    pub fn encode(&self, stem: &str, parts: &FrameParts) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        if self.coco {
            out.push((self.coco_path(stem), parts.coco.clone().into_bytes()));
        }
        if self.csv {
            out.push((self.csv_path(stem), parts.csv.clone().into_bytes()));
        }
        out
    }

    /// The frame's share when an earlier run finished it: all of `outputs` (its other
    /// files) and its share files exist. `None` when one is missing.
    ///
    /// # Errors
    /// A share file that exists but cannot be read.
    pub fn finished(
        &self,
        stem: &str,
        outputs: &[&Path],
    ) -> Result<Option<FrameParts>, ExportError> {
        let coco = self.coco.then(|| self.coco_path(stem));
        let csv = self.csv.then(|| self.csv_path(stem));
        let all_there = outputs
            .iter()
            .copied()
            .chain(coco.as_deref())
            .chain(csv.as_deref())
            .all(Path::is_file);
        if !all_there {
            return Ok(None);
        }
        let read = |p: &Option<PathBuf>| -> Result<String, ExportError> {
            match p {
                Some(p) => std::fs::read_to_string(p).map_err(|source| ExportError::Io {
                    path: p.display().to_string(),
                    source,
                }),
                None => Ok(String::new()),
            }
        };
        Ok(Some(FrameParts {
            coco: read(&coco)?,
            csv: read(&csv)?,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_finished_when_all_its_files_are_there() {
        let dir = tempfile::tempdir().unwrap();
        let r = Resume::new(dir.path(), true, true).unwrap();
        let png = dir.path().join("a_000000.png");
        let parts = FrameParts {
            coco: "{\"image_id\":1}\n".into(),
            csv: "0,0.0,0,nose,1.0,2.0,0.5\n".into(),
        };
        assert_eq!(r.finished("a_000000", &[&png]).unwrap(), None);
        std::fs::write(&png, b"png").unwrap();
        // The frame's own file alone is not enough.
        assert_eq!(r.finished("a_000000", &[&png]).unwrap(), None);
        let files = r.encode("a_000000", &parts);
        assert_eq!(files.len(), 2);
        std::fs::write(&files[0].0, &files[0].1).unwrap();
        assert_eq!(r.finished("a_000000", &[&png]).unwrap(), None);
        std::fs::write(&files[1].0, &files[1].1).unwrap();
        assert_eq!(r.finished("a_000000", &[&png]).unwrap(), Some(parts));
        // Without run-wide files, only the frame's files count.
        let plain = Resume::new(dir.path(), false, false).unwrap();
        assert!(plain.encode("b", &FrameParts::default()).is_empty());
        assert_eq!(
            plain.finished("a_000000", &[&png]).unwrap(),
            Some(FrameParts::default())
        );
    }
}
