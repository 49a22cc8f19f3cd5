//! A single still image as a one-frame source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::complete::truncation;
use super::{Frame, FrameSource, SourceError};

/// Decodes the image at `path` to 8-bit RGB, guessing the format from the content so that a
/// mislabelled extension still decodes.
///
/// # Errors
/// [`SourceError::Io`] when the file cannot be read, [`SourceError::TruncatedImage`] when it
/// ends early (see [`super::complete`]), [`SourceError::Decode`] when it is not a decodable
/// image (corrupt, unsupported format).
pub(crate) fn decode_rgb(path: &Path) -> Result<::image::RgbImage, SourceError> {
    let io_err = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Read once: the same bytes are checked for completeness and decoded.
    let bytes = std::fs::read(path).map_err(io_err)?;
    let reader = ::image::ImageReader::new(std::io::Cursor::new(bytes.as_slice()))
        .with_guessed_format()
        .map_err(io_err)?;
    // Decoders fill in what a truncated file lacks; refuse files that end early.
    if let Some(reason) = reader
        .format()
        .and_then(|format| truncation(format, &bytes))
    {
        return Err(SourceError::TruncatedImage {
            path: path.to_path_buf(),
            reason,
        });
    }
    let decoded = reader.decode().map_err(|error| SourceError::Decode {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(decoded.to_rgb8())
}

/// One still image: yields a single frame (index 0, timestamp 0, `output_stem` = file stem).
///
/// The image is decoded when the source is opened, so a corrupt file fails at [`ImageSource::open`].
/// Animated formats (GIF, WebP) yield their first frame only.
#[derive(Debug)]
pub struct ImageSource {
    path: PathBuf,
    frame: Option<Frame>,
    width: u32,
    height: u32,
}

impl ImageSource {
    /// Opens and decodes the image at `path`.
    ///
    /// # Errors
    /// [`SourceError::NotFound`], [`SourceError::Io`], [`SourceError::TruncatedImage`] or
    /// [`SourceError::Decode`], naming the file.
    pub fn open(path: &Path) -> Result<ImageSource, SourceError> {
        if !path.exists() {
            return Err(SourceError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let image = decode_rgb(path)?;
        let (width, height) = image.dimensions();
        let output_stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".to_string());
        Ok(ImageSource {
            path: path.to_path_buf(),
            frame: Some(Frame {
                index: 0,
                timestamp: Duration::ZERO,
                image,
                path: Some(path.to_path_buf()),
                output_stem,
            }),
            width,
            height,
        })
    }
}

impl FrameSource for ImageSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        self.frame.take().map(Ok)
    }

    fn len_hint(&self) -> Option<u64> {
        Some(1)
    }

    fn describe(&self) -> String {
        format!(
            "image '{}' ({}x{})",
            self.path.display(),
            self.width,
            self.height
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        let img = ::image::RgbImage::from_fn(w, h, |x, y| ::image::Rgb([x as u8, y as u8, 7]));
        img.save_with_format(path, ::image::ImageFormat::Png)
            .unwrap();
    }

    #[test]
    fn single_image_yields_one_frame() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("person.png");
        write_png(&p, 13, 7);
        let mut src = ImageSource::open(&p).unwrap();
        assert_eq!(src.len_hint(), Some(1));
        let f = src.next_frame().unwrap().unwrap();
        assert_eq!(f.index, 0);
        assert_eq!(f.timestamp, Duration::ZERO);
        assert_eq!(f.image.dimensions(), (13, 7));
        assert_eq!(f.output_stem, "person");
        assert_eq!(f.path.as_deref(), Some(p.as_path()));
        assert_eq!(f.image.get_pixel(3, 2).0, [3, 2, 7]);
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn mislabelled_extension_still_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        write_png(&png, 4, 4);
        let jpg = dir.path().join("actually_png.jpg");
        std::fs::copy(&png, &jpg).unwrap();
        let mut src = ImageSource::open(&jpg).unwrap();
        assert_eq!(
            src.next_frame().unwrap().unwrap().image.dimensions(),
            (4, 4)
        );
    }

    #[test]
    fn random_bytes_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("noise.png");
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&p, bytes).unwrap();
        let msg = ImageSource::open(&p).err().unwrap().to_string();
        assert!(msg.contains("cannot decode image"), "{msg}");
        assert!(msg.contains("noise.png"), "{msg}");
    }

    #[test]
    fn truncated_png_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.png");
        write_png(&full, 64, 64);
        let bytes = std::fs::read(&full).unwrap();
        let p = dir.path().join("half.png");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = ImageSource::open(&p).err().unwrap();
        assert!(matches!(err, SourceError::TruncatedImage { .. }), "{err:?}");
        assert!(!err.is_fatal());
        assert_eq!(
            err.to_string(),
            format!(
                "image '{}' is truncated: the file ends inside the IDAT chunk, before the PNG \
                 IEND chunk",
                p.display()
            )
        );
        // No IEND, every other chunk whole.
        let p = dir.path().join("noiend.png");
        std::fs::write(&p, &bytes[..bytes.len() - 12]).unwrap();
        let err = decode_rgb(&p).err().unwrap();
        assert!(matches!(err, SourceError::TruncatedImage { .. }), "{err:?}");
        assert!(err.to_string().contains("noiend.png"), "{err}");
    }

    /// The formats without a structural check: their decoders refuse a file cut in half.
    #[test]
    fn other_formats_cut_in_half_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let img = ::image::RgbImage::from_fn(64, 48, |x, y| {
            ::image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
        });
        for (format, ext) in [
            (::image::ImageFormat::Bmp, "bmp"),
            (::image::ImageFormat::Tiff, "tif"),
            (::image::ImageFormat::Gif, "gif"),
            (::image::ImageFormat::WebP, "webp"),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, format).unwrap();
            let bytes = bytes.into_inner();
            let whole = dir.path().join(format!("whole.{ext}"));
            std::fs::write(&whole, &bytes).unwrap();
            assert_eq!(decode_rgb(&whole).unwrap().dimensions(), (64, 48), "{ext}");
            let cut = dir.path().join(format!("cut.{ext}"));
            std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
            let err = match decode_rgb(&cut) {
                Ok(_) => panic!("{ext}: a file cut in half was accepted"),
                Err(e) => e,
            };
            assert!(err.to_string().contains(&format!("cut.{ext}")), "{err}");
        }
    }

    #[test]
    fn truncated_jpeg_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let img =
            ::image::RgbImage::from_fn(64, 48, |x, y| ::image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        let mut jpeg = std::io::Cursor::new(Vec::new());
        img.write_to(&mut jpeg, ::image::ImageFormat::Jpeg).unwrap();
        let jpeg = jpeg.into_inner();
        let whole = dir.path().join("whole.jpg");
        std::fs::write(&whole, &jpeg).unwrap();
        assert!(decode_rgb(&whole).is_ok());
        // Cut inside the scan data, and just before the end marker: both refused.
        for (name, len) in [
            ("cut.jpg", jpeg.len() * 2 / 3),
            ("noeoi.jpg", jpeg.len() - 2),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &jpeg[..len]).unwrap();
            let msg = match ImageSource::open(&path) {
                Ok(_) => panic!("{name}: a truncated JPEG was accepted"),
                Err(e) => e.to_string(),
            };
            assert_eq!(
                msg,
                format!(
                    "image '{}' is truncated: the data ends inside the image data, before the \
                     JPEG end-of-image marker",
                    path.display()
                )
            );
        }
        // Bytes after the end marker (some cameras pad files) are fine.
        let padded = dir.path().join("padded.jpg");
        std::fs::write(&padded, [jpeg.as_slice(), &[0u8; 16]].concat()).unwrap();
        assert!(decode_rgb(&padded).is_ok());
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = ImageSource::open(Path::new("/no/such/img.png"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/no/such/img.png"), "{err}");
    }
}
