//! Downloading a model's published weights from the app: "Download from <host>" for a
//! catalogue model whose weights are absent, with progress, cancel and the verification
//! result. The download runs on its own thread through [`crate::fetch`] (the same code as
//! `posescope fetch`: checked SHA-256 or published prefix, nothing left behind on failure).
//! This panel takes only its own state and the chosen entry, not the whole app.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use eframe::egui;

use crate::fetch::{self, Checksum, FetchOptions, FetchOutcome};
use crate::models::ModelInfo;

/// A download in progress.
#[derive(Debug)]
struct Job {
    id: &'static str,
    downloaded: Arc<AtomicU64>,
    /// `u64::MAX` until the server announces a length.
    total: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    result: Receiver<Result<FetchOutcome, String>>,
}

/// The panel's state: the running download and the last outcome.
#[derive(Debug, Default)]
pub struct DownloadState {
    job: Option<Job>,
    /// `(model id, message, success)` of the last finished download.
    last: Option<(&'static str, String, bool)>,
}

/// What the caller should do after the panel was drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadEvent {
    /// The weights of this model are now present and verified: load it.
    Ready(&'static str),
}

/// The host part of a URL (`download.openmmlab.com`).
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl DownloadState {
    /// Starts downloading `info`'s weights (`opts` as `posescope fetch` takes them; the
    /// mirror in `POSESCOPE_FETCH_BASE_URL` applies). `wake` is called on progress.
    pub fn start(
        &mut self,
        info: &'static ModelInfo,
        mut opts: FetchOptions,
        wake: impl Fn() + Send + 'static,
    ) {
        let cancel = Arc::new(AtomicBool::new(false));
        opts.cancel = Some(Arc::clone(&cancel));
        let downloaded = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(u64::MAX));
        let (tx, result) = mpsc::channel();
        let (d, t) = (Arc::clone(&downloaded), Arc::clone(&total));
        let spawned = std::thread::Builder::new()
            .name("posescope-download".into())
            .spawn(move || {
                let r = fetch::fetch(info, &opts, |p| {
                    d.store(p.downloaded, Ordering::Relaxed);
                    if let Some(n) = p.total {
                        t.store(n, Ordering::Relaxed);
                    }
                    wake();
                })
                .map_err(|e| e.to_string());
                let _ = tx.send(r);
                wake();
            });
        match spawned {
            Ok(_) => {
                self.last = None;
                self.job = Some(Job {
                    id: info.id,
                    downloaded,
                    total,
                    cancel,
                    result,
                });
            }
            Err(e) => self.last = Some((info.id, format!("cannot start the download: {e}"), false)),
        }
    }

    /// Whether a download is running.
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Collects a finished download's outcome.
    pub fn poll(&mut self) -> Option<DownloadEvent> {
        let job = self.job.as_ref()?;
        let outcome = job.result.try_recv().ok()?;
        let id = job.id;
        self.job = None;
        match outcome {
            Ok(FetchOutcome::Downloaded { path, bytes, .. }) => {
                self.last = Some((
                    id,
                    format!(
                        "downloaded and verified ({}), saved as {}",
                        megabytes(bytes),
                        path.display()
                    ),
                    true,
                ));
                Some(DownloadEvent::Ready(id))
            }
            Ok(FetchOutcome::AlreadyPresent { path }) => {
                self.last = Some((
                    id,
                    format!("already present and verified: {}", path.display()),
                    true,
                ));
                Some(DownloadEvent::Ready(id))
            }
            Ok(FetchOutcome::Embedded) => Some(DownloadEvent::Ready(id)),
            Err(e) => {
                self.last = Some((id, e, false));
                None
            }
        }
    }

    /// Draws the download controls for `info` (a catalogue model whose weights are absent):
    /// a button, or the progress of the running download with Cancel, and the last outcome.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        info: &'static ModelInfo,
        wake: impl Fn() + Send + 'static,
    ) -> Option<DownloadEvent> {
        let event = self.poll();
        let opts = FetchOptions::default();
        if let Some(job) = &self.job {
            let done = job.downloaded.load(Ordering::Relaxed);
            let total = job.total.load(Ordering::Relaxed);
            let (fraction, text) = if total == u64::MAX || total == 0 {
                (0.0, format!("{} of ?", megabytes(done)))
            } else {
                (
                    done as f32 / total as f32,
                    format!("{} of {}", megabytes(done), megabytes(total)),
                )
            };
            ui.label(format!("downloading {}…", job.id));
            ui.add(egui::ProgressBar::new(fraction).text(text));
            if ui.button("Cancel download").clicked() {
                job.cancel.store(true, Ordering::Relaxed);
            }
        } else if let Some(url) = fetch::download_url(info, &opts) {
            let check = Checksum::of(info);
            let button = ui
                .button(format!("Download from {}", host(&url)))
                .on_hover_text(format!(
                    "{url}\nchecked by: {}\nlicence: {}",
                    check.describe(),
                    info.licence
                ));
            if button.clicked() {
                self.start(info, opts, wake);
            }
        } else {
            ui.label("no published download: get the file by hand (Open weights…)")
                .on_hover_text(info.source);
        }
        if let Some((id, message, ok)) = &self.last {
            if *id == info.id {
                let color = if *ok {
                    ui.visuals().text_color()
                } else {
                    ui.visuals().error_fg_color
                };
                ui.colored_label(color, message.as_str());
            }
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_sizes() {
        assert_eq!(
            host("https://download.openmmlab.com/mmpose/x.pth"),
            "download.openmmlab.com"
        );
        assert_eq!(host("http://127.0.0.1:8080/a"), "127.0.0.1:8080");
        assert_eq!(megabytes(28_500_000), "28.5 MB");
    }
}
