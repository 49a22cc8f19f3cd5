//! COCO keypoint AP/AR from object keypoint similarity (OKS), computed as pycocotools'
//! `COCOeval(iouType='keypoints')` does (`evaluate`, `accumulate`, `summarize`), for one
//! category (person).
//!
//! - **OKS** between a detection and an annotation with `k1 > 0` labelled keypoints
//!   (`v > 0`): the mean over those keypoints of `exp(−d² / (2 · s · (2σ)²))`, with `d` the
//!   distance, `s` the annotation's `area` (+ machine epsilon) and `σ` the keypoint's sigma
//!   (COCO's official sigmas: [`COCO_SIGMAS`] / 10). With `k1 = 0`, `d` is each detected
//!   keypoint's distance outside the annotation's box enlarged to `[x − w, x + 2w] ×
//!   [y − h, y + 2h]`, averaged over all keypoints.
//! - **Ignored annotations**: `iscrowd`, or `num_keypoints == 0`, or an area outside the
//!   evaluated range (all `[0, 1e10]`, medium `[32², 96²]`, large `[96², 1e10]`, bounds
//!   inclusive). A crowd annotation may absorb any number of detections.
//! - **Matching**, per image, threshold and area range: detections by descending score
//!   (stable), at most 20 per image; each takes the best-OKS annotation not yet taken
//!   (crowds excepted) with OKS ≥ the threshold, preferring non-ignored annotations.
//!   Detections matched to ignored annotations are ignored, and so are unmatched ones whose
//!   area lies outside the range.
//! - **Accumulation**: all images' detections by descending score (stable, images in
//!   ascending id order); precision made monotone from the right and sampled at the 101
//!   recall points 0:.01:1 (first detection reaching each recall; 0 past the last); recall =
//!   final TP / non-ignored annotations. AP = mean precision over 10 OKS thresholds
//!   .50:.05:.95 × 101 recall points; AR = mean final recall over the thresholds; an area
//!   range without non-ignored annotations gives −1.
//!
//! Floating-point sums follow numpy's pairwise summation so that results match to the last
//! bits in practice (numpy's `exp` may still differ from Rust's in the last ulp).
//!
//! Detections: a pycocotools result file has all K keypoints; `loadRes` sets a detection's
//! area to its keypoints' box `(max x − min x) · (max y − min y)` over all of them.
//! `posescope eval` scores its predictions as the results file it writes ([`Detection::
//! from_triples`] on `0, 0, 0` for joints not predicted), so it equals pycocotools on that
//! file. [`Detection::new`] takes `None` for a missing keypoint: it adds 0 to the OKS sum
//! (as if infinitely far) and the area is that of the found keypoints' box.

use serde::Serialize;

/// COCO's per-keypoint OKS sigmas × 10, in COCO-17 order (pycocotools divides them by 10).
pub const COCO_SIGMAS: [f64; 17] = [
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89,
    0.89,
];

/// The sigmas as pycocotools uses them (`np.array([...]) / 10.0`).
pub fn coco_sigmas() -> Vec<f64> {
    COCO_SIGMAS.iter().map(|s| s / 10.0).collect()
}

/// Detections per image (`maxDets` of the keypoint evaluation).
pub const MAX_DETS: usize = 20;

/// The area ranges all, medium, large.
pub const AREA_RANGES: [(f64, f64); 3] = [
    (0.0, 1e5 * 1e5),
    (32.0 * 32.0, 96.0 * 96.0),
    (96.0 * 96.0, 1e5 * 1e5),
];

/// `np.linspace(start, stop, num)` as numpy computes it: `i · step + start`, the last value
/// exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = num.saturating_sub(1).max(1) as f64;
    let step = (stop - start) / div;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// The 10 OKS thresholds .50:.05:.95.
pub fn iou_thresholds() -> Vec<f64> {
    linspace(0.5, 0.95, 10)
}

/// The 101 recall points 0:.01:1.
pub fn recall_thresholds() -> Vec<f64> {
    linspace(0.0, 1.0, 101)
}

/// numpy's pairwise summation (`np.sum` / `np.add.reduce` on a contiguous float64 array).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[whole..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// An annotated person (one entry of a COCO `annotations` list).
#[derive(Clone, Debug, PartialEq)]
pub struct GtPerson {
    /// `(x, y, v)` per keypoint; `v > 0` means labelled.
    pub keypoints: Vec<(f64, f64, f64)>,
    /// `[x, y, w, h]`.
    pub bbox: [f64; 4],
    pub area: f64,
    pub iscrowd: bool,
    /// The file's `num_keypoints` (0 makes the annotation ignored).
    pub num_keypoints: u32,
}

/// A detected person.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Position per keypoint, `None` where the detector found none.
    pub keypoints: Vec<Option<(f64, f64)>>,
    pub score: f64,
    /// Area for the range filter (see [`Detection::new`]).
    pub area: f64,
}

impl Detection {
    /// A detection with its area from the box of its present keypoints (pycocotools'
    /// `loadRes` when all are present); 0 without keypoints.
    pub fn new(keypoints: Vec<Option<(f64, f64)>>, score: f64) -> Detection {
        let mut b: Option<[f64; 4]> = None;
        for &(x, y) in keypoints.iter().flatten() {
            b = Some(match b {
                None => [x, x, y, y],
                Some([x0, x1, y0, y1]) => [x0.min(x), x1.max(x), y0.min(y), y1.max(y)],
            });
        }
        let area = b.map_or(0.0, |[x0, x1, y0, y1]| (x1 - x0) * (y1 - y0));
        Detection {
            keypoints,
            score,
            area,
        }
    }

    /// A detection from a result file's flat `[x1, y1, c1, x2, …]` list (every keypoint
    /// present, as pycocotools reads it).
    pub fn from_triples(flat: &[f64], score: f64) -> Detection {
        Detection::new(
            flat.chunks_exact(3).map(|c| Some((c[0], c[1]))).collect(),
            score,
        )
    }
}

/// One image's annotations and detections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CocoImage {
    pub image_id: u64,
    pub gts: Vec<GtPerson>,
    pub dets: Vec<Detection>,
}

/// The ten numbers of `COCOeval.summarize()` for keypoints (`stats[0..10]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CocoStats {
    /// AP @ OKS .50:.05:.95, area all.
    pub ap: f64,
    pub ap50: f64,
    pub ap75: f64,
    pub ap_medium: f64,
    pub ap_large: f64,
    pub ar: f64,
    pub ar50: f64,
    pub ar75: f64,
    pub ar_medium: f64,
    pub ar_large: f64,
}

impl CocoStats {
    /// In `stats` order.
    pub fn to_array(&self) -> [f64; 10] {
        [
            self.ap,
            self.ap50,
            self.ap75,
            self.ap_medium,
            self.ap_large,
            self.ar,
            self.ar50,
            self.ar75,
            self.ar_medium,
            self.ar_large,
        ]
    }
}

/// OKS of detection `dt` against annotation `gt` (pycocotools `computeOks`).
pub fn oks(gt: &GtPerson, dt: &Detection, sigmas: &[f64]) -> f64 {
    let k = sigmas.len();
    let vars: Vec<f64> = sigmas.iter().map(|s| (s * 2.0) * (s * 2.0)).collect();
    let labelled = gt.keypoints.iter().filter(|g| g.2 > 0.0).count();
    let [bx, by, bw, bh] = gt.bbox;
    let (x0, x1, y0, y1) = (bx - bw, bx + bw * 2.0, by - bh, by + bh * 2.0);
    let denom_area = gt.area + f64::EPSILON;
    let mut terms = Vec::with_capacity(k);
    for (j, var) in vars.iter().enumerate() {
        let g = gt.keypoints.get(j).copied().unwrap_or((0.0, 0.0, 0.0));
        if labelled > 0 && g.2 <= 0.0 {
            continue;
        }
        let d = dt.keypoints.get(j).copied().flatten();
        let Some((xd, yd)) = d else {
            terms.push(0.0);
            continue;
        };
        let (dx, dy) = if labelled > 0 {
            (xd - g.0, yd - g.1)
        } else {
            (
                (x0 - xd).max(0.0) + (xd - x1).max(0.0),
                (y0 - yd).max(0.0) + (yd - y1).max(0.0),
            )
        };
        let e = (dx * dx + dy * dy) / var / denom_area / 2.0;
        terms.push((-e).exp());
    }
    if terms.is_empty() {
        return 0.0;
    }
    pairwise_sum(&terms) / terms.len() as f64
}

/// Order of detections by descending score, stable (numpy `argsort(-score, 'mergesort')`;
/// NaN scores last).
fn by_score(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a], scores[b]);
        match (sa.is_nan(), sb.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal),
        }
    });
    idx
}

/// One image's matching for one area range (pycocotools `evaluateImg`).
struct ImageEval {
    dt_scores: Vec<f64>,
    /// `[threshold][detection]`, detections by descending score.
    dt_matched: Vec<Vec<bool>>,
    dt_ignore: Vec<Vec<bool>>,
    gt_ignore: Vec<bool>,
}

fn evaluate_image(
    img: &CocoImage,
    dets: &[usize],
    ious: &[Vec<f64>],
    range: (f64, f64),
    thresholds: &[f64],
) -> Option<ImageEval> {
    if img.gts.is_empty() && dets.is_empty() {
        return None;
    }
    let ignore: Vec<bool> = img
        .gts
        .iter()
        .map(|g| g.iscrowd || g.num_keypoints == 0 || g.area < range.0 || g.area > range.1)
        .collect();
    // Annotations: not ignored first (stable).
    let mut gt_order: Vec<usize> = (0..img.gts.len()).collect();
    gt_order.sort_by_key(|&g| ignore[g]);
    let gt_ignore: Vec<bool> = gt_order.iter().map(|&g| ignore[g]).collect();
    let crowd: Vec<bool> = gt_order.iter().map(|&g| img.gts[g].iscrowd).collect();
    let t_count = thresholds.len();
    let mut dt_matched = vec![vec![false; dets.len()]; t_count];
    let mut dt_ignore = vec![vec![false; dets.len()]; t_count];
    if !img.gts.is_empty() && !dets.is_empty() {
        for (t, &thr) in thresholds.iter().enumerate() {
            let mut gt_taken = vec![false; gt_order.len()];
            for d in 0..dets.len() {
                let mut best = thr.min(1.0 - 1e-10);
                let mut m: Option<usize> = None;
                for (gi, &g) in gt_order.iter().enumerate() {
                    if gt_taken[gi] && !crowd[gi] {
                        continue;
                    }
                    if let Some(mi) = m {
                        if !gt_ignore[mi] && gt_ignore[gi] {
                            break;
                        }
                    }
                    let iou = ious[d][g];
                    if iou < best {
                        continue;
                    }
                    best = iou;
                    m = Some(gi);
                }
                if let Some(mi) = m {
                    dt_ignore[t][d] = gt_ignore[mi];
                    dt_matched[t][d] = true;
                    gt_taken[mi] = true;
                }
            }
        }
    }
    for (d, &di) in dets.iter().enumerate() {
        let a = img.dets[di].area;
        if a < range.0 || a > range.1 {
            for t in 0..t_count {
                if !dt_matched[t][d] {
                    dt_ignore[t][d] = true;
                }
            }
        }
    }
    Some(ImageEval {
        dt_scores: dets.iter().map(|&d| img.dets[d].score).collect(),
        dt_matched,
        dt_ignore,
        gt_ignore,
    })
}

/// One area range's accumulated curves.
struct Accumulated {
    /// Precision at the recall points, `[threshold][recall point]`.
    precision: Vec<Vec<f64>>,
    /// Final recall per threshold.
    recall: Vec<f64>,
}

/// The curves of one area range; `None` when there is nothing to evaluate (-1 in
/// pycocotools).
fn accumulate(evals: &[ImageEval], thresholds: &[f64], rec_thrs: &[f64]) -> Option<Accumulated> {
    if evals.is_empty() {
        return None;
    }
    let scores: Vec<f64> = evals.iter().flat_map(|e| e.dt_scores.clone()).collect();
    let order = by_score(&scores);
    let npig = evals
        .iter()
        .flat_map(|e| &e.gt_ignore)
        .filter(|&&i| !i)
        .count();
    if npig == 0 {
        return None;
    }
    let mut precision = Vec::with_capacity(thresholds.len());
    let mut recall = Vec::with_capacity(thresholds.len());
    for t in 0..thresholds.len() {
        let matched: Vec<bool> = evals.iter().flat_map(|e| e.dt_matched[t].clone()).collect();
        let ignored: Vec<bool> = evals.iter().flat_map(|e| e.dt_ignore[t].clone()).collect();
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let mut rc = Vec::with_capacity(order.len());
        let mut pr = Vec::with_capacity(order.len());
        for &i in &order {
            if !ignored[i] {
                if matched[i] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
            rc.push(tp / npig as f64);
            pr.push(tp / (fp + tp + f64::EPSILON));
        }
        recall.push(rc.last().copied().unwrap_or(0.0));
        for i in (1..pr.len()).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        let q: Vec<f64> = rec_thrs
            .iter()
            .map(|&r| {
                // searchsorted(rc, r, side='left'): the first index with rc >= r.
                let i = rc.partition_point(|&v| v < r);
                pr.get(i).copied().unwrap_or(0.0)
            })
            .collect();
        precision.push(q);
    }
    Some(Accumulated { precision, recall })
}

/// `np.mean(s[s > -1])`, or -1 when nothing is left.
fn mean_valid(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|&x| x > -1.0).collect();
    if v.is_empty() {
        -1.0
    } else {
        pairwise_sum(&v) / v.len() as f64
    }
}

/// COCO keypoint AP/AR over `images` with per-keypoint `sigmas` (see the module docs).
pub fn evaluate(images: &[CocoImage], sigmas: &[f64]) -> CocoStats {
    let thresholds = iou_thresholds();
    let rec_thrs = recall_thresholds();
    let mut sorted: Vec<&CocoImage> = images.iter().collect();
    sorted.sort_by_key(|i| i.image_id);
    // Per image: its top detections by score and their OKS against every annotation.
    let prepared: Vec<(Vec<usize>, Vec<Vec<f64>>)> = sorted
        .iter()
        .map(|img| {
            let scores: Vec<f64> = img.dets.iter().map(|d| d.score).collect();
            let mut dets = by_score(&scores);
            dets.truncate(MAX_DETS);
            let ious = dets
                .iter()
                .map(|&d| {
                    img.gts
                        .iter()
                        .map(|g| oks(g, &img.dets[d], sigmas))
                        .collect()
                })
                .collect();
            (dets, ious)
        })
        .collect();
    let per_range: Vec<Option<Accumulated>> = AREA_RANGES
        .iter()
        .map(|&range| {
            let evals: Vec<ImageEval> = sorted
                .iter()
                .zip(&prepared)
                .filter_map(|(img, (dets, ious))| {
                    evaluate_image(img, dets, ious, range, &thresholds)
                })
                .collect();
            accumulate(&evals, &thresholds, &rec_thrs)
        })
        .collect();
    let t50 = 0;
    let t75 = thresholds.iter().position(|&t| t == 0.75).unwrap_or(5);
    let ap = |a: usize, t: Option<usize>| -> f64 {
        match per_range.get(a).and_then(Option::as_ref) {
            None => -1.0,
            Some(Accumulated { precision, .. }) => {
                let v: Vec<f64> = match t {
                    Some(t) => precision.get(t).cloned().unwrap_or_default(),
                    None => precision.iter().flatten().copied().collect(),
                };
                mean_valid(&v)
            }
        }
    };
    let ar = |a: usize, t: Option<usize>| -> f64 {
        match per_range.get(a).and_then(Option::as_ref) {
            None => -1.0,
            Some(Accumulated { recall, .. }) => {
                let v: Vec<f64> = match t {
                    Some(t) => recall.get(t).copied().into_iter().collect(),
                    None => recall.clone(),
                };
                mean_valid(&v)
            }
        }
    };
    CocoStats {
        ap: ap(0, None),
        ap50: ap(0, Some(t50)),
        ap75: ap(0, Some(t75)),
        ap_medium: ap(1, None),
        ap_large: ap(2, None),
        ar: ar(0, None),
        ar50: ar(0, Some(t50)),
        ar75: ar(0, Some(t75)),
        ar_medium: ar(1, None),
        ar_large: ar(2, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn person(kps: &[(f64, f64, f64)], bbox: [f64; 4], area: f64) -> GtPerson {
        GtPerson {
            keypoints: kps.to_vec(),
            bbox,
            area,
            iscrowd: false,
            num_keypoints: kps.iter().filter(|k| k.2 > 0.0).count() as u32,
        }
    }

    #[test]
    fn thresholds_are_numpys() {
        let t = iou_thresholds();
        assert_eq!(t.len(), 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[9], 0.95);
        assert_eq!(t[5], 0.75);
        let r = recall_thresholds();
        assert_eq!(r.len(), 101);
        assert_eq!(r[100], 1.0);
        assert_eq!(r[1], 0.01);
    }

    #[test]
    fn pairwise_sum_matches_plain_sums_on_integers() {
        for n in [0usize, 1, 7, 8, 9, 17, 128, 129, 1010] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert_eq!(
                pairwise_sum(&v),
                (n * n.saturating_sub(1) / 2) as f64,
                "{n}"
            );
        }
    }

    #[test]
    fn oks_by_hand() {
        let sigmas = [0.1, 0.1];
        let gt = person(
            &[(0.0, 0.0, 2.0), (10.0, 0.0, 0.0)],
            [0.0, 0.0, 10.0, 10.0],
            100.0,
        );
        // One labelled keypoint at distance 2: exp(-4 / (0.04) / 100 / 2) = exp(-0.5).
        let dt = Detection::new(vec![Some((2.0, 0.0)), Some((50.0, 50.0))], 1.0);
        let want = (-4.0f64 / 0.04 / (100.0 + f64::EPSILON) / 2.0).exp();
        assert_eq!(oks(&gt, &dt, &sigmas), want);
        // A missing keypoint adds zero.
        let dt = Detection::new(vec![None, Some((1.0, 1.0))], 1.0);
        assert_eq!(oks(&gt, &dt, &sigmas), 0.0);
        // No labelled keypoints: distance outside the tripled box, over all keypoints.
        let gt = person(
            &[(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)],
            [0.0, 0.0, 10.0, 10.0],
            100.0,
        );
        let dt = Detection::new(vec![Some((5.0, 5.0)), Some((22.0, 5.0))], 1.0);
        let e = 4.0 / 0.04 / (100.0 + f64::EPSILON) / 2.0;
        assert_eq!(oks(&gt, &dt, &sigmas), (1.0 + (-e).exp()) / 2.0);
    }

    #[test]
    fn detection_area_from_keypoints() {
        let d = Detection::from_triples(&[1.0, 2.0, 1.0, 11.0, 7.0, 0.0], 0.5);
        assert_eq!(d.area, 50.0);
        let d = Detection::new(vec![None, Some((3.0, 4.0))], 0.5);
        assert_eq!(d.area, 0.0);
    }

    #[test]
    fn perfect_and_empty() {
        let sigmas = coco_sigmas();
        let kps: Vec<(f64, f64, f64)> = (0..17).map(|i| (i as f64 * 10.0, 50.0, 2.0)).collect();
        let gt = person(&kps, [0.0, 0.0, 160.0, 100.0], 16000.0);
        let det = Detection::new(kps.iter().map(|k| Some((k.0, k.1))).collect(), 0.9);
        let s = evaluate(
            &[CocoImage {
                image_id: 1,
                gts: vec![gt.clone()],
                dets: vec![det],
            }],
            &sigmas,
        );
        // Precision is tp / (tp + fp + eps), so a perfect AP is 1 − 2⁻⁵² as in pycocotools.
        assert_eq!(s.ap, 1.0 / (1.0 + f64::EPSILON));
        assert_eq!(s.ar, 1.0);
        assert_eq!(s.ap_large, s.ap);
        // Nothing medium-sized: -1.
        assert_eq!(s.ap_medium, -1.0);
        assert_eq!(s.ar_medium, -1.0);
        // No detections: AP 0, AR 0.
        let s = evaluate(
            &[CocoImage {
                image_id: 1,
                gts: vec![gt],
                dets: vec![],
            }],
            &sigmas,
        );
        assert_eq!(s.ap, 0.0);
        assert_eq!(s.ar, 0.0);
        // Nothing at all: -1 everywhere.
        assert_eq!(evaluate(&[], &sigmas).ap, -1.0);
    }
}
