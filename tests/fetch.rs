//! `posescope fetch` and `posescope::fetch` against a local HTTP server (no network).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{files_in, stderr};

use posescope::fetch::{
    fetch, recorded_hash_path, FetchError, FetchOptions, FetchOutcome, Progress,
};
use posescope::models::{ModelInfo, WeightsLocation, CATALOG};
use sha2::{Digest, Sha256};

/// The good file: more than one read chunk, so progress is reported several times.
fn payload() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (one thread per connection, `Connection: close`).
///
/// `/ok.bin` and `/mirror/test_model.bin`: the payload; `/redirect`: 302 to `/ok.bin`;
/// `/redirect-abs`: 302 to the absolute URL of `/ok.bin`; `/wrong.bin`: other bytes;
/// `/truncated`: announces the payload's length and closes half-way; `/truncated-nolen`:
/// half the payload with no length (close-delimited); anything else: 404.
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (log, b) = (requests.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, b) = (log.clone(), b.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &log, &b);
                });
            }
        });
        Server { base, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<String>>, base: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    log.lock().unwrap().push(path.clone());
    let body = payload();
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n").into_bytes()
    };
    match path.as_str() {
        "/ok.bin" | "/mirror/test_model.bin" => {
            stream.write_all(&head(
                "200 OK",
                &format!("Content-Length: {}\r\n", body.len()),
            ))?;
            stream.write_all(&body)?;
        }
        "/redirect" => {
            stream.write_all(&head(
                "302 Found",
                "Location: /ok.bin\r\nContent-Length: 0\r\n",
            ))?;
        }
        "/redirect-abs" => {
            stream.write_all(&head(
                "302 Found",
                &format!("Location: {base}/redirect\r\nContent-Length: 0\r\n"),
            ))?;
        }
        "/wrong.bin" => {
            let wrong = vec![7u8; 1000];
            stream.write_all(&head(
                "200 OK",
                &format!("Content-Length: {}\r\n", wrong.len()),
            ))?;
            stream.write_all(&wrong)?;
        }
        "/truncated" => {
            stream.write_all(&head(
                "200 OK",
                &format!("Content-Length: {}\r\n", body.len()),
            ))?;
            stream.write_all(&body[..body.len() / 2])?;
        }
        "/truncated-nolen" => {
            stream.write_all(&head("200 OK", ""))?;
            stream.write_all(&body[..body.len() / 2])?;
        }
        "/stall" => {
            // Half the body, then nothing for longer than any test waits.
            stream.write_all(&head(
                "200 OK",
                &format!("Content-Length: {}\r\n", body.len()),
            ))?;
            stream.write_all(&body[..body.len() / 2])?;
            stream.flush()?;
            std::thread::sleep(Duration::from_secs(30));
        }
        _ => {
            stream.write_all(&head("404 Not Found", "Content-Length: 9\r\n"))?;
            stream.write_all(b"not found")?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A test catalogue entry whose weights file is the payload, published at `url`.
fn test_model(url: Option<String>) -> ModelInfo {
    ModelInfo {
        id: "test-model",
        aliases: &[],
        weights: WeightsLocation::File("test_model.bin"),
        file_name: "test_model.bin",
        url: url.map(leak),
        source: "a test server",
        sha256: leak(sha256_hex(&payload())),
        ..CATALOG[0]
    }
}

/// Options that save into `dir` and look nowhere else.
fn opts(dir: &Path) -> FetchOptions {
    FetchOptions {
        dir: Some(dir.to_path_buf()),
        search_dirs: Some(vec![dir.to_path_buf()]),
        timeout: Some(Duration::from_secs(10)),
        ..FetchOptions::default()
    }
}

fn assert_failed_cleanly(err: &FetchError, url: &str, dir: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(url), "error must name {url}: {msg}");
    assert_eq!(
        files_in(dir),
        Vec::<String>::new(),
        "left behind after: {msg}"
    );
}

#[test]
fn downloads_verifies_and_reports_progress() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/ok.bin");
    let info = test_model(Some(url.clone()));
    let mut seen: Vec<Progress> = Vec::new();
    let out = fetch(&info, &opts(dir.path()), |p| seen.push(p)).unwrap();
    let path = dir.path().join("test_model.bin");
    assert_eq!(
        out,
        FetchOutcome::Downloaded {
            path: path.clone(),
            url,
            bytes: payload().len() as u64
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), payload());
    assert_eq!(files_in(dir.path()), vec!["test_model.bin".to_string()]);
    let n = payload().len() as u64;
    assert!(seen.len() >= 3, "progress reported {} times", seen.len());
    assert_eq!(seen.first().map(|p| p.downloaded), Some(0));
    assert_eq!(
        seen.last().copied(),
        Some(Progress {
            downloaded: n,
            total: Some(n)
        })
    );
    assert!(seen.windows(2).all(|w| w[0].downloaded <= w[1].downloaded));
}

#[test]
fn follows_redirects() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let info = test_model(Some(server.url("/redirect-abs")));
    let out = fetch(&info, &opts(dir.path()), |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
    assert_eq!(
        std::fs::read(dir.path().join("test_model.bin")).unwrap(),
        payload()
    );
    assert_eq!(server.requests(), ["/redirect-abs", "/redirect", "/ok.bin"]);
}

#[test]
fn a_verified_copy_is_kept_unless_forced_and_a_bad_one_is_replaced() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let info = test_model(Some(server.url("/ok.bin")));
    // A good copy in another model directory counts.
    std::fs::write(elsewhere.path().join("test_model.bin"), payload()).unwrap();
    let mut o = opts(dir.path());
    o.search_dirs = Some(vec![
        elsewhere.path().to_path_buf(),
        dir.path().to_path_buf(),
    ]);
    let out = fetch(&info, &o, |_| panic!("no download expected")).unwrap();
    assert_eq!(
        out,
        FetchOutcome::AlreadyPresent {
            path: elsewhere.path().join("test_model.bin")
        }
    );
    assert!(server.requests().is_empty());
    assert!(files_in(dir.path()).is_empty());

    // A corrupt copy in the target directory is not "present" and is replaced.
    std::fs::remove_file(elsewhere.path().join("test_model.bin")).unwrap();
    std::fs::write(dir.path().join("test_model.bin"), b"corrupt").unwrap();
    let out = fetch(&info, &o, |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
    assert_eq!(
        std::fs::read(dir.path().join("test_model.bin")).unwrap(),
        payload()
    );
    assert_eq!(server.requests().len(), 1);

    // Now present; --force downloads again.
    let out = fetch(&info, &o, |_| {}).unwrap();
    assert!(
        matches!(out, FetchOutcome::AlreadyPresent { .. }),
        "{out:?}"
    );
    assert_eq!(server.requests().len(), 1);
    o.force = true;
    let out = fetch(&info, &o, |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(files_in(dir.path()), vec!["test_model.bin".to_string()]);
}

#[test]
fn http_404_is_an_error_naming_the_url() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/nope.bin");
    let err = fetch(&test_model(Some(url.clone())), &opts(dir.path()), |_| {}).unwrap_err();
    assert!(
        matches!(err, FetchError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("404"), "{err}");
    assert_failed_cleanly(&err, &url, dir.path());
}

/// An entry with only a published SHA-256 prefix (MMPose's file names) downloads when the
/// file's hash starts with it, and is rejected, naming the prefix, when it does not.
#[test]
fn a_published_prefix_verifies_when_no_full_hash_is_known() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/ok.bin");
    let prefix = leak(sha256_hex(&payload())[..8].to_uppercase());
    let info = ModelInfo {
        sha256: "",
        sha256_prefix: prefix,
        ..test_model(Some(url.clone()))
    };
    let out = fetch(&info, &opts(dir.path()), |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
    let out = fetch(&info, &opts(dir.path()), |_| {}).unwrap();
    assert!(
        matches!(out, FetchOutcome::AlreadyPresent { .. }),
        "{out:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/wrong.bin");
    let info = ModelInfo {
        url: Some(leak(url.clone())),
        ..info
    };
    let err = fetch(&info, &opts(dir.path()), |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&prefix.to_lowercase()), "{msg}");
    assert_failed_cleanly(&err, &url, dir.path());
}

#[test]
fn wrong_content_is_rejected_with_both_hashes() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/wrong.bin");
    let info = test_model(Some(url.clone()));
    let err = fetch(&info, &opts(dir.path()), |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(info.sha256), "{msg}");
    assert!(msg.contains(&sha256_hex(&[7u8; 1000])), "{msg}");
    assert_failed_cleanly(&err, &url, dir.path());
}

#[test]
fn a_connection_closed_mid_body_leaves_nothing() {
    let server = Server::start();
    for path in ["/truncated", "/truncated-nolen"] {
        let dir = tempfile::tempdir().unwrap();
        let url = server.url(path);
        let mut seen = 0;
        let err = fetch(&test_model(Some(url.clone())), &opts(dir.path()), |_| {
            seen += 1
        })
        .unwrap_err();
        assert!(seen > 0, "{path}: the download had started");
        match path {
            // The announced length was not reached: a read error.
            "/truncated" => assert!(matches!(err, FetchError::Read { .. }), "{err:?}"),
            // Without a length the short file only shows in its hash.
            _ => assert!(matches!(err, FetchError::Mismatch { .. }), "{err:?}"),
        }
        assert_failed_cleanly(&err, &url, dir.path());
    }
}

#[test]
fn connection_refused_is_an_error_naming_the_url() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/ok.bin");
    let err = fetch(&test_model(Some(url.clone())), &opts(dir.path()), |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Request { .. }), "{err:?}");
    assert_failed_cleanly(&err, &url, dir.path());
}

#[test]
fn base_url_points_published_entries_at_a_mirror() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let info = test_model(Some("https://unreachable.invalid/model.bin".into()));
    let mut o = opts(dir.path());
    o.base_url = Some(server.url("/mirror/"));
    let out = fetch(&info, &o, |_| {}).unwrap();
    assert_eq!(
        out,
        FetchOutcome::Downloaded {
            path: dir.path().join("test_model.bin"),
            url: server.url("/mirror/test_model.bin"),
            bytes: payload().len() as u64,
        }
    );
    assert_eq!(server.requests(), ["/mirror/test_model.bin"]);
}

#[test]
fn models_without_a_url_say_where_the_weights_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let info = test_model(None);
    let err = fetch(&info, &opts(dir.path()), |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::NotDownloadable { .. }), "{err:?}");
    assert!(
        msg.contains("a test server") && msg.contains("--model"),
        "{msg}"
    );
    assert!(files_in(dir.path()).is_empty());

    // An explicit URL works for them (the hash is still checked).
    let server = Server::start();
    let mut o = opts(dir.path());
    o.url = Some(server.url("/redirect"));
    let out = fetch(&info, &o, |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
}

#[test]
fn embedded_weights_need_no_download() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.url = Some(server.url("/ok.bin"));
    let out = fetch(&CATALOG[0], &o, |_| panic!("no download expected")).unwrap();
    assert_eq!(out, FetchOutcome::Embedded);
    assert!(server.requests().is_empty());
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn stale_part_files_of_interrupted_downloads_are_removed() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".test_model.bin.abc123.part");
    let fresh = dir.path().join(".test_model.bin.def456.part");
    let other = dir.path().join(".other.bin.abc123.part");
    for p in [&stale, &fresh, &other] {
        std::fs::write(p, b"partial").unwrap();
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&stale, &other] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fetch(
        &test_model(Some(server.url("/ok.bin"))),
        &opts(dir.path()),
        |_| {},
    )
    .unwrap();
    // The stale one goes; one possibly still being written, and other models', stay.
    assert_eq!(
        files_in(dir.path()),
        [
            ".other.bin.abc123.part",
            ".test_model.bin.def456.part",
            "test_model.bin"
        ]
    );
}

// ---- the CLI -------------------------------------------------------------------------

/// Runs the binary with a private cache directory and no other model directories.
fn posescope(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_posescope"));
    cmd.args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("HOME", cache)
        .env("POSESCOPE_MODELS", "")
        .env_remove("POSESCOPE_FETCH_BASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run posescope")
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn cli_fetch_of_the_embedded_model_downloads_nothing() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("/ok.bin");
    let o = posescope(&["fetch", "default", "--url", &url], cache.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("embedded"), "{}", stderr(&o));
    assert!(server.requests().is_empty());
    assert!(all_files(cache.path()).is_empty());
}

#[test]
fn cli_fetch_of_an_unknown_model_lists_the_known_ones() {
    let cache = tempfile::tempdir().unwrap();
    let o = posescope(&["fetch", "no-such-model"], cache.path(), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(CATALOG[0].id), "{}", stderr(&o));
    // An id or --all is required, and --url only goes with one id.
    let o = posescope(&["fetch"], cache.path(), &[]);
    assert!(!o.status.success());
    let o = posescope(&["fetch", "--all", "--url", "http://x/"], cache.path(), &[]);
    assert!(!o.status.success());
}

/// For every catalogue entry whose weights are a file (none yet in the initial catalogue):
/// a download with the wrong content fails naming the URL and the expected hash, and leaves
/// nothing in the cache.
#[test]
fn cli_fetch_rejects_wrong_content_for_every_file_entry() {
    let server = Server::start();
    let url = server.url("/wrong.bin");
    for m in CATALOG
        .iter()
        .filter(|m| matches!(m.weights, WeightsLocation::File(_)))
    {
        let cache = tempfile::tempdir().unwrap();
        let o = posescope(&["fetch", m.id, "--url", &url], cache.path(), &[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{}: {err}", m.id);
        assert!(
            err.contains(&url) && err.contains(m.sha256),
            "{}: {err}",
            m.id
        );
        assert!(all_files(cache.path()).is_empty(), "{}", m.id);
    }
}

/// `fetch --all` through a mirror (`POSESCOPE_FETCH_BASE_URL`) that has nothing: every
/// downloadable entry is tried at `<mirror>/<file name>`, each failure is named, and the
/// command fails if there was anything to fetch.
#[test]
fn cli_fetch_all_goes_through_the_mirror() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let base = server.url("/empty-mirror");
    let o = posescope(
        &["fetch", "--all"],
        cache.path(),
        &[("POSESCOPE_FETCH_BASE_URL", &base)],
    );
    let err = stderr(&o);
    let downloadable: Vec<&ModelInfo> = CATALOG.iter().filter(|m| m.url.is_some()).collect();
    assert_eq!(o.status.success(), downloadable.is_empty(), "{err}");
    for m in &downloadable {
        let want = format!("{base}/{}", m.file_name);
        assert!(err.contains(&want), "{}: {err}", m.id);
        assert!(server
            .requests()
            .contains(&format!("/empty-mirror/{}", m.file_name)));
    }
    assert_eq!(server.requests().len(), downloadable.len());
    assert!(
        all_files(cache.path()).is_empty(),
        "{:?}",
        all_files(cache.path())
    );
}

#[test]
fn cli_models_json_says_what_is_downloadable() {
    let cache = tempfile::tempdir().unwrap();
    let o = posescope(&["models", "--json"], cache.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), CATALOG.len());
    for (j, m) in list.iter().zip(CATALOG) {
        assert_eq!(j["id"], m.id);
        assert_eq!(j["downloadable"], m.url.is_some());
        assert_eq!(j["url"].as_str(), m.url);
    }
    assert_eq!(list[0]["present"], "embedded");
}

/// A catalogue entry checked only by a published SHA-256 prefix (as MMPose's are).
fn prefix_model(url: String, prefix: &str) -> ModelInfo {
    ModelInfo {
        sha256: "",
        sha256_prefix: leak(prefix.to_string()),
        ..test_model(Some(url))
    }
}

#[test]
fn a_published_prefix_is_checked_and_the_full_hash_recorded() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let full = sha256_hex(&payload());
    let info = prefix_model(server.url("/ok.bin"), &full[..8]);
    let out = fetch(&info, &opts(dir.path()), |_| {}).unwrap();
    assert!(matches!(out, FetchOutcome::Downloaded { .. }), "{out:?}");
    let file = dir.path().join("test_model.bin");
    assert_eq!(std::fs::read(&file).unwrap(), payload());
    // The verified file's full SHA-256 is recorded beside it.
    let record = recorded_hash_path(&file);
    assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), full);
    // A second fetch finds the verified copy by its recorded hash.
    let again = fetch(&info, &opts(dir.path()), |_| {}).unwrap();
    assert_eq!(again, FetchOutcome::AlreadyPresent { path: file.clone() });
    // From now on the full hash is what counts: a record that the file no longer matches
    // makes the copy unverified, and a new download that differs from the record (though
    // its prefix would pass) is refused.
    std::fs::write(&record, format!("{}0\n", &full[..63])).unwrap();
    let err = fetch(&info, &opts(dir.path()), |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, FetchError::Mismatch { .. }) && msg.contains("recorded"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        payload(),
        "the copy was left as it was"
    );
}

#[test]
fn a_download_whose_prefix_differs_is_refused_and_leaves_nothing() {
    let server = Server::start();
    let full = sha256_hex(&payload());
    for path in ["/wrong.bin", "/truncated-nolen", "/missing.bin"] {
        let dir = tempfile::tempdir().unwrap();
        let url = server.url(path);
        let info = prefix_model(url.clone(), &full[..8]);
        let err = fetch(&info, &opts(dir.path()), |_| {}).unwrap_err();
        if path != "/missing.bin" {
            assert!(err.to_string().contains(&full[..8]), "{err}");
        }
        assert_failed_cleanly(&err, &url, dir.path());
    }
}

#[test]
fn every_mmpose_entry_is_downloadable_with_its_published_prefix() {
    let mmpose: Vec<&ModelInfo> = CATALOG
        .iter()
        .filter(|m| m.url.is_some_and(|u| u.contains("download.openmmlab.com")))
        .collect();
    assert!(mmpose.len() >= 13, "{} MMPose entries", mmpose.len());
    for m in mmpose {
        // MMPose file names carry the first 8 hex digits of the SHA-256.
        let prefix = m
            .file_name
            .rsplit('-')
            .next()
            .and_then(|p| p.split('_').next())
            .unwrap_or_default();
        assert_eq!(m.sha256_prefix, prefix, "{}", m.id);
        assert_eq!(m.sha256_prefix.len(), 8, "{}", m.id);
        assert!(!m.published_accuracy.is_empty(), "{}", m.id);
        assert!(m.licence.starts_with("Apache-2.0"), "{}", m.id);
    }
}

#[test]
fn a_server_that_stalls_is_given_up_on_and_leaves_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/stall");
    let full = sha256_hex(&payload());
    let info = prefix_model(url.clone(), &full[..8]);
    let started = std::time::Instant::now();
    let err = fetch(
        &info,
        &FetchOptions {
            timeout: Some(Duration::from_secs(1)),
            ..opts(dir.path())
        },
        |_| {},
    )
    .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, FetchError::Read { .. }), "{err:?}");
    assert!(waited < Duration::from_secs(10), "gave up after {waited:?}");
    assert_failed_cleanly(&err, &url, dir.path());
}
