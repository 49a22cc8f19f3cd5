//! The networks, one file each. A network file describes itself: its paper, its checkpoint
//! names, its configuration read from the weights, its forward pass, and its
//! [`crate::models::PoseNet`] implementation (typed outputs, layer chain for receptive
//! fields, features, recurrent state) with the loader its catalogue entries point to.

pub mod cpm;
pub mod higher_hrnet;
pub mod hrnet;
pub mod mmpose_cpm;
pub mod mmpose_hourglass;
pub mod openpose_mobilenet;
pub mod pefm_cpm;
pub mod pefm_hourglass;
pub mod simple_baseline;
pub mod stacked_hourglass;
pub mod unipose;
pub mod unipose_lstm;
