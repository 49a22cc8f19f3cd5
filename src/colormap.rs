//! Named colormaps for turning scalar values in `[0, 1]` into RGB colours on the CPU.
//!
//! Every map is deliberately small so the GPU viewer can port it to WGSL verbatim:
//!
//! * **Viridis, Inferno, Magma, Turbo, Coolwarm**: 33 RGB knots (`u8`) at `t = i / 32`,
//!   linearly interpolated. The knots are a least-squares fit of the piecewise-linear curve
//!   to matplotlib's 256-entry lookup tables (Coolwarm: Moreland's 33-point table, which is
//!   what matplotlib interpolates), so every entry of matplotlib's table is reproduced within
//!   about 1 level per 8-bit channel. (The popular polynomial fits were measured and
//!   rejected: Google's Turbo polynomial is off by up to 22 levels near `t = 0.5` and
//!   `t = 1`, the degree-6 Inferno fit by up to 8.)
//! * **Jet**: matplotlib's exact piecewise-linear segment definition.
//!
//! WGSL port: `let p = clamp(t, 0.0, 1.0) * 32.0; let i = min(u32(p), 31u);
//! let c = mix(knots[i], knots[i + 1u], p - f32(i)) / 255.0;` (NaN must map to `t = 0`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A named colormap. Serialised as its lower-case name (`"turbo"`, `"coolwarm"`, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Perceptually uniform, blue-green-yellow (matplotlib's default).
    Viridis,
    /// Perceptually uniform, black-red-yellow-white.
    Inferno,
    /// Google's improved rainbow: high contrast, dark blue to dark red.
    #[default]
    Turbo,
    /// The classic MATLAB/OpenPose rainbow, dark blue to dark red.
    Jet,
    /// Perceptually uniform, black-purple-orange-white.
    Magma,
    /// Moreland's diverging map: blue, neutral grey at 0.5, red.
    Coolwarm,
}

/// A name that [`Colormap::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown colormap {0:?} (expected one of: viridis, inferno, turbo, jet, magma, coolwarm)")]
pub struct UnknownColormap(pub String);

type Table = [[u8; 3]; 33];

const ALL: [Colormap; 6] = [
    Colormap::Viridis,
    Colormap::Inferno,
    Colormap::Turbo,
    Colormap::Jet,
    Colormap::Magma,
    Colormap::Coolwarm,
];

impl Colormap {
    /// Every colormap, in declaration order.
    pub fn all() -> &'static [Colormap] {
        &ALL
    }

    /// Lower-case name, as accepted by [`FromStr`] and used by serde.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Inferno => "inferno",
            Colormap::Turbo => "turbo",
            Colormap::Jet => "jet",
            Colormap::Magma => "magma",
            Colormap::Coolwarm => "coolwarm",
        }
    }

    /// `true` for maps whose midpoint is a neutral centre (signed data), i.e. Coolwarm.
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::Coolwarm)
    }

    /// Colour at `t` as 8-bit sRGB. `t` is clamped to `[0, 1]`; NaN is treated as 0.
    pub fn rgb(self, t: f32) -> [u8; 3] {
        // Values lie in [0, 1] by construction; `as` saturates in any case.
        self.rgb_unit(t).map(|c| (c * 255.0).round() as u8)
    }

    /// Colour at `t` with channels in `[0, 1]` (sRGB, not linearised). Same clamping as
    /// [`Colormap::rgb`].
    pub fn rgb_unit(self, t: f32) -> [f32; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        match self {
            Colormap::Viridis => knots(&VIRIDIS, t),
            Colormap::Inferno => knots(&INFERNO, t),
            Colormap::Turbo => knots(&TURBO, t),
            Colormap::Magma => knots(&MAGMA, t),
            Colormap::Coolwarm => knots(&COOLWARM, t),
            Colormap::Jet => [ramp(&JET_R, t), ramp(&JET_G, t), ramp(&JET_B, t)],
        }
    }
}

/// How a single-channel map becomes an overlay: colormap, opacity, value range, gamma.
/// Shared by the CPU exporter (`export::annotate`) and the GPU overlay (`render`), so both
/// read a style the same way.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverlayStyle {
    pub colormap: Colormap,
    /// Alpha of the overlay, `[0, 1]`, the same everywhere the map covers the image.
    pub opacity: f32,
    /// Values mapped to colormap `t = 0` and `t = 1` (clamped outside). A bound that is not
    /// finite is replaced by the map's own finite min / max ([`OverlayStyle::AUTO_RANGE`]
    /// uses both); `lo == hi` maps everything to 0.
    pub range: (f32, f32),
    /// Exponent applied to the normalised value (`t^gamma`); values `< 1` lift faint
    /// responses. Non-positive or non-finite means 1.
    pub gamma: f32,
}

impl OverlayStyle {
    /// A range that follows the map's own finite min..max.
    pub const AUTO_RANGE: (f32, f32) = (f32::NAN, f32::NAN);

    /// The range to use for a map whose finite min..max is `map_range`.
    pub fn resolved_range(&self, map_range: (f32, f32)) -> (f32, f32) {
        let (lo, hi) = self.range;
        (
            if lo.is_finite() { lo } else { map_range.0 },
            if hi.is_finite() { hi } else { map_range.1 },
        )
    }

    /// The gamma to apply (1 for non-positive or non-finite values).
    pub fn effective_gamma(&self) -> f32 {
        if self.gamma.is_finite() && self.gamma > 0.0 {
            self.gamma
        } else {
            1.0
        }
    }
}

impl Default for OverlayStyle {
    /// Turbo at 50 % opacity over `[0, 1]` (belief maps), gamma 1.
    fn default() -> Self {
        Self {
            colormap: Colormap::Turbo,
            opacity: 0.5,
            range: (0.0, 1.0),
            gamma: 1.0,
        }
    }
}

/// Texels per colormap row in [`lookup_table_rgba8`].
pub const LUT_WIDTH: usize = 256;

/// The colormap lookup texture of `shaders/heatmap.wgsl`: one row of [`LUT_WIDTH`] RGBA8
/// texels per colormap, in [`Colormap::all`] order (row index = position in that list),
/// texel `i` holding `rgb(i / (LUT_WIDTH - 1))`. Generated from the CPU definitions, so the
/// GPU overlay and the PNG exporter share one source for every colormap.
pub fn lookup_table_rgba8() -> Vec<u8> {
    let mut out = Vec::with_capacity(ALL.len() * LUT_WIDTH * 4);
    for map in ALL {
        for i in 0..LUT_WIDTH {
            let [r, g, b] = map.rgb(i as f32 / (LUT_WIDTH - 1) as f32);
            out.extend_from_slice(&[r, g, b, 255]);
        }
    }
    out
}

impl Colormap {
    /// This colormap's row in [`lookup_table_rgba8`].
    pub fn lut_row(self) -> u32 {
        ALL.iter().position(|m| *m == self).unwrap_or(0) as u32
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Colormap {
    type Err = UnknownColormap;

    /// Case-insensitive name lookup; surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        ALL.iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownColormap(s.to_string()))
    }
}

/// Linear interpolation between the 33 knots of `table`, `t` already in `[0, 1]`.
fn knots(table: &Table, t: f32) -> [f32; 3] {
    let p = t * 32.0;
    let i = (p as usize).min(31);
    let f = p - i as f32;
    let a = table[i];
    let b = table[i + 1];
    [0, 1, 2].map(|c| (f32::from(a[c]) + (f32::from(b[c]) - f32::from(a[c])) * f) / 255.0)
}

/// Piecewise-linear curve through `(t, value)` points sorted by `t`, `t` in `[0, 1]`.
fn ramp(points: &[(f32, f32)], t: f32) -> f32 {
    let mut prev = (0.0, 0.0);
    for (k, &(x, y)) in points.iter().enumerate() {
        if k > 0 && t <= x {
            let (x0, y0) = prev;
            return y0 + (y - y0) * (t - x0) / (x - x0);
        }
        prev = (x, y);
    }
    prev.1
}

// matplotlib's `_jet_data`.
const JET_R: [(f32, f32); 5] = [
    (0.0, 0.0),
    (0.35, 0.0),
    (0.66, 1.0),
    (0.89, 1.0),
    (1.0, 0.5),
];
const JET_G: [(f32, f32); 6] = [
    (0.0, 0.0),
    (0.125, 0.0),
    (0.375, 1.0),
    (0.64, 1.0),
    (0.91, 0.0),
    (1.0, 0.0),
];
const JET_B: [(f32, f32); 5] = [
    (0.0, 0.5),
    (0.11, 1.0),
    (0.34, 1.0),
    (0.65, 0.0),
    (1.0, 0.0),
];

// 33 knots each at t = i / 32, fitted to matplotlib 3.x's `_cm_listed.py` / `_cm.py`.
#[rustfmt::skip]
const VIRIDIS: Table = [
    [68, 1, 84], [71, 13, 96], [72, 24, 106], [72, 35, 116], [71, 45, 123], [69, 54, 129],
    [66, 64, 134], [63, 73, 137], [59, 82, 139], [55, 90, 141], [51, 99, 141], [47, 106, 142],
    [44, 114, 142], [41, 122, 142], [38, 129, 142], [35, 137, 142], [33, 144, 141], [31, 152, 139],
    [30, 159, 136], [33, 166, 133], [39, 174, 128], [49, 181, 123], [61, 188, 116], [76, 194, 108],
    [92, 201, 99], [110, 206, 88], [129, 212, 76], [150, 216, 64], [171, 220, 50], [192, 223, 36],
    [213, 226, 25], [234, 229, 25], [253, 231, 36],
];

#[rustfmt::skip]
const INFERNO: Table = [
    [0, 0, 3], [3, 3, 18], [10, 7, 36], [21, 11, 55], [33, 12, 74], [46, 10, 91],
    [60, 9, 101], [74, 11, 107], [87, 16, 110], [99, 20, 111], [112, 25, 110], [125, 30, 109],
    [137, 34, 106], [150, 39, 102], [163, 43, 98], [175, 49, 92], [187, 55, 85], [198, 61, 77],
    [209, 69, 69], [219, 79, 60], [228, 89, 50], [235, 101, 40], [241, 113, 30], [246, 127, 20],
    [249, 141, 9], [251, 156, 5], [252, 171, 15], [251, 186, 31], [249, 202, 50], [245, 217, 73],
    [242, 232, 101], [242, 245, 134], [252, 255, 165],
];

#[rustfmt::skip]
const MAGMA: Table = [
    [0, 0, 3], [3, 3, 17], [10, 8, 34], [19, 13, 51], [29, 17, 70], [40, 18, 90],
    [54, 16, 107], [67, 15, 118], [80, 18, 124], [93, 23, 127], [105, 28, 129], [118, 33, 129],
    [130, 38, 130], [143, 42, 129], [156, 46, 127], [169, 50, 125], [182, 55, 122], [195, 59, 117],
    [208, 65, 112], [219, 72, 106], [230, 80, 99], [239, 92, 94], [245, 105, 91], [249, 120, 92],
    [252, 135, 97], [253, 150, 104], [254, 165, 113], [254, 180, 123], [254, 195, 135], [254, 209, 148],
    [253, 224, 161], [252, 238, 176], [252, 253, 191],
];

#[rustfmt::skip]
const TURBO: Table = [
    [49, 18, 60], [58, 42, 116], [64, 64, 162], [69, 86, 199], [71, 107, 228], [71, 127, 247],
    [67, 147, 255], [55, 168, 251], [41, 187, 236], [28, 205, 216], [23, 220, 195], [29, 232, 176],
    [48, 242, 153], [76, 249, 126], [107, 254, 99], [138, 255, 76], [163, 253, 60], [184, 247, 52],
    [204, 237, 52], [222, 224, 55], [237, 208, 58], [248, 192, 58], [253, 174, 53], [254, 152, 44],
    [252, 128, 34], [245, 104, 23], [236, 82, 14], [225, 64, 9], [210, 49, 5], [193, 35, 2],
    [172, 23, 1], [149, 12, 1], [122, 4, 3],
];

#[rustfmt::skip]
const COOLWARM: Table = [
    [59, 76, 192], [68, 90, 204], [77, 104, 215], [87, 117, 225], [98, 130, 234], [108, 142, 241],
    [119, 154, 247], [130, 165, 251], [141, 176, 254], [152, 185, 255], [163, 194, 255], [174, 201, 253],
    [184, 208, 249], [194, 213, 244], [204, 217, 238], [213, 219, 230], [221, 221, 221], [229, 216, 209],
    [236, 211, 197], [241, 204, 185], [245, 196, 173], [247, 187, 160], [247, 177, 148], [247, 166, 135],
    [244, 154, 123], [241, 141, 111], [236, 127, 99], [229, 112, 88], [222, 96, 77], [213, 80, 66],
    [203, 62, 56], [192, 40, 47], [180, 4, 38],
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(got: [u8; 3], want: [u8; 3], tol: i32) -> bool {
        got.iter()
            .zip(want)
            .all(|(&g, w)| (i32::from(g) - i32::from(w)).abs() <= tol)
    }

    /// matplotlib 3.11 `(cmap(t)[:3] * 255).round()` at t = 0, 0.25, 0.5, 0.75, 1.
    const ANCHORS: [(Colormap, [[u8; 3]; 5]); 6] = [
        (
            Colormap::Viridis,
            [
                [68, 1, 84],
                [59, 82, 139],
                [33, 145, 140],
                [94, 201, 98],
                [253, 231, 37],
            ],
        ),
        (
            Colormap::Inferno,
            [
                [0, 0, 4],
                [87, 16, 110],
                [188, 55, 84],
                [249, 142, 9],
                [252, 255, 164],
            ],
        ),
        (
            Colormap::Magma,
            [
                [0, 0, 4],
                [81, 18, 124],
                [183, 55, 121],
                [252, 137, 97],
                [252, 253, 191],
            ],
        ),
        (
            Colormap::Turbo,
            [
                [48, 18, 59],
                [40, 188, 235],
                [164, 252, 60],
                [251, 126, 33],
                [122, 4, 3],
            ],
        ),
        (
            Colormap::Jet,
            [
                [0, 0, 128],
                [0, 128, 255],
                [125, 255, 122],
                [255, 148, 0],
                [128, 0, 0],
            ],
        ),
        (
            Colormap::Coolwarm,
            [
                [59, 76, 192],
                [141, 176, 254],
                [221, 220, 220],
                [244, 152, 122],
                [180, 4, 38],
            ],
        ),
    ];

    #[test]
    fn anchors_match_matplotlib() {
        for (map, want) in ANCHORS {
            for (t, w) in [0.0, 0.25, 0.5, 0.75, 1.0].into_iter().zip(want) {
                let got = map.rgb(t);
                assert!(close(got, w, 6), "{map} at {t}: got {got:?}, want {w:?}");
            }
        }
    }

    #[test]
    fn clamps_and_handles_nan() {
        for &map in Colormap::all() {
            assert_eq!(map.rgb(f32::NAN), map.rgb(0.0), "{map}");
            assert_eq!(map.rgb(-3.0), map.rgb(0.0), "{map}");
            assert_eq!(map.rgb(f32::NEG_INFINITY), map.rgb(0.0), "{map}");
            assert_eq!(map.rgb(7.0), map.rgb(1.0), "{map}");
            assert_eq!(map.rgb(f32::INFINITY), map.rgb(1.0), "{map}");
        }
    }

    #[test]
    fn maps_are_continuous() {
        for &map in Colormap::all() {
            let mut prev = map.rgb(0.0);
            for i in 1..=1000 {
                let c = map.rgb(i as f32 / 1000.0);
                assert!(close(c, prev, 4), "{map} jumps at {i}: {prev:?} -> {c:?}");
                prev = c;
            }
        }
    }

    #[test]
    fn lookup_table_rows_match_the_cpu_colormaps() {
        let lut = lookup_table_rgba8();
        assert_eq!(lut.len(), Colormap::all().len() * LUT_WIDTH * 4);
        for &m in Colormap::all() {
            let row = m.lut_row() as usize;
            for i in [0, 77, 128, LUT_WIDTH - 1] {
                let at = (row * LUT_WIDTH + i) * 4;
                let want = m.rgb(i as f32 / (LUT_WIDTH - 1) as f32);
                assert_eq!(&lut[at..at + 3], &want, "{m} texel {i}");
            }
        }
        assert_eq!(Colormap::Coolwarm.lut_row(), 5);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Colormap::all().len(), 6);
        for &map in Colormap::all() {
            assert_eq!(map.name().parse::<Colormap>(), Ok(map));
            assert_eq!(map.name().to_uppercase().parse::<Colormap>(), Ok(map));
            assert_eq!(map.to_string(), map.name());
        }
        assert_eq!(" CoolWarm ".parse::<Colormap>(), Ok(Colormap::Coolwarm));
        assert!("rainbow".parse::<Colormap>().is_err());
        assert_eq!(Colormap::default(), Colormap::Turbo);
        assert!(Colormap::Coolwarm.is_diverging() && !Colormap::Turbo.is_diverging());
    }

    #[test]
    fn serde_uses_names() {
        let json = serde_json::to_string(&Colormap::Coolwarm).unwrap();
        assert_eq!(json, "\"coolwarm\"");
        let back: Colormap = serde_json::from_str("\"magma\"").unwrap();
        assert_eq!(back, Colormap::Magma);
    }
}
