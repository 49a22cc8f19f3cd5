//! Per-step wall times of a profiled forward pass.

use std::time::{Duration, Instant};

use candle_core::{Device, Result};

/// Wall time of one step of a profiled forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    pub name: String,
    pub time: Duration,
}

/// Records a [`StepTime`] at every [`lap`](StepClock::lap) when profiling (`times` is
/// `Some`), synchronising the device first so GPU work is counted in the step that queued
/// it; does nothing otherwise.
pub struct StepClock<'a> {
    device: &'a Device,
    times: Option<&'a mut Vec<StepTime>>,
    last: Instant,
}

impl<'a> StepClock<'a> {
    pub fn new(device: &'a Device, times: Option<&'a mut Vec<StepTime>>) -> Self {
        Self {
            device,
            times,
            last: Instant::now(),
        }
    }

    /// Ends the step `name` (started at the previous lap or at creation).
    pub fn lap(&mut self, name: impl Into<String>) -> Result<()> {
        if let Some(times) = self.times.as_deref_mut() {
            self.device.synchronize()?;
            let now = Instant::now();
            times.push(StepTime {
                name: name.into(),
                time: now - self.last,
            });
            self.last = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_are_recorded_only_when_profiling() {
        let mut times = Vec::new();
        let mut clock = StepClock::new(&Device::Cpu, Some(&mut times));
        clock.lap("a").unwrap();
        clock.lap(String::from("b")).unwrap();
        assert_eq!(
            times.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let mut off = StepClock::new(&Device::Cpu, None);
        off.lap("a").unwrap();
    }
}
