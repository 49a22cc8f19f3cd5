//! Minimum-cost assignment (the Hungarian / Kuhn–Munkres algorithm) for rectangular cost
//! matrices, with the tie-breaking of the `munkres` Python package that HigherHRNet's
//! `lib/core/group.py` (`py_max_match`) calls.
//!
//! The algorithm is the classic six-step formulation (star / prime / cover, as described by
//! R. A. Pilgrim and implemented by `munkres.Munkres.compute`):
//!
//! 0. A rectangular `rows × cols` matrix is padded with zero rows or columns to a square
//!    `n × n` one, `n = max(rows, cols)`.
//! 1. Subtract each row's minimum from the row.
//! 2. Scanning rows top to bottom, star the first zero of each row whose column has no star.
//! 3. Cover every column that holds a star; `n` covered columns means the stars are a
//!    complete assignment.
//! 4. Prime an uncovered zero. If its row holds a star, cover the row, uncover the star's
//!    column and continue; otherwise go to 5. Without uncovered zeros go to 6.
//! 5. Build the alternating path prime → star in its column → prime in that star's row …,
//!    flip stars and primes along it, erase primes, clear covers, go to 3.
//! 6. Add the smallest uncovered value to every covered row and subtract it from every
//!    uncovered column, go to 4.
//!
//! The result is an exact minimum-cost assignment. Where several assignments share the
//! minimum cost, which one comes out depends on the scan orders, so they are reproduced
//! exactly (checked against `munkres` 1.1.4 on 3000 random tie-heavy matrices; a few are
//! kept as a test): step 4 searches for an uncovered zero starting at the row and column of the
//! previous prime, wrapping around, and within the first row that has one it takes the
//! *last* one met (the package keeps scanning that row). Arithmetic is `f64` in the same
//! order as the package, so equal inputs give equal outputs, bit for bit.

/// Why [`assign`] could not solve a matrix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MunkresError {
    #[error("cost matrix has {len} values, expected {rows}x{cols}")]
    Shape {
        len: usize,
        rows: usize,
        cols: usize,
    },
    #[error("cost matrix value at row {row}, column {col} is not finite ({value})")]
    NonFinite { row: usize, col: usize, value: f64 },
    #[error("assignment did not converge (cost matrix {rows}x{cols})")]
    NoConvergence { rows: usize, cols: usize },
}

const NONE: u8 = 0;
const STAR: u8 = 1;
const PRIME: u8 = 2;

/// The minimum-cost assignment of a `rows × cols` row-major cost matrix.
///
/// Returns `(row, column)` pairs sorted by row, one per row when `rows <= cols`, one per
/// column otherwise (rows or columns that only met the zero padding are left out), exactly
/// as `munkres.Munkres().compute(cost)` returns them. An empty matrix gives no pairs.
pub fn assign(cost: &[f64], rows: usize, cols: usize) -> Result<Vec<(usize, usize)>, MunkresError> {
    if rows.checked_mul(cols) != Some(cost.len()) {
        return Err(MunkresError::Shape {
            len: cost.len(),
            rows,
            cols,
        });
    }
    if let Some((i, &value)) = cost.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MunkresError::NonFinite {
            row: i / cols,
            col: i % cols,
            value,
        });
    }
    if rows == 0 || cols == 0 {
        return Ok(Vec::new());
    }
    let mut solver = Solver::new(cost, rows, cols);
    if !solver.run() {
        return Err(MunkresError::NoConvergence { rows, cols });
    }
    let mut pairs = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            if solver.mark(i, j) == STAR {
                pairs.push((i, j));
            }
        }
    }
    Ok(pairs)
}

/// State of one solve: the reduced square matrix, the star/prime marks and the covers.
struct Solver {
    n: usize,
    c: Vec<f64>,
    marks: Vec<u8>,
    row_covered: Vec<bool>,
    col_covered: Vec<bool>,
}

impl Solver {
    fn new(cost: &[f64], rows: usize, cols: usize) -> Self {
        let n = rows.max(cols);
        let mut c = vec![0.0; n * n];
        for (i, row) in cost.chunks_exact(cols).enumerate() {
            c[i * n..i * n + cols].copy_from_slice(row);
        }
        Solver {
            n,
            c,
            marks: vec![NONE; n * n],
            row_covered: vec![false; n],
            col_covered: vec![false; n],
        }
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.c[i * self.n + j]
    }
    fn mark(&self, i: usize, j: usize) -> u8 {
        self.marks[i * self.n + j]
    }
    fn set_mark(&mut self, i: usize, j: usize, m: u8) {
        self.marks[i * self.n + j] = m;
    }
    fn uncovered_zero(&self, i: usize, j: usize) -> bool {
        self.at(i, j) == 0.0 && !self.row_covered[i] && !self.col_covered[j]
    }
    fn clear_covers(&mut self) {
        self.row_covered.iter_mut().for_each(|c| *c = false);
        self.col_covered.iter_mut().for_each(|c| *c = false);
    }

    /// Steps 1–6; `false` when the iteration guard trips (never for finite input).
    fn run(&mut self) -> bool {
        let n = self.n;
        // Step 1: row reduction.
        for i in 0..n {
            let row = &mut self.c[i * n..(i + 1) * n];
            let min = row.iter().copied().fold(f64::INFINITY, f64::min);
            row.iter_mut().for_each(|v| *v -= min);
        }
        // Step 2: initial stars.
        for i in 0..n {
            for j in 0..n {
                if self.uncovered_zero(i, j) {
                    self.set_mark(i, j, STAR);
                    self.row_covered[i] = true;
                    self.col_covered[j] = true;
                    break;
                }
            }
        }
        self.clear_covers();
        // Each augmentation (step 5) adds a star; between two, steps 4 and 6 alternate at
        // most about 2n times. The guard is far above that.
        let mut budget = 16 * (n + 1) * (n + 1) * (n + 1) + 64;
        loop {
            // Step 3.
            let mut covered = 0;
            for j in 0..n {
                if (0..n).any(|i| self.mark(i, j) == STAR) {
                    self.col_covered[j] = true;
                    covered += 1;
                }
            }
            if covered >= n {
                return true;
            }
            // Steps 4 and 6 until step 4 finds a prime without a star in its row.
            let z0 = loop {
                budget = match budget.checked_sub(1) {
                    Some(b) => b,
                    None => return false,
                };
                match self.step4() {
                    Some(z) => break z,
                    None => {
                        if !self.step6() {
                            return false;
                        }
                    }
                }
            };
            self.step5(z0);
        }
    }

    /// Primes uncovered zeros until one has no star in its row (returned), or none is left
    /// (`None`, go to step 6). The search restarts at `(0, 0)` on every entry.
    fn step4(&mut self) -> Option<(usize, usize)> {
        let (mut row, mut col) = (0, 0);
        loop {
            let (r, c) = self.find_zero_from(row, col)?;
            self.set_mark(r, c, PRIME);
            match (0..self.n).find(|&j| self.mark(r, j) == STAR) {
                Some(star_col) => {
                    self.row_covered[r] = true;
                    self.col_covered[star_col] = false;
                    row = r;
                    col = star_col;
                }
                None => return Some((r, c)),
            }
        }
    }

    /// The uncovered zero the `munkres` package finds: rows from `i0` on (wrapping), and in
    /// the first row holding one, the last one met scanning columns from `j0` (wrapping).
    fn find_zero_from(&self, i0: usize, j0: usize) -> Option<(usize, usize)> {
        let n = self.n;
        for di in 0..n {
            let i = (i0 + di) % n;
            let mut found = None;
            for dj in 0..n {
                let j = (j0 + dj) % n;
                if self.uncovered_zero(i, j) {
                    found = Some((i, j));
                }
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Flips stars and primes along the alternating path from `z0`, erases primes and
    /// clears the covers.
    fn step5(&mut self, z0: (usize, usize)) {
        let n = self.n;
        let mut path = vec![z0];
        let mut col = z0.1;
        while let Some(r) = (0..n).find(|&i| self.mark(i, col) == STAR) {
            path.push((r, col));
            // A star on the path always has a prime in its row (the row was covered by it).
            match (0..n).find(|&j| self.mark(r, j) == PRIME) {
                Some(c) => {
                    path.push((r, c));
                    col = c;
                }
                None => break,
            }
        }
        for &(i, j) in &path {
            let m = if self.mark(i, j) == STAR { NONE } else { STAR };
            self.set_mark(i, j, m);
        }
        self.clear_covers();
        for m in &mut self.marks {
            if *m == PRIME {
                *m = NONE;
            }
        }
    }

    /// Adds the smallest uncovered value to covered rows and subtracts it from uncovered
    /// columns (in that order, per cell, as the package does). `false` when nothing would
    /// change (the package raises `UnsolvableMatrix`).
    fn step6(&mut self) -> bool {
        let n = self.n;
        let mut min = f64::INFINITY;
        for i in (0..n).filter(|&i| !self.row_covered[i]) {
            for j in (0..n).filter(|&j| !self.col_covered[j]) {
                if min > self.at(i, j) {
                    min = self.at(i, j);
                }
            }
        }
        if !min.is_finite() {
            return false;
        }
        let mut events: i64 = 0;
        for i in 0..n {
            for j in 0..n {
                let v = &mut self.c[i * n + j];
                if self.row_covered[i] {
                    *v += min;
                    events += 1;
                }
                if !self.col_covered[j] {
                    *v -= min;
                    events += 1;
                }
                if self.row_covered[i] && !self.col_covered[j] {
                    events -= 2;
                }
            }
        }
        events != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the tests need no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Minimum total cost over all assignments of `min(rows, cols)` pairs.
    fn brute_force(cost: &[f64], rows: usize, cols: usize) -> f64 {
        fn go(
            cost: &[f64],
            rows: usize,
            cols: usize,
            r: usize,
            used: &mut Vec<bool>,
            left: usize,
        ) -> f64 {
            if left == 0 {
                return 0.0;
            }
            if rows - r < left {
                return f64::INFINITY;
            }
            // Row r unassigned (only possible when rows > cols) …
            let mut best = if rows - r > left {
                go(cost, rows, cols, r + 1, used, left)
            } else {
                f64::INFINITY
            };
            // … or assigned to a free column.
            for c in 0..cols {
                if !used[c] {
                    used[c] = true;
                    let v = cost[r * cols + c] + go(cost, rows, cols, r + 1, used, left - 1);
                    used[c] = false;
                    best = best.min(v);
                }
            }
            best
        }
        go(cost, rows, cols, 0, &mut vec![false; cols], rows.min(cols))
    }

    fn check_against_brute_force(cost: &[f64], rows: usize, cols: usize) {
        let pairs = assign(cost, rows, cols).unwrap();
        assert_eq!(pairs.len(), rows.min(cols), "{cost:?} {rows}x{cols}");
        let mut row_used = vec![false; rows];
        let mut col_used = vec![false; cols];
        for &(r, c) in &pairs {
            assert!(
                !row_used[r] && !col_used[c],
                "row or column used twice: {pairs:?}"
            );
            row_used[r] = true;
            col_used[c] = true;
        }
        let total: f64 = pairs.iter().map(|&(r, c)| cost[r * cols + c]).sum();
        let best = brute_force(cost, rows, cols);
        assert!(
            (total - best).abs() <= 1e-12 * best.abs().max(1.0),
            "munkres {total} vs brute force {best} for {cost:?} ({rows}x{cols})"
        );
    }

    #[test]
    fn matches_brute_force_on_random_real_matrices() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..400 {
            let rows = 1 + rng.below(6) as usize;
            let cols = 1 + rng.below(6) as usize;
            let cost: Vec<f64> = (0..rows * cols).map(|_| rng.unit() * 10.0 - 3.0).collect();
            check_against_brute_force(&cost, rows, cols);
        }
    }

    #[test]
    fn matches_brute_force_on_random_matrices_full_of_ties() {
        let mut rng = Rng(42);
        for _ in 0..400 {
            let rows = 1 + rng.below(6) as usize;
            let cols = 1 + rng.below(6) as usize;
            let cost: Vec<f64> = (0..rows * cols)
                .map(|_| rng.below(3) as f64 * 100.0)
                .collect();
            check_against_brute_force(&cost, rows, cols);
        }
    }

    #[test]
    fn group_py_shaped_matrices_with_1e10_padding() {
        // As match_by_tag builds them: more candidates than groups, padded with 1e10.
        let mut rng = Rng(7);
        for _ in 0..200 {
            let rows = 2 + rng.below(5) as usize;
            let groups = 1 + rng.below(rows as u64 - 1) as usize;
            let mut cost = Vec::new();
            for _ in 0..rows {
                for c in 0..rows {
                    cost.push(if c < groups {
                        rng.below(4) as f64 * 100.0 - rng.unit()
                    } else {
                        1e10
                    });
                }
            }
            check_against_brute_force(&cost, rows, rows);
        }
    }

    #[test]
    fn known_solutions() {
        // The package's own examples: square 850, rectangular 452, square 18, rect. 15.
        let cases: [(&[f64], usize, usize, f64); 4] = [
            (
                &[400., 150., 400., 400., 450., 600., 300., 225., 300.],
                3,
                3,
                850.,
            ),
            (
                &[
                    400., 150., 400., 1., 400., 450., 600., 2., 300., 225., 300., 3.,
                ],
                3,
                4,
                452.,
            ),
            (&[10., 10., 8., 9., 8., 1., 9., 7., 4.], 3, 3, 18.),
            (
                &[10., 10., 8., 11., 9., 8., 1., 1., 9., 7., 4., 10.],
                3,
                4,
                15.,
            ),
        ];
        for (cost, rows, cols, expected) in cases {
            let pairs = assign(cost, rows, cols).unwrap();
            let total: f64 = pairs.iter().map(|&(r, c)| cost[r * cols + c]).sum();
            assert_eq!(total, expected);
        }
        let pairs = assign(
            &[400., 150., 400., 400., 450., 600., 300., 225., 300.],
            3,
            3,
        )
        .unwrap();
        assert_eq!(pairs, vec![(0, 1), (1, 0), (2, 2)]);
    }

    #[test]
    fn ties_break_like_the_python_package() {
        // All-equal 3x2: padded with a zero column; traced by hand through the package's
        // steps, row 0 ends on the padding and rows 1, 2 take columns 1, 0.
        let pairs = assign(&[5.0; 6], 3, 2).unwrap();
        assert_eq!(pairs, vec![(1, 1), (2, 0)]);
        // An all-zero square matrix: step 2 stars the diagonal.
        assert_eq!(assign(&[0.0; 4], 2, 2).unwrap(), vec![(0, 0), (1, 1)]);
        // Fewer rows than columns: every row gets a column.
        assert_eq!(assign(&[3.0, 1.0, 2.0], 1, 3).unwrap(), vec![(0, 1)]);
    }

    /// Tie-heavy matrices with the pairs `munkres` 1.1.4 (`Munkres().compute`) returned
    /// for them: small integer costs, and `match_by_tag`-shaped costs
    /// (`round(d)·100 − value`, `1e10` padding). (The unrelated 2026 rewrite published as
    /// `munkres` 3.x breaks ties differently; the 1.1.x line is what HigherHRNet used.)
    #[test]
    #[allow(clippy::type_complexity)]
    fn ties_match_recorded_munkres_1_1_4_output() {
        let cases: [(&[f64], usize, usize, &[(usize, usize)]); 9] = [
            (
                &[
                    2.0, 0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0,
                    1.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0,
                ],
                4,
                6,
                &[(0, 1), (1, 2), (2, 4), (3, 0)],
            ),
            (
                &[
                    0.0, 2.0, 1.0, 0.0, 2.0, 2.0, 2.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 2.0, 2.0, 1.0,
                    2.0, 0.0, 1.0, 0.0, 2.0, 1.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0, 0.0,
                    0.0, 1.0, 2.0,
                ],
                5,
                7,
                &[(0, 0), (1, 5), (2, 3), (3, 4), (4, 2)],
            ),
            (
                &[
                    0.0, 0.0, 2.0, 1.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 2.0, 2.0,
                    2.0, 1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0,
                    1.0, 1.0, 2.0, 0.0, 0.0, 2.0, 2.0, 0.0, 1.0, 0.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0,
                    1.0,
                ],
                7,
                7,
                &[(0, 0), (1, 1), (2, 5), (3, 2), (4, 3), (5, 6), (6, 4)],
            ),
            (
                &[
                    0.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 1.0,
                    0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0, 1.0, 0.0, 0.0, 1.0, 2.0,
                ],
                5,
                6,
                &[(0, 0), (1, 2), (2, 4), (3, 5), (4, 3)],
            ),
            (
                &[
                    99.6, 1e10, 1e10, 1e10, 1e10, 99.8, 1e10, 1e10, 1e10, 1e10, -0.4, 1e10, 1e10,
                    1e10, 1e10, 99.8, 1e10, 1e10, 1e10, 1e10, -0.2, 1e10, 1e10, 1e10, 1e10,
                ],
                5,
                5,
                &[(0, 1), (1, 2), (2, 0), (3, 3), (4, 4)],
            ),
            (
                &[
                    99.8, -0.2, 99.8, -0.2, -0.2, 99.8, -0.2, 99.6, 99.6, -0.4, 99.6, 99.6, 99.6,
                    99.6, 99.6, -0.4, 99.6, 99.6, -0.4, -0.4, -0.4, -0.4, -0.4, 99.6, -0.4, -0.4,
                    -0.4, -0.4, 99.6, -0.4, 99.6, -0.4, 99.6, -0.4, -0.4,
                ],
                5,
                7,
                &[(0, 1), (1, 2), (2, 4), (3, 0), (4, 3)],
            ),
            (
                &[
                    99.6, -0.4, 1e10, 1e10, 1e10, 1e10, 1e10, -0.4, -0.4, 1e10, 1e10, 1e10, 1e10,
                    1e10, -0.2, -0.2, 1e10, 1e10, 1e10, 1e10, 1e10, -0.4, -0.4, 1e10, 1e10, 1e10,
                    1e10, 1e10, -0.2, 99.8, 1e10, 1e10, 1e10, 1e10, 1e10, 99.6, 99.6, 1e10, 1e10,
                    1e10, 1e10, 1e10, 99.6, 99.6, 1e10, 1e10, 1e10, 1e10, 1e10,
                ],
                7,
                7,
                &[(0, 1), (1, 0), (2, 2), (3, 6), (4, 3), (5, 4), (6, 5)],
            ),
            (
                &[
                    299.1, -0.3, 1e10, 1e10, 1e10, 1e10, -0.7, 199.5, 1e10, 1e10, 1e10, 1e10,
                    199.7, 99.1, 1e10, 1e10, 1e10, 1e10, 199.7, 299.5, 1e10, 1e10, 1e10, 1e10,
                    299.3, 299.7, 1e10, 1e10, 1e10, 1e10, 99.1, 199.5, 1e10, 1e10, 1e10, 1e10,
                ],
                6,
                6,
                &[(0, 1), (1, 0), (2, 5), (3, 2), (4, 4), (5, 3)],
            ),
            (
                &[
                    99.7, 1e10, 1e10, 1e10, 1e10, 1e10, 1e10, 99.1, 1e10, 1e10, 1e10, 1e10, 1e10,
                    1e10, -0.5, 1e10, 1e10, 1e10, 1e10, 1e10, 1e10, -0.5, 1e10, 1e10, 1e10, 1e10,
                    1e10, 1e10, 199.3, 1e10, 1e10, 1e10, 1e10, 1e10, 1e10, -0.9, 1e10, 1e10, 1e10,
                    1e10, 1e10, 1e10, 199.7, 1e10, 1e10, 1e10, 1e10, 1e10, 1e10,
                ],
                7,
                7,
                &[(0, 3), (1, 2), (2, 1), (3, 6), (4, 4), (5, 0), (6, 5)],
            ),
        ];
        for (cost, rows, cols, want) in cases {
            assert_eq!(assign(cost, rows, cols).unwrap(), want.to_vec(), "{cost:?}");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            assign(&[1.0, 2.0, 3.0], 2, 2),
            Err(MunkresError::Shape { .. })
        ));
        assert!(matches!(
            assign(&[1.0, f64::NAN, 3.0, 4.0], 2, 2),
            Err(MunkresError::NonFinite { row: 0, col: 1, .. })
        ));
        assert_eq!(assign(&[], 0, 3).unwrap(), vec![]);
    }
}
