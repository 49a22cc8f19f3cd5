//! `posescope fetch`: download catalogue weights into the model cache directory.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::FetchArgs;
use crate::fetch::{self, FetchOptions, FetchOutcome, Progress};
use crate::models::catalog::{self, CATALOG};
use crate::models::ModelInfo;

pub(super) fn run(args: &FetchArgs) -> anyhow::Result<()> {
    let opts = FetchOptions {
        dir: args.dir.clone(),
        force: args.force,
        url: args.url.clone(),
        ..FetchOptions::default()
    };
    let outcome = if args.all {
        fetch_all(&opts)
    } else {
        let id = args.id.as_deref().unwrap_or_default();
        let info = catalog::find(id).with_context(|| {
            format!(
                "unknown model '{id}' (known: {})",
                CATALOG.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
            )
        })?;
        fetch_one(info, &opts)
    };
    let dir = fetch::target_dir(&opts).ok().filter(|d| d.is_dir());
    if let Some(dir) = dir.filter(|d| !catalog::model_dirs().contains(d)) {
        tracing::warn!(
            "{} is not a model directory; set POSESCOPE_MODELS={} so that posescope finds the files there",
            dir.display(),
            dir.display()
        );
    }
    outcome
}

fn fetch_all(opts: &FetchOptions) -> anyhow::Result<()> {
    let wanted: Vec<&ModelInfo> = CATALOG
        .iter()
        .filter(|m| fetch::downloadable(m, opts))
        .collect();
    if wanted.is_empty() {
        eprintln!("no catalogue model has a published download URL: nothing to fetch");
        return Ok(());
    }
    let mut failed = Vec::new();
    for info in wanted {
        if let Err(e) = fetch_one(info, opts) {
            tracing::error!("{e:#}");
            failed.push(info.id);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("could not fetch {}", failed.join(", "))
    }
}

fn fetch_one(info: &ModelInfo, opts: &FetchOptions) -> anyhow::Result<()> {
    let url = fetch::download_url(info, opts);
    let bar = ProgressBar::hidden();
    let mut started = false;
    let on_progress = |p: Progress| {
        if !started {
            started = true;
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            match p.total {
                Some(n) => {
                    bar.set_length(n);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                None => bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            }
            bar.set_message(info.id);
        }
        bar.set_position(p.downloaded);
    };
    if let Some(url) = &url {
        if matches!(info.weights, crate::models::WeightsLocation::File(_)) {
            eprintln!("{}: {url}", info.id);
        }
    }
    let result = fetch::fetch(info, opts, on_progress);
    bar.finish_and_clear();
    match result? {
        FetchOutcome::Embedded => {
            eprintln!(
                "{}: the weights are embedded in posescope; nothing to download",
                info.id
            );
        }
        FetchOutcome::AlreadyPresent { path } => {
            eprintln!(
                "{}: already present at {} ({}; --force downloads again)",
                info.id,
                path.display(),
                verified_by(info)
            );
        }
        FetchOutcome::Downloaded { path, bytes, .. } => {
            eprintln!(
                "{}: saved {} ({bytes} bytes, {})",
                info.id,
                path.display(),
                verified_by(info)
            );
        }
    }
    Ok(())
}

/// How a fetched file was checked, for the messages above.
fn verified_by(info: &ModelInfo) -> String {
    match fetch::Checksum::of(info) {
        fetch::Checksum::Full(_) => "SHA-256 verified".into(),
        fetch::Checksum::Prefix(p) => {
            format!("published SHA-256 prefix {p} verified, full hash recorded beside it")
        }
        fetch::Checksum::None => "not verified".into(),
    }
}
