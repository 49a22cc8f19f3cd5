//! Splitting one `infer` run into N disjoint parts ("shards") that separate processes (a
//! Slurm job array, a Kubernetes Indexed Job) run independently: pure arithmetic, no I/O.
//!
//! - `--shard K/N`: part K of N, **K 0-based** (`0/3`, `1/3`, `2/3`), as Kubernetes'
//!   `JOB_COMPLETION_INDEX` and Slurm's `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` count.
//! - `--shard auto`: K and N from the environment: Slurm job arrays
//!   (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN`, default 0);
//!   Kubernetes Indexed Jobs set only the index (`JOB_COMPLETION_INDEX`), so there the count
//!   is given: `--shard auto/N`. Slurm wins when both are set.
//! - `--frames A..B`: frames A (included) to B (excluded), 0-based; `A..` runs to the end.
//!
//! Parts are contiguous and balanced: `n` items over `N` parts give the first `n % N` parts
//! one item more, so parts differ by at most one item and, taken in order 0..N, are the
//! whole in its order.

use std::fmt;
use std::ops::Range;

/// Environment variables read by `--shard auto`.
pub const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
/// The number of tasks of a Slurm job array.
pub const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// The first task id of a Slurm job array (`--array=1-8` starts at 1).
pub const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
/// The index of a Kubernetes Indexed Job's pod.
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

/// An error in a `--shard` or `--frames` value or in the environment `--shard auto` reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard: expected K/N (K counted from 0, e.g. 0/4), 'auto' or 'auto/N', got '{0}'")]
    Syntax(String),
    #[error("--shard: part {index} of {count} does not exist (parts are numbered 0 to {last})", last = .count.saturating_sub(1))]
    OutOfRange { index: u64, count: u64 },
    #[error("--shard: the number of parts must be at least 1")]
    NoParts,
    #[error(
        "--shard auto: neither a Slurm job array ({SLURM_ID} and {SLURM_COUNT}) nor a \
         Kubernetes Indexed Job ({K8S_INDEX}) is set in the environment"
    )]
    NoEnvironment,
    #[error(
        "--shard auto: {K8S_INDEX} is set (a Kubernetes Indexed Job) but not the number of \
         parts: pass --shard auto/N with N = the Job's completions"
    )]
    NoCount,
    #[error("--shard auto: {SLURM_ID} is set but not {SLURM_COUNT} (is this a job array?)")]
    NoSlurmCount,
    #[error("--shard auto: environment variable {name}='{value}' is not a whole number")]
    BadVariable { name: &'static str, value: String },
    #[error("--shard auto: {SLURM_ID}={id} is below {SLURM_MIN}={min}")]
    BelowMin { id: u64, min: u64 },
    #[error(
        "--shard auto/{given}: the Slurm job array has {slurm} tasks ({SLURM_COUNT}); leave \
         the count out or make them agree"
    )]
    CountMismatch { given: u64, slurm: u64 },
    #[error("--frames: expected A..B (frames A to B-1, counted from 0) or A.., got '{0}'")]
    FramesSyntax(String),
}

/// A `--shard` value as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    /// `K/N`.
    Fixed(Shard),
    /// `auto` (`count: None`) or `auto/N`.
    Auto { count: Option<u64> },
}

/// Part `index` (0-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Shard {
    /// Checks `index < count` and `count >= 1`.
    pub fn new(index: u64, count: u64) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoParts);
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// This part of `0..n`: contiguous, balanced (the first `n % count` parts get one more).
    pub fn range(&self, n: u64) -> Range<u64> {
        let (q, r) = (n / self.count, n % self.count);
        let start = self.index * q + self.index.min(r);
        let len = q + u64::from(self.index < r);
        start..start + len
    }

    /// This part of `range` (see [`Shard::range`]).
    pub fn sub_range(&self, range: &Range<u64>) -> Range<u64> {
        let r = self.range(range.end.saturating_sub(range.start));
        range.start + r.start..range.start + r.end
    }
}

impl std::str::FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let t = s.trim();
        if t == "auto" {
            return Ok(ShardSpec::Auto { count: None });
        }
        let (k, n) = t.split_once('/').ok_or_else(syntax)?;
        let n = number(n).ok_or_else(syntax)?;
        if n == 0 {
            return Err(ShardError::NoParts);
        }
        if k.trim() == "auto" {
            return Ok(ShardSpec::Auto { count: Some(n) });
        }
        let k = number(k).ok_or_else(syntax)?;
        Ok(ShardSpec::Fixed(Shard::new(k, n)?))
    }
}

impl ShardSpec {
    /// The part to run; `env` looks an environment variable up (`std::env::var(..).ok()` in
    /// the program, a map in tests).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
        let count = match *self {
            ShardSpec::Fixed(shard) => return Ok(shard),
            ShardSpec::Auto { count } => count,
        };
        let var = |name: &'static str| -> Result<Option<u64>, ShardError> {
            match env(name) {
                None => Ok(None),
                Some(value) => number(&value)
                    .map(Some)
                    .ok_or(ShardError::BadVariable { name, value }),
            }
        };
        if let Some(id) = var(SLURM_ID)? {
            let slurm = var(SLURM_COUNT)?.ok_or(ShardError::NoSlurmCount)?;
            if let Some(given) = count {
                if given != slurm {
                    return Err(ShardError::CountMismatch { given, slurm });
                }
            }
            let min = var(SLURM_MIN)?.unwrap_or(0);
            let index = id
                .checked_sub(min)
                .ok_or(ShardError::BelowMin { id, min })?;
            return Shard::new(index, slurm);
        }
        if let Some(index) = var(K8S_INDEX)? {
            return Shard::new(index, count.ok_or(ShardError::NoCount)?);
        }
        Err(ShardError::NoEnvironment)
    }
}

/// A `--frames A..B` or `A..` value: a half-open range of frame indices (`end: None` = to
/// the end of the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    pub start: u64,
    pub end: Option<u64>,
}

impl std::str::FromStr for FrameSpan {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::FramesSyntax(s.to_string());
        let (a, b) = s.trim().split_once("..").ok_or_else(syntax)?;
        let start = number(a).ok_or_else(syntax)?;
        let end = if b.trim().is_empty() {
            None
        } else {
            Some(number(b).ok_or_else(syntax)?)
        };
        if end.is_some_and(|e| e < start) {
            return Err(syntax());
        }
        Ok(FrameSpan { start, end })
    }
}

impl FrameSpan {
    /// The span within `0..n` (empty when it starts past the end).
    pub fn within(&self, n: u64) -> Range<u64> {
        let end = self.end.map_or(n, |e| e.min(n));
        self.start.min(end)..end
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parses() {
        assert_eq!(
            "1/3".parse::<ShardSpec>().unwrap(),
            ShardSpec::Fixed(Shard { index: 1, count: 3 })
        );
        assert_eq!(
            "auto".parse::<ShardSpec>().unwrap(),
            ShardSpec::Auto { count: None }
        );
        assert_eq!(
            "auto/8".parse::<ShardSpec>().unwrap(),
            ShardSpec::Auto { count: Some(8) }
        );
        for bad in [
            "", "3", "1/", "/3", "a/3", "1/3/4", "-1/3", "auto/", "1.5/3",
        ] {
            assert!(
                matches!(bad.parse::<ShardSpec>(), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
        let e = "3/3".parse::<ShardSpec>().unwrap_err();
        assert_eq!(e, ShardError::OutOfRange { index: 3, count: 3 });
        assert!(e.to_string().contains("0 to 2"), "{e}");
        assert_eq!("0/0".parse::<ShardSpec>(), Err(ShardError::NoParts));
        assert_eq!("auto/0".parse::<ShardSpec>(), Err(ShardError::NoParts));
    }

    #[test]
    fn ranges_are_contiguous_balanced_and_cover_everything() {
        for n in 0..40u64 {
            for count in 1..12u64 {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(n);
                    assert_eq!(r.start, next, "n={n} {index}/{count}");
                    let len = r.end - r.start;
                    assert!(len == n / count || len == n / count + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(Shard { index: 0, count: 3 }.range(7), 0..3);
        assert_eq!(Shard { index: 1, count: 3 }.range(7), 3..5);
        assert_eq!(Shard { index: 2, count: 3 }.range(7), 5..7);
        assert_eq!(Shard { index: 1, count: 2 }.sub_range(&(10..15)), 13..15);
        // More parts than items: some parts are empty.
        assert_eq!(Shard { index: 4, count: 5 }.range(3), 3..3);
    }

    #[test]
    fn slurm() {
        let auto = ShardSpec::Auto { count: None };
        let vars = [(SLURM_ID, "5"), (SLURM_COUNT, "4"), (SLURM_MIN, "3")];
        assert_eq!(
            auto.resolve(env(&vars)).unwrap(),
            Shard { index: 2, count: 4 }
        );
        // No MIN: ids from 0.
        let vars = [(SLURM_ID, "2"), (SLURM_COUNT, "4")];
        assert_eq!(
            auto.resolve(env(&vars)).unwrap(),
            Shard { index: 2, count: 4 }
        );
        // Slurm wins over a Kubernetes index.
        let vars = [(SLURM_ID, "1"), (SLURM_COUNT, "2"), (K8S_INDEX, "0")];
        assert_eq!(
            auto.resolve(env(&vars)).unwrap(),
            Shard { index: 1, count: 2 }
        );
        let e = auto.resolve(env(&[(SLURM_ID, "1")])).unwrap_err();
        assert!(e.to_string().contains(SLURM_COUNT), "{e}");
        let vars = [(SLURM_ID, "1"), (SLURM_COUNT, "4"), (SLURM_MIN, "2")];
        assert_eq!(
            auto.resolve(env(&vars)),
            Err(ShardError::BelowMin { id: 1, min: 2 })
        );
        let vars = [(SLURM_ID, "x"), (SLURM_COUNT, "4")];
        let e = auto.resolve(env(&vars)).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_ID='x'"), "{e}");
        let vars = [(SLURM_ID, "0"), (SLURM_COUNT, "4")];
        assert_eq!(
            ShardSpec::Auto { count: Some(3) }.resolve(env(&vars)),
            Err(ShardError::CountMismatch { given: 3, slurm: 4 })
        );
        assert_eq!(
            ShardSpec::Auto { count: Some(4) }
                .resolve(env(&vars))
                .unwrap(),
            Shard { index: 0, count: 4 }
        );
        // An id past the array's count (a sparse --array=0,5): refused.
        let vars = [(SLURM_ID, "5"), (SLURM_COUNT, "2")];
        assert!(matches!(
            auto.resolve(env(&vars)),
            Err(ShardError::OutOfRange { .. })
        ));
    }

    #[test]
    fn kubernetes() {
        let vars = [(K8S_INDEX, "2")];
        assert_eq!(
            ShardSpec::Auto { count: Some(3) }
                .resolve(env(&vars))
                .unwrap(),
            Shard { index: 2, count: 3 }
        );
        let e = ShardSpec::Auto { count: None }
            .resolve(env(&vars))
            .unwrap_err();
        assert_eq!(e, ShardError::NoCount);
        assert!(e.to_string().contains("auto/N"), "{e}");
        assert_eq!(
            ShardSpec::Auto { count: Some(2) }.resolve(env(&vars)),
            Err(ShardError::OutOfRange { index: 2, count: 2 })
        );
        let e = ShardSpec::Auto { count: None }
            .resolve(env(&[]))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(SLURM_ID) && msg.contains(K8S_INDEX), "{msg}");
        // A fixed shard ignores the environment.
        let fixed = ShardSpec::Fixed(Shard { index: 0, count: 1 });
        assert_eq!(
            fixed.resolve(env(&vars)).unwrap(),
            Shard { index: 0, count: 1 }
        );
    }

    #[test]
    fn frame_spans() {
        let s: FrameSpan = "10..20".parse().unwrap();
        assert_eq!(
            s,
            FrameSpan {
                start: 10,
                end: Some(20)
            }
        );
        assert_eq!(s.within(100), 10..20);
        assert_eq!(s.within(15), 10..15);
        assert_eq!(s.within(5), 5..5);
        let open: FrameSpan = "7..".parse().unwrap();
        assert_eq!(open.within(9), 7..9);
        assert_eq!("3..3".parse::<FrameSpan>().unwrap().within(9), 3..3);
        for bad in ["", "5", "..5", "a..b", "5..3", "1...4", "-1..3"] {
            assert!(bad.parse::<FrameSpan>().is_err(), "{bad}");
        }
    }
}
