//! `load_pth` on both `torch.save` container formats: the zip files torch writes for every
//! archive-folder length 1..64 (the 21-character one trips the `zip` crate), torch-written
//! legacy (PyTorch < 1.6) files with views, shared storages and several dtypes, the real
//! MMPose HigherHRNet-W8 checkpoint in both formats, hand-written legacy files for the
//! cases torch no longer writes, and truncated or corrupted legacy files.
//!
//! The small fixtures come from `scripts/make_pth_stem_fixtures.py` (torch 2.15).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use posescope::weights::load_checkpoint;
use posescope::weights::pth::{load_pth, PthCheckpoint, PthOptions, LEGACY_MAGIC};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pth")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(bytes: &[u8], file: &str) -> Result<PthCheckpoint, String> {
    load_pth(bytes, file, &PthOptions::default(), &Device::Cpu).map_err(|e| e.to_string())
}

fn load_path(path: &Path) -> PthCheckpoint {
    let bytes = std::fs::read(path).unwrap();
    load(&bytes, &path.display().to_string())
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()))
}

/// A tensor's values as `f32` bit patterns, row-major.
fn bits(ckpt: &PthCheckpoint, name: &str) -> (Vec<usize>, Vec<u32>) {
    let t = ckpt.store.get_any(name).unwrap();
    assert_eq!(t.dtype(), DType::F32, "{name}");
    let dims = t.dims().to_vec();
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (dims, v.iter().map(|x| x.to_bits()).collect())
}

/// Checks a loaded checkpoint against `expected.json`'s entry (names without `strip`).
fn check_against_expected(ckpt: &PthCheckpoint, want: &Value, strip: &str, file: &str) {
    let tensors = want["tensors"].as_object().unwrap();
    let got_names: BTreeSet<&str> = ckpt.store.names().collect();
    let want_names: BTreeSet<&str> = tensors
        .keys()
        .map(|k| k.strip_prefix(strip).unwrap_or(k))
        .collect();
    assert_eq!(got_names, want_names, "{file}: tensor names");
    for (name, t) in tensors {
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let values: Vec<u32> = t["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v.as_f64().unwrap() as f32).to_bits())
            .collect();
        let (dims, got) = bits(ckpt, name.strip_prefix(strip).unwrap_or(name));
        assert_eq!(dims, shape, "{file}: {name} shape");
        assert_eq!(got, values, "{file}: {name} values");
    }
    let skipped: BTreeSet<&str> = ckpt.skipped.iter().map(|(n, _)| n.as_str()).collect();
    for s in want["skipped"].as_array().unwrap() {
        assert!(
            skipped.contains(s.as_str().unwrap()),
            "{file}: {s} not skipped"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Zip files with every archive-folder length

fn stem_files() -> Vec<(usize, PathBuf)> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(data_dir().join("stems"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().len(), p))
        .collect();
    files.sort();
    files
}

#[test]
fn zip_every_stem_length_1_to_64_loads_with_expected_values() {
    let expected = expected();
    let files = stem_files();
    assert_eq!(
        files.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (1..=64).collect::<Vec<_>>()
    );
    for (n, path) in &files {
        let file = path.file_name().unwrap().to_str().unwrap();
        let ckpt = load_path(path);
        assert!(ckpt.wrapper_path.is_empty());
        check_against_expected(&ckpt, &expected["stems"][file], "", file);
        // The values depend on the stem length, so each file's own data was read.
        let (_, bias) = bits(&ckpt, "conv.bias");
        assert_eq!(f32::from_bits(bias[0]), 0.5 * *n as f32, "{file}");
    }
    // Through the dispatching loader too (the 21-character one).
    let (_, path) = &files[20];
    assert_eq!(path.file_stem().unwrap(), "unipose_lsp_torchinit");
    let store = load_checkpoint(path, &Device::Cpu).unwrap();
    assert_eq!(store.len(), 2);
}

/// The reproduction behind docs/upstream-zip-crate.md: `zip` 9 refuses exactly the file
/// whose folder has 21 characters. If this fails after a `zip` upgrade because no stem is
/// refused any more, the upstream bug is fixed: update that document.
#[test]
fn zip_crate_refuses_only_the_21_character_stem() {
    let mut refused = Vec::new();
    for (n, path) in stem_files() {
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = zip::ZipArchive::new(Cursor::new(bytes)) {
            println!("zip crate refuses {}: {e}", path.display());
            assert!(
                e.to_string().contains("Invalid Central Directory header"),
                "{e}"
            );
            refused.push(n);
        }
    }
    println!("stem lengths the zip crate refuses: {refused:?}");
    assert_eq!(refused, [21]);
}

/// The minimal archive of docs/upstream-zip-crate.md: two stored entries, the first with
/// a 30-byte name and no extra field (a 76-byte central header), then a ZIP64 end record
/// and locator (56 + 20 = 76 bytes) before an end record whose fields are not saturated.
fn minimal_76_byte_archive() -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let entries: [(&str, &[u8]); 2] = [
        ("abcdefghijklmnopqrstu/data.pkl", b"x"),
        ("abcdefghijklmnopqrstu/version", b"3\n"),
    ];
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x2d\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u64;
    let cd_size = central.len() as u64;
    assert_eq!(46 + entries[0].0.len(), 76);
    out.extend_from_slice(&central);
    let end64 = out.len() as u64;
    out.extend_from_slice(b"PK\x06\x06");
    out.extend_from_slice(&44u64.to_le_bytes());
    out.extend_from_slice(&[0x2d, 0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for v in [2u64, 2, cd_size, cd_offset] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"PK\x06\x07\x00\x00\x00\x00");
    out.extend_from_slice(&end64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00");
    out.extend_from_slice(&(cd_size as u32).to_le_bytes());
    out.extend_from_slice(&(cd_offset as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn zip_crate_refuses_a_minimal_archive_with_a_76_byte_first_central_header() {
    let bytes = minimal_76_byte_archive();
    let e = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap_err();
    assert!(
        e.to_string().contains("Invalid Central Directory header"),
        "{e}"
    );
    // Telling it the archive starts at byte 0 avoids the guess that goes wrong.
    let config = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    let mut z = zip::ZipArchive::with_config(config, Cursor::new(bytes)).unwrap();
    assert_eq!(z.len(), 2);
    assert_eq!(
        z.by_index(0).unwrap().name().unwrap(),
        "abcdefghijklmnopqrstu/data.pkl"
    );
}

// ---------------------------------------------------------------------------------------
// torch-written legacy file, and its zip twin

#[test]
fn legacy_torch_file_with_views_dtypes_and_wrapper_matches_zip_twin() {
    let expected = expected();
    let legacy_path = data_dir().join("legacy_wrapped.pth");
    let legacy_bytes = std::fs::read(&legacy_path).unwrap();
    assert!(legacy_bytes.starts_with(LEGACY_MAGIC));
    let legacy = load_path(&legacy_path);
    let zipped = load_path(&data_dir().join("zip_wrapped.pth"));
    for (ckpt, file) in [
        (&legacy, "legacy_wrapped.pth"),
        (&zipped, "zip_wrapped.pth"),
    ] {
        assert_eq!(ckpt.wrapper_path, ["state_dict"], "{file}");
        check_against_expected(ckpt, &expected[file], "module.", file);
        let skipped: Vec<&str> = ckpt.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            skipped,
            ["module.bn.num_batches_tracked", "_metadata"],
            "{file}"
        );
    }
    // The views of one storage: transposed and offset.
    let (_, w) = bits(&legacy, "lin.weight");
    let (_, wt) = bits(&legacy, "lin.weight_t");
    let (_, row1) = bits(&legacy, "lin.row1");
    for i in 0..3 {
        for j in 0..4 {
            assert_eq!(wt[j * 3 + i], w[i * 4 + j]);
        }
    }
    assert_eq!(row1, w[5..8]);
    // Both containers give bit-identical tensors.
    for name in legacy.store.names() {
        assert_eq!(bits(&legacy, name), bits(&zipped, name), "{name}");
    }
    // And the dispatching loader reads the legacy file by its .pth extension.
    assert_eq!(
        load_checkpoint(&legacy_path, &Device::Cpu).unwrap().len(),
        7
    );
}

// ---------------------------------------------------------------------------------------
// The real MMPose checkpoint in both formats

struct W8 {
    dir: PathBuf,
    zip: PathBuf,
    legacy: PathBuf,
}

fn w8() -> Option<W8> {
    let shared = common::shared_dir()?;
    let dir = shared.join("fixtures/posegen-mmpose/higherhrnet_w8_coco_ckpt");
    Some(W8 {
        zip: dir.join("higherhrnet_w8_coco_128x128-aab8d5ee_20261206.pth"),
        legacy: dir.join("higherhrnet_w8_coco_128x128_legacy-1dd7fdc7_20261206.pth"),
        dir,
    })
}

#[test]
fn w8_zip_and_legacy_checkpoints_are_bit_identical() {
    let Some(w8) = w8() else { return };
    let zipped = load_path(&w8.zip);
    let legacy = load_path(&w8.legacy);

    // keys.txt: `key<TAB>dtype<TAB>shape`, in state-dict order.
    let keys = std::fs::read_to_string(w8.dir.join("keys.txt")).unwrap();
    let mut floats = BTreeMap::new();
    let mut ints = BTreeSet::new();
    for line in keys.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 3, "{line}");
        let shape: Vec<usize> = serde_json::from_str(parts[2]).unwrap();
        match parts[1] {
            "float32" => {
                floats.insert(parts[0].to_string(), shape);
            }
            "int64" => {
                assert!(parts[0].ends_with("num_batches_tracked"), "{line}");
                ints.insert(parts[0].to_string());
            }
            other => panic!("unexpected dtype {other}"),
        }
    }
    assert_eq!((floats.len(), ints.len()), (1509, 301));

    let mut values = 0usize;
    let mut max_abs = 0f32;
    for (ckpt, file) in [(&zipped, "zip"), (&legacy, "legacy")] {
        assert_eq!(ckpt.wrapper_path, ["state_dict"], "{file}");
        let names: BTreeSet<&str> = ckpt.store.names().collect();
        assert_eq!(names, floats.keys().map(String::as_str).collect(), "{file}");
        let skipped: BTreeSet<String> = ckpt
            .skipped
            .iter()
            .filter(|(_, why)| why == "int64 tensor")
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(skipped, ints, "{file}");
    }
    for (name, shape) in &floats {
        let (dz, z) = bits(&zipped, name);
        let (dl, l) = bits(&legacy, name);
        assert_eq!(&dz, shape, "{name}");
        assert_eq!(&dl, shape, "{name}");
        for (a, b) in z.iter().zip(&l) {
            max_abs = max_abs.max((f32::from_bits(*a) - f32::from_bits(*b)).abs());
        }
        assert!(z == l, "{name} differs between the zip and legacy files");
        values += z.len();
    }
    assert_eq!(values, 2_166_347);
    println!(
        "W8: {} float tensors ({values} values) bit-identical in both files, max-abs \
         difference {max_abs}; {} int64 skipped",
        floats.len(),
        ints.len()
    );
}

/// Where the legacy W8 file's key-list pickle starts and where the storages start.
fn legacy_boundaries(bytes: &[u8]) -> (usize, usize) {
    let find = |pat: &[u8], from: usize| {
        bytes[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| p + from)
            .unwrap()
    };
    // The object pickle starts at 137 (after magic, version and sys_info); the key list
    // is the next PROTO 2 + EMPTY_LIST, and ends with APPENDS + STOP.
    let keys_at = find(b"\x80\x02]", 138);
    let data_at = find(b"e.", keys_at) + 2;
    // The key list is sorted (by torch's `_legacy_save`), so the first storage is some
    // tensor's; its element count is small.
    let count = u64::from_le_bytes(bytes[data_at..data_at + 8].try_into().unwrap());
    assert!(
        (1..=1 << 20).contains(&count),
        "storage boundary not found ({count})"
    );
    println!("legacy W8: key list at byte {keys_at}, storages from byte {data_at}");
    (keys_at, data_at)
}

/// Runs the loader on a damaged copy: it must not panic, and an error must name the file.
fn must_fail_cleanly(bytes: &[u8], file: &str, what: &str) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| load(bytes, file)));
    match result {
        Err(_) => panic!("{what}: the loader panicked"),
        Ok(Ok(_)) => None,
        Ok(Err(msg)) => {
            assert!(
                msg.contains(file),
                "{what}: error does not name the file: {msg}"
            );
            Some(msg)
        }
    }
}

#[test]
fn w8_legacy_truncated_or_corrupted_gives_errors_naming_the_file() {
    let Some(w8) = w8() else { return };
    let bytes = std::fs::read(&w8.legacy).unwrap();
    let (keys_at, data_at) = legacy_boundaries(&bytes);
    let file = "w8_damaged_legacy.pth";

    // Truncations: every 1/50th, and points inside and around each header pickle.
    let mut cuts: BTreeSet<usize> = (0..50).map(|i| bytes.len() * i / 50).collect();
    cuts.extend([
        1, 2, 3, 4, 13, 14, 15, 16, 20, 21, 22, 60, 136, 137, 138, 139, 200,
    ]);
    cuts.extend((keys_at - 2..keys_at + 4).chain(data_at - 3..data_at + 10));
    cuts.extend([bytes.len() - 1, bytes.len() - 4]);
    let mut messages = BTreeMap::new();
    for &cut in &cuts {
        let msg = must_fail_cleanly(&bytes[..cut], file, &format!("cut at {cut}"))
            .unwrap_or_else(|| panic!("cut at {cut} loads"));
        assert!(msg.contains("legacy"), "{msg}");
        // Group by the message without numbers and storage keys.
        let kind: String = msg
            .split(": ")
            .skip(2)
            .collect::<Vec<_>>()
            .join(": ")
            .split('\'')
            .step_by(2)
            .collect::<String>()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        messages.entry(kind).or_insert(cut);
    }
    println!(
        "{} truncations, all errors; first cut per error kind:",
        cuts.len()
    );
    for (kind, cut) in &messages {
        println!("  {cut:>8}: {kind}");
    }

    // Byte flips in the header pickles (magic, version, sys_info), the start of the
    // object pickle, the key list and the first storage's element count.
    let mut positions: Vec<usize> = (0..300).collect();
    positions.extend(keys_at..keys_at + 40);
    positions.extend(data_at - 2..data_at + 8);
    let (mut errors, mut loaded) = (0, 0);
    for &p in &positions {
        for x in [0xffu8, 0x01] {
            let mut damaged = bytes.clone();
            damaged[p] ^= x;
            match must_fail_cleanly(&damaged, file, &format!("byte {p} ^ {x:#x}")) {
                Some(_) => errors += 1,
                None => loaded += 1,
            }
        }
    }
    println!(
        "{} byte flips: {errors} errors, {loaded} still load (e.g. a changed string or \
         type_sizes value), no panic",
        positions.len() * 2
    );
    // The magic number, the version and the element count are always checked (byte 16,
    // the version pickle's PROTO argument, may change: 3 is as valid as 2 there).
    for p in (0..16).chain(17..21).chain(data_at..data_at + 8) {
        let mut damaged = bytes.clone();
        damaged[p] ^= 0x01;
        assert!(
            must_fail_cleanly(&damaged, file, &format!("byte {p}")).is_some(),
            "flipping byte {p} goes unnoticed"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Hand-written legacy files: what torch no longer writes, and malformed ones

/// Just enough of a protocol-2 pickler for legacy files.
#[derive(Default)]
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        Self(vec![0x80, 0x02])
    }
    fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn s(&mut self, v: &str) -> &mut Self {
        self.op(b"X");
        self.op(&(v.len() as u32).to_le_bytes());
        self.op(v.as_bytes())
    }
    fn int(&mut self, v: u32) -> &mut Self {
        self.op(b"J").op(&v.to_le_bytes())
    }
    fn tuple(&mut self, v: &[usize]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x as u32);
        }
        self.op(b"t")
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    /// `_rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel, view), offset,
    /// size, stride, False, OrderedDict())`.
    #[allow(clippy::too_many_arguments)]
    fn tensor(
        &mut self,
        class: &str,
        key: &str,
        numel: usize,
        view: Option<(&str, usize, usize)>,
        offset: usize,
        size: &[usize],
        stride: &[usize],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        self.op(b"(")
            .s("storage")
            .global("torch", class)
            .s(key)
            .s("cpu");
        self.int(numel as u32);
        match view {
            Some((k, o, n)) => self.op(b"(").s(k).int(o as u32).int(n as u32).op(b"t"),
            None => self.op(b"N"),
        };
        self.op(b"tQ").int(offset as u32).tuple(size).tuple(stride);
        self.op(b"\x89").global("collections", "OrderedDict");
        self.op(b")R").op(b"tR")
    }
    fn end(&mut self) -> Vec<u8> {
        self.op(b".");
        std::mem::take(&mut self.0)
    }
}

/// A legacy file: header pickles, `object`, the key list, then `storages` as
/// (element count, bytes).
fn legacy_file(
    little_endian: bool,
    object: &[u8],
    keys: &[&str],
    storages: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let mut b = LEGACY_MAGIC.to_vec();
    b.push(b'.');
    b.extend(P::new().op(b"M\xe9\x03").end());
    let mut info = P::new();
    info.op(b"}(")
        .s("protocol_version")
        .op(b"M\xe9\x03")
        .s("little_endian");
    info.op(if little_endian { b"\x88" } else { b"\x89" });
    info.s("type_sizes")
        .op(b"}(")
        .s("short")
        .op(b"K\x02")
        .s("int")
        .op(b"K\x04");
    info.s("long").op(b"K\x04u").op(b"u");
    b.extend(info.end());
    b.extend_from_slice(object);
    let mut list = P::new();
    list.op(b"](");
    for k in keys {
        list.s(k);
    }
    b.extend(list.op(b"e").end());
    for (count, data) in storages {
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(data);
    }
    b
}

fn f32s(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(f32::to_le_bytes).collect()
}

#[test]
fn legacy_hand_written_storage_views_and_malformed_files() {
    // Root storage '7' of 10 floats 0..9; 'v' reads the view (offset 2, 6 elements) at
    // offset 1 with size [2, 2] and stride [1, 2]: view[1 + i + 2j] = 3 + i + 2j.
    let root = f32s((0..10).map(|i| i as f32));
    let object = |view: (&str, usize, usize), key_in_pid: &str| {
        let mut p = P::new();
        p.op(b"}(").s("module.v");
        p.tensor(
            "FloatStorage",
            key_in_pid,
            10,
            Some(view),
            1,
            &[2, 2],
            &[1, 2],
        );
        p.s("module.w");
        p.tensor("FloatStorage", key_in_pid, 10, None, 0, &[10], &[1]);
        p.op(b"u").end()
    };
    let good_object = object(("140", 2, 6), "7");
    let good = legacy_file(true, &good_object, &["7"], &[(10, root.clone())]);
    let ckpt = load(&good, "views.pth").unwrap();
    let (dims, v) = bits(&ckpt, "v");
    assert_eq!(dims, [2, 2]);
    let v: Vec<f32> = v.into_iter().map(f32::from_bits).collect();
    assert_eq!(v, [3.0, 5.0, 4.0, 6.0]);
    assert_eq!(bits(&ckpt, "w").1.len(), 10);
    // Trailing bytes after the last storage are ignored, as torch does.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(load(&trailing, "t.pth").is_ok());

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "view past the root storage",
            legacy_file(
                true,
                &object(("140", 6, 6), "7"),
                &["7"],
                &[(10, root.clone())],
            ),
            "lies outside storage",
        ),
        (
            "big-endian",
            legacy_file(false, &good_object, &["7"], &[(10, root.clone())]),
            "big-endian",
        ),
        (
            "element count differs",
            legacy_file(true, &good_object, &["7"], &[(11, root.clone())]),
            "holds 11 elements, the pickle says 10",
        ),
        (
            "huge element count",
            legacy_file(true, &good_object, &["7"], &[(u64::MAX, root.clone())]),
            "the pickle says 10",
        ),
        (
            "storage short",
            legacy_file(true, &good_object, &["7"], &[(10, root[..36].to_vec())]),
            "truncated",
        ),
        (
            "key listed but unused",
            legacy_file(
                true,
                &good_object,
                &["7", "8"],
                &[(10, root.clone()), (1, vec![0; 4])],
            ),
            "'8' (2 of 2) is listed but no tensor uses it",
        ),
        (
            "key listed twice",
            legacy_file(
                true,
                &good_object,
                &["7", "7"],
                &[(10, root.clone()), (10, root.clone())],
            ),
            "listed twice",
        ),
        (
            "used storage not listed",
            legacy_file(true, &good_object, &[], &[]),
            "not in the file's storage key list",
        ),
        (
            "Python 2 string opcode",
            legacy_file(true, b"\x80\x02U\x01a.", &[], &[]),
            "unsupported pickle opcode 0x55 'U'",
        ),
    ];
    for (what, bytes, want) in cases {
        let msg =
            must_fail_cleanly(&bytes, "hand.pth", what).unwrap_or_else(|| panic!("{what}: loads"));
        assert!(
            msg.contains(want) && msg.contains("legacy"),
            "{what}: {msg}"
        );
    }

    // The same magic under pickle protocol 4.
    let mut p4 = good.clone();
    p4[1] = 4;
    let msg = load(&p4, "p4.pth").unwrap_err();
    assert!(msg.contains("pickle protocol 4"), "{msg}");
}
