//! Re-running the paper's CPM from an edited stage (see [`Resumable`]).

use candle_core::{Result as CResult, Tensor};

use super::{pool, Cpm};
use crate::models::net::{
    edited_input, input_hw, numbered_stages, stage_label, Resumable, RunOptions, RunOutput,
    RunTensors, StageContext, StageEdit, StageOutput, StageTensors,
};

/// Every stage ≥ 2 reads the image features, the previous stage's beliefs and the pooled
/// centre map: the context is the features (`features[0]`), the pooled centre map
/// (`features[1]`) and the centre; an edit may move the centre for the later stages.
impl Resumable for Cpm {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let (h, w) = input_hw(input)?;
        let c = options.center_or_middle((w, h));
        let center = self.center_for((h, w), 1, c)?;
        let (out, times) = self.forward_profiled(input, &center)?;
        let mut context = StageContext::new(
            vec![out.pool3_stage2.clone(), out.pool_center.clone()],
            &out.stages,
            (h, w),
        );
        context.center = Some(c);
        let run = RunTensors::stages(numbered_stages(&out.stages, stage_label), times).fetch()?;
        Ok((run, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let features = context.feature(0)?;
        let pool_center = match edit.center {
            Some(c) => pool(&self.center_for(context.input_hw, 1, c)?, self.center_pool)?,
            None => context.feature(1)?.clone(),
        };
        let mut prev = edited_input(context, edit, features.device())?;
        let mut out = Vec::new();
        // Stage t (0-based) is stage 1 or `self.stages[t - 1]`.
        for t in edit.stage + 1..=self.stages.len() {
            prev = self.later_stage(t - 1, features, &prev, &pool_center)?;
            out.push(StageTensors::heatmaps(
                stage_label(t),
                format!("stage{}", t + 1),
                &prev,
            ));
        }
        // Every re-run stage in one device→host copy.
        Ok(RunTensors::stages(out, Vec::new()).fetch()?.stages)
    }

    fn moves_center(&self) -> bool {
        true
    }
}
