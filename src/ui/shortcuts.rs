//! The keyboard shortcuts, as the help window lists them (handled in [`super::keys`]).

/// `(keys, what they do)`, shown in the help window.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Left / Right", "previous / next stage"),
    ("P", "play through the stages"),
    ("Space", "play / pause (video, folder, webcam: freeze)"),
    (", / .", "previous / next frame"),
    ("J / Shift+J", "next / previous joint"),
    ("M", "max over joints"),
    (
        "Shift+M",
        "mirror the view (selfie view; joint names stay right)",
    ),
    ("G", "all joints as a grid"),
    ("D", "belief map / stage difference"),
    (
        "E",
        "tag map on / off (associative-embedding models: HigherHRNet)",
    ),
    (
        "I",
        "feature maps on / off (energy of the branches / layers a model exposes)",
    ),
    ("[ / ]", "previous / next feature map"),
    ("X", "compare stages: off / side by side / flicker"),
    ("H", "heatmap on / off"),
    ("K", "skeleton on / off"),
    ("V", "part-affinity field vectors on / off"),
    (
        "R",
        "receptive field of the cell under the pointer on / off",
    ),
    ("A", "peak trajectories across stages on / off"),
    (
        "Click",
        "single-person models: set the person centre (top-down: pick the person)",
    ),
    (
        "C",
        "single-person models: back to the image centre / largest person",
    ),
    (
        "Shift+drag",
        "single-person models: draw a person box; the model runs on it (box mode)",
    ),
    (
        "B",
        "single-person models: whole frame / top-down person boxes / the drawn box",
    ),
    ("Shift+B", "clear the drawn person box"),
    (
        "L",
        "temporal models (UniPose-LSTM): memory on / off (without memory = single-frame)",
    ),
    ("F", "fit the image (also double-click)"),
    ("T", "frame rates and timings on / off"),
    ("O", "open an image or video"),
    ("Ctrl+S", "save the frame as shown"),
    (
        "Ctrl+E",
        "evaluation window (accuracy on an annotated dataset)",
    ),
    ("F1", "this help"),
];
