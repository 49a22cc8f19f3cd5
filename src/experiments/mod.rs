//! Experiments inside a network, shared by the app and the CLI:
//!
//! - [`intervene`]: edit a stage's belief maps (erase a joint, paint a peak, move CPM's
//!   centre) and re-run the later stages on the edit, with the original run beside it;
//! - [`occlusion`]: slide a grey patch over the network input and record, per stage, how much
//!   a joint's belief drops (the empirical counterpart of the theoretical receptive field);
//! - [`versus`]: two models on the same frame (their keypoints' distances, the difference of
//!   their maps in image space);
//! - [`stability`]: each joint's jitter per stage over a video.
//!
//! Both run on the whole frame, as the pipeline prepares it (single-person models in centre
//! mode; top-down crops and associative-embedding models are refused with a clear error).

pub mod intervene;
pub mod occlusion;
pub mod stability;
pub mod versus;

use crate::models::ModelError;
use crate::pipeline::{Pipeline, PipelineError};

/// Why an experiment could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Edit(#[from] crate::pose::edit::EditError),
    #[error(transparent)]
    Versus(#[from] crate::pose::versus::VersusError),
    #[error(
        "model '{0}' is not run on the whole frame here (top-down crops, a person box or \
         several scales): experiments need the whole frame (person mode `centre`)"
    )]
    NotWholeFrame(String),
    #[error("stage {stage} does not exist: model '{model}' has {stages} stages")]
    Stage {
        model: String,
        stage: usize,
        stages: usize,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("computing '{what}': {source}")]
    Tensor {
        what: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

impl ExperimentError {
    fn tensor(what: &str) -> impl Fn(candle_core::Error) -> ExperimentError + '_ {
        move |source| ExperimentError::Tensor {
            what: what.to_string(),
            source: Box::new(source),
        }
    }
}

/// The whole frame prepared for `pipeline`'s network, or the error saying why not.
fn whole_input(
    pipeline: &Pipeline,
    frame: &crate::source::Frame,
) -> Result<crate::pipeline::WholeInput, ExperimentError> {
    pipeline
        .prepare_whole(frame)?
        .ok_or_else(|| ExperimentError::NotWholeFrame(pipeline.model().id().to_string()))
}
