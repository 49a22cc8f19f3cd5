//! The app's Download button against a local HTTP server (no network): a model whose
//! weights are absent offers "Download from <host>"; a correct file is downloaded, verified,
//! saved in the cache and the model loads; a wrong file is refused with the error shown
//! and nothing left in the cache. Its own test binary, because it sets process-wide
//! environment variables (cache directory, download mirror).

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use posescope::ui::{PosescopeApp, StartOptions};

/// Serves `<good>/<name>` with `body` and `<bad>/<name>` with other bytes of the same length,
/// one thread per connection; returns the port.
fn serve(name: &'static str, body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut stream = stream;
                let payload = if path == format!("/good/{name}") {
                    body
                } else if path == format!("/bad/{name}") {
                    vec![7u8; body.len()]
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = stream.write_all(head.as_bytes());
                // In pieces, so that progress is seen.
                for chunk in payload.chunks(64 * 1024) {
                    let _ = stream.write_all(chunk);
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    port
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn step_until(
    h: &mut Harness<'static, PosescopeApp>,
    what: &str,
    done: impl Fn(&PosescopeApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_download_button_fetches_verifies_and_loads_the_model() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let weights = std::fs::read(shared.join("models/pefm_cpm.tflite")).unwrap();
    let port = serve("pefm_cpm.tflite", weights.clone());
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let models = cache.join("posescope/models");
    // Nothing present: no model directories but the (empty) cache.
    std::env::remove_var("POSESCOPE_MODELS");
    std::env::set_var("XDG_CACHE_HOME", &cache);
    std::env::set_var("HOME", home.path());
    std::env::set_var(
        "POSESCOPE_FETCH_BASE_URL",
        format!("http://127.0.0.1:{port}/bad"),
    );

    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .wgpu()
        .build_eframe(|cc| {
            PosescopeApp::new(
                cc,
                StartOptions {
                    model: Some("pefm-cpm".into()),
                    input: None,
                    device: Some("cpu".into()),
                },
            )
        });
    h.state_mut().settings.input_size = (192, 192);
    step_until(&mut h, "the load to fail", |app| {
        app.model_status().contains("no trained weights")
    });
    let button = format!("Download from 127.0.0.1:{port}");

    // A wrong file: refused, the error shown, nothing saved.
    h.get_by_label(&button).click();
    h.run_steps(2);
    step_until(&mut h, "the refused download", |app| {
        !app.download.running()
    });
    h.run_steps(2);
    let shown = h.query_by_label_contains("SHA-256 mismatch").is_some();
    assert!(shown, "the verification failure is shown");
    assert!(h.state().model().is_none());
    assert!(
        files_in(&models).is_empty(),
        "left behind: {:?}",
        files_in(&models)
    );

    // The right file: downloaded, verified (the catalogue's SHA-256), loaded.
    std::env::set_var(
        "POSESCOPE_FETCH_BASE_URL",
        format!("http://127.0.0.1:{port}/good"),
    );
    h.get_by_label(&button).click();
    h.run_steps(2);
    step_until(&mut h, "the model to load", |app| {
        app.model().is_some_and(|m| m.id() == "pefm-cpm")
    });
    assert_eq!(files_in(&models), ["pefm_cpm.tflite"]);
    assert_eq!(
        std::fs::read(models.join("pefm_cpm.tflite")).unwrap(),
        weights
    );
    step_until(&mut h, "an inspection", |app| {
        app.inspection
            .as_ref()
            .is_some_and(|i| i.model_id == "pefm-cpm")
    });
    h.run_steps(2);
    // The button is gone: the weights are present now.
    assert!(h.query_by_label(&button).is_none());
}
