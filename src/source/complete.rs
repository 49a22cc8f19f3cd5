//! Is an image file whole? Structural checks on the bytes, before decoding.
//!
//! The decoders behind the `image` crate fill in what a truncated file lacks (a JPEG cut in
//! its scan data decodes with grey rows, a PNG without `IEND` decodes as far as it goes), so
//! a cut file would be processed without a word. These checks walk the file's own structure
//! (JPEG markers and segments, PNG chunks) to its end marker; data after that marker (camera
//! padding, a motion photo's appended video) is not looked at.

use ::image::ImageFormat;

/// Why the bytes of an image of `format` are not a whole file, if they are not:
/// e.g. `"the data ends inside the image data, before the JPEG end-of-image marker"`.
/// Formats without a check here (BMP, TIFF, GIF, WebP: their decoders report a short
/// file themselves) are `None`.
pub(crate) fn truncation(format: ImageFormat, bytes: &[u8]) -> Option<String> {
    match format {
        ImageFormat::Jpeg => jpeg_truncation(bytes),
        ImageFormat::Png => png_truncation(bytes),
        _ => None,
    }
}

/// Walks a JPEG from SOI: every marker segment by its length, the entropy-coded data after
/// each SOS to the next marker (skipping stuffed `FF 00`, restart markers and fill bytes),
/// until EOI. `None` when EOI is reached.
fn jpeg_truncation(bytes: &[u8]) -> Option<String> {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    let before_eoi = "before the JPEG end-of-image marker";
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != SOI {
        // Not a JPEG the way this walk knows it; the decoder decides.
        return None;
    }
    let mut i = 2;
    loop {
        // A marker: 0xFF, any number of 0xFF fill bytes, the marker code.
        if i >= bytes.len() {
            return Some(format!("the file ends {before_eoi}"));
        }
        if bytes[i] != 0xFF {
            // Garbage between segments: the decoder reports it (or copes); not truncation.
            return None;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return Some(format!("the file ends {before_eoi}"));
        };
        i += 1;
        match code {
            EOI => return None,
            // Standalone markers (TEM, RSTn): no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return Some(format!(
                "the file ends inside a marker segment, {before_eoi}"
            ));
        };
        if i + len > bytes.len() {
            return Some(format!(
                "the file ends inside a marker segment (0xFF{code:02X}), {before_eoi}"
            ));
        }
        i += len.max(2);
        if code != SOS {
            continue;
        }
        // Entropy-coded data up to the next marker other than a restart marker.
        loop {
            let Some(off) = bytes[i..].iter().position(|&b| b == 0xFF) else {
                return Some(format!("the data ends inside the image data, {before_eoi}"));
            };
            i += off;
            match bytes.get(i + 1) {
                None => return Some(format!("the data ends inside the image data, {before_eoi}")),
                // Stuffed 0xFF data byte, restart marker.
                Some(0x00 | 0xD0..=0xD7) => i += 2,
                // Fill byte: the marker follows.
                Some(0xFF) => i += 1,
                Some(_) => break,
            }
        }
    }
}

/// Walks a PNG's chunks (length, type, data, CRC) from the signature to `IEND`.
fn png_truncation(bytes: &[u8]) -> Option<String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) {
        return None;
    }
    let mut i = SIGNATURE.len();
    let mut last: Option<String> = None;
    loop {
        let Some(head) = bytes.get(i..i + 8) else {
            let after = last.map_or(String::new(), |t| format!(" after the {t} chunk"));
            return Some(format!("the file ends{after}, before the PNG IEND chunk"));
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = String::from_utf8_lossy(&head[4..8]).into_owned();
        let end = i.saturating_add(12).saturating_add(len);
        if end > bytes.len() {
            return Some(if kind == "IEND" {
                "the file ends inside the PNG IEND chunk".to_string()
            } else {
                format!("the file ends inside the {kind} chunk, before the PNG IEND chunk")
            });
        }
        if kind == "IEND" {
            return None;
        }
        i = end;
        last = Some(kind);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = ::image::RgbImage::from_fn(64, 48, |x, y| {
            ::image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn whole_files_pass_and_every_cut_is_caught() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let bytes = encoded(format);
            assert_eq!(truncation(format, &bytes), None, "{format:?}");
            // Every proper prefix past the signature is truncated.
            for len in 8..bytes.len() {
                assert!(
                    truncation(format, &bytes[..len]).is_some(),
                    "{format:?} cut at {len} of {} passed",
                    bytes.len()
                );
            }
            // Trailing bytes after the end marker are fine, whatever they hold.
            let mut padded = bytes.clone();
            padded.extend_from_slice(&[0xFF, 0xDA, 0, 0, 0x12, 0x34, 0xFF]);
            assert_eq!(truncation(format, &padded), None, "{format:?} padded");
        }
    }

    #[test]
    fn messages_say_what_is_missing() {
        let jpeg = encoded(ImageFormat::Jpeg);
        let cut = truncation(ImageFormat::Jpeg, &jpeg[..jpeg.len() * 2 / 3]).unwrap();
        assert_eq!(
            cut,
            "the data ends inside the image data, before the JPEG end-of-image marker"
        );
        let no_eoi = truncation(ImageFormat::Jpeg, &jpeg[..jpeg.len() - 2]).unwrap();
        assert_eq!(
            no_eoi,
            "the data ends inside the image data, before the JPEG end-of-image marker"
        );
        let header = truncation(ImageFormat::Jpeg, &jpeg[..30]).unwrap();
        assert!(
            header.starts_with("the file ends inside a marker segment (0xFF")
                && header.ends_with("), before the JPEG end-of-image marker"),
            "{header}"
        );

        let png = encoded(ImageFormat::Png);
        let no_iend = truncation(ImageFormat::Png, &png[..png.len() - 12]).unwrap();
        assert_eq!(
            no_iend,
            "the file ends after the IDAT chunk, before the PNG IEND chunk"
        );
        let in_iend = truncation(ImageFormat::Png, &png[..png.len() - 2]).unwrap();
        assert_eq!(in_iend, "the file ends inside the PNG IEND chunk");
        let in_idat = truncation(ImageFormat::Png, &png[..png.len() / 2]).unwrap();
        assert_eq!(
            in_idat,
            "the file ends inside the IDAT chunk, before the PNG IEND chunk"
        );
    }

    #[test]
    fn restart_markers_and_stuffing_are_scan_data() {
        // SOI, SOS (length 2), scan bytes with FF00, RST3, fill FFs, EOI.
        let ok = [
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF,
            0xFF, 0xD9,
        ];
        assert_eq!(truncation(ImageFormat::Jpeg, &ok), None);
        // The same cut after the restart marker.
        assert!(truncation(ImageFormat::Jpeg, &ok[..12]).is_some());
        // An end marker inside an APP segment (an embedded thumbnail) does not end the file.
        let thumb = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02,
            0x12,
        ];
        assert!(truncation(ImageFormat::Jpeg, &thumb).is_some());
    }

    /// Every image file under `dir`, recursively (symbolic links followed).
    fn images_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                images_under(&path, out);
            } else if super::super::is_image_path(&path) {
                out.push(path);
            }
        }
    }

    /// No real image is refused: every image in the shared data, the tests, the assets and
    /// the docs passes the check (and their JPEG and PNG files are really checked).
    #[test]
    fn no_real_image_is_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let shared = std::env::var_os("POSESCOPE_SHARED")
            .map_or_else(|| root.join("../shared"), std::path::PathBuf::from);
        let have_shared = shared.join("README.md").is_file();
        assert!(
            have_shared || std::env::var_os("CI").is_none(),
            "shared data not found at {} (CI must have it)",
            shared.display()
        );
        let mut files = Vec::new();
        for dir in [
            shared.clone(),
            root.join("tests"),
            root.join("assets"),
            root.join("docs"),
        ] {
            images_under(&dir, &mut files);
        }
        let (mut jpeg, mut png) = (0, 0);
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let Ok(format) = ::image::guess_format(&bytes) else {
                continue;
            };
            jpeg += usize::from(format == ImageFormat::Jpeg);
            png += usize::from(format == ImageFormat::Png);
            assert_eq!(truncation(format, &bytes), None, "{}", path.display());
        }
        assert!(png >= 2, "only {png} PNG files found");
        if have_shared {
            assert!(
                jpeg >= 500 && png >= 10,
                "{jpeg} JPEG, {png} PNG files found"
            );
        }
    }

    #[test]
    fn other_formats_and_foreign_bytes_are_left_to_the_decoder() {
        assert_eq!(truncation(ImageFormat::Bmp, b"BM"), None);
        assert_eq!(truncation(ImageFormat::Jpeg, b"not a jpeg"), None);
        assert_eq!(truncation(ImageFormat::Png, b"not a png"), None);
    }
}
