//! Networks and the loaded-model handle.
//!
//! - [`nets`]: one file per network, each describing itself (checkpoint names, config from
//!   the weights, forward pass, [`PoseNet`] implementation, its [`Architecture`]);
//! - [`blocks`]: layers shared by several networks; the CPU kernels are in
//!   [`crate::kernels`];
//! - [`catalog`]: every model posescope knows (one [`ModelInfo`] each); [`info`]: what an
//!   entry says; [`sniff`]: which network a file holds, for files opened by path;
//! - [`Model`]: a network on a device, turning a preprocessed input into every stage's maps.

pub mod blocks;
pub mod catalog;
pub(crate) mod checkpoint_shapes;
mod error;
pub mod features;
pub mod info;
pub mod net;
pub mod nets;
pub mod receptive;
pub mod sniff;
pub mod target;
pub mod timing;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use catalog::{CATALOG, DEFAULT_MODEL};
pub use error::ModelError;
pub use features::{CellField, FeatureMap, FeatureTensor};
pub use info::{
    Architecture, Background, Decoding, Loaded, Loader, ModelInfo, WeightsLocation,
    TOPDOWN_BOX_PADDING,
};
pub use net::{
    fetch_maps, to_maps, Memory, PoseNet, Resumable, RunOptions, RunOutput, RunTensors,
    StageContext, StageEdit, StageOutput, StageTensors,
};
pub use nets::{
    cpm, higher_hrnet, hrnet, mmpose_cpm, mmpose_hourglass, openpose_mobilenet, pefm_cpm,
    pefm_hourglass, simple_baseline, stacked_hourglass, unipose, unipose_lstm,
};
pub use receptive::ReceptiveField;
pub use timing::{StepClock, StepTime};

use crate::kernels::flops;
use crate::pose::{JointSet, Maps};
use crate::weights::{self, TensorStore};

/// A model ready to run: its catalogue facts and its network on a device.
#[derive(Clone, Debug)]
pub struct Model {
    id: String,
    info: &'static ModelInfo,
    net: Box<dyn PoseNet>,
    device: Device,
    /// Checkpoint keys the network did not read (see [`Model::unused_keys`]).
    unused_keys: Vec<String>,
}

impl Model {
    /// Loads a catalogue model by id or alias, or a weights file by path (its architecture
    /// taken from its format; for PyTorch / safetensors checkpoints from its keys, see
    /// [`sniff`]). Checkpoint keys the network does not read are kept in
    /// [`Model::unused_keys`].
    pub fn load(name_or_path: &str, device: &Device) -> Result<Model, ModelError> {
        let model = Self::load_inner(name_or_path, device);
        // What loading freed (the file's bytes, the unconverted tensors) goes back to the OS.
        crate::memory::release_freed_memory();
        model
    }

    fn load_inner(name_or_path: &str, device: &Device) -> Result<Model, ModelError> {
        if let Some(info) = catalog::find(name_or_path) {
            let bytes = match info.weights {
                WeightsLocation::Embedded(b) => std::borrow::Cow::Borrowed(b),
                WeightsLocation::File(file) => {
                    let path = info.locate().ok_or_else(|| not_present(info, file))?;
                    std::borrow::Cow::Owned(weights::read_file(Path::new(&path)).map_err(Box::new)?)
                }
            };
            let label = match info.weights {
                WeightsLocation::Embedded(_) => format!("embedded {}", info.file_name),
                WeightsLocation::File(f) => f.to_string(),
            };
            return Self::from_bytes(info, info.id.to_string(), &bytes, &label, device);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(ModelError::Unknown {
                name: name_or_path.to_string(),
                known: CATALOG.iter().map(|m| m.id).collect::<Vec<_>>().join(", "),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let bytes = weights::read_file(path).map_err(Box::new)?;
        let label = path.display().to_string();
        let stem = |info: &ModelInfo| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .map(|s| s.trim_end_matches(".pth"))
                .unwrap_or(info.id)
                .to_string()
        };
        if sniff::is_checkpoint_extension(ext.as_deref()) {
            let store = checkpoint_store(&bytes, &label, device)?;
            let info = sniff::entry_for_checkpoint(&store)
                .ok_or_else(|| ModelError::UnknownFormat(label.clone()))?;
            return Self::from_store(info, stem(info), store, &label, device);
        }
        let info = sniff::entry_for_file(ext.as_deref(), &bytes)
            .ok_or_else(|| ModelError::UnknownFormat(label.clone()))?;
        Self::from_bytes(info, stem(info), &bytes, &label, device)
    }

    /// Loads the catalogue model `id` (or alias) with the weights in `weights` instead of
    /// its own file (`posescope infer --model higherhrnet-w32-512 --weights my.pth`). The
    /// file is read in the architecture's format; for HigherHRNet any width loads (the
    /// configuration comes from the tensor shapes) and MMPose names are mapped; likewise any
    /// width / ResNet depth / stack count for the top-down HRNet, SimpleBaseline and
    /// Stacked Hourglass.
    pub fn load_with_weights(
        id: &str,
        weights: &Path,
        device: &Device,
    ) -> Result<Model, ModelError> {
        let info = catalog::find(id).ok_or_else(|| ModelError::Unknown {
            name: id.to_string(),
            known: CATALOG.iter().map(|m| m.id).collect::<Vec<_>>().join(", "),
        })?;
        let bytes = weights::read_file(weights).map_err(Box::new)?;
        let model = Self::from_bytes(
            info,
            info.id.to_string(),
            &bytes,
            &weights.display().to_string(),
            device,
        );
        drop(bytes);
        crate::memory::release_freed_memory();
        model
    }

    /// Builds a checkpoint-based network from an already read store.
    fn from_store(
        info: &'static ModelInfo,
        id: String,
        store: TensorStore,
        label: &str,
        device: &Device,
    ) -> Result<Model, ModelError> {
        let Loader::Checkpoint(load) = info.architecture.loader else {
            return Err(ModelError::UnknownFormat(label.to_string()));
        };
        let loaded = load(info, store, device).map_err(|source| ModelError::Build {
            id: id.clone(),
            file: label.to_string(),
            source: Box::new(source),
        })?;
        Ok(Model {
            id,
            info,
            net: loaded.net,
            device: device.clone(),
            unused_keys: loaded.unused_keys,
        })
    }

    fn from_bytes(
        info: &'static ModelInfo,
        id: String,
        bytes: &[u8],
        label: &str,
        device: &Device,
    ) -> Result<Model, ModelError> {
        match info.architecture.loader {
            Loader::Bytes(load) => Ok(Model {
                net: load(info, bytes, label, device)?,
                id,
                info,
                device: device.clone(),
                unused_keys: Vec::new(),
            }),
            Loader::Checkpoint(_) => {
                let store = checkpoint_store(bytes, label, device)?;
                Self::from_store(info, id, store, label, device)
            }
        }
    }

    /// The id shown in outputs: the catalogue id, or the weights file's stem.
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn info(&self) -> &'static ModelInfo {
        self.info
    }
    pub fn joints(&self) -> &'static JointSet {
        self.info.joints
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Keys of the checkpoint the network did not read, sorted: worth a note to the user (a
    /// renamed layer, a checkpoint of a bigger variant, an optimizer state), never an error.
    /// Empty for formats that are not read key by key; without the leftovers a network's
    /// loader expects (the Stacked Hourglass's unapplied `skip_layer`s, UniPose's unused
    /// decoder layers).
    pub fn unused_keys(&self) -> &[String] {
        &self.unused_keys
    }

    /// Runs the network on `input` (`[1, 3, H, W]` as the model expects it) and returns every
    /// stage's maps (joints first, then any background channel) and the exposed features on
    /// the CPU, with the time of each step.
    ///
    /// The forward runs on a thread of rayon's pool (the caller waits), so that the CPU
    /// kernels' parallel loops start there instead of being handed from the caller's thread
    /// to the pool and back once per operation: with `RAYON_NUM_THREADS=1` every loop then
    /// runs inline, and the pool's thread no longer spins between the hand-offs. The work it
    /// counts ([`flops`]) is handed back to the caller's thread.
    pub fn run(&self, input: &Tensor, options: &RunOptions) -> Result<RunOutput, ModelError> {
        let (out, work) = rayon::scope(|_| flops::count(|| self.net.run(input, options)));
        flops::add_flops(work);
        let err = |source| ModelError::Run {
            id: self.id.clone(),
            source: Box::new(source),
        };
        let mut out = out.map_err(err)?;
        if self.info.background == Background::First {
            for stage in &mut out.stages {
                let maps = std::mem::replace(&mut stage.heatmaps, Maps::zeros(0, 0, 0));
                stage.heatmaps = background_last(maps).map_err(err)?;
            }
        }
        Ok(out)
    }

    fn run_error(&self) -> impl Fn(candle_core::Error) -> ModelError + '_ {
        |source| ModelError::Run {
            id: self.id.clone(),
            source: Box::new(source),
        }
    }

    /// Whether the network can re-run its later stages on edited maps (see
    /// [`Model::resume_from`]).
    pub fn can_resume(&self) -> bool {
        self.net.resumable().is_some()
    }

    /// Whether an intervention may move the network's centre map (CPM).
    pub fn moves_center(&self) -> bool {
        self.net.resumable().is_some_and(|r| r.moves_center())
    }

    fn resumable(&self) -> Result<&dyn Resumable, ModelError> {
        self.net
            .resumable()
            .ok_or_else(|| ModelError::NotResumable {
                id: self.id.clone(),
                name: self.info.architecture.name.to_string(),
            })
    }

    /// [`Model::run`], also keeping what the later stages read, for [`Model::resume_from`].
    /// An error naming the model for networks that cannot resume.
    pub fn run_keeping_context(
        &self,
        input: &Tensor,
        options: &RunOptions,
    ) -> Result<(RunOutput, StageContext), ModelError> {
        let net = self.resumable()?;
        let (mut out, context) =
            rayon::scope(|_| net.run_keeping_context(input, options)).map_err(self.run_error())?;
        if self.info.background == Background::First {
            for stage in &mut out.stages {
                let maps = std::mem::replace(&mut stage.heatmaps, Maps::zeros(0, 0, 0));
                stage.heatmaps = background_last(maps).map_err(self.run_error())?;
            }
        }
        Ok((out, context))
    }

    /// Re-runs the stages after `stage` (0-based) on `heatmaps`, that stage's maps after an
    /// edit (joints first, then any background channel, as [`Model::run`] returns them),
    /// with the centre moved to `center` (network-input pixels; networks with a centre map
    /// only). Returns stages `stage + 1 …` as [`Model::run`] does.
    pub fn resume_from(
        &self,
        context: &StageContext,
        stage: usize,
        heatmaps: &Maps,
        center: Option<(f64, f64)>,
    ) -> Result<Vec<StageOutput>, ModelError> {
        let net = self.resumable()?;
        if center.is_some() && !net.moves_center() {
            return Err(self.run_error()(candle_core::Error::Msg(
                "the network has no centre map to move".into(),
            )));
        }
        let first = self.info.background == Background::First;
        let own = if first {
            background_first(heatmaps.clone()).map_err(self.run_error())?
        } else {
            heatmaps.clone()
        };
        let edit = StageEdit {
            stage,
            heatmaps: &own,
            center,
        };
        let mut out =
            rayon::scope(|_| net.resume_from(context, &edit)).map_err(self.run_error())?;
        if first {
            for s in &mut out {
                let maps = std::mem::replace(&mut s.heatmaps, Maps::zeros(0, 0, 0));
                s.heatmaps = background_last(maps).map_err(self.run_error())?;
            }
        }
        Ok(out)
    }

    /// Every stage's heatmaps for a batch of inputs `[N, 3, H, W]`, `[N, K, h, w]` each on the
    /// device, joints first (as [`Model::run`] orders them); `Ok(None)` for networks that run
    /// one image at a time.
    pub fn heatmaps_batch(
        &self,
        input: &Tensor,
        options: &RunOptions,
    ) -> Result<Option<Vec<Tensor>>, ModelError> {
        let out =
            rayon::scope(|_| self.net.heatmaps_batch(input, options)).map_err(self.run_error())?;
        let Some(stages) = out else { return Ok(None) };
        if self.info.background != Background::First {
            return Ok(Some(stages));
        }
        stages
            .into_iter()
            .map(|t| {
                let k = t.dim(1)?;
                if k < 2 {
                    return Ok(t);
                }
                Tensor::cat(&[t.narrow(1, 1, k - 1)?, t.narrow(1, 0, 1)?], 1)
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map(Some)
            .map_err(self.run_error())
    }

    /// Whether the network takes a person-centre map (CPM, UniPose-LSTM).
    pub fn takes_center(&self) -> bool {
        self.net.takes_center()
    }

    /// Whether the network carries a state from frame to frame (UniPose-LSTM): see
    /// [`RunOptions::memory`].
    pub fn is_temporal(&self) -> bool {
        self.net.is_temporal()
    }

    /// The theoretical receptive field of every stage's map cells for an input of
    /// `(width, height)` pixels, `(along x, along y)`, computed from the network's layer list.
    pub fn receptive_fields(
        &self,
        (width, height): (u32, u32),
    ) -> Vec<(ReceptiveField, ReceptiveField)> {
        self.net.receptive_fields((width as usize, height as usize))
    }
}

/// The `NotPresent` error for a catalogue entry whose file `file` is in no model directory,
/// with how to supply it.
fn not_present(info: &ModelInfo, file: &str) -> ModelError {
    let supply = "pass the file with `--weights <file>` (CLI, with `--model` naming this \
                  model), open it with \"Open weights…\" in the app, or put it in a \
                  directory listed in POSESCOPE_MODELS";
    let hint = if info.url.is_some() {
        format!(
            "Run `posescope fetch {}` to download it, or {supply}.",
            info.id
        )
    } else {
        format!(
            "It cannot be downloaded automatically; get it by hand (see `posescope models` \
             for where it is published), then {supply}."
        )
    };
    ModelError::NotPresent {
        id: info.id.to_string(),
        file: file.to_string(),
        dirs: catalog::model_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint,
    }
}

/// Reads a PyTorch / safetensors checkpoint into a store. A `model.module.` or `module.`
/// prefix on every key (what `nn.DataParallel` adds; `.pth` files have it stripped by the
/// reader already) is removed from safetensors files too.
fn checkpoint_store(bytes: &[u8], label: &str, device: &Device) -> Result<TensorStore, ModelError> {
    let store = weights::load_checkpoint_bytes(bytes, label, device).map_err(Box::new)?;
    let prefix = ["model.module.", "module."]
        .into_iter()
        .find(|p| !store.is_empty() && store.names().all(|k| k.starts_with(p)));
    Ok(match prefix {
        Some(p) => {
            let file = store.file().to_string();
            let tensors = store
                .into_tensors()
                .into_iter()
                .map(|(k, t)| (k[p.len()..].to_string(), t))
                .collect();
            TensorStore::new(file, tensors)
        }
        None => store,
    })
}

/// Moves a trailing background channel to the front (the inverse of [`background_last`]).
fn background_first(maps: Maps) -> candle_core::Result<Maps> {
    if maps.channels() < 2 {
        return Ok(maps);
    }
    let (k, h, w) = (maps.channels(), maps.height(), maps.width());
    let mut data = maps.into_vec();
    data.rotate_right(h * w);
    Maps::new(data, k, h, w).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// Moves a leading background channel to the end (joints first, as [`StageOutput`] says).
fn background_last(maps: Maps) -> candle_core::Result<Maps> {
    if maps.channels() < 2 {
        return Ok(maps);
    }
    let (k, h, w) = (maps.channels(), maps.height(), maps.width());
    let mut data = maps.into_vec();
    data.rotate_left(h * w);
    Maps::new(data, k, h, w).map_err(|e| candle_core::Error::Msg(e.to_string()))
}
