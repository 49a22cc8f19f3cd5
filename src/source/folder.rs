//! A folder of still images, in natural order, decoded lazily.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::str::Chars;
use std::time::Duration;

use super::still::decode_rgb;
use super::{is_image_path, Frame, FrameSource, SourceError, VIDEO_EXTENSIONS};

/// Every image file directly inside a folder (not recursive), in natural order
/// (`img2.png` before `img10.png`), decoded one at a time as frames are requested.
///
/// Hidden files (names starting with `.`, such as macOS `._img.png` companions) are skipped.
/// Frames have timestamp 0, `path` = the image file and `output_stem` =
/// `<folder name>_<index:06>`. A file that fails to decode yields an `Err` item naming it;
/// the following files are still readable.
#[derive(Debug)]
pub struct FolderSource {
    dir: PathBuf,
    stem: String,
    files: Vec<PathBuf>,
    next: usize,
}

impl FolderSource {
    /// Lists the images in `dir` (no decoding yet).
    ///
    /// # Errors
    /// [`SourceError::NotFound`] / [`SourceError::Io`] when the folder cannot be listed,
    /// [`SourceError::EmptyFolder`] when it holds no image files.
    pub fn open(dir: &Path) -> Result<FolderSource, SourceError> {
        let files = list_files(dir, is_image_path)?;
        if files.is_empty() {
            return Err(SourceError::EmptyFolder {
                path: dir.to_path_buf(),
            });
        }
        Ok(FolderSource {
            dir: dir.to_path_buf(),
            stem: folder_stem(dir),
            files,
            next: 0,
        })
    }

    /// The image files, in the order they will be yielded.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// The video files directly inside `dir` (by extension, [`VIDEO_EXTENSIONS`]; hidden files
/// skipped; not recursive), in the natural order [`FolderSource`] lists images in. Empty
/// when there are none.
///
/// # Errors
/// [`SourceError::NotFound`] / [`SourceError::Io`] when the folder cannot be listed.
pub fn list_videos(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    list_files(dir, |path| {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|k| e.eq_ignore_ascii_case(k)))
    })
}

/// The files directly inside `dir` that `keep` accepts, hidden ones (names starting with
/// `.`) skipped, in natural order of their names.
fn list_files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, SourceError> {
    let io_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SourceError::NotFound {
                path: dir.to_path_buf(),
            }
        } else {
            SourceError::Io {
                path: dir.to_path_buf(),
                source,
            }
        }
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with('.') || !keep(&path) || !path.is_file() {
            continue;
        }
        files.push((name, path));
    }
    files.sort_by(|(na, pa), (nb, pb)| natural_cmp(na, nb).then_with(|| pa.cmp(pb)));
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// The folder's own name, also for `.`, `..` or a trailing slash; `"frames"` as a last resort.
fn folder_stem(dir: &Path) -> String {
    let name = match dir.file_name() {
        Some(n) => Some(n.to_os_string()),
        None => std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string())),
    };
    name.map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "frames".to_string())
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        let path = self.files.get(self.next)?.clone();
        let index = self.next as u64;
        self.next += 1;
        Some(decode_rgb(&path).map(|image| Frame {
            index,
            timestamp: Duration::ZERO,
            image,
            path: Some(path),
            output_stem: format!("{}_{index:06}", self.stem),
        }))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }

    fn describe(&self) -> String {
        format!(
            "folder '{}' ({} images)",
            self.dir.display(),
            self.files.len()
        )
    }

    fn seek(&mut self, index: u64) -> bool {
        match usize::try_from(index) {
            Ok(i) if i < self.files.len() => {
                self.next = i;
                true
            }
            _ => false,
        }
    }
}

/// Natural, case-insensitive order of file names: runs of ASCII digits compare by numeric
/// value (`img2` < `img10`), everything else by lower-cased character. Names that are equal
/// under these rules (`a01` / `a1`, `A` / `a`) are ordered by their plain text, so the order
/// is total and deterministic.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    natural_key_cmp(a, b).then_with(|| a.cmp(b))
}

fn natural_key_cmp(a: &str, b: &str) -> Ordering {
    let (mut ia, mut ib) = (a.chars().peekable(), b.chars().peekable());
    loop {
        let (ca, cb) = match (ia.peek(), ib.peek()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(&ca), Some(&cb)) => (ca, cb),
        };
        let ord = if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let (da, db) = (digit_run(&mut ia), digit_run(&mut ib));
            let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            ia.next();
            ib.next();
            ca.to_lowercase().cmp(cb.to_lowercase())
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
}

fn digit_run(it: &mut Peekable<Chars<'_>>) -> String {
    let mut run = String::new();
    while let Some(c) = it.next_if(char::is_ascii_digit) {
        run.push(c);
    }
    run
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| natural_cmp(a, b));
        v
    }

    #[test]
    fn videos_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "clip10.mp4",
            "clip2.MOV",
            "a.png",
            ".hidden.mp4",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.mp4")).unwrap();
        let names: Vec<String> = list_videos(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["clip2.MOV", "clip10.mp4"]);
        assert!(matches!(
            list_videos(&dir.path().join("missing")),
            Err(SourceError::NotFound { .. })
        ));
    }

    #[test]
    fn natural_order() {
        assert_eq!(
            sorted(&["img10.png", "img2.png", "img1.png"]),
            ["img1.png", "img2.png", "img10.png"]
        );
        assert_eq!(
            sorted(&[
                "frame_100.jpg",
                "frame_99.jpg",
                "frame_9.jpg",
                "frame_0.jpg"
            ]),
            [
                "frame_0.jpg",
                "frame_9.jpg",
                "frame_99.jpg",
                "frame_100.jpg"
            ]
        );
        // Case-insensitive, ties broken by the plain name (upper case first in byte order).
        assert_eq!(
            sorted(&["b.png", "a.png", "B.png", "A.png"]),
            ["A.png", "a.png", "B.png", "b.png"]
        );
        // Leading zeros: same value compares equal, then plain text decides.
        assert_eq!(
            sorted(&["a1", "a01", "a001", "a2"]),
            ["a001", "a01", "a1", "a2"]
        );
        // Prefixes first; several number runs.
        assert_eq!(
            sorted(&["a1b10", "a1b2", "a1", "a"]),
            ["a", "a1", "a1b2", "a1b10"]
        );
        // Numbers longer than any integer type.
        assert_eq!(
            sorted(&[
                "x123456789012345678901234567890",
                "x99999999999999999999999999999"
            ]),
            [
                "x99999999999999999999999999999",
                "x123456789012345678901234567890"
            ]
        );
        assert_eq!(natural_cmp("", ""), Ordering::Equal);
        assert_eq!(natural_cmp("", "a"), Ordering::Less);
        assert_eq!(natural_cmp("é10", "É9"), Ordering::Greater);
    }

    fn write_png(path: &Path, w: u32, h: u32, v: u8) {
        ::image::RgbImage::from_pixel(w, h, ::image::Rgb([v, v, v]))
            .save_with_format(path, ::image::ImageFormat::Png)
            .unwrap();
    }

    #[test]
    fn folder_order_and_stems() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shots");
        std::fs::create_dir(&dir).unwrap();
        write_png(&dir.join("img1.png"), 3, 2, 1);
        write_png(&dir.join("img10.png"), 3, 2, 10);
        write_png(&dir.join("img2.png"), 3, 2, 2);
        std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
        std::fs::create_dir(dir.join("sub.png")).unwrap(); // a folder, not an image
        let mut src = FolderSource::open(&dir).unwrap();
        assert_eq!(src.len_hint(), Some(3));
        let mut got = Vec::new();
        while let Some(f) = src.next_frame() {
            let f = f.unwrap();
            got.push((
                f.index,
                f.output_stem,
                f.path
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                f.image.get_pixel(0, 0).0[0],
            ));
            assert_eq!(f.timestamp, Duration::ZERO);
        }
        assert_eq!(
            got,
            [
                (0, "shots_000000".to_string(), "img1.png".to_string(), 1),
                (1, "shots_000001".to_string(), "img2.png".to_string(), 2),
                (2, "shots_000002".to_string(), "img10.png".to_string(), 10),
            ]
        );
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn corrupt_image_is_an_err_item_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        write_png(&tmp.path().join("a1.png"), 2, 2, 0);
        std::fs::write(tmp.path().join("a2.png"), b"\x89PNG garbage garbage").unwrap();
        write_png(&tmp.path().join("a3.png"), 2, 2, 0);
        let mut src = FolderSource::open(tmp.path()).unwrap();
        assert!(src.next_frame().unwrap().is_ok());
        let err = src.next_frame().unwrap().err().unwrap();
        assert!(err.to_string().contains("a2.png"), "{err}");
        let third = src.next_frame().unwrap().unwrap();
        assert_eq!(third.index, 2);
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn folder_without_images_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
        let err = FolderSource::open(tmp.path()).err().unwrap();
        assert!(matches!(err, SourceError::EmptyFolder { .. }));
        assert!(err.to_string().contains("contains no images"), "{err}");
    }

    #[test]
    fn missing_folder_is_an_error() {
        let err = FolderSource::open(Path::new("/no/such/folder"))
            .err()
            .unwrap();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
    }
}
