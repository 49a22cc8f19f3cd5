//! Downloading a catalogue model's published weights file into the model cache directory.
//!
//! The file is streamed to a temporary `.part` file beside the target while it is hashed,
//! its SHA-256 is checked against the catalogue, and only then is it renamed into place. A
//! failed, refused, truncated or mismatching download leaves nothing behind; an interrupted
//! one (Ctrl-C) leaves at most a `.part` file, never a file under the model's name, and
//! stale `.part` files are removed by the next fetch of that model.
//!
//! Entries are checked by their full SHA-256 where one is known. Where the publisher gives
//! only the first hex digits of it (MMPose: 8, in the file name), the download must start
//! with that prefix; the verified file's full SHA-256 is then recorded next to it
//! (`<file>.sha256`) and checked from then on ([`Checksum`]).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::models::catalog;
use crate::models::{ModelInfo, WeightsLocation};

/// Environment variable naming a mirror: downloadable entries are fetched from
/// `$POSESCOPE_FETCH_BASE_URL/<file_name>` instead of their published URL.
pub const BASE_URL_ENV: &str = "POSESCOPE_FETCH_BASE_URL";

/// Largest file accepted (no published pose model comes close).
const MAX_BYTES: u64 = 8 << 30;

/// `.part` files not written to for this long belong to a dead download.
const STALE_PART: Duration = Duration::from_secs(15 * 60);

/// How a download is done. `Default` saves into the cache directory from the published URL.
#[derive(Clone, Debug, Default)]
pub struct FetchOptions {
    /// Directory the file is saved in (created if needed). Default: [`catalog::cache_dir`].
    pub dir: Option<PathBuf>,
    /// Download even when a verified copy is already present.
    pub force: bool,
    /// Download from this URL instead (any entry whose weights are a file, including those
    /// without a published URL). The SHA-256 is checked all the same.
    pub url: Option<String>,
    /// A mirror: entries with a published URL are fetched from `<base_url>/<file_name>`.
    /// Default: `$POSESCOPE_FETCH_BASE_URL`, when set.
    pub base_url: Option<String>,
    /// Directories searched for a verified copy before downloading. Default: the model
    /// directories ([`catalog::model_dirs`]) and the target directory.
    pub search_dirs: Option<Vec<PathBuf>>,
    /// Longest wait for the connection, the response, or any single read of the body.
    /// Default: 30 s.
    pub timeout: Option<Duration>,
    /// Set to stop the download between chunks ([`FetchError::Cancelled`]; nothing is left).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Download progress, reported once when the response arrives and after every chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received so far.
    pub downloaded: u64,
    /// The size announced by the server (`Content-Length`), when known.
    pub total: Option<u64>,
}

/// What [`fetch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The weights are compiled into the binary: nothing to download.
    Embedded,
    /// A file with the right SHA-256 was already there; nothing was downloaded.
    AlreadyPresent { path: PathBuf },
    /// Downloaded and verified.
    Downloaded {
        path: PathBuf,
        url: String,
        bytes: u64,
    },
}

/// Why [`fetch`] failed. Every download error names the URL. The underlying error is part
/// of the message (the `cause` fields), not a separate `source`, so it is printed once.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "model '{id}' has no published download URL: its weights come from {origin}. \
         Get the file by hand and open it with `--model PATH` (CLI) or Open weights… (app), \
         or save it as '{file_name}' in a model directory"
    )]
    NotDownloadable {
        id: String,
        origin: String,
        file_name: String,
    },
    #[error(
        "model '{id}' has no recorded SHA-256 (none was published for {origin}), so a download \
         could not be verified: open the file with `--model PATH` (CLI) or Open weights… (app)"
    )]
    NoChecksum { id: String, origin: String },
    #[error("no cache directory: no home directory is known (set HOME, or pass a directory)")]
    NoCacheDir,
    #[error("bad download URL '{url}'")]
    BadUrl { url: String },
    #[error("downloading {url}: HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("downloading {url}: {cause}")]
    Request {
        url: String,
        cause: Box<ureq::Error>,
    },
    #[error("downloading {url}: broken off after {bytes} of {} bytes: {cause}", total.map_or("?".to_string(), |t| t.to_string()))]
    Read {
        url: String,
        bytes: u64,
        total: Option<u64>,
        cause: std::io::Error,
    },
    #[error(
        "downloading {url}: SHA-256 mismatch ({bytes} bytes): expected {expected}, got {actual}; \
         nothing was saved"
    )]
    Mismatch {
        url: String,
        expected: String,
        actual: String,
        bytes: u64,
    },
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("downloading {url}: cancelled after {bytes} bytes; nothing was saved")]
    Cancelled { url: String, bytes: u64 },
}

impl FetchError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
        move |cause| FetchError::Io {
            path: path.display().to_string(),
            cause,
        }
    }
}

/// How an entry's file is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum<'a> {
    /// The full SHA-256 (lowercase hex).
    Full(&'a str),
    /// Only the first hex digits of the SHA-256 are published; the full hash of the first
    /// verified copy is recorded beside it and checked from then on.
    Prefix(&'a str),
    /// Nothing published: the file cannot be downloaded and verified.
    None,
}

impl<'a> Checksum<'a> {
    /// The check a catalogue entry has.
    pub fn of(info: &'a ModelInfo) -> Self {
        let full = info.sha256.trim();
        let prefix = info.sha256_prefix.trim();
        if !full.is_empty() {
            Checksum::Full(full)
        } else if !prefix.is_empty() {
            Checksum::Prefix(prefix)
        } else {
            Checksum::None
        }
    }

    /// Whether a file with SHA-256 `actual` passes (the prefix check for [`Checksum::Prefix`]).
    pub fn accepts(self, actual: &str) -> bool {
        match self {
            Checksum::Full(h) => actual.eq_ignore_ascii_case(h),
            Checksum::Prefix(p) => actual
                .get(..p.len())
                .is_some_and(|a| a.eq_ignore_ascii_case(p)),
            Checksum::None => false,
        }
    }

    /// What the check is, for `posescope models` and the app.
    pub fn describe(self) -> String {
        match self {
            Checksum::Full(_) => "SHA-256".into(),
            Checksum::Prefix(p) => format!(
                "SHA-256 prefix {p} (as published); the full hash is recorded on first download"
            ),
            Checksum::None => "none published".into(),
        }
    }
}

/// The file beside a prefix-checked model file that records its full SHA-256.
pub fn recorded_hash_path(model_file: &Path) -> PathBuf {
    let mut name = model_file.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Whether the file at `path` passes `info`'s check: the full hash, or for prefix entries
/// the recorded full hash when there is one, else the prefix (and then the full hash is
/// recorded).
fn verified(info: &ModelInfo, path: &Path) -> bool {
    let Ok(actual) = sha256_file(path) else {
        return false;
    };
    match Checksum::of(info) {
        Checksum::Prefix(_) => {
            let record = recorded_hash_path(path);
            match std::fs::read_to_string(&record) {
                Ok(recorded) => actual.eq_ignore_ascii_case(recorded.trim()),
                Err(_) if Checksum::of(info).accepts(&actual) => {
                    let _ = crate::export::atomic::write_atomic(
                        &record,
                        format!("{actual}\n").as_bytes(),
                        true,
                    );
                    true
                }
                Err(_) => false,
            }
        }
        check => check.accepts(&actual),
    }
}

/// Whether `info`'s weights can be fetched with the given options (a published URL, or a
/// file entry with a URL given in `opts.url`).
pub fn downloadable(info: &ModelInfo, opts: &FetchOptions) -> bool {
    matches!(info.weights, WeightsLocation::File(_)) && (info.url.is_some() || opts.url.is_some())
}

/// The URL [`fetch`] would download from: `opts.url`, else the entry's published URL
/// (through the mirror in `opts.base_url` / `$POSESCOPE_FETCH_BASE_URL` when set). `None`
/// for embedded weights and for entries without a URL.
pub fn download_url(info: &ModelInfo, opts: &FetchOptions) -> Option<String> {
    if !downloadable(info, opts) {
        return None;
    }
    if let Some(url) = &opts.url {
        return Some(url.clone());
    }
    let base = opts.base_url.clone().or_else(|| {
        std::env::var(BASE_URL_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    match base {
        Some(base) => Some(format!(
            "{}/{}",
            base.trim().trim_end_matches('/'),
            info.file_name
        )),
        None => info.url.map(str::to_string),
    }
}

/// The directory [`fetch`] saves into.
pub fn target_dir(opts: &FetchOptions) -> Result<PathBuf, FetchError> {
    match &opts.dir {
        Some(d) => Ok(d.clone()),
        None => catalog::cache_dir().ok_or(FetchError::NoCacheDir),
    }
}

/// A file named `info.file_name` with the right SHA-256 in one of the search directories.
pub fn find_verified(info: &ModelInfo, opts: &FetchOptions) -> Option<PathBuf> {
    let dirs = match &opts.search_dirs {
        Some(d) => d.clone(),
        None => {
            let mut d = catalog::model_dirs();
            if let Ok(t) = target_dir(opts) {
                if !d.contains(&t) {
                    d.push(t);
                }
            }
            d
        }
    };
    dirs.into_iter()
        .map(|d| d.join(info.file_name))
        .filter(|p| p.is_file())
        .find(|p| verified(info, p))
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Downloads `info`'s weights file into the target directory (see [`FetchOptions`]) and
/// checks its SHA-256, calling `progress` as bytes arrive. Does nothing when the weights are
/// embedded or a verified copy is already present (unless `opts.force`).
pub fn fetch(
    info: &ModelInfo,
    opts: &FetchOptions,
    mut progress: impl FnMut(Progress),
) -> Result<FetchOutcome, FetchError> {
    if matches!(info.weights, WeightsLocation::Embedded(_)) {
        return Ok(FetchOutcome::Embedded);
    }
    let Some(url) = download_url(info, opts) else {
        return Err(FetchError::NotDownloadable {
            id: info.id.to_string(),
            origin: info.source.to_string(),
            file_name: info.file_name.to_string(),
        });
    };
    let check = Checksum::of(info);
    if check == Checksum::None {
        return Err(FetchError::NoChecksum {
            id: info.id.to_string(),
            origin: info.source.to_string(),
        });
    }
    if !opts.force {
        if let Some(path) = find_verified(info, opts) {
            return Ok(FetchOutcome::AlreadyPresent { path });
        }
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::BadUrl { url });
    }
    let dir = target_dir(opts)?;
    std::fs::create_dir_all(&dir).map_err(FetchError::io(&dir))?;
    remove_stale_parts(&dir, info.file_name);
    let target = dir.join(info.file_name);

    let timeout = Some(opts.timeout.unwrap_or(Duration::from_secs(30)));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(10)
        .timeout_connect(timeout)
        .timeout_recv_response(timeout)
        .timeout_per_read(timeout)
        .user_agent(concat!("posescope/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|cause| FetchError::Request {
            url: url.clone(),
            cause: Box::new(cause),
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(FetchError::Http { url, status });
    }
    let total = response.body().content_length();
    progress(Progress {
        downloaded: 0,
        total,
    });

    // Dropping the temporary file on any error below deletes it.
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{}.", info.file_name))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(FetchError::io(&dir))?;
    let part_path = part.path().to_path_buf();
    let mut reader = response.body_mut().with_config().limit(MAX_BYTES).reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut downloaded = 0u64;
    loop {
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(FetchError::Cancelled {
                url,
                bytes: downloaded,
            });
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(cause) => {
                return Err(FetchError::Read {
                    url,
                    bytes: downloaded,
                    total,
                    cause,
                })
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        part.write_all(chunk).map_err(FetchError::io(&part_path))?;
        downloaded += n as u64;
        progress(Progress { downloaded, total });
    }
    let actual = hex(&hasher.finalize());
    if !check.accepts(&actual) {
        let expected = match check {
            Checksum::Full(h) => h.to_ascii_lowercase(),
            Checksum::Prefix(p) => format!("{}… (published prefix)", p.to_ascii_lowercase()),
            Checksum::None => String::new(),
        };
        return Err(FetchError::Mismatch {
            url,
            expected,
            actual,
            bytes: downloaded,
        });
    }
    part.as_file()
        .sync_all()
        .map_err(FetchError::io(&part_path))?;
    if matches!(check, Checksum::Prefix(_)) {
        // The full hash of the verified file, checked from now on instead of the prefix: a
        // later download must be the same file.
        let record = recorded_hash_path(&target);
        if let Ok(recorded) = std::fs::read_to_string(&record) {
            if !recorded.trim().eq_ignore_ascii_case(&actual) {
                return Err(FetchError::Mismatch {
                    url,
                    expected: format!("{} (recorded at the first download)", recorded.trim()),
                    actual,
                    bytes: downloaded,
                });
            }
        }
        crate::export::atomic::write_atomic(&record, format!("{actual}\n").as_bytes(), true)
            .map_err(|e| FetchError::Io {
                path: record.display().to_string(),
                cause: std::io::Error::other(e.to_string()),
            })?;
    }
    part.persist(&target)
        .map_err(|e| FetchError::io(&target)(e.error))?;
    Ok(FetchOutcome::Downloaded {
        path: target,
        url,
        bytes: downloaded,
    })
}

/// Removes `.<file_name>.*.part` files in `dir` left by interrupted downloads (not written
/// to for a while, so not another download in progress). Best effort.
fn remove_stale_parts(dir: &Path, file_name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{file_name}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(&prefix) && name.ends_with(".part")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_PART);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 0xab, 0x0f]), "00ab0f");
    }

    #[test]
    fn urls_resolve_in_order() {
        let mut info = *catalog::CATALOG.first().unwrap();
        info.weights = WeightsLocation::File("x.bin");
        info.file_name = "x.bin";
        info.url = Some("https://example.org/a/model.bin");
        // The option takes precedence over the environment variable.
        let mut opts = FetchOptions {
            base_url: Some("http://mirror.local/m/".into()),
            ..FetchOptions::default()
        };
        assert_eq!(
            download_url(&info, &opts).as_deref(),
            Some("http://mirror.local/m/x.bin")
        );
        opts.url = Some("http://other/y".into());
        assert_eq!(
            download_url(&info, &opts).as_deref(),
            Some("http://other/y")
        );
        info.url = None;
        assert_eq!(
            download_url(&info, &opts).as_deref(),
            Some("http://other/y")
        );
        opts.url = None;
        assert_eq!(download_url(&info, &opts), None);
        info.weights = WeightsLocation::Embedded(b"");
        opts.url = Some("http://other/y".into());
        assert_eq!(download_url(&info, &opts), None);
    }
}
