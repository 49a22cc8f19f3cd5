//! Associative-embedding grouping (Newell et al. 2017) exactly as HigherHRNet's
//! `HeatmapParser` (`lib/core/group.py`) does it at test time.
//!
//! Inputs: heatmaps `[K, H, W]` and tag maps — one `[K, H, W]` [`Maps`] per tag dimension
//! `L` (1 for a plain forward pass; flip testing and multi-scale testing stack one dimension
//! per pass, as the official `torch.cat(tags_list, dim=4)`). A tag `Maps` with a single
//! channel is shared by all joints (`TAG_PER_JOINT: False`). [`split_tag_dims`] splits the
//! `K·L`-channel, dimension-major layout the models produce.
//!
//! The pipeline ([`parse`] = [`TopK::from_maps`] + [`group`]):
//!
//! 1. **NMS** (`HeatmapParser.nms`): a max-pool with kernel `k`, stride 1 and padding `p`
//!    (`k = 2p + 1`); a heatmap value survives where it equals its window's maximum, every
//!    other value becomes 0.
//! 2. **Top-k** (`HeatmapParser.top_k`): per joint, the `max_num_people` largest surviving
//!    values (ties: the lower flat index first), with the tag vector at each.
//! 3. **Matching** (`match_by_tag`): joints in the official order
//!    [`COCO17_JOINT_ORDER`] (head, shoulders, hips, then elbows, wrists, knees, ankles).
//!    Candidates above `detection_threshold` of the first joint with any candidate seed
//!    people. Each later joint's candidates are matched to the people seen so far (only the
//!    first `max_num_people` in creation order) by the Hungarian algorithm
//!    ([`super::munkres`]) on the cost `round(‖tag − mean tag of person‖₂)·100 − value`
//!    (`round` half to even, as `np.round`; without `use_detection_val` the plain distance),
//!    with `1e10` columns appended when there are more candidates than people. A matched
//!    pair is accepted when the unrounded distance is `< tag_threshold`; every other
//!    candidate starts a new person. A person's tag is the mean of its joints' tags.
//! 4. **Adjust** (`HeatmapParser.adjust`): each grouped joint at pixel `(col, row)` moves a
//!    quarter pixel towards its larger horizontal and vertical neighbour (the smaller one,
//!    i.e. −¼, on ties; neighbours clamped at the border) and by +½:
//!    `x = col ± 0.25 + 0.5`, `y = row ± 0.25 + 0.5`. (The official code unpacks `(x, y)`
//!    into variables named `y, x`, so its "x" is the row; the effect is the above.)
//! 5. **Score**: the mean of the `K` joint values (0 for missing joints), taken *before*
//!    refinement.
//! 6. **Refine** (`HeatmapParser.refine`): for each person, the mean tag of its detected
//!    joints (value > 0); every joint channel's maximum of `heat − round(‖tag − mean‖₂)`
//!    (first maximum in row-major order), shifted by +½ and the quarter offset, fills that
//!    joint if the person lacks it and the heat there is > 0.
//!
//! **Coordinates.** [`AeKeypoint::x`]/[`AeKeypoint::y`] are the official ones: heatmap pixel
//! indices plus ½ (plus the quarter offset) after adjust or refine — the official code
//! treats pixel `i` as covering `[i, i + 1)`, so a peak at column 3 becomes 3.25 or 3.75,
//! and the official `get_final_preds` maps exactly these through the inverse input affine.
//! Without adjust, grouped joints keep their integer pixel index (no +½; refined ones still
//! get it). [`AeKeypoint::pixel_centre`] gives this crate's convention (integers are pixel
//! centres, see [`super::maps`]): index plus quarter offset only. [`AeCoords`] picks one
//! when converting to [`Person`].
//!
//! Quirks kept for parity: people are keyed by the first tag component, so a new person
//! whose first tag component equals an existing person's *exactly* is merged into that
//! person (overwriting the joint, resetting its tag list), as the official dictionary does;
//! refinement may take a joint another person already has.
//!
//! Arithmetic follows the official dtypes: tags and means in `f32` (means accumulated in
//! `f64`, so the last bit may differ from numpy's `float32` summation), distances and costs
//! in `f64`, refinement distances in `f32`.

use serde::{Deserialize, Serialize};

use super::maps::Maps;
use super::munkres::{self, MunkresError};
use super::person::{Keypoint, Person};

/// The official COCO joint order of `match_by_tag` (`Params.joint_order`, 1-based
/// `[1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9, 10, 11, 14, 15, 16, 17]`): nose, eyes, ears,
/// shoulders, hips, elbows, wrists, knees, ankles.
pub const COCO17_JOINT_ORDER: [usize; 17] =
    [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16];

/// Grouping parameters. Defaults are those of the official COCO test configuration
/// `experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml` over `lib/config/default.py`:
/// the yaml sets `DETECTION_THRESHOLD: 0.1`, `NMS_KERNEL: 5`, `NMS_PADDING: 2` and
/// `MAX_NUM_PEOPLE: 30`; the rest are the defaults (`TAG_THRESHOLD 1.0`,
/// `USE_DETECTION_VAL True`, `IGNORE_TOO_MUCH False`, `ADJUST True`, `REFINE True`).
/// `default.py` alone would give detection threshold 0.2 and NMS kernel 3, padding 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AeParams {
    /// Candidates need a (NMS'd) heatmap value strictly above this.
    pub detection_threshold: f64,
    /// A match is accepted when the tag distance is strictly below this.
    pub tag_threshold: f64,
    /// Top-k per joint, and how many people a joint is matched against.
    pub max_num_people: usize,
    /// Max-pool kernel of the NMS (odd).
    pub nms_kernel: usize,
    /// Max-pool padding of the NMS; must be `(nms_kernel − 1) / 2`.
    pub nms_padding: usize,
    /// Cost `round(distance)·100 − value` instead of the plain distance.
    pub use_detection_val: bool,
    /// Skip a joint entirely once `max_num_people` people exist.
    pub ignore_too_much: bool,
    /// Quarter-offset refinement (and the +½) of grouped joints.
    pub adjust: bool,
    /// Fill missing joints from each person's mean tag.
    pub refine: bool,
    /// Order in which joints are matched (0-based joint indices, distinct; joints not
    /// listed are never grouped). `None`: [`COCO17_JOINT_ORDER`] for 17 joints, `0..K`
    /// otherwise.
    pub joint_order: Option<Vec<usize>>,
}

impl Default for AeParams {
    fn default() -> Self {
        AeParams {
            detection_threshold: 0.1,
            tag_threshold: 1.0,
            max_num_people: 30,
            nms_kernel: 5,
            nms_padding: 2,
            use_detection_val: true,
            ignore_too_much: false,
            adjust: true,
            refine: true,
            joint_order: None,
        }
    }
}

impl AeParams {
    /// The joint order used for `joints` joints (see [`AeParams::joint_order`]).
    pub fn order_for(&self, joints: usize) -> Vec<usize> {
        match &self.joint_order {
            Some(order) => order.clone(),
            None if joints == COCO17_JOINT_ORDER.len() => COCO17_JOINT_ORDER.to_vec(),
            None => (0..joints).collect(),
        }
    }

    fn validate(&self, joints: usize) -> Result<(), AeError> {
        let bad = |msg: String| Err(AeError::InvalidParams(msg));
        if self.nms_kernel == 0 || self.nms_kernel != 2 * self.nms_padding + 1 {
            return bad(format!(
                "NMS kernel {} with padding {}: need an odd kernel = 2·padding + 1",
                self.nms_kernel, self.nms_padding
            ));
        }
        if self.max_num_people == 0 {
            return bad("max_num_people must be at least 1".into());
        }
        if self.detection_threshold.is_nan() || self.tag_threshold.is_nan() {
            return bad("thresholds must not be NaN".into());
        }
        if let Some(order) = &self.joint_order {
            let mut seen = vec![false; joints];
            for &j in order {
                match seen.get_mut(j) {
                    Some(s) if !*s => *s = true,
                    Some(_) => return bad(format!("joint {j} appears twice in joint_order")),
                    None => return bad(format!("joint_order names joint {j}, maps have {joints}")),
                }
            }
        }
        Ok(())
    }
}

/// Why decoding could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AeError {
    #[error("heatmaps are empty (shape {shape:?})")]
    EmptyMaps { shape: [usize; 3] },
    #[error("no tag maps given")]
    NoTags,
    #[error("tag maps {index} have shape {got:?}, expected [{joints} or 1, {height}, {width}]")]
    TagShape {
        index: usize,
        got: [usize; 3],
        joints: usize,
        height: usize,
        width: usize,
    },
    #[error("tag maps have {channels} channels, not a multiple of {joints} joints")]
    TagChannels { channels: usize, joints: usize },
    #[error("{what} has a non-finite value ({value}) in channel {channel} at x {x}, y {y}")]
    NonFinite {
        what: &'static str,
        channel: usize,
        x: usize,
        y: usize,
        value: f32,
    },
    #[error("invalid grouping parameters: {0}")]
    InvalidParams(String),
    #[error("top-k was computed for other maps or parameters ({0}); recompute it")]
    StaleTopK(String),
    #[error("tag assignment failed: {0}")]
    Assignment(#[from] MunkresError),
}

/// Splits `K·L` tag channels stored dimension-major (channel `l·K + k` is dimension `l` of
/// joint `k`, as the models store flip / multi-scale tags) into `L` maps of `[K, H, W]`.
pub fn split_tag_dims(tags: &Maps, joints: usize) -> Result<Vec<Maps>, AeError> {
    let [c, h, w] = tags.shape();
    if joints == 0 || c % joints != 0 || c == 0 {
        return Err(AeError::TagChannels {
            channels: c,
            joints,
        });
    }
    let n = joints * h * w;
    tags.as_slice()
        .chunks_exact(n.max(1))
        .map(|chunk| {
            Maps::new(chunk.to_vec(), joints, h, w).map_err(|_| AeError::TagChannels {
                channels: c,
                joints,
            })
        })
        .collect()
}

/// One top-k entry: a heatmap pixel that survived NMS (or a suppressed one, value 0, when a
/// joint has fewer peaks than `k`).
#[derive(Clone, Debug, PartialEq)]
pub struct TopPeak {
    /// Column (pixel index).
    pub x: usize,
    /// Row (pixel index).
    pub y: usize,
    /// NMS'd heatmap value.
    pub value: f32,
    /// The tag vector there, one entry per tag dimension.
    pub tag: Vec<f32>,
}

/// The NMS + top-k stage, kept so the grouping can be rerun (new thresholds, adjust /
/// refine switches) without redoing it.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// Per joint, `min(k, H·W)` peaks, largest value first (ties: lower flat index first).
    pub peaks: Vec<Vec<TopPeak>>,
    /// `[K, H, W]` of the heatmaps.
    pub shape: [usize; 3],
    /// Tag dimensions `L`.
    pub tag_dims: usize,
    /// The `k` of the top-k (`max_num_people`).
    pub k: usize,
    /// NMS kernel and padding used.
    pub nms: (usize, usize),
}

impl TopK {
    /// NMS and top-k of `heatmaps` with `params.nms_kernel`/`nms_padding` and
    /// `k = params.max_num_people`, checking shapes and finiteness of all inputs.
    pub fn from_maps(heatmaps: &Maps, tags: &[Maps], params: &AeParams) -> Result<TopK, AeError> {
        check_inputs(heatmaps, tags)?;
        check_finite("heatmaps", heatmaps)?;
        for t in tags {
            check_finite("tag maps", t)?;
        }
        params.validate(heatmaps.channels())?;
        let [kj, h, w] = heatmaps.shape();
        let k = params.max_num_people.min(h * w);
        let mut peaks = Vec::with_capacity(kj);
        for j in 0..kj {
            let Some(ch) = heatmaps.channel(j) else {
                continue;
            };
            let nms = max_pool_nms(ch, w, h, params.nms_padding);
            let order = top_k(&nms, k);
            peaks.push(
                order
                    .into_iter()
                    .map(|(value, i)| {
                        let (x, y) = (i % w, i / w);
                        TopPeak {
                            x,
                            y,
                            value,
                            tag: tag_at(tags, j, y, x),
                        }
                    })
                    .collect(),
            );
        }
        Ok(TopK {
            peaks,
            shape: heatmaps.shape(),
            tag_dims: tags.len(),
            k: params.max_num_people,
            nms: (params.nms_kernel, params.nms_padding),
        })
    }

    /// Whether this top-k was computed with `params`' NMS and `max_num_people`.
    pub fn matches(&self, params: &AeParams) -> bool {
        self.k == params.max_num_people && self.nms == (params.nms_kernel, params.nms_padding)
    }
}

/// A grouped (or refined) joint of one person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AeKeypoint {
    /// Official x: `column (+ quarter offset + ½ after adjust / refine)`; see the module
    /// docs.
    pub x: f32,
    /// Official y: `row (+ quarter offset + ½ after adjust / refine)`.
    pub y: f32,
    /// Heatmap pixel column of the peak.
    pub column: usize,
    /// Heatmap pixel row of the peak.
    pub row: usize,
    /// Quarter offset applied, `(±0.25, ±0.25)`, or zero without adjust.
    pub offset: (f32, f32),
    /// Heatmap value at the peak.
    pub value: f32,
    /// Tag vector at the peak.
    pub tag: Vec<f32>,
    /// Filled by refinement rather than grouped.
    pub refined: bool,
    /// Index into [`Grouping::candidates`] for grouped joints.
    pub candidate: Option<usize>,
}

impl AeKeypoint {
    /// Position in this crate's convention (integers are pixel centres): pixel index plus
    /// the quarter offset, without the official +½.
    pub fn pixel_centre(&self) -> (f32, f32) {
        (
            self.column as f32 + self.offset.0,
            self.row as f32 + self.offset.1,
        )
    }
}

/// One grouped person: a slot per joint (`K`), and the official score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AePerson {
    pub keypoints: Vec<Option<AeKeypoint>>,
    /// Mean of the `K` joint values before refinement (missing joints count as 0).
    pub score: f32,
}

/// Which coordinates [`AePerson::to_person`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeCoords {
    /// HigherHRNet's: [`AeKeypoint::x`]/[`AeKeypoint::y`] (with the +½). Use these with the
    /// official `get_affine_transform(..., inv=1)` to reproduce its final predictions.
    Official,
    /// This crate's pixel-centre convention: [`AeKeypoint::pixel_centre`].
    PixelCentre,
}

impl AePerson {
    /// The person as the crate's [`Person`] (keypoint score = heatmap value), in heatmap
    /// pixel coordinates of the chosen convention.
    pub fn to_person(&self, coords: AeCoords) -> Person {
        Person {
            score: self.score,
            keypoints: self
                .keypoints
                .iter()
                .map(|k| {
                    k.as_ref().map(|k| {
                        let (x, y) = match coords {
                            AeCoords::Official => (k.x, k.y),
                            AeCoords::PixelCentre => k.pixel_centre(),
                        };
                        Keypoint {
                            x,
                            y,
                            score: k.value,
                        }
                    })
                })
                .collect(),
        }
    }
}

/// A top-k peak above the detection threshold, and the person it ended up in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub joint: usize,
    /// Rank in the joint's top-k (0 = largest value).
    pub rank: usize,
    /// Pixel column.
    pub x: usize,
    /// Pixel row.
    pub y: usize,
    pub value: f32,
    pub tag: Vec<f32>,
    /// Index into [`Grouping::people`]; `None` when the joint was skipped
    /// (`ignore_too_much`, or not in the joint order) or the candidate was overwritten.
    pub person: Option<usize>,
}

/// The result of [`parse`] / [`group`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grouping {
    /// People in creation order (the official output order).
    pub people: Vec<AePerson>,
    /// Every top-k peak above the detection threshold, by joint, then rank.
    pub candidates: Vec<Candidate>,
}

impl Grouping {
    /// All people as [`Person`]s.
    pub fn to_people(&self, coords: AeCoords) -> Vec<Person> {
        self.people.iter().map(|p| p.to_person(coords)).collect()
    }
}

/// NMS, top-k, matching, adjust and refine (`HeatmapParser.parse`), see the module docs.
///
/// `heatmaps` is `[K, H, W]`; `tags` holds one `[K, H, W]` (or `[1, H, W]`, shared) map
/// per tag dimension, all of the heatmaps' size.
pub fn parse(heatmaps: &Maps, tags: &[Maps], params: &AeParams) -> Result<Grouping, AeError> {
    let topk = TopK::from_maps(heatmaps, tags, params)?;
    group(&topk, heatmaps, tags, params)
}

/// Matching, adjust and refine on a precomputed [`TopK`] of the same `heatmaps` / `tags`
/// (its NMS and `max_num_people` must equal `params`'; thresholds and switches may
/// differ). Checks shapes, not finiteness (done by [`TopK::from_maps`]).
pub fn group(
    topk: &TopK,
    heatmaps: &Maps,
    tags: &[Maps],
    params: &AeParams,
) -> Result<Grouping, AeError> {
    check_inputs(heatmaps, tags)?;
    params.validate(heatmaps.channels())?;
    if topk.shape != heatmaps.shape()
        || topk.tag_dims != tags.len()
        || topk.peaks.len() != heatmaps.channels()
    {
        return Err(AeError::StaleTopK(format!(
            "top-k of {:?} with {} tag dims, maps {:?} with {}",
            topk.shape,
            topk.tag_dims,
            heatmaps.shape(),
            tags.len()
        )));
    }
    if !topk.matches(params) {
        return Err(AeError::StaleTopK(format!(
            "k {} NMS {:?}, parameters ask for k {} NMS {:?}",
            topk.k,
            topk.nms,
            params.max_num_people,
            (params.nms_kernel, params.nms_padding)
        )));
    }
    let joints = heatmaps.channels();
    let mut candidates: Vec<Candidate> = Vec::new();
    // Candidate indices per joint, in top-k order.
    let mut by_joint: Vec<Vec<usize>> = vec![Vec::new(); joints];
    for (j, peaks) in topk.peaks.iter().enumerate() {
        for (rank, p) in peaks.iter().enumerate() {
            if f64::from(p.value) > params.detection_threshold {
                by_joint[j].push(candidates.len());
                candidates.push(Candidate {
                    joint: j,
                    rank,
                    x: p.x,
                    y: p.y,
                    value: p.value,
                    tag: p.tag.clone(),
                    person: None,
                });
            }
        }
    }
    let groups = match_by_tag(&candidates, &by_joint, joints, params)?;
    for (pi, g) in groups.iter().enumerate() {
        for &c in g.slots.iter().flatten() {
            if let Some(cand) = candidates.get_mut(c) {
                cand.person = Some(pi);
            }
        }
    }
    let (w, h) = (heatmaps.width(), heatmaps.height());
    let mut people = Vec::with_capacity(groups.len());
    for g in &groups {
        let mut keypoints: Vec<Option<AeKeypoint>> = g
            .slots
            .iter()
            .map(|slot| {
                let c = candidates.get((*slot)?)?;
                Some(AeKeypoint {
                    x: c.x as f32,
                    y: c.y as f32,
                    column: c.x,
                    row: c.y,
                    offset: (0.0, 0.0),
                    value: c.value,
                    tag: c.tag.clone(),
                    refined: false,
                    candidate: *slot,
                })
            })
            .collect();
        if params.adjust {
            for (j, kp) in keypoints.iter_mut().enumerate() {
                let (Some(kp), Some(ch)) = (kp.as_mut(), heatmaps.channel(j)) else {
                    continue;
                };
                if kp.value > 0.0 {
                    kp.offset = quarter_offset(ch, w, h, kp.column, kp.row);
                    kp.x = kp.column as f32 + kp.offset.0 + 0.5;
                    kp.y = kp.row as f32 + kp.offset.1 + 0.5;
                }
            }
        }
        let total: f64 = keypoints.iter().flatten().map(|k| f64::from(k.value)).sum();
        let score = (total / joints as f64) as f32;
        if params.refine {
            refine(&mut keypoints, heatmaps, tags);
        }
        people.push(AePerson { keypoints, score });
    }
    Ok(Grouping { people, candidates })
}

/// A person under construction: official dictionary key (first tag component), a
/// candidate per joint, and the tags of its joints.
struct Group {
    key: f32,
    slots: Vec<Option<usize>>,
    tags: Vec<usize>,
}

/// `match_by_tag`: the people, in creation order.
fn match_by_tag(
    cands: &[Candidate],
    by_joint: &[Vec<usize>],
    joints: usize,
    params: &AeParams,
) -> Result<Vec<Group>, AeError> {
    let mut groups: Vec<Group> = Vec::new();
    // `joint_dict.setdefault(key, …)[idx] = joint; tag_dict[key] = [tag]`.
    let start_person = |groups: &mut Vec<Group>, joint: usize, c: usize| {
        let key = cands
            .get(c)
            .and_then(|c| c.tag.first().copied())
            .unwrap_or(0.0);
        match groups.iter_mut().find(|g| g.key == key) {
            Some(g) => {
                g.slots[joint] = Some(c);
                g.tags = vec![c];
            }
            None => {
                let mut slots = vec![None; joints];
                slots[joint] = Some(c);
                groups.push(Group {
                    key,
                    slots,
                    tags: vec![c],
                });
            }
        }
    };
    for (i, &joint) in params.order_for(joints).iter().enumerate() {
        let Some(rows) = by_joint.get(joint).filter(|r| !r.is_empty()) else {
            continue;
        };
        if i == 0 || groups.is_empty() {
            for &c in rows {
                start_person(&mut groups, joint, c);
            }
            continue;
        }
        let num_grouped = groups.len().min(params.max_num_people);
        if params.ignore_too_much && num_grouped == params.max_num_people {
            continue;
        }
        let means: Vec<Vec<f32>> = groups[..num_grouped]
            .iter()
            .map(|g| {
                mean_tag(
                    g.tags
                        .iter()
                        .filter_map(|&c| cands.get(c))
                        .map(|c| c.tag.as_slice()),
                )
            })
            .collect();
        let num_added = rows.len();
        let width = num_grouped.max(num_added);
        let mut cost = vec![1e10; num_added * width];
        let mut dist = vec![0.0f64; num_added * num_grouped];
        for (r, &c) in rows.iter().enumerate() {
            let cand = &cands[c];
            for (g, mean) in means.iter().enumerate() {
                let d = cand
                    .tag
                    .iter()
                    .zip(mean)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                dist[r * num_grouped + g] = d;
                cost[r * width + g] = if params.use_detection_val {
                    d.round_ties_even() * 100.0 - f64::from(cand.value)
                } else {
                    d
                };
            }
        }
        for (r, g) in munkres::assign(&cost, num_added, width)? {
            let c = rows[r];
            if g < num_grouped && dist[r * num_grouped + g] < params.tag_threshold {
                let group = &mut groups[g];
                group.slots[joint] = Some(c);
                group.tags.push(c);
            } else {
                start_person(&mut groups, joint, c);
            }
        }
    }
    Ok(groups)
}

/// Element-wise mean of tag vectors (`np.mean(tags, axis=0)`, `f32` result).
fn mean_tag<'a>(tags: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f64> = Vec::new();
    let mut n = 0usize;
    for t in tags {
        if sum.len() < t.len() {
            sum.resize(t.len(), 0.0);
        }
        sum.iter_mut().zip(t).for_each(|(s, &v)| *s += f64::from(v));
        n += 1;
    }
    sum.into_iter()
        .map(|s| (s / n.max(1) as f64) as f32)
        .collect()
}

/// The official quarter offset at `(x, y)` of an `[h, w]` map: +¼ towards the strictly
/// larger neighbour along each axis, −¼ otherwise; neighbours clamp at the border.
fn quarter_offset(map: &[f32], w: usize, h: usize, x: usize, y: usize) -> (f32, f32) {
    let at = |xx: usize, yy: usize| map.get(yy * w + xx).copied().unwrap_or(0.0);
    let step = |hi: f32, lo: f32| if hi > lo { 0.25 } else { -0.25 };
    (
        step(at((x + 1).min(w - 1), y), at(x.saturating_sub(1), y)),
        step(at(x, (y + 1).min(h - 1)), at(x, y.saturating_sub(1))),
    )
}

/// `HeatmapParser.refine` for one person (see the module docs).
fn refine(keypoints: &mut [Option<AeKeypoint>], heatmaps: &Maps, tags: &[Maps]) {
    let (w, h) = (heatmaps.width(), heatmaps.height());
    let detected: Vec<Vec<f32>> = keypoints
        .iter()
        .enumerate()
        .filter_map(|(j, k)| {
            let k = k.as_ref().filter(|k| k.value > 0.0)?;
            // The official code truncates the stored float position back to the pixel.
            Some(tag_at(tags, j, k.row, k.column))
        })
        .collect();
    if detected.is_empty() {
        return;
    }
    let mean = mean_tag(detected.iter().map(|t| t.as_slice()));
    // Squared tag distance to the mean per pixel, summed over the dimensions in order.
    let mut d2 = vec![0.0f32; w * h];
    for (j, slot) in keypoints.iter_mut().enumerate() {
        // The official code computes every joint but only uses the result for missing ones.
        if slot.as_ref().is_some_and(|k| k.value != 0.0) {
            continue;
        }
        let Some(heat) = heatmaps.channel(j) else {
            continue;
        };
        d2.iter_mut().for_each(|v| *v = 0.0);
        for (t, &m) in tags.iter().zip(&mean) {
            let Some(ch) = t.channel(tag_channel(t, j)) else {
                continue;
            };
            for (acc, &v) in d2.iter_mut().zip(ch) {
                let d = v - m;
                *acc += d * d;
            }
        }
        // First maximum of heat − round(‖tag − mean‖), as np.argmax.
        let mut best: Option<(usize, f32)> = None;
        for (i, (&v, &dd)) in heat.iter().zip(&d2).enumerate() {
            let s = v - dd.sqrt().round_ties_even();
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        let Some((i, _)) = best else {
            continue;
        };
        let (x, y) = (i % w, i / w);
        let value = heat[i];
        if value > 0.0 {
            let offset = quarter_offset(heat, w, h, x, y);
            *slot = Some(AeKeypoint {
                x: x as f32 + 0.5 + offset.0,
                y: y as f32 + 0.5 + offset.1,
                column: x,
                row: y,
                offset,
                value,
                tag: tag_at(tags, j, y, x),
                refined: true,
                candidate: None,
            });
        }
    }
}

/// The channel of tag map `t` that holds joint `j` (a single-channel map is shared).
fn tag_channel(t: &Maps, j: usize) -> usize {
    if t.channels() == 1 {
        0
    } else {
        j
    }
}

/// The tag vector of joint `j` at `(x, y)`.
fn tag_at(tags: &[Maps], j: usize, y: usize, x: usize) -> Vec<f32> {
    tags.iter()
        .map(|t| t.get(tag_channel(t, j), y, x).unwrap_or(0.0))
        .collect()
}

/// Max-pool NMS of one `[h, w]` map with a `(2p+1)²` window (padding counts as −∞):
/// values equal to their window maximum are kept, all others become 0. Separable: a
/// horizontal then a vertical running maximum, each as whole-row passes.
fn max_pool_nms(map: &[f32], w: usize, h: usize, p: usize) -> Vec<f32> {
    let max_into = |acc: &mut [f32], src: &[f32]| {
        for (a, &b) in acc.iter_mut().zip(src) {
            if b > *a {
                *a = b;
            }
        }
    };
    let mut horiz = map[..w * h].to_vec();
    for (dst, row) in horiz.chunks_exact_mut(w).zip(map.chunks_exact(w)) {
        for d in 1..=p.min(w - 1) {
            max_into(&mut dst[..w - d], &row[d..]);
            max_into(&mut dst[d..], &row[..w - d]);
        }
    }
    let mut out = vec![0.0; w * h];
    let mut m = vec![0.0f32; w];
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(p), (y + p).min(h - 1));
        m.copy_from_slice(&horiz[lo * w..(lo + 1) * w]);
        for yy in lo + 1..=hi {
            max_into(&mut m, &horiz[yy * w..(yy + 1) * w]);
        }
        let src = &map[y * w..(y + 1) * w];
        for ((o, &v), &mx) in out[y * w..(y + 1) * w].iter_mut().zip(src).zip(&m) {
            *o = if v == mx { v } else { 0.0 };
        }
    }
    out
}

/// The `k` largest values of an NMS'd map as `(value, flat index)`, largest first, ties
/// by lower index (positive survivors, then zeros in index order, then negative
/// survivors) — the whole map's top-k without sorting all of it.
fn top_k(nms: &[f32], k: usize) -> Vec<(f32, usize)> {
    let cmp = |a: &(f32, usize), b: &(f32, usize)| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    };
    let mut best: Vec<(f32, usize)> = nms.iter().copied().zip(0..).filter(|p| p.0 > 0.0).collect();
    if best.len() > k {
        best.select_nth_unstable_by(k, cmp);
        best.truncate(k);
    }
    best.sort_unstable_by(cmp);
    if best.len() < k {
        let zeros = nms.iter().copied().zip(0..).filter(|p| p.0 == 0.0);
        best.extend(zeros.take(k - best.len()));
    }
    if best.len() < k {
        let mut neg: Vec<(f32, usize)> =
            nms.iter().copied().zip(0..).filter(|p| p.0 < 0.0).collect();
        neg.sort_unstable_by(cmp);
        best.extend(neg.into_iter().take(k - best.len()));
    }
    best
}

fn check_inputs(heatmaps: &Maps, tags: &[Maps]) -> Result<(), AeError> {
    let [k, h, w] = heatmaps.shape();
    if k == 0 || h == 0 || w == 0 {
        return Err(AeError::EmptyMaps {
            shape: heatmaps.shape(),
        });
    }
    if tags.is_empty() {
        return Err(AeError::NoTags);
    }
    for (index, t) in tags.iter().enumerate() {
        let [tk, th, tw] = t.shape();
        if (tk != k && tk != 1) || th != h || tw != w {
            return Err(AeError::TagShape {
                index,
                got: t.shape(),
                joints: k,
                height: h,
                width: w,
            });
        }
    }
    Ok(())
}

fn check_finite(what: &'static str, maps: &Maps) -> Result<(), AeError> {
    let [_, h, w] = maps.shape();
    match maps.as_slice().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(AeError::NonFinite {
            what,
            channel: i / (h * w).max(1),
            x: i % w.max(1),
            y: (i / w.max(1)) % h.max(1),
            value: maps.as_slice()[i],
        }),
    }
}

#[cfg(test)]
mod tests;
