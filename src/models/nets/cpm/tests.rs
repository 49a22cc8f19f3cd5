//! Tests of [`super`] (`models/nets/cpm.rs`).

#![allow(clippy::unwrap_used)]
use super::*;
use crate::models::receptive::RfKind;

#[test]
fn lsp_stage1_receptive_field_by_hand() {
    let chain = Config::lsp().receptive_chain(1);
    let names: Vec<&str> = chain.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1_stage1",
            "pool1_stage1",
            "conv2_stage1",
            "pool2_stage1",
            "conv3_stage1",
            "pool3_stage1",
            "conv4_stage1",
            "conv5_stage1",
            "conv6_stage1",
            "conv7_stage1"
        ]
    );
    // By hand: 1 +8 (conv1) → 9; +2·1 (pool1) → 11, jump 2; +8·2 → 27; +2·2 → 31,
    // jump 4; +8·4 → 63; +2·4 → 71, jump 8; +4·8 (conv4, 5×5) → 103; +8·8 (conv5) → 167;
    // the 1×1 convs add nothing. Every layer is padded symmetrically: start 0.
    let rf = ReceptiveField::of_chain(&chain);
    assert_eq!(rf.size, 167.0);
    assert_eq!(rf.jump, 8.0);
    assert_eq!(rf.start, 0.0);
    assert!(matches!(
        chain[1].kind,
        RfKind::Window {
            kernel: 3,
            stride: 2,
            pad_before: 1,
            ..
        }
    ));
}

#[test]
fn later_stages_extend_the_previous_chain() {
    let cfg = Config::lsp();
    let c1 = cfg.receptive_chain(1);
    let c2 = cfg.receptive_chain(2);
    assert_eq!(&c2[..c1.len()], &c1[..]);
    assert_eq!(c2.len(), c1.len() + 5);
    // Three 11×11 convs at jump 8: +3·10·8 = 240.
    assert_eq!(ReceptiveField::of_chain(&c2).size, 167.0 + 240.0);
    assert_eq!(cfg.receptive_chain(6).len(), c1.len() + 5 * 5);
    assert!(cfg.receptive_chain(0).is_empty());
    assert!(cfg.receptive_chain(7).is_empty());
    // MPII stage 1: the VGG trunk plus two 1×1 convs.
    let m1 = Config::mpii().receptive_chain(1);
    assert_eq!(m1.len(), 20);
    let rf = ReceptiveField::of_chain(&m1);
    assert_eq!(rf.jump, 8.0);
    // 1 + 2·2 (conv1) + 1·1 (pool1) → 6, jump 2; +2·2·2 → 14; +1·2 → 16, jump 4;
    // +4·2·4 → 48; +1·4 → 52, jump 8; +7·2·8 (conv4_1..conv4_7) → 164.
    assert_eq!(rf.size, 164.0);
}

#[test]
fn center_map_peaks_at_the_centre() {
    let m = center_map(9, 7, 5.0, 2.0, 1.0);
    assert_eq!(m.len(), 63);
    assert_eq!(m[2 * 9 + 5], 1.0);
    assert_eq!(m[2 * 9 + 6], (-0.5f64).exp() as f32);
    // exp(−16/2) ≈ 3.4e-4 < 0.0099 → 0.
    assert_eq!(m[2 * 9 + 1], 0.0);
}

#[test]
fn caffe_pools_round_up_and_average_inside() {
    assert_eq!(
        pool_geometry(5, 2, 2, 0, PoolRounding::Ceil).unwrap(),
        (3, 1)
    );
    assert_eq!(
        pool_geometry(5, 2, 2, 0, PoolRounding::Floor).unwrap(),
        (2, 0)
    );
    assert_eq!(
        pool_geometry(368, 9, 8, 0, PoolRounding::Ceil).unwrap(),
        (46, 1)
    );
    assert_eq!(
        pool_geometry(368, 9, 8, 1, PoolRounding::Floor).unwrap(),
        (46, 0)
    );
    assert_eq!(
        pool_geometry(368, 3, 2, 1, PoolRounding::Floor).unwrap(),
        (184, 0)
    );
    let dev = Device::Cpu;
    let x = Tensor::arange(1f32, 11., &dev)
        .unwrap()
        .reshape((1, 1, 2, 5))
        .unwrap();
    let avg = pool(
        &x,
        LayerKind::AvgPool {
            kernel: 2,
            stride: 2,
            pad: 0,
            rounding: PoolRounding::Ceil,
        },
    )
    .unwrap();
    // Windows [1 2 6 7], [3 4 8 9], [5 10]: the last divides by 2.
    assert_eq!(
        avg.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        vec![4.0, 6.0, 7.5]
    );
    let max = pool(
        &(x.neg().unwrap()),
        LayerKind::MaxPool {
            kernel: 2,
            stride: 2,
            pad: 0,
            rounding: PoolRounding::Ceil,
        },
    )
    .unwrap();
    assert_eq!(
        max.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        vec![-1.0, -3.0, -5.0]
    );
}
