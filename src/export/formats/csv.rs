//! One CSV row per frame × person × joint:
//!
//! ```text
//! frame,time,person,joint,x,y,score
//! 0,0.0,0,nose,212.5,80.25,0.912
//! 0,0.0,0,neck,,,
//! ```
//!
//! `frame`: the frame index (0-based; position in the folder for image folders); `time`:
//! seconds from the start of the video (0 for images); `person`: 0-based within the frame;
//! `joint`: the joint's name in the model's joint set, every joint of every person in the
//! set's order; `x`, `y` in image pixels (pixel-index coordinates) and `score`, all three
//! empty where the joint was not found. Joint names hold no commas or quotes, so no field
//! is quoted. Frames without people have no rows.

use std::fmt::Write;

use super::{r3, FrameRecord};

/// The header line.
pub const HEADER: &str = "frame,time,person,joint,x,y,score\n";

/// The rows of one frame (no header).
pub fn rows(rec: &FrameRecord) -> String {
    let mut out = String::new();
    let time = (rec.time_s * 1e6).round() / 1e6;
    for (p, person) in rec.people.iter().enumerate() {
        for (j, name) in rec.joints.joints.iter().enumerate() {
            // Writing into a String cannot fail.
            let _ = match person.keypoints.get(j).copied().flatten() {
                Some(k) => writeln!(
                    out,
                    "{},{time:?},{p},{name},{:?},{:?},{:?}",
                    rec.index,
                    r3(k.x),
                    r3(k.y),
                    r3(k.score)
                ),
                None => writeln!(out, "{},{time:?},{p},{name},,,", rec.index),
            };
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_data;
    use super::*;
    use crate::pose::skeleton::OPENPOSE_COCO18;

    #[test]
    fn exact_rows() {
        let mut rec = test_data::frame();
        rec.people.remove(0);
        let text = rows(&rec);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 18);
        assert_eq!(lines[0], "3,0.12,0,nose,10.25,20.0,0.9");
        assert_eq!(lines[1], "3,0.12,0,neck,11.0,30.0,0.8");
        assert_eq!(lines[2], "3,0.12,0,right_shoulder,,,");
        assert_eq!(lines[15], "3,0.12,0,left_eye,12.0,18.0,0.7");
        assert_eq!(lines[17], "3,0.12,0,left_ear,,,");
        rec.people.clear();
        assert_eq!(rows(&rec), "");
    }

    /// Every row parses back to the record's values.
    #[test]
    fn round_trip() {
        let rec = test_data::frame();
        let text = format!("{HEADER}{}", rows(&rec));
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER.trim_end()));
        let mut n = 0;
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "{line}");
            assert_eq!(f[0].parse::<u64>().unwrap(), rec.index);
            assert_eq!(f[1].parse::<f64>().unwrap(), rec.time_s);
            let p: usize = f[2].parse().unwrap();
            let j = OPENPOSE_COCO18.index_of(f[3]).unwrap();
            let want = rec.people[p].keypoints[j];
            let got = match (f[4], f[5], f[6]) {
                ("", "", "") => None,
                (x, y, s) => Some((
                    x.parse::<f32>().unwrap(),
                    y.parse::<f32>().unwrap(),
                    s.parse::<f32>().unwrap(),
                )),
            };
            assert_eq!(got, want.map(|k| (k.x, k.y, k.score)), "{line}");
            n += 1;
        }
        assert_eq!(n, 2 * 18);
    }
}
