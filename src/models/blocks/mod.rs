//! Building blocks the networks are made of, on candle tensors in NCHW layout: TF-style
//! convolutions with `SAME` padding and pooling ([`ops`]), convolutions with BatchNorm
//! folded in and ResNet's Bottleneck ([`folded`]), MobileNet-v2 blocks of the mobile
//! networks ([`mobile`]), and the HRNet backbone ([`hrnet_backbone`]). Each picks a CPU
//! kernel from [`crate::kernels`] per layer and keeps candle's ops on other devices.

pub mod folded;
pub mod hrnet_backbone;
pub mod mobile;
pub mod ops;
