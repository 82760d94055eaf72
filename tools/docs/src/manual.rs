//! What a package installs beside the binary, from the real command line ([`Cli`]): shell
//! completions (clap_complete) and the man page (clap_mangen). Both follow every flag, its
//! help and its possible values, so they cannot drift from `--help`.

use clap::CommandFactory;
use clap_complete::Shell;
use tcpchat::cli::Cli;

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The completion script for `shell`, and the file name that shell looks for
/// (`tcpchat.bash`, `_tcpchat`, `tcpchat.fish`).
pub fn completion(shell: Shell) -> (String, Vec<u8>) {
    use clap_complete::Generator as _;
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "tcpchat", &mut script);
    (shell.file_name("tcpchat"), script)
}

/// `tcpchat.1`, the man page in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(page)
}
