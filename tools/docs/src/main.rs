//! `cargo run -p tcpchat-docs`: writes the screens, completions and man page under `assets/`;
//! `-- --check` only says whether the committed ones are current (exit 1 if not).

use std::process::ExitCode;

use clap::Parser;

/// Generates tcpchat's screenshots (SVG), shell completions and man page under assets/.
#[derive(Debug, Parser)]
struct Args {
    /// Write nothing; list the files that differ from what would be written, exit 1 if any.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let root = tcpchat_docs::repository_root();
    let artifacts = tcpchat_docs::artifacts()?;
    if !args.check {
        tcpchat_docs::write(&root, &artifacts)?;
        for artifact in &artifacts {
            eprintln!("wrote {}", artifact.path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scratch = tempfile::tempdir()?;
    tcpchat_docs::write(scratch.path(), &artifacts)?;
    let stale = tcpchat_docs::differences(scratch.path(), &root)?;
    for line in &stale {
        eprintln!("{line}");
    }
    if stale.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("run `{}` and commit the result", tcpchat_docs::COMMAND);
        Ok(ExitCode::FAILURE)
    }
}
