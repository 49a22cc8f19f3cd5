//! The legacy `torch.save` format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`).
//!
//! One stream, as `torch.serialization._legacy_save` writes it:
//! 1. a pickle of the magic number 0x1950a86a20f9469cfc6c;
//! 2. a pickle of the protocol version, 1001;
//! 3. a pickle of `sys_info`: `{'protocol_version': 1001, 'little_endian': bool,
//!    'type_sizes': {...}}`;
//! 4. the pickled object. Its storages are persistent ids `('storage', storage_type,
//!    root_key, location, numel, view_metadata)`, where `view_metadata` is `None` or (in
//!    files from PyTorch < 0.4) `(view_key, offset, numel)`: a slice of the root storage;
//! 5. a pickled list of the root keys (decimal strings, not 0..n-1);
//! 6. for each key in that order, the storage: a little-endian int64 element count, then
//!    that many elements, little-endian.
//!
//! Reading it means finding where each pickle ends ([`super::scan::scan`]) and, for step 6,
//! the element size of every storage, including storages outside the state dict (an
//! optimizer's, say): it comes from the storage type in the persistent ids anywhere in
//! the object.

use std::collections::HashMap;

use candle_core::pickle::Object;

use super::scan::scan;
use super::{storage_ref, unpickle, StorageRef, StorageType, LEGACY_MAGIC};

/// The protocol version pickled after the magic number.
const PROTOCOL_VERSION: i64 = 1001;

/// A parsed legacy file: the object and each root storage's bytes.
pub(super) struct Legacy<'a> {
    pub(super) object: Object,
    pub(super) storages: HashMap<String, &'a [u8]>,
}

/// Unpickles the pickle at `bytes[start..]`; returns it and where the next one starts.
fn next_pickle(bytes: &[u8], start: usize, what: &str) -> Result<(Object, usize), String> {
    let end = scan(bytes, start).map_err(|e| format!("{what}: {e}"))?;
    let object = unpickle(&bytes[start..end]).map_err(|e| format!("{what}: {e}"))?;
    Ok((object, end))
}

fn as_i64(o: &Object) -> Option<i64> {
    match o {
        Object::Int(v) => Some(i64::from(*v)),
        Object::Long(v) => Some(*v),
        _ => None,
    }
}

pub(super) fn read(bytes: &[u8]) -> Result<Legacy<'_>, String> {
    // 1. The magic number: LONG1 of 10 bytes (candle decodes at most 8), then STOP.
    let mut pos = LEGACY_MAGIC.len();
    match bytes.get(pos) {
        Some(b'.') => pos += 1,
        Some(_) => return Err("the magic-number pickle does not end after the number".into()),
        None => return Err("the file ends after the magic number (truncated)".into()),
    }

    // 2. The protocol version.
    let (version, end) = next_pickle(bytes, pos, "protocol version")?;
    if as_i64(&version) != Some(PROTOCOL_VERSION) {
        return Err(format!(
            "protocol version is {version:?}, expected {PROTOCOL_VERSION}"
        ));
    }
    pos = end;

    // 3. sys_info.
    let (sys_info, end) = next_pickle(bytes, pos, "sys_info")?;
    let Object::Dict(info) = sys_info else {
        return Err(format!("sys_info is not a dict: {sys_info:?}"));
    };
    for (k, v) in &info {
        if matches!(k, Object::Unicode(k) if k == "little_endian") {
            match v {
                Object::Bool(true) => {}
                Object::Bool(false) => {
                    return Err("the file was written on a big-endian machine \
                                (sys_info little_endian is False); such files are not \
                                supported: load and re-save it with PyTorch on a \
                                little-endian machine"
                        .into())
                }
                other => return Err(format!("sys_info little_endian is {other:?}")),
            }
        }
    }
    pos = end;

    // 4. The object.
    let object_start = pos;
    let (object, end) = next_pickle(bytes, pos, "the pickled object")?;
    pos = end;

    // 5. The storage keys.
    let (keys, end) = next_pickle(bytes, pos, "the storage key list")?;
    let Object::List(keys) = keys else {
        return Err(format!("the storage key list (byte {pos}) is not a list"));
    };
    pos = end;

    // What each root storage holds, from every persistent id in the object.
    let layouts = storage_layouts(&object)
        .map_err(|e| format!("the pickled object (byte {object_start}): {e}"))?;

    // 6. The storages, in key-list order.
    let mut storages = HashMap::with_capacity(keys.len().min(layouts.len()));
    let n = keys.len();
    for (i, key) in keys.iter().enumerate() {
        let Object::Unicode(key) = key else {
            return Err(format!("storage key {i} of {n} is not a string: {key:?}"));
        };
        let (dtype, numel) = *layouts.get(key).ok_or_else(|| {
            format!(
                "storage '{key}' ({} of {n}) is listed but no tensor uses it",
                i + 1
            )
        })?;
        let truncated = |what: String| {
            format!(
                "storage '{key}' ({} of {n}): {what} runs past the end of the file at byte \
                 {}; the file is truncated",
                i + 1,
                bytes.len()
            )
        };
        let header = bytes
            .get(pos..pos.saturating_add(8))
            .ok_or_else(|| truncated(format!("its 8-byte element count at byte {pos}")))?;
        let mut count = [0u8; 8];
        count.copy_from_slice(header);
        let count = u64::from_le_bytes(count);
        if count != numel as u64 {
            return Err(format!(
                "storage '{key}' ({} of {n}) at byte {pos} holds {count} elements, the \
                 pickle says {numel} (the file is corrupt)",
                i + 1
            ));
        }
        let start = pos + 8;
        let data = numel
            .checked_mul(dtype.size())
            .and_then(|len| Some((len, start.checked_add(len)?)))
            .and_then(|(len, end)| Some((len, bytes.get(start..end)?)));
        let Some((len, data)) = data else {
            return Err(truncated(format!(
                "its {numel} {} elements at byte {start}",
                dtype.name()
            )));
        };
        if storages.insert(key.clone(), data).is_some() {
            return Err(format!("storage '{key}' is listed twice"));
        }
        pos = start + len;
    }
    Ok(Legacy { object, storages })
}

/// The element type and count of every root storage the object refers to.
fn storage_layouts(object: &Object) -> Result<HashMap<String, (StorageType, usize)>, String> {
    let mut layouts: HashMap<String, (StorageType, usize)> = HashMap::new();
    // Depth-first without recursion (the scan bounds the depth anyway).
    let mut todo = vec![object];
    while let Some(o) = todo.pop() {
        match o {
            Object::PersistentLoad(id) => {
                let is_storage = matches!(id.as_ref(), Object::Tuple(parts)
                    if matches!(parts.first(), Some(Object::Unicode(t)) if t == "storage"));
                if !is_storage {
                    // e.g. ('module', ...) source records of a whole pickled nn.Module.
                    continue;
                }
                let StorageRef {
                    key, dtype, numel, ..
                } = storage_ref(o)?;
                match layouts.get(&key) {
                    Some(&(d, n)) if d != dtype || n != numel => {
                        return Err(format!(
                            "storage '{key}' is used both as {n} {} and as {numel} {} elements",
                            d.name(),
                            dtype.name()
                        ))
                    }
                    Some(_) => {}
                    None => {
                        layouts.insert(key, (dtype, numel));
                    }
                }
            }
            Object::Tuple(items) | Object::List(items) => todo.extend(items.iter()),
            Object::Dict(entries) => {
                for (k, v) in entries {
                    todo.push(k);
                    todo.push(v);
                }
            }
            Object::Reduce { callable, args } | Object::Build { callable, args } => {
                todo.push(callable);
                todo.push(args);
            }
            _ => {}
        }
    }
    Ok(layouts)
}
