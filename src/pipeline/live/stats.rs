//! Statistics of a live run: counts, throughput, latency percentiles, per-stage medians.

use std::time::Duration;

use crate::inspection::Timings;

/// What a live run did so far.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LiveStats {
    /// Frames the source delivered.
    pub delivered: u64,
    /// Frames that went through the network and decoding.
    pub processed: u64,
    /// Frames replaced by a newer one before the pipeline got to them.
    pub dropped: u64,
    /// Frames that failed (source or pipeline errors).
    pub errors: u64,
    /// Wall time from the start to the last result (or now, while running), seconds.
    pub wall_s: f64,
    /// Processed frames per second of wall time.
    pub fps: f64,
    /// Frame-to-result latency: delivery to the end of decoding, milliseconds.
    pub latency_median_ms: f64,
    pub latency_p90_ms: f64,
    /// Median time of each stage a processed frame went through, in order.
    pub stages: Vec<StageMedian>,
}

/// One stage's median time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StageMedian {
    pub name: &'static str,
    pub median_ms: f64,
}

/// Stage names, in the order of [`Samples::stages`].
const STAGES: [&str; 5] = [
    // Delivered until the prepare thread took it (or the inference thread, no overlap).
    "capture wait",
    "prepare",
    // Prepared until the network took it.
    "ready wait",
    // The network (with the preparation when it was not done ahead).
    "forward",
    "grouping",
];

/// The counts that do not come from the samples.
pub(super) struct Counts {
    pub delivered: u64,
    pub dropped: u64,
    pub errors: u64,
    pub wall: Duration,
}

/// Per processed frame: latency and each stage's time.
#[derive(Debug, Default)]
pub(super) struct Samples {
    latency: Vec<Duration>,
    stages: [Vec<Duration>; 5],
}

impl Samples {
    /// Records one processed frame; `before` = capture wait, prepare, ready wait.
    pub fn push(&mut self, latency: Duration, before: [Duration; 3], timings: &Timings) {
        self.latency.push(latency);
        let all = [
            before[0],
            before[1],
            before[2],
            timings.forward,
            timings.decode,
        ];
        for (v, d) in self.stages.iter_mut().zip(all) {
            v.push(d);
        }
    }

    pub fn stats(&self, counts: Counts) -> LiveStats {
        let processed = self.latency.len() as u64;
        let wall_s = counts.wall.as_secs_f64();
        let mut latency = self.latency.clone();
        latency.sort();
        LiveStats {
            delivered: counts.delivered,
            processed,
            dropped: counts.dropped,
            errors: counts.errors,
            wall_s,
            fps: if wall_s > 0.0 {
                processed as f64 / wall_s
            } else {
                0.0
            },
            latency_median_ms: percentile_ms(&latency, 0.5),
            latency_p90_ms: percentile_ms(&latency, 0.9),
            stages: STAGES
                .iter()
                .zip(&self.stages)
                .map(|(&name, v)| {
                    let mut v = v.clone();
                    v.sort();
                    StageMedian {
                        name,
                        median_ms: percentile_ms(&v, 0.5),
                    }
                })
                .collect(),
        }
    }
}

/// The `q` quantile (nearest rank) of sorted durations, milliseconds; 0 when empty.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 0.5), 5.0);
        assert_eq!(percentile_ms(&v, 0.9), 9.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
