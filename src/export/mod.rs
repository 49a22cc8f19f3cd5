//! Writers for an [`Inspection`](crate::inspection::Inspection): annotated PNG, JSON
//! keypoints, safetensors maps, and other tools' keypoint formats ([`formats`]). Every file is written atomically (see [`atomic`]).

pub mod annotate;
pub mod atomic;
#[cfg(feature = "gui")]
pub mod batch;
pub mod experiments;
pub mod formats;
pub mod json;
pub mod maps;
pub mod resume;
pub mod versus;
pub mod video;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::colormap::Colormap;
use crate::inspection::Inspection;

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("'{0}' already exists (pass --overwrite to replace it)")]
    Exists(String),
    #[error("cannot write '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {0}")]
    Encode(String),
    #[error("drawing: {0}")]
    Draw(String),
    /// A keypoint format cannot represent the data (e.g. COCO results of a joint set
    /// without COCO's joints).
    #[error("{0}")]
    Format(String),
}

/// Options for the annotated PNG.
#[derive(Clone, Debug, PartialEq)]
pub struct PngOptions {
    /// Blend the last stage's max-over-joints heatmap.
    pub heatmap: bool,
    pub colormap: Colormap,
    pub opacity: f32,
    /// Keypoints below this score are not drawn.
    pub min_score: f32,
}

impl Default for PngOptions {
    fn default() -> Self {
        Self {
            heatmap: true,
            colormap: Colormap::Turbo,
            opacity: 0.45,
            min_score: 0.0,
        }
    }
}

/// The frame with the last stage's max-over-joints heatmap (optional) and skeletons.
pub fn annotated_image(ins: &Inspection, opts: &PngOptions) -> Result<RgbImage, ExportError> {
    let mut img = (*ins.image).clone();
    if opts.heatmap {
        if let Some(last) = ins.last_stage() {
            let hm = &last.heatmaps;
            let joints = ins.joints.len().min(hm.channels());
            let max = hm.max_over(0..joints);
            let style = annotate::OverlayStyle {
                colormap: opts.colormap,
                opacity: opts.opacity,
                ..annotate::OverlayStyle::default()
            };
            annotate::blend_heatmap(
                &mut img,
                &max,
                hm.width(),
                hm.height(),
                &ins.map_to_image,
                &style,
            )
            .map_err(|e| ExportError::Draw(e.to_string()))?;
        }
    }
    let style = annotate::SkeletonStyle {
        min_score: opts.min_score,
        ..annotate::SkeletonStyle::for_image(img.width(), img.height())
    };
    annotate::draw_people(&mut img, &ins.people, ins.joints, &style);
    Ok(img)
}

/// PNG bytes of an image.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>, ExportError> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ExportError::Encode(format!("PNG: {e}")))?;
    Ok(out.into_inner())
}

/// What [`write_frame`] writes and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    pub png: PngOptions,
    /// Also write the maps file (about 3 MB per frame at 432×368 for MobileNet-thin).
    pub maps: bool,
    /// Replace existing files instead of refusing.
    pub overwrite: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            png: PngOptions::default(),
            maps: true,
            overwrite: false,
        }
    }
}

/// The files written per frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameFiles {
    pub png: PathBuf,
    pub json: PathBuf,
    pub maps: PathBuf,
}

impl FrameFiles {
    /// `<dir>/<stem>.png`, `<stem>.json`, `<stem>.maps.safetensors`.
    pub fn new(dir: &Path, stem: &str) -> Self {
        Self {
            png: dir.join(format!("{stem}.png")),
            json: dir.join(format!("{stem}.json")),
            maps: dir.join(format!("{stem}.maps.safetensors")),
        }
    }

    /// The files written: PNG, JSON and, with `maps`, the maps file.
    pub fn selected(&self, maps: bool) -> Vec<&Path> {
        let mut v = vec![self.png.as_path(), self.json.as_path()];
        if maps {
            v.push(&self.maps);
        }
        v
    }
}

/// Writes the PNG, JSON and (optionally) maps of one frame into `dir`. Everything is encoded
/// first and existing files are checked before anything is written, so a refused or failed
/// export writes nothing partial.
pub fn write_frame(
    ins: &Inspection,
    dir: &Path,
    opts: &ExportOptions,
) -> Result<FrameFiles, ExportError> {
    let files = FrameFiles::new(dir, &ins.frame.output_stem);
    if !opts.overwrite {
        if let Some(p) = files.selected(opts.maps).into_iter().find(|p| p.exists()) {
            return Err(ExportError::Exists(p.display().to_string()));
        }
    }
    let encoded = encode_frame(ins, &files, opts)?;
    let parts: Vec<(&Path, &[u8])> = encoded
        .iter()
        .map(|(p, b)| (p.as_path(), b.as_slice()))
        .collect();
    write_together(&parts, opts.overwrite)?;
    Ok(files)
}

/// The PNG, JSON and (optionally) maps of one frame, encoded, each with the file of `files`
/// it goes to (nothing written).
pub fn encode_frame(
    ins: &Inspection,
    files: &FrameFiles,
    opts: &ExportOptions,
) -> Result<Vec<(PathBuf, Vec<u8>)>, ExportError> {
    let mut parts = vec![
        (
            files.png.clone(),
            png_bytes(&annotated_image(ins, &opts.png)?)?,
        ),
        (files.json.clone(), json::to_bytes(ins)),
    ];
    if opts.maps {
        parts.push((files.maps.clone(), maps::to_bytes(ins)?));
    }
    Ok(parts)
}

/// Writes a frame's files together or not at all: each atomically, and when one fails (a
/// full disk) the ones written before it are removed again.
///
/// # Errors
/// The first file that could not be written (or already exists without `overwrite`).
pub fn write_together(parts: &[(&Path, &[u8])], overwrite: bool) -> Result<(), ExportError> {
    let mut written: Vec<&Path> = Vec::new();
    for &(path, bytes) in parts {
        if let Err(e) = atomic::write_atomic(path, bytes, overwrite) {
            for done in written {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(())
}
