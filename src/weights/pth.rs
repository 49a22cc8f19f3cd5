//! Reader for PyTorch checkpoints (`.pth`, `.pt`, `.pth.tar`) written by `torch.save`, in
//! both of its container formats.
//!
//! **Zip format** (PyTorch >= 1.6, the default since): a zip archive (entries stored, not
//! compressed) whose entries all sit under one folder `<archive>/` (torch names it after
//! the file's stem, so a loader must not derive it from the file name):
//! - `<archive>/data.pkl`: the pickled object (protocol 2). For a `state_dict` that is a
//!   `collections.OrderedDict` (with a `_metadata` attribute set by `BUILD`) mapping names
//!   to tensors; each tensor is a call `torch._utils._rebuild_tensor_v2(storage,
//!   storage_offset, size, stride, requires_grad, backward_hooks[, metadata])` whose
//!   `storage` is a persistent id `('storage', torch.FloatStorage, key, location, numel)`;
//! - `<archive>/data/<key>`: the raw bytes of each storage;
//! - `<archive>/byteorder` (`little` or `big`; absent in older files, meaning little),
//!   `<archive>/version`, and a few bookkeeping entries this reader ignores.
//!
//! The archive is read in place by a minimal reader of its own (`zip` submodule), not
//! the `zip` crate, which refuses some valid torch files (`docs/upstream-zip-crate.md`).
//!
//! **Legacy format** (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`):
//! several pickles back to back (magic number, protocol version, `sys_info`, the object,
//! the list of storage keys) followed by the raw storages; see the `legacy` submodule.
//! Its persistent ids are 6-tuples whose last element may describe a storage view.
//! Files written on big-endian machines are refused.
//!
//! The pickles are decoded by candle's `candle_core::pickle::Stack`, after a dry run
//! (`scan` submodule) that finds where each pickle ends and bounds every length, the
//! nesting depth and the memory candle's copies would take. Everything after that
//! (finding the state dict, reading storages, offsets and strides, dtypes) is done here,
//! with every index and length checked. Unlike `candle_core::pickle::read_all` this
//! handles non-contiguous strides, shares storages between views, names the file in
//! every error, and never panics on malformed input.
//!
//! What [`load_pth`] returns: a [`TensorStore`] of `f32` tensors. `float16`, `bfloat16`
//! and `float64` storages are converted to `f32`; integer and bool tensors (BatchNorm's
//! `num_batches_tracked`) are skipped and listed in [`PthCheckpoint::skipped`]. Wrappers
//! and prefixes are handled as [`PthOptions`] says.
//!
//! Not supported: TorchScript archives (`torch.jit.save`), recognised and reported with
//! a clear error; legacy files written with a pickle protocol other than 2 or from
//! Python 2 (string opcodes candle does not read); compressed zip entries.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use super::{TensorStore, WeightsError};

mod legacy;
mod scan;
mod zip;

/// The name of this format in error messages.
pub const FORMAT: &str = "PyTorch checkpoint (.pth)";

/// The start of a zip archive's first local file header.
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The start of a legacy (pre-1.6) `torch.save` file: pickle protocol 2, then the magic
/// number 0x1950a86a20f9469cfc6c as a 10-byte LONG1.
pub const LEGACY_MAGIC: &[u8] = &[
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// `data.pkl` larger than this is refused (a state dict's pickle is a few MB at most).
const MAX_PICKLE_BYTES: u64 = 1 << 30;

/// A tensor with more elements than its storage (zero or overlapping strides) may have at
/// most this many.
const MAX_EXPANDED_ELEMENTS: usize = 1 << 24;

/// How to find the state dict in a checkpoint and how to name its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PthOptions {
    /// When the pickled object is a dict without tensors at its top level, the first of
    /// these keys whose value is a dict is taken as the state dict (searched up to three
    /// levels deep, e.g. `{"model": {"state_dict": ...}}`). Default: `state_dict`,
    /// `model_state_dict`, `model`.
    pub wrapper_keys: Vec<String>,
    /// Prefixes removed from tensor names, the first that matches (so list longer ones
    /// first). Default: `model.module.`, `module.` (what `nn.DataParallel` and
    /// `DistributedDataParallel` add). Two names that become equal are an error.
    pub strip_prefixes: Vec<String>,
}

impl Default for PthOptions {
    fn default() -> Self {
        Self {
            wrapper_keys: ["state_dict", "model_state_dict", "model"]
                .map(String::from)
                .to_vec(),
            strip_prefixes: ["model.module.", "module."].map(String::from).to_vec(),
        }
    }
}

/// A loaded checkpoint: the float tensors and what was left out.
#[derive(Debug)]
pub struct PthCheckpoint {
    /// Float tensors as `f32`, under their (prefix-stripped) names.
    pub store: TensorStore,
    /// Entries that are not float tensors (`num_batches_tracked` and other integer
    /// buffers), with the reason, under their original names.
    pub skipped: Vec<(String, String)>,
    /// The wrapper keys followed to reach the state dict (empty if it was the top level).
    pub wrapper_path: Vec<String>,
}

/// Reads a PyTorch checkpoint (zip or legacy format) held in `bytes` into `f32` tensors
/// on `device`. `file` names the source in errors.
pub fn load_pth(
    bytes: &[u8],
    file: &str,
    options: &PthOptions,
    device: &Device,
) -> Result<PthCheckpoint, WeightsError> {
    let is_legacy = bytes.starts_with(LEGACY_MAGIC);
    let err = |message: String| WeightsError::Format {
        file: file.to_string(),
        format: FORMAT,
        message: if is_legacy {
            format!("legacy torch.save format (PyTorch < 1.6): {message}")
        } else {
            message
        },
    };
    let (object, mut storages) = if is_legacy {
        let legacy = legacy::read(bytes).map_err(err)?;
        (legacy.object, Storages::Legacy(legacy.storages))
    } else if bytes.starts_with(ZIP_MAGIC) {
        let mut archive = Archive::open(bytes).map_err(err)?;
        let pickle_name = archive.pickle_name();
        let pickle = archive.read_pickle().map_err(err)?;
        let object = scan::scan(pickle, 0)
            .and_then(|end| unpickle(&pickle[..end]))
            .map_err(|e| err(format!("{pickle_name}: {e}")))?;
        (object, Storages::Zip(archive))
    } else if bytes.len() >= LEGACY_MAGIC.len()
        && bytes[0] == 0x80
        && bytes[2..LEGACY_MAGIC.len()] == LEGACY_MAGIC[2..]
    {
        return Err(err(format!(
            "this is the legacy (PyTorch < 1.6) torch.save format written with pickle \
             protocol {}; only protocol 2 (torch.save's default) is supported: re-save it \
             with torch.save(torch.load(path), new_path)",
            bytes[1]
        )));
    } else {
        return Err(err(
            "not a zip archive (a PyTorch >= 1.6 checkpoint starts with 'PK') nor a legacy \
             torch.save file"
                .into(),
        ));
    };
    let (entries, wrapper_path) = find_state_dict(object, options).map_err(err)?;

    let mut tensors = HashMap::new();
    let mut original_names: HashMap<String, String> = HashMap::new();
    let mut skipped = Vec::new();
    for (key, value) in entries {
        let name = match key {
            Object::Unicode(name) => name,
            other => {
                skipped.push((format!("{other:?}"), "key is not a string".into()));
                continue;
            }
        };
        let tref = match tensor_ref(&value) {
            Ok(Some(t)) => t,
            Ok(None) => {
                skipped.push((name, "not a tensor".into()));
                continue;
            }
            Err(message) => return Err(err(format!("tensor '{name}': {message}"))),
        };
        if !tref.storage.dtype.is_float() {
            skipped.push((name, format!("{} tensor", tref.storage.dtype.name())));
            continue;
        }
        let values = storages
            .get(&tref.storage.key)
            .and_then(|(label, storage, big_endian)| {
                tensor_values(storage, &label, &tref, big_endian)
            })
            .map_err(|message| err(format!("tensor '{name}': {message}")))?;
        let t = Tensor::from_vec(values, tref.size.as_slice(), device).map_err(|source| {
            WeightsError::Tensor {
                file: file.to_string(),
                name: name.clone(),
                source: Box::new(source),
            }
        })?;
        let stripped = strip_prefix(&name, &options.strip_prefixes).to_string();
        if let Some(other) = original_names.insert(stripped.clone(), name.clone()) {
            return Err(err(format!(
                "tensors '{other}' and '{name}' both become '{stripped}' once prefixes \
                 are stripped"
            )));
        }
        tensors.insert(stripped, t);
    }
    if tensors.is_empty() {
        return Err(err("the checkpoint holds no float tensors".into()));
    }
    Ok(PthCheckpoint {
        store: TensorStore::new(file, tensors),
        skipped,
        wrapper_path,
    })
}

/// Removes the first of `prefixes` that `name` starts with.
pub fn strip_prefix<'a>(name: &'a str, prefixes: &[String]) -> &'a str {
    prefixes
        .iter()
        .find_map(|p| name.strip_prefix(p.as_str()))
        .unwrap_or(name)
}

/// Storage element types, from the storage class in the persistent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StorageType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageType {
    fn from_class(class: &str) -> Option<Self> {
        Some(match class {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64 | Self::F16 | Self::BF16)
    }

    fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F64 => "float64",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
            Self::I64 => "int64",
            Self::I32 => "int32",
            Self::I16 => "int16",
            Self::I8 => "int8",
            Self::U8 => "uint8",
            Self::Bool => "bool",
        }
    }

    /// Decodes one element (`bytes.len() == self.size()`) as `f32`.
    fn to_f32(self, bytes: &[u8], big_endian: bool) -> f32 {
        fn arr<const N: usize>(b: &[u8], big_endian: bool) -> [u8; N] {
            let mut a = [0u8; N];
            for (dst, src) in a.iter_mut().zip(b) {
                *dst = *src;
            }
            if big_endian {
                a.reverse();
            }
            a
        }
        match self {
            Self::F32 => f32::from_le_bytes(arr(bytes, big_endian)),
            Self::F64 => f64::from_le_bytes(arr(bytes, big_endian)) as f32,
            Self::F16 => half::f16::from_bits(u16::from_le_bytes(arr(bytes, big_endian))).to_f32(),
            Self::BF16 => {
                half::bf16::from_bits(u16::from_le_bytes(arr(bytes, big_endian))).to_f32()
            }
            // Integer storages never reach here (they are skipped); keep it total anyway.
            _ => f32::NAN,
        }
    }
}

/// A storage as a persistent id describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StorageRef {
    /// The (root) storage's key.
    key: String,
    dtype: StorageType,
    /// Elements in the root storage.
    numel: usize,
    /// Legacy files from PyTorch < 0.4: the tensor's storage is the slice
    /// `(offset, numel)`, in elements, of the root storage.
    view: Option<(usize, usize)>,
}

/// A tensor as the pickle describes it: which storage, where in it, what shape.
#[derive(Debug, Clone)]
struct TensorRef {
    storage: StorageRef,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// Runs candle's pickle machine over one pickle (which [`scan::scan`] has checked).
fn unpickle(bytes: &[u8]) -> Result<Object, String> {
    // The scan rules out the inputs known to make candle's opcode handlers panic; keep
    // containing a panic anyway and report it as a format error.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut stack = Stack::empty();
        let mut reader = Cursor::new(bytes);
        stack.read_loop(&mut reader)?;
        stack.finalize()
    }));
    match result {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(e)) => Err(format!("cannot unpickle: {e}")),
        Err(_) => Err("cannot unpickle: malformed pickle".into()),
    }
}

/// Finds the dict of tensors: the top-level object, or one reached through wrapper keys.
#[allow(clippy::type_complexity)]
fn find_state_dict(
    object: Object,
    options: &PthOptions,
) -> Result<(Vec<(Object, Object)>, Vec<String>), String> {
    let mut path = Vec::new();
    let mut current = object;
    for _ in 0..4 {
        let entries = match current {
            Object::Dict(entries) => entries,
            Object::Build { callable, .. } if is_torchscript(&callable) => {
                return Err("this is a TorchScript archive (torch.jit.save), not a \
                            state dict; save model.state_dict() with torch.save instead"
                    .into())
            }
            other => {
                return Err(format!(
                    "the pickled object is {}, not a dict of tensors",
                    describe(&other)
                ))
            }
        };
        let has_tensors = entries
            .iter()
            .any(|(_, v)| matches!(tensor_ref(v), Ok(Some(_))));
        if has_tensors || path.len() == 3 {
            return Ok((entries, path));
        }
        let keys: Vec<String> = entries
            .iter()
            .filter_map(|(k, _)| match k {
                Object::Unicode(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let wrapper = options.wrapper_keys.iter().find(|w| {
            entries
                .iter()
                .any(|(k, v)| matches!(k, Object::Unicode(s) if s == *w) && is_dict(v))
        });
        let Some(wrapper) = wrapper else {
            return Err(format!(
                "no tensors at the top level{} and none of the wrapper keys {:?}; \
                 the dict's keys are {keys:?}",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" of {}", path.join("/"))
                },
                options.wrapper_keys
            ));
        };
        path.push(wrapper.clone());
        current = entries
            .into_iter()
            .find(|(k, _)| matches!(k, Object::Unicode(s) if s == wrapper))
            .map(|(_, v)| v)
            .unwrap_or(Object::None);
    }
    Err("wrapper dicts nested too deeply".into())
}

fn is_dict(o: &Object) -> bool {
    matches!(o, Object::Dict(_))
}

fn is_torchscript(callable: &Object) -> bool {
    match callable {
        Object::Reduce { callable, .. } => matches!(
            callable.as_ref(),
            Object::Class { module_name, .. } if module_name.starts_with("__torch__")
        ),
        _ => false,
    }
}

fn describe(o: &Object) -> String {
    match o {
        Object::Class {
            module_name,
            class_name,
        } => format!("class {module_name}.{class_name}"),
        Object::Reduce { callable, .. } | Object::Build { callable, .. } => {
            format!("an object built by {}", describe(callable))
        }
        Object::List(_) => "a list".into(),
        Object::Tuple(_) => "a tuple".into(),
        Object::Unicode(_) => "a string".into(),
        Object::None => "None".into(),
        _ => "a scalar".into(),
    }
}

fn class_is(o: &Object, module: &str, class: &str) -> bool {
    matches!(o, Object::Class { module_name, class_name }
        if module_name == module && class_name == class)
}

/// Recognises a pickled tensor. `Ok(None)`: the value is not a tensor (e.g. `_metadata`);
/// `Err`: it is a tensor call whose arguments make no sense.
fn tensor_ref(value: &Object) -> Result<Option<TensorRef>, String> {
    let Object::Reduce { callable, args } = value else {
        return Ok(None);
    };
    let Object::Tuple(args) = args.as_ref() else {
        return Ok(None);
    };
    let callable = callable.as_ref();
    if class_is(callable, "torch._utils", "_rebuild_parameter")
        || class_is(callable, "torch._utils", "_rebuild_parameter_with_state")
    {
        // (data, requires_grad, backward_hooks[, state]): data is the tensor.
        return match args.first() {
            Some(inner) => tensor_ref(inner),
            None => Err("_rebuild_parameter without arguments".into()),
        };
    }
    if class_is(callable, "torch._tensor", "_rebuild_from_type_v2") {
        // (func, type, args, state): func(*args) builds the tensor.
        return match (args.first(), args.get(2)) {
            (Some(func), Some(inner_args)) => tensor_ref(&Object::Reduce {
                callable: Box::new(func.clone()),
                args: Box::new(inner_args.clone()),
            }),
            _ => Err("_rebuild_from_type_v2 with too few arguments".into()),
        };
    }
    if !(class_is(callable, "torch._utils", "_rebuild_tensor_v2")
        || class_is(callable, "torch._utils", "_rebuild_tensor"))
    {
        return Ok(None);
    }
    // (storage, storage_offset, size, stride, ...)
    let (Some(storage), Some(offset), Some(size), Some(stride)) =
        (args.first(), args.get(1), args.get(2), args.get(3))
    else {
        return Err(format!(
            "_rebuild_tensor_v2 has {} arguments, expected at least 4",
            args.len()
        ));
    };
    let storage = storage_ref(storage)?;
    let offset = as_usize(offset).ok_or("storage offset is not a non-negative integer")?;
    let size = as_usize_list(size).ok_or("size is not a tuple of non-negative integers")?;
    let stride = as_usize_list(stride).ok_or("stride is not a tuple of non-negative integers")?;
    if size.len() != stride.len() {
        return Err(format!(
            "size {size:?} and stride {stride:?} have different lengths"
        ));
    }
    Ok(Some(TensorRef {
        storage,
        offset,
        size,
        stride,
    }))
}

/// `('storage', torch.FloatStorage, key, location, numel[, view_metadata])` behind a
/// persistent id (5 parts in zip files, 6 in legacy ones).
fn storage_ref(o: &Object) -> Result<StorageRef, String> {
    let Object::PersistentLoad(id) = o else {
        return Err("the storage is not a persistent id".into());
    };
    let Object::Tuple(parts) = id.as_ref() else {
        return Err("the storage's persistent id is not a tuple".into());
    };
    match (parts.first(), parts.get(1), parts.get(2), parts.get(4)) {
        (
            Some(Object::Unicode(tag)),
            Some(Object::Class { class_name, .. }),
            Some(Object::Unicode(key)),
            Some(numel),
        ) if tag == "storage" && parts.len() <= 6 => {
            let dtype = StorageType::from_class(class_name)
                .ok_or_else(|| format!("unsupported storage type {class_name}"))?;
            let numel = as_usize(numel).ok_or("storage size is not a non-negative integer")?;
            let view = match parts.get(5) {
                None | Some(Object::None) => None,
                Some(Object::Tuple(v)) if v.len() == 3 => {
                    match (as_usize(&v[1]), as_usize(&v[2])) {
                        (Some(offset), Some(len)) => Some((offset, len)),
                        _ => return Err(format!("storage '{key}' has a malformed view {v:?}")),
                    }
                }
                Some(other) => {
                    return Err(format!("storage '{key}' has a malformed view {other:?}"))
                }
            };
            Ok(StorageRef {
                key: key.clone(),
                dtype,
                numel,
                view,
            })
        }
        _ => Err(format!(
            "unexpected storage persistent id with {} parts",
            parts.len()
        )),
    }
}

fn as_usize(o: &Object) -> Option<usize> {
    match o {
        Object::Int(v) => usize::try_from(*v).ok(),
        Object::Long(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn as_usize_list(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(items) | Object::List(items) => items.iter().map(as_usize).collect(),
        _ => None,
    }
}

/// Where the storages' bytes come from.
enum Storages<'a> {
    Zip(Archive<'a>),
    /// Root storage key to bytes (little-endian).
    Legacy(HashMap<String, &'a [u8]>),
}

impl<'a> Storages<'a> {
    /// A root storage's bytes, a label for errors, and whether they are big-endian.
    fn get(&mut self, key: &str) -> Result<(String, &'a [u8], bool), String> {
        match self {
            Self::Zip(archive) => {
                let entry = format!("{}data/{key}", archive.prefix);
                let bytes = archive.zip.read(&entry)?;
                Ok((entry, bytes, archive.big_endian))
            }
            Self::Legacy(storages) => {
                let bytes = storages.get(key).copied().ok_or_else(|| {
                    format!(
                        "storage '{key}' is not in the file's storage key list, so it \
                         has no data"
                    )
                })?;
                Ok((format!("'{key}'"), bytes, false))
            }
        }
    }
}

/// The zip archive, its folder prefix and byte order.
struct Archive<'a> {
    zip: zip::ZipArchive<'a>,
    prefix: String,
    big_endian: bool,
}

impl<'a> Archive<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let mut zip = zip::ZipArchive::open(bytes)?;
        // The pickle is `<prefix>data.pkl`, with `<prefix>` one folder (any name).
        let prefix = zip
            .names()
            .filter_map(|name| name.strip_suffix("data.pkl"))
            .find(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
            .map(str::to_string)
            .ok_or("the zip archive has no data.pkl (not a PyTorch checkpoint)")?;
        let byteorder_name = format!("{prefix}byteorder");
        let big_endian = if zip.contains(&byteorder_name) {
            let raw = zip.read(&byteorder_name)?;
            let s = String::from_utf8_lossy(&raw[..raw.len().min(16)]);
            match s.trim() {
                "little" => false,
                "big" => true,
                other => return Err(format!("{byteorder_name} says '{other}'")),
            }
        } else {
            false
        };
        Ok(Self {
            zip,
            prefix,
            big_endian,
        })
    }

    fn pickle_name(&self) -> String {
        format!("{}data.pkl", self.prefix)
    }

    /// `data.pkl`'s bytes.
    fn read_pickle(&mut self) -> Result<&'a [u8], String> {
        let name = self.pickle_name();
        let declared = self.zip.size(&name).unwrap_or(0);
        if declared > MAX_PICKLE_BYTES {
            return Err(format!("{name} claims {declared} bytes; refusing"));
        }
        self.zip.read(&name)
    }
}

/// The values of one tensor as `f32`, gathered through its offset and strides from the
/// bytes of its root storage (`label` names the storage in errors).
fn tensor_values(
    storage: &[u8],
    label: &str,
    t: &TensorRef,
    big_endian: bool,
) -> Result<Vec<f32>, String> {
    let s = &t.storage;
    let elem = s.dtype.size();
    let needed = s.numel.checked_mul(elem).ok_or("storage size overflows")?;
    if storage.len() < needed {
        return Err(format!(
            "storage {label} holds {} bytes but the pickle says {} {} elements \
             ({needed} bytes)",
            storage.len(),
            s.numel,
            s.dtype.name()
        ));
    }
    // The elements this tensor may address: the view, or the whole storage.
    let (base, available) = s.view.unwrap_or((0, s.numel));
    if base.checked_add(available).is_none_or(|end| end > s.numel) {
        return Err(format!(
            "storage view of {available} elements at element {base} lies outside storage \
             {label} of {} elements",
            s.numel
        ));
    }

    let numel = t
        .size
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("size {:?} overflows", t.size))?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    // The furthest element any index reaches must lie inside the storage (or view).
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
        })
        .ok_or("offset and strides overflow")?;
    if last >= available {
        return Err(format!(
            "offset {} with size {:?} and stride {:?} reaches element {last} of a \
             storage of {available} elements",
            t.offset, t.size, t.stride
        ));
    }
    // Only overlapping (e.g. zero) strides give more elements than the storage holds;
    // bound what such a tensor may make us allocate.
    if numel > available && numel > MAX_EXPANDED_ELEMENTS {
        return Err(format!(
            "size {:?} with stride {:?} has {numel} elements over a storage of \
             {available}; refusing to expand it",
            t.size, t.stride
        ));
    }
    // Every index below is at most `base + last < s.numel`, so `index * elem` fits in
    // `storage`.
    let outside = || format!("element {last} lies outside storage {label}");
    let storage = storage.get(base * elem..needed).ok_or_else(outside)?;
    let dtype = s.dtype;
    let mut out = Vec::with_capacity(numel);
    if is_row_major(&t.size, &t.stride) {
        let bytes = storage
            .get(t.offset * elem..(t.offset + numel) * elem)
            .ok_or_else(outside)?;
        out.extend(
            bytes
                .chunks_exact(elem)
                .map(|c| dtype.to_f32(c, big_endian)),
        );
        return Ok(out);
    }
    // General strided gather, last dimension fastest.
    let mut index = vec![0usize; t.size.len()];
    for _ in 0..numel {
        let pos = index
            .iter()
            .zip(&t.stride)
            .fold(t.offset, |acc, (&i, &s)| acc + i * s);
        let start = pos * elem;
        let bytes = storage.get(start..start + elem).ok_or_else(outside)?;
        out.push(dtype.to_f32(bytes, big_endian));
        for (i, &d) in index.iter_mut().zip(&t.size).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    Ok(out)
}

/// Whether `stride` is the contiguous row-major stride of `size` (size-1 dims ignored).
fn is_row_major(size: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tref(
        view: Option<(usize, usize)>,
        offset: usize,
        size: &[usize],
        stride: &[usize],
    ) -> TensorRef {
        TensorRef {
            storage: StorageRef {
                key: "0".into(),
                dtype: StorageType::F32,
                numel: 10,
                view,
            },
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn tensor_values_follow_views_strides_and_bounds() {
        let storage: Vec<u8> = (0..10).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let get = |t: &TensorRef| tensor_values(&storage, "s", t, false);
        assert_eq!(
            get(&tref(None, 1, &[2, 2], &[1, 2])).unwrap(),
            [1.0, 3.0, 2.0, 4.0]
        );
        assert_eq!(
            get(&tref(Some((4, 6)), 1, &[3], &[1])).unwrap(),
            [5.0, 6.0, 7.0]
        );
        assert_eq!(get(&tref(None, 9, &[3], &[0])).unwrap(), [9.0; 3]);
        assert!(get(&tref(None, 0, &[0, 5], &[5, 1])).unwrap().is_empty());
        let e = get(&tref(Some((4, 6)), 4, &[3], &[1])).unwrap_err();
        assert!(e.contains("reaches element 6 of a storage of 6"), "{e}");
        let e = get(&tref(Some((5, 6)), 0, &[1], &[1])).unwrap_err();
        assert!(e.contains("lies outside storage s"), "{e}");
        let e = get(&tref(None, 0, &[1 << 30], &[0])).unwrap_err();
        assert!(e.contains("refusing to expand"), "{e}");
        let e = get(&tref(None, 0, &[usize::MAX, 2], &[0, 0])).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
        let e = tensor_values(&storage[..39], "s", &tref(None, 0, &[1], &[1]), false).unwrap_err();
        assert!(e.contains("holds 39 bytes"), "{e}");
    }
}
