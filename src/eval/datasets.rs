//! Annotation readers: LSP-style `annotations.json`, MPII json in MMPose's format, and COCO
//! keypoint json (COCO-17, AI Challenger in its COCO-style conversion, or any category whose
//! keypoint names form a known joint set).
//!
//! Every reader returns a [`Dataset`]: images with their annotated people, coordinates in
//! pixel-index `(x, y)` (integers are pixel centres). Errors name the file and the field
//! (e.g. `images[3].joints[2]`); bad input never panics.
//!
//! - **LSP-style** (`data/lspet_dev/annotations.json`): `{"joint_names": [...], "images":
//!   [{"file_name", "joints": [[x, y, visible], ...]}]}`, one person per image; `visible`
//!   1 = annotated. Without `joint_names`, 14 joints are taken as LSP-14.
//! - **MPII (MMPose json)**: a list of `{"image", "joints": [[x, y] × 16], "joints_vis": [16],
//!   "center", "scale"}`, one entry per person; entries sharing an image are one image.
//!   Coordinates are MATLAB 1-based and are shifted by −1 (MMPose instead adds 1 to its
//!   predictions). The head size for PCKh is read from `head_size` (already `0.6 ·
//!   diagonal`, as in MMPose's data info) or computed from `headbox` (`[x1, y1, x2, y2]` or
//!   `[[x1, y1], [x2, y2]]`), if present.
//! - **COCO keypoints**: `{"images": [{"id", "file_name"}], "annotations": [{"image_id",
//!   "keypoints": [x, y, v, ...], "num_keypoints", "bbox", "area", "iscrowd", "category_id"}],
//!   "categories": [{"id", "keypoints": [names]}]}`. The first category with keypoints is
//!   evaluated; its names (lower-cased, spaces as `_`) must be those of a known joint set in
//!   that set's order (COCO-17, AIC-14 in its native order, ...). Coordinates are used as
//!   they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coco::{CocoImage, Detection, GtPerson};
use crate::pose::skeleton::{self, JointSet};

/// Why an annotation file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read annotation file '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("annotation file '{path}' is not valid JSON: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("annotation file '{path}': field '{field}': {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
    #[error(
        "annotation file '{path}': unknown format (expected an LSP-style object with \
         'images[].joints', an MPII list of people, or COCO json with 'annotations' and \
         'categories')"
    )]
    Format { path: String },
}

/// Which reader a file was read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Lsp,
    Mpii,
    Coco,
}

/// One annotated person.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonAnn {
    /// `(x, y, v)` per joint of the dataset's joint set; `v > 0` = annotated (COCO: 1
    /// labelled but not visible, 2 visible; LSP/MPII: 1).
    pub keypoints: Vec<(f64, f64, f64)>,
    /// `[x, y, w, h]` from the file (COCO).
    pub bbox: Option<[f64; 4]>,
    /// Segmentation area from the file (COCO; OKS scale).
    pub area: Option<f64>,
    pub iscrowd: bool,
    /// The file's `num_keypoints` (COCO), else the number of annotated joints.
    pub num_keypoints: u32,
    /// MPII head size (`0.6 ·` head box diagonal), when the file has one.
    pub head_size: Option<f64>,
}

impl PersonAnn {
    /// Annotated joint positions, `None` where not annotated.
    pub fn annotated(&self) -> Vec<Option<(f64, f64)>> {
        self.keypoints
            .iter()
            .map(|&(x, y, v)| (v > 0.0).then_some((x, y)))
            .collect()
    }

    /// Number of annotated joints.
    pub fn annotated_count(&self) -> usize {
        self.keypoints.iter().filter(|k| k.2 > 0.0).count()
    }

    /// The annotation as COCOeval sees it; `None` without `bbox` and `area` (COCO files
    /// have both).
    pub fn to_coco(&self) -> Option<GtPerson> {
        Some(GtPerson {
            keypoints: self.keypoints.clone(),
            bbox: self.bbox?,
            area: self.area?,
            iscrowd: self.iscrowd,
            num_keypoints: self.num_keypoints,
        })
    }
}

/// One image and its people.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageAnn {
    /// The file's image id (COCO), else the position in the file.
    pub id: u64,
    /// Path relative to the images directory.
    pub file_name: String,
    pub people: Vec<PersonAnn>,
}

/// An annotation file, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: Format,
    /// The joint set of every person's `keypoints`.
    pub joints: &'static JointSet,
    pub images: Vec<ImageAnn>,
}

impl Dataset {
    /// Number of annotated people.
    pub fn people(&self) -> usize {
        self.images.iter().map(|i| i.people.len()).sum()
    }

    /// Every image of a COCO dataset with its annotations and the detections of a results
    /// file (see [`read_coco_results`]), for [`super::coco::evaluate`]. Detections of images
    /// not in the dataset are an error, as in pycocotools' `loadRes`.
    pub fn coco_images(
        &self,
        results: Vec<(u64, Detection)>,
    ) -> Result<Vec<CocoImage>, DatasetError> {
        let name = self.path.display().to_string();
        let mut images = Vec::with_capacity(self.images.len());
        let mut index = BTreeMap::new();
        for img in &self.images {
            let mut gts = Vec::with_capacity(img.people.len());
            for (k, p) in img.people.iter().enumerate() {
                gts.push(p.to_coco().ok_or_else(|| DatasetError::Field {
                    path: name.clone(),
                    field: format!("image {} person {k}", img.id),
                    message: "COCO evaluation needs 'bbox' and 'area'".into(),
                })?);
            }
            index.insert(img.id, images.len());
            images.push(CocoImage {
                image_id: img.id,
                gts,
                dets: Vec::new(),
            });
        }
        for (image_id, det) in results {
            let slot = index.get(&image_id).copied();
            let Some(img) = slot.and_then(|i| images.get_mut(i)) else {
                return Err(DatasetError::Field {
                    path: name,
                    field: "image_id".into(),
                    message: format!(
                        "a result refers to image {image_id}, which is not in the dataset"
                    ),
                });
            };
            img.dets.push(det);
        }
        Ok(images)
    }
}

/// Reads a COCO keypoint results file: `[{"image_id", "keypoints": [x, y, c, ...],
/// "score"}, ...]` (as written for pycocotools' `loadRes`); every keypoint counts as
/// present, and the area is the keypoints' box, as `loadRes` computes it.
pub fn read_coco_results(path: &Path) -> Result<Vec<(u64, Detection)>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    coco_results_from_bytes(&bytes, path)
}

/// [`read_coco_results`] on the file's bytes, already read; `path` names it in errors.
pub fn coco_results_from_bytes(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<(u64, Detection)>, DatasetError> {
    let name = path.display().to_string();
    let value: Value = serde_json::from_slice(bytes).map_err(|source| DatasetError::Json {
        path: name.clone(),
        source,
    })?;
    let r = Reader { path: name };
    let list = r.array(&value, "(top level)")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let at = format!("[{i}]");
        let image_id = r.id(r.get(d, "image_id", &at)?, &join(&at, "image_id"))?;
        let kf = join(&at, "keypoints");
        let flat = r.numbers(r.get(d, "keypoints", &at)?, &kf)?;
        if flat.is_empty() || flat.len() % 3 != 0 {
            return Err(r.err(
                &kf,
                format!("{} values, expected [x, y, c] triples", flat.len()),
            ));
        }
        let score = r.number(r.get(d, "score", &at)?, &join(&at, "score"))?;
        out.push((image_id, Detection::from_triples(&flat, score)));
    }
    Ok(out)
}

/// Reads an annotation file, telling its format from its structure.
pub fn read(path: &Path) -> Result<Dataset, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_bytes(&bytes, path)
}

/// [`read`] on the file's bytes, already read; `path` names it in errors and in the
/// [`Dataset`].
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Dataset, DatasetError> {
    let name = path.display().to_string();
    let value: Value = serde_json::from_slice(bytes).map_err(|source| DatasetError::Json {
        path: name.clone(),
        source,
    })?;
    let r = Reader { path: name };
    match &value {
        Value::Array(_) => r.mpii(&value),
        Value::Object(o) if o.contains_key("annotations") && o.contains_key("categories") => {
            r.coco(&value)
        }
        Value::Object(o) if o.contains_key("images") => r.lsp(&value),
        _ => Err(DatasetError::Format { path: r.path }),
    }
    .map(|(format, joints, images)| Dataset {
        path: path.to_path_buf(),
        format,
        joints,
        images,
    })
}

type Parsed = (Format, &'static JointSet, Vec<ImageAnn>);

/// Field access with errors that name the file and the field.
struct Reader {
    path: String,
}

impl Reader {
    fn err(&self, field: &str, message: impl Into<String>) -> DatasetError {
        DatasetError::Field {
            path: self.path.clone(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn get<'a>(&self, v: &'a Value, key: &str, at: &str) -> Result<&'a Value, DatasetError> {
        v.get(key)
            .ok_or_else(|| self.err(&join(at, key), "missing"))
    }

    fn array<'a>(&self, v: &'a Value, field: &str) -> Result<&'a Vec<Value>, DatasetError> {
        v.as_array()
            .ok_or_else(|| self.err(field, format!("expected a list, found {}", kind(v))))
    }

    fn number(&self, v: &Value, field: &str) -> Result<f64, DatasetError> {
        v.as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(field, format!("expected a number, found {}", kind(v))))
    }

    fn string(&self, v: &Value, field: &str) -> Result<String, DatasetError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(field, format!("expected a string, found {}", kind(v))))
    }

    fn numbers(&self, v: &Value, field: &str) -> Result<Vec<f64>, DatasetError> {
        self.array(v, field)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.number(x, &format!("{field}[{i}]")))
            .collect()
    }

    fn joint_set(&self, names: &[String], field: &str) -> Result<&'static JointSet, DatasetError> {
        let norm: Vec<String> = names
            .iter()
            .map(|n| n.trim().to_ascii_lowercase().replace([' ', '-'], "_"))
            .collect();
        skeleton::ALL
            .iter()
            .copied()
            .find(|s| {
                s.joints.len() == norm.len() && s.joints.iter().zip(&norm).all(|(a, b)| a == b)
            })
            .ok_or_else(|| {
                self.err(
                    field,
                    format!(
                        "joint names [{}] are not a known joint set ({})",
                        names.join(", "),
                        skeleton::ALL
                            .iter()
                            .map(|s| s.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    fn lsp(&self, root: &Value) -> Result<Parsed, DatasetError> {
        let images = self.array(self.get(root, "images", "")?, "images")?;
        let joints: Option<&'static JointSet> = match root.get("joint_names") {
            Some(v) => {
                let names = self
                    .array(v, "joint_names")?
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.string(n, &format!("joint_names[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(self.joint_set(&names, "joint_names")?)
            }
            None => None,
        };
        let set = joints.unwrap_or(&skeleton::LSP14);
        let mut out = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let at = format!("images[{i}]");
            let file_name =
                self.string(self.get(img, "file_name", &at)?, &join(&at, "file_name"))?;
            let jf = join(&at, "joints");
            let list = self.array(self.get(img, "joints", &at)?, &jf)?;
            if list.len() != set.len() {
                return Err(self.err(
                    &jf,
                    format!("{} joints, expected {} ({})", list.len(), set.len(), set.id),
                ));
            }
            let mut keypoints = Vec::with_capacity(list.len());
            for (j, p) in list.iter().enumerate() {
                let f = format!("{jf}[{j}]");
                let v = self.numbers(p, &f)?;
                let (x, y, vis) = match v.as_slice() {
                    [x, y] => (*x, *y, 1.0),
                    [x, y, vis, ..] => (*x, *y, if *vis > 0.0 { 1.0 } else { 0.0 }),
                    _ => return Err(self.err(&f, "expected [x, y, visible]")),
                };
                keypoints.push((x, y, vis));
            }
            let num_keypoints = keypoints.iter().filter(|k| k.2 > 0.0).count() as u32;
            out.push(ImageAnn {
                id: i as u64,
                file_name,
                people: vec![PersonAnn {
                    keypoints,
                    bbox: None,
                    area: None,
                    iscrowd: false,
                    num_keypoints,
                    head_size: None,
                }],
            });
        }
        Ok((Format::Lsp, set, out))
    }

    fn mpii(&self, root: &Value) -> Result<Parsed, DatasetError> {
        let list = self.array(root, "(top level)")?;
        let set = &skeleton::MPII16;
        let mut by_image: BTreeMap<String, usize> = BTreeMap::new();
        let mut out: Vec<ImageAnn> = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let at = format!("[{i}]");
            let image = self.string(self.get(e, "image", &at)?, &join(&at, "image"))?;
            let jf = join(&at, "joints");
            let joints = self.array(self.get(e, "joints", &at)?, &jf)?;
            if joints.len() != set.len() {
                return Err(self.err(&jf, format!("{} joints, expected 16", joints.len())));
            }
            let vf = join(&at, "joints_vis");
            let vis = match e.get("joints_vis") {
                Some(v) => self.numbers(v, &vf)?,
                None => vec![1.0; set.len()],
            };
            if vis.len() != set.len() {
                return Err(self.err(&vf, format!("{} values, expected 16", vis.len())));
            }
            let mut keypoints = Vec::with_capacity(16);
            for (j, (p, &v)) in joints.iter().zip(&vis).enumerate() {
                let f = format!("{jf}[{j}]");
                let xy = self.numbers(p, &f)?;
                let [x, y] = xy[..] else {
                    return Err(self.err(&f, "expected [x, y]"));
                };
                // MATLAB 1-based → pixel-index; unannotated joints are (-1, -1), vis 0.
                let annotated = v > 0.0 && x >= 0.0 && y >= 0.0;
                keypoints.push((x - 1.0, y - 1.0, if annotated { 1.0 } else { 0.0 }));
            }
            let head_size = match (e.get("head_size"), e.get("headbox")) {
                (Some(h), _) => {
                    let f = join(&at, "head_size");
                    let h = match h {
                        Value::Array(a) if a.len() == 1 => a.first().unwrap_or(h),
                        _ => h,
                    };
                    Some(self.number(h, &f)?)
                }
                (None, Some(b)) => {
                    let f = join(&at, "headbox");
                    let flat: Vec<f64> = match b {
                        Value::Array(a) if a.iter().all(Value::is_array) => {
                            let mut v = Vec::new();
                            for (k, p) in a.iter().enumerate() {
                                v.extend(self.numbers(p, &format!("{f}[{k}]"))?);
                            }
                            v
                        }
                        _ => self.numbers(b, &f)?,
                    };
                    let [x1, y1, x2, y2] = flat[..] else {
                        return Err(self.err(&f, "expected [x1, y1, x2, y2]"));
                    };
                    super::metrics::mpii_head_size([x1, y1, x2, y2])
                }
                (None, None) => None,
            };
            let num_keypoints = keypoints.iter().filter(|k| k.2 > 0.0).count() as u32;
            let person = PersonAnn {
                keypoints,
                bbox: None,
                area: None,
                iscrowd: false,
                num_keypoints,
                head_size,
            };
            match by_image.get(&image) {
                Some(&k) => {
                    if let Some(img) = out.get_mut(k) {
                        img.people.push(person);
                    }
                }
                None => {
                    by_image.insert(image.clone(), out.len());
                    out.push(ImageAnn {
                        id: out.len() as u64,
                        file_name: image,
                        people: vec![person],
                    });
                }
            }
        }
        Ok((Format::Mpii, set, out))
    }

    fn coco(&self, root: &Value) -> Result<Parsed, DatasetError> {
        let cats = self.array(self.get(root, "categories", "")?, "categories")?;
        let (cat_id, set) = {
            let mut found = None;
            for (i, c) in cats.iter().enumerate() {
                let at = format!("categories[{i}]");
                let Some(k) = c.get("keypoints") else {
                    continue;
                };
                let kf = join(&at, "keypoints");
                let names = self
                    .array(k, &kf)?
                    .iter()
                    .enumerate()
                    .map(|(j, n)| self.string(n, &format!("{kf}[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let id = self.number(self.get(c, "id", &at)?, &join(&at, "id"))?;
                found = Some((id, self.joint_set(&names, &kf)?));
                break;
            }
            found.ok_or_else(|| self.err("categories", "no category has 'keypoints'"))?
        };
        let k = set.len();
        let images = self.array(self.get(root, "images", "")?, "images")?;
        let mut out = Vec::with_capacity(images.len());
        let mut index: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, img) in images.iter().enumerate() {
            let at = format!("images[{i}]");
            let id = self.id(self.get(img, "id", &at)?, &join(&at, "id"))?;
            let file_name =
                self.string(self.get(img, "file_name", &at)?, &join(&at, "file_name"))?;
            if index.insert(id, out.len()).is_some() {
                return Err(self.err(&join(&at, "id"), format!("image id {id} appears twice")));
            }
            out.push(ImageAnn {
                id,
                file_name,
                people: Vec::new(),
            });
        }
        let anns = self.array(self.get(root, "annotations", "")?, "annotations")?;
        for (i, a) in anns.iter().enumerate() {
            let at = format!("annotations[{i}]");
            if let Some(c) = a.get("category_id") {
                if self.number(c, &join(&at, "category_id"))? != cat_id {
                    continue;
                }
            }
            let image_id = self.id(self.get(a, "image_id", &at)?, &join(&at, "image_id"))?;
            let Some(&slot) = index.get(&image_id) else {
                return Err(self.err(
                    &join(&at, "image_id"),
                    format!("image id {image_id} is not in 'images'"),
                ));
            };
            let kf = join(&at, "keypoints");
            let flat = self.numbers(self.get(a, "keypoints", &at)?, &kf)?;
            if flat.len() != 3 * k {
                return Err(self.err(
                    &kf,
                    format!(
                        "{} values, expected {} ({k} × [x, y, v])",
                        flat.len(),
                        3 * k
                    ),
                ));
            }
            let keypoints: Vec<(f64, f64, f64)> =
                flat.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect();
            let bbox = match a.get("bbox") {
                Some(b) => {
                    let f = join(&at, "bbox");
                    let v = self.numbers(b, &f)?;
                    let [x, y, w, h] = v[..] else {
                        return Err(self.err(&f, "expected [x, y, w, h]"));
                    };
                    Some([x, y, w, h])
                }
                None => None,
            };
            let area = a
                .get("area")
                .map(|v| self.number(v, &join(&at, "area")))
                .transpose()?;
            let iscrowd = match a.get("iscrowd") {
                Some(Value::Bool(b)) => *b,
                Some(v) => self.number(v, &join(&at, "iscrowd"))? != 0.0,
                None => false,
            };
            let num_keypoints = match a.get("num_keypoints") {
                Some(v) => self.number(v, &join(&at, "num_keypoints"))?.max(0.0) as u32,
                None => keypoints.iter().filter(|k| k.2 > 0.0).count() as u32,
            };
            if let Some(img) = out.get_mut(slot) {
                img.people.push(PersonAnn {
                    keypoints,
                    bbox,
                    area,
                    iscrowd,
                    num_keypoints,
                    head_size: None,
                });
            }
        }
        Ok((Format::Coco, set, out))
    }

    fn id(&self, v: &Value, field: &str) -> Result<u64, DatasetError> {
        v.as_u64().ok_or_else(|| {
            self.err(
                field,
                format!("expected a non-negative integer, found {}", kind(v)),
            )
        })
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn lsp_style() {
        let dir = tempfile::tempdir().unwrap();
        let joints: Vec<String> = (0..14)
            .map(|j| format!("[{}, {}, {}]", j, j * 2, u8::from(j != 3)))
            .collect();
        let p = write(
            &dir,
            "a.json",
            &format!(
                r#"{{"joint_names": ["right_ankle", "right_knee", "right_hip", "left_hip",
                "left_knee", "left_ankle", "right_wrist", "right_elbow", "right_shoulder",
                "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top"],
                "images": [{{"file_name": "im1.jpg", "joints": [{}]}}]}}"#,
                joints.join(",")
            ),
        );
        let d = read(&p).unwrap();
        assert_eq!(d.format, Format::Lsp);
        assert_eq!(d.joints.id, "lsp14");
        assert_eq!(d.images[0].file_name, "im1.jpg");
        let person = &d.images[0].people[0];
        assert_eq!(person.annotated()[2], Some((2.0, 4.0)));
        assert_eq!(person.annotated()[3], None);
        assert_eq!(person.num_keypoints, 13);
    }

    #[test]
    fn mpii_groups_people_and_shifts_to_zero_based() {
        let dir = tempfile::tempdir().unwrap();
        let joints: Vec<String> = (0..16).map(|j| format!("[{}, 11]", j + 1)).collect();
        let mut vis = vec!["1"; 16];
        vis[6] = "0";
        let entry = |img: &str, extra: &str| {
            format!(
                r#"{{"image": "{img}", "joints": [{}], "joints_vis": [{}], "center": [5, 5], "scale": 1.0{extra}}}"#,
                joints.join(","),
                vis.join(",")
            )
        };
        let p = write(
            &dir,
            "mpii.json",
            &format!(
                "[{}, {}, {}]",
                entry("a.jpg", r#", "headbox": [10, 10, 40, 50]"#),
                entry("b.jpg", r#", "head_size": 12.5"#),
                entry("a.jpg", "")
            ),
        );
        let d = read(&p).unwrap();
        assert_eq!(d.format, Format::Mpii);
        assert_eq!(d.images.len(), 2);
        assert_eq!(d.images[0].people.len(), 2);
        let a = &d.images[0].people[0];
        assert_eq!(a.annotated()[0], Some((0.0, 10.0)));
        assert_eq!(a.annotated()[6], None);
        assert!((a.head_size.unwrap() - 30.0).abs() < 1e-12);
        assert_eq!(d.images[1].people[0].head_size, Some(12.5));
        assert_eq!(d.images[0].people[1].head_size, None);
    }

    #[test]
    fn coco_keeps_crowds_and_skips_other_categories() {
        let dir = tempfile::tempdir().unwrap();
        let kps = vec!["1, 2, 2"; 17].join(", ");
        let p = write(
            &dir,
            "coco.json",
            &format!(
                r#"{{"images": [{{"id": 7, "file_name": "x.jpg"}}],
                "categories": [{{"id": 1, "name": "person", "keypoints": ["nose", "left_eye",
                "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
                "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]}}],
                "annotations": [
                  {{"image_id": 7, "category_id": 1, "keypoints": [{kps}], "num_keypoints": 17,
                    "bbox": [0, 0, 10, 20], "area": 150.5, "iscrowd": 0}},
                  {{"image_id": 7, "category_id": 1, "keypoints": [{kps}], "num_keypoints": 0,
                    "bbox": [0, 0, 10, 20], "area": 99, "iscrowd": 1}},
                  {{"image_id": 7, "category_id": 2, "keypoints": []}}]}}"#
            ),
        );
        let d = read(&p).unwrap();
        assert_eq!(d.format, Format::Coco);
        assert_eq!(d.joints.id, "coco17");
        assert_eq!(d.images[0].id, 7);
        assert_eq!(d.images[0].people.len(), 2);
        let a = &d.images[0].people[0];
        assert_eq!(a.bbox, Some([0.0, 0.0, 10.0, 20.0]));
        assert_eq!(a.area, Some(150.5));
        assert!(!a.iscrowd);
        assert!(d.images[0].people[1].iscrowd);
        assert_eq!(d.images[0].people[1].num_keypoints, 0);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str, &str); 8] = [
            ("bad.json", "{not json", "not valid JSON"),
            ("fmt.json", "42", "unknown format"),
            (
                "noimg.json",
                r#"{"images": 3}"#,
                "'images': expected a list",
            ),
            (
                "lsp.json",
                r#"{"images": [{"file_name": "a.jpg", "joints": [[1, 2, 1]]}]}"#,
                "'images[0].joints': 1 joints, expected 14",
            ),
            (
                "lspnum.json",
                &format!(
                    r#"{{"images": [{{"file_name": "a.jpg", "joints": [[1, "x", 1]{}]}}]}}"#,
                    ", [1, 2, 1]".repeat(13)
                ),
                "'images[0].joints[0][1]': expected a number, found a string",
            ),
            (
                "names.json",
                r#"{"joint_names": ["a"], "images": []}"#,
                "'joint_names': joint names [a] are not a known joint set",
            ),
            ("mpii.json", r#"[{"joints": []}]"#, "'[0].image': missing"),
            (
                "coco.json",
                r#"{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1,
                "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear",
                "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
                "left_ankle", "right_ankle"]}],
                "annotations": [{"image_id": 2, "keypoints": []}]}"#,
                "'annotations[0].image_id': image id 2 is not in 'images'",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(&dir, name, text);
            let e = read(&p).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = read(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("missing.json"), "{e}");
    }
}
