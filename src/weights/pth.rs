//! Reader for PyTorch checkpoints (`.pth`, `.pt`, `.pth.tar`) written by `torch.save` in
//! the zip format (PyTorch ≥ 1.6).
//!
//! Layout of such a file: a zip archive (entries stored, not compressed) whose entries all
//! sit under one folder `<archive>/`:
//! - `<archive>/data.pkl`: the pickled object (protocol 2). For a `state_dict` that is a
//!   `collections.OrderedDict` (with a `_metadata` attribute set by `BUILD`) mapping names
//!   to tensors; each tensor is a call `torch._utils._rebuild_tensor_v2(storage,
//!   storage_offset, size, stride, requires_grad, backward_hooks[, metadata])` whose
//!   `storage` is a persistent id `('storage', torch.FloatStorage, key, location, numel)`;
//! - `<archive>/data/<key>`: the raw bytes of each storage;
//! - `<archive>/byteorder` (`little` or `big`; absent in older files, meaning little),
//!   `<archive>/version`, and a few bookkeeping entries this reader ignores.
//!
//! The pickle itself is decoded by candle's `candle_core::pickle::Stack`; everything after
//! that (finding the state dict, reading storages, offsets and strides, dtypes) is done
//! here, with every index and length checked, and reads the archive once. Unlike
//! `candle_core::pickle::read_all` this handles non-contiguous strides, shares storages
//! between views, names the file in every error, and never panics on malformed input.
//!
//! What [`load_pth`] returns: a [`TensorStore`] of `f32` tensors. `float16`, `bfloat16`
//! and `float64` storages are converted to `f32`; integer and bool tensors (BatchNorm's
//! `num_batches_tracked`) are skipped and listed in [`PthCheckpoint::skipped`]. Wrappers
//! and prefixes are handled as [`PthOptions`] says.
//!
//! Not supported: the legacy (pre-1.6) non-zip `torch.save` format and TorchScript
//! archives; both are recognised and reported with a clear error.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

use super::{TensorStore, WeightsError};

/// The name of this format in error messages.
pub const FORMAT: &str = "PyTorch checkpoint (.pth)";

/// The start of a zip archive's first local file header.
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The start of a legacy (pre-1.6) `torch.save` file: pickle protocol 2, then the magic
/// number 0x1950a86a20f9469cfc6c as a 10-byte LONG1.
const LEGACY_MAGIC: &[u8] = &[
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// `data.pkl` larger than this is refused (a state dict's pickle is a few MB at most).
const MAX_PICKLE_BYTES: u64 = 1 << 30;

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

/// Reads a PyTorch zip checkpoint held in `bytes` into `f32` tensors on `device`.
/// `file` names the source in errors.
pub fn load_pth(
    bytes: &[u8],
    file: &str,
    options: &PthOptions,
    device: &Device,
) -> Result<PthCheckpoint, WeightsError> {
    let err = |message: String| WeightsError::Format {
        file: file.to_string(),
        format: FORMAT,
        message,
    };
    if bytes.starts_with(LEGACY_MAGIC) {
        return Err(err(
            "this is the legacy (PyTorch < 1.6) torch.save format, which is \
             not supported; re-save it with a current PyTorch: \
             torch.save(torch.load(path), new_path)"
                .into(),
        ));
    }
    if !bytes.starts_with(ZIP_MAGIC) {
        return Err(err(
            "not a zip archive (a PyTorch >= 1.6 checkpoint starts with 'PK')".into(),
        ));
    }
    let mut archive = Archive::open(bytes, file).map_err(err)?;
    let pickle_name = archive.pickle_name();
    let object = unpickle(&archive.read_entry(&pickle_name)?)
        .map_err(|e| err(format!("{pickle_name}: {e}")))?;
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
        if !tref.dtype.is_float() {
            skipped.push((name, format!("{} tensor", tref.dtype.name())));
            continue;
        }
        let values = archive.tensor_values(&name, &tref)?;
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

/// A tensor as the pickle describes it: which storage, where in it, what shape.
#[derive(Debug, Clone)]
struct TensorRef {
    key: String,
    dtype: StorageType,
    /// Elements in the storage, as the persistent id says.
    storage_numel: usize,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// Runs candle's pickle machine over `data.pkl`.
fn unpickle(bytes: &[u8]) -> Result<Object, String> {
    // candle's opcode handlers can panic on crafted input (e.g. an over-long LONG1 in a
    // debug build); contain that and report it as a format error.
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
    let (key, dtype, storage_numel) = storage_ref(storage)?;
    let offset = as_usize(offset).ok_or("storage offset is not a non-negative integer")?;
    let size = as_usize_list(size).ok_or("size is not a tuple of non-negative integers")?;
    let stride = as_usize_list(stride).ok_or("stride is not a tuple of non-negative integers")?;
    if size.len() != stride.len() {
        return Err(format!(
            "size {size:?} and stride {stride:?} have different lengths"
        ));
    }
    Ok(Some(TensorRef {
        key,
        dtype,
        storage_numel,
        offset,
        size,
        stride,
    }))
}

/// `('storage', torch.FloatStorage, key, location, numel)` behind a persistent id.
fn storage_ref(o: &Object) -> Result<(String, StorageType, usize), String> {
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
        ) if tag == "storage" => {
            let dtype = StorageType::from_class(class_name)
                .ok_or_else(|| format!("unsupported storage type {class_name}"))?;
            let numel = as_usize(numel).ok_or("storage size is not a non-negative integer")?;
            Ok((key.clone(), dtype, numel))
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

/// The zip archive, its folder prefix, byte order and the storages read so far.
struct Archive<'a> {
    file_label: String,
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    big_endian: bool,
    storages: HashMap<String, Vec<u8>>,
}

impl<'a> Archive<'a> {
    fn open(bytes: &'a [u8], file: &str) -> Result<Self, String> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("not a readable zip archive: {e}"))?;
        // The pickle is `<prefix>data.pkl`, with `<prefix>` one folder (any name).
        let mut prefix = None;
        for name in zip.file_names() {
            let Ok(name) = name else { continue };
            if let Some(p) = name.strip_suffix("data.pkl") {
                if p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1) {
                    prefix = Some(p.to_string());
                    break;
                }
            }
        }
        let prefix = prefix.ok_or("the zip archive has no data.pkl (not a PyTorch checkpoint)")?;
        let mut archive = Self {
            file_label: file.to_string(),
            zip,
            prefix,
            big_endian: false,
            storages: HashMap::new(),
        };
        let byteorder_name = format!("{}byteorder", archive.prefix);
        if let Ok(mut entry) = archive.zip.by_name(&byteorder_name) {
            let mut s = String::new();
            entry
                .by_ref()
                .take(16)
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read {byteorder_name}: {e}"))?;
            archive.big_endian = match s.trim() {
                "little" => false,
                "big" => true,
                other => return Err(format!("{byteorder_name} says '{other}'")),
            };
        }
        Ok(archive)
    }

    fn pickle_name(&self) -> String {
        format!("{}data.pkl", self.prefix)
    }

    /// An entry's bytes, checked against its declared size.
    fn read_entry(&mut self, name: &str) -> Result<Vec<u8>, WeightsError> {
        let file = self.file_label.clone();
        let err = |message: String| WeightsError::Format {
            file: file.clone(),
            format: FORMAT,
            message,
        };
        let mut entry = self
            .zip
            .by_name(name)
            .map_err(|e| err(format!("cannot open archive entry {name}: {e}")))?;
        let declared = entry.size();
        if declared > MAX_PICKLE_BYTES && name.ends_with(".pkl") {
            return Err(err(format!("{name} claims {declared} bytes; refusing")));
        }
        let mut out = Vec::new();
        entry
            .by_ref()
            .take(declared)
            .read_to_end(&mut out)
            .map_err(|e| err(format!("cannot read archive entry {name}: {e}")))?;
        if out.len() as u64 != declared {
            return Err(err(format!(
                "archive entry {name} holds {} bytes, its header says {declared}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// The values of one tensor as `f32`, gathered through its offset and strides.
    fn tensor_values(&mut self, name: &str, t: &TensorRef) -> Result<Vec<f32>, WeightsError> {
        let file = self.file_label.clone();
        let err = |message: String| WeightsError::Format {
            file: file.clone(),
            format: FORMAT,
            message: format!("tensor '{name}': {message}"),
        };
        let elem = t.dtype.size();
        if !self.storages.contains_key(&t.key) {
            let entry = format!("{}data/{}", self.prefix, t.key);
            let bytes = self.read_entry(&entry).map_err(|e| match e {
                WeightsError::Format { message, .. } => err(message),
                other => other,
            })?;
            let needed = t
                .storage_numel
                .checked_mul(elem)
                .ok_or_else(|| err("storage size overflows".into()))?;
            if bytes.len() < needed {
                return Err(err(format!(
                    "storage {entry} holds {} bytes but the pickle says {} {} elements \
                     ({needed} bytes)",
                    bytes.len(),
                    t.storage_numel,
                    t.dtype.name()
                )));
            }
            self.storages.insert(t.key.clone(), bytes);
        }
        let storage = self
            .storages
            .get(&t.key)
            .ok_or_else(|| err("storage vanished".into()))?;

        let numel = t
            .size
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| err(format!("size {:?} overflows", t.size)))?;
        if numel == 0 {
            return Ok(Vec::new());
        }
        // The furthest element any index reaches must lie inside the storage.
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            })
            .ok_or_else(|| err("offset and strides overflow".into()))?;
        if last >= t.storage_numel {
            return Err(err(format!(
                "offset {} with size {:?} and stride {:?} reaches element {last} of a \
                 storage of {} elements",
                t.offset, t.size, t.stride, t.storage_numel
            )));
        }
        let big = self.big_endian;
        let decode = |index: usize| -> Result<f32, WeightsError> {
            let start = index * elem; // index <= last < storage_numel, so no overflow
            storage
                .get(start..start + elem)
                .map(|b| t.dtype.to_f32(b, big))
                .ok_or_else(|| err(format!("element {index} lies outside the storage")))
        };
        let mut out = Vec::with_capacity(numel);
        if is_row_major(&t.size, &t.stride) {
            let bytes = storage
                .get(t.offset * elem..(t.offset + numel) * elem)
                .ok_or_else(|| err("data lies outside the storage".into()))?;
            out.extend(bytes.chunks_exact(elem).map(|c| t.dtype.to_f32(c, big)));
            return Ok(out);
        }
        // General strided gather, last dimension fastest.
        let mut index = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let pos = index
                .iter()
                .zip(&t.stride)
                .fold(t.offset, |acc, (&i, &s)| acc + i * s);
            out.push(decode(pos)?);
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
