//! Stability over video: how much each joint's peak jitters from frame to frame, per stage
//! (how much the refinement stages steady the skeleton).
//!
//! Jitter of a joint at frame `b`, given its positions at the frames `a < b < c` around it:
//! the distance from its position at `b` to the straight-line interpolation between `a` and
//! `c` at `b`, `|p_b − (p_a + (p_c − p_a)·(b − a)/(c − a))|` (image pixels). Steady motion
//! gives 0; only the wobble around it counts. Frames more than [`MAX_GAP`] apart (a seek, a
//! loop back to the start, long drops) do not form a triple. Pure math on positions.

use std::collections::VecDeque;

/// Largest frame-index distance between the outer frames of a triple.
pub const MAX_GAP: u64 = 8;

/// A frame's joint positions per stage: `[stage][joint]`, image pixels, `None` where the
/// joint was not found.
pub type StagePositions = Vec<Vec<Option<(f64, f64)>>>;

/// Running jitter per stage and joint.
#[derive(Clone, Debug, Default)]
pub struct JitterMeter {
    recent: VecDeque<(u64, StagePositions)>,
    /// `[stage][joint]`: (sum of jitter, count).
    sums: Vec<Vec<(f64, u64)>>,
}

impl JitterMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds frame `index`'s positions. Frames must arrive in increasing index order; an index
    /// that is not larger than the last one starts afresh (a loop or a seek).
    pub fn push(&mut self, index: u64, positions: StagePositions) {
        if self.recent.back().is_some_and(|(last, _)| *last >= index) {
            self.recent.clear();
        }
        self.recent.push_back((index, positions));
        if self.recent.len() > 3 {
            self.recent.pop_front();
        }
        let (Some((a, pa)), Some((b, pb)), Some((c, pc))) =
            (self.recent.front(), self.recent.get(1), self.recent.get(2))
        else {
            return;
        };
        let (a, b, c) = (*a, *b, *c);
        if c - a > MAX_GAP {
            return;
        }
        let f = (b - a) as f64 / (c - a) as f64;
        let stages = pa.len().min(pb.len()).min(pc.len());
        if self.sums.len() < stages {
            self.sums.resize(stages, Vec::new());
        }
        for t in 0..stages {
            let joints = pa[t].len().min(pb[t].len()).min(pc[t].len());
            let sums = &mut self.sums[t];
            if sums.len() < joints {
                sums.resize(joints, (0.0, 0));
            }
            for j in 0..joints {
                if let (Some(p), Some(q), Some(r)) = (pa[t][j], pb[t][j], pc[t][j]) {
                    let expect = (p.0 + (r.0 - p.0) * f, p.1 + (r.1 - p.1) * f);
                    sums[j].0 += (q.0 - expect.0).hypot(q.1 - expect.1);
                    sums[j].1 += 1;
                }
            }
        }
    }

    /// Mean jitter of each joint at `stage` (`None` where no triple was seen).
    pub fn per_joint(&self, stage: usize) -> Vec<Option<f64>> {
        self.sums
            .get(stage)
            .map(|s| {
                s.iter()
                    .map(|&(sum, n)| (n > 0).then(|| sum / n as f64))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mean jitter over every joint and triple, per stage.
    pub fn per_stage(&self) -> Vec<Option<f64>> {
        self.sums
            .iter()
            .map(|s| {
                let (sum, n) = s.iter().fold((0.0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
                (n > 0).then(|| sum / n as f64)
            })
            .collect()
    }

    /// Triples counted (of the first stage, first joint with any).
    pub fn triples(&self) -> u64 {
        self.sums
            .first()
            .and_then(|s| s.iter().map(|v| v.1).max())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: (f64, f64)) -> StagePositions {
        vec![vec![Some(p)], vec![Some((p.0, 0.0))]]
    }

    #[test]
    fn steady_motion_has_no_jitter_and_wobble_has() {
        let mut m = JitterMeter::new();
        for i in 0..10u64 {
            // Stage 1 wobbles ±1 px in y around a steady walk in x; stage 2 walks steadily.
            let wobble = if i % 2 == 0 { 1.0 } else { -1.0 };
            m.push(i, one((3.0 * i as f64, wobble)));
        }
        let s = m.per_stage();
        assert_eq!(s.len(), 2);
        assert!((s[0].unwrap_or(0.0) - 2.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s[1], Some(0.0));
        assert_eq!(m.triples(), 8);
        assert_eq!(m.per_joint(0), vec![Some(2.0)]);
    }

    #[test]
    fn gaps_are_interpolated_and_loops_start_afresh() {
        let mut m = JitterMeter::new();
        m.push(0, one((0.0, 0.0)));
        m.push(3, one((3.0, 0.0)));
        m.push(4, one((4.0, 0.0)));
        assert_eq!(m.per_stage()[0], Some(0.0));
        // Loop back to frame 0: no triple across it.
        m.push(0, one((100.0, 0.0)));
        m.push(1, one((0.0, 0.0)));
        assert_eq!(m.triples(), 1);
        // Too far apart.
        m.push(20, one((0.0, 50.0)));
        assert_eq!(m.triples(), 1);
        // Missing joints are skipped.
        let mut m = JitterMeter::new();
        for i in 0..3 {
            m.push(i, vec![vec![None]]);
        }
        assert_eq!(m.per_stage(), vec![None]);
    }
}
