use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = posescope::cli::Cli::parse();
    match posescope::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
