//! The command line: one file per subcommand, each a thin shell over the library.

mod audit;
mod audit_cluster;
mod check;
mod completion;
mod import;
mod lint;
mod pipeline;
mod render;
mod schema;
#[cfg(feature = "server")]
mod serve;
mod webhook_config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Security-context policy for CI pods on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "ciguard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the policy to pods and workloads; print the results
    Render(render::Args),
    /// Evaluate pods and workloads against the Pod Security Standards (no mutation)
    Check(check::Args),
    /// Count pods the policy would change or deny, per namespace and CI system
    Audit(audit::Args),
    /// Validate a policy and prove it against its Pod Security Standards target
    Lint(lint::Args),
    /// Turn GitLab Runner or Woodpecker settings into a policy
    Import(import::Args),
    /// Run the mutating and validating admission webhook over HTTPS
    #[cfg(feature = "server")]
    Serve(serve::Args),
    /// Print the JSON Schema of the policy file
    Schema(schema::Args),
    /// Print the webhook configurations that send each policy its pods
    WebhookConfig(webhook_config::Args),
    /// Print a shell completion script (bash, zsh, fish)
    Completion(completion::Args),
}

/// The name kubectl gives the binary when it runs it as a plugin (`kubectl ciguard …`):
/// a symlink or copy named so, anywhere on `PATH` (docs/install.md).
pub const KUBECTL_PLUGIN_NAME: &str = "kubectl-ciguard";

impl Cli {
    /// Parses the process's arguments. Run as `kubectl-ciguard` (kubectl's plugin
    /// name), usage and help say `kubectl ciguard`, as users typed it.
    pub fn parse_plugin_aware() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let argv0 = std::env::args_os().next().unwrap_or_default();
        let invoked = std::path::Path::new(&argv0)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut command = Cli::command();
        if invoked == KUBECTL_PLUGIN_NAME {
            command = command.bin_name("kubectl ciguard");
        }
        let matches = command.get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// What a command found, mapped to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything allowed: exit 0.
    Success,
    /// A document was denied or failed a check: exit 1.
    Denied,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Denied => ExitCode::from(1),
        }
    }
}

/// Runs the parsed command line. Errors are usage, input or policy errors (exit 2).
/// A reader that closed stdout early (`ciguard render … | head -1`) is no error: the
/// command ends quietly.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match run_command(cli) {
        Err(e) if is_broken_pipe(&e) => Ok(Outcome::Success),
        r => r,
    }
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes a command's output to stdout, all at once. A reader that has gone
/// (`| head -1`) is not an error: the output ends there, and the command's outcome
/// (exit 0 or 1) stands.
pub fn write_stdout(text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Output written to stdout as it is produced, through a buffer. A reader that has gone
/// (`| head -1`) ends the output quietly, as in [`write_stdout`]; the command goes on
/// to its outcome.
#[derive(Default)]
pub struct Stdout {
    buf: Vec<u8>,
    error: Option<std::io::Error>,
}

impl Stdout {
    /// Writes text; the buffer goes out once it holds 64 KiB.
    pub fn write(&mut self, text: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(text);
        if self.buf.len() >= 64 << 10 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        match write_stdout(&self.buf) {
            Ok(()) => {}
            Err(e) => self.error = Some(e),
        }
        self.buf.clear();
    }

    /// Writes what is left; the first write error, if any.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush();
        self.error.map_or(Ok(()), Err)
    }
}

fn run_command(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Import(args) => import::run(args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(args),
        Command::Schema(args) => schema::run(args),
        Command::WebhookConfig(args) => webhook_config::run(args),
        Command::Completion(args) => completion::run(args),
    }
}

/// Logs on stderr. `CIGUARD_LOG` sets the filter: errors only by default, `info` for
/// `serve`, which also takes `--log-format json`.
pub fn init_tracing(cli: &Cli) {
    use tracing_subscriber::{EnvFilter, filter::LevelFilter};
    let (level, json) = match &cli.command {
        #[cfg(feature = "server")]
        Command::Serve(args) => (LevelFilter::INFO, args.log_format == serve::LogFormat::Json),
        _ => (LevelFilter::ERROR, false),
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .with_env_var("CIGUARD_LOG")
        .from_env_lossy();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// An error in a document, named where it is: the file, line and column of the refused
/// value (`pointer` gives its JSON pointer in the object) when the file says, else
/// `source#index` (stdin, and objects with no text).
pub(crate) fn in_document<E: Into<anyhow::Error>>(
    doc: &ciguard::workload::Document,
    error: E,
    pointer: impl FnOnce(&E) -> &str,
) -> anyhow::Error {
    let at = match doc.locate(pointer(&error)) {
        Some(at) => at.to_string(),
        None => format!("{}#{}", doc.source, doc.index),
    };
    error.into().context(at)
}

/// Loads `--policy` or the built-in policy.
pub fn load_policy(path: Option<&str>) -> anyhow::Result<ciguard::ValidPolicy> {
    match path {
        Some(p) => Ok(ciguard::policy::load::from_file(p)?),
        None => Ok(ciguard::ValidPolicy::builtin()),
    }
}

/// `-o text|json` of `check` and `audit`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

/// `--policy P…` or `--policy-dir DIR`: a set of policies (`serve`, `webhook-config`).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct PolicyArgs {
    /// Policy file; repeat for several policies
    #[arg(long, value_name = "FILE")]
    policy: Vec<std::path::PathBuf>,
    /// Directory of policy files: every *.yaml, *.yml and *.json directly in it
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<std::path::PathBuf>,
}

impl PolicyArgs {
    /// Where the policies come from.
    pub fn source(&self) -> ciguard::policy::set::PolicySource {
        use ciguard::policy::set::PolicySource;
        match &self.policy_dir {
            Some(dir) => PolicySource::Dir(dir.clone()),
            None => PolicySource::Files(self.policy.clone()),
        }
    }
}

/// The inputs of `render`, `check` and `audit`: positional, and kubectl's
/// `-f/--filename` (repeatable) with `-R`. Only collects names: the readers of
/// [`ciguard::workload`] read them.
#[derive(Debug, Default, clap::Args)]
pub struct InputArgs {
    /// Files, directories (recursing into *.yaml, *.yml, *.json) or - for stdin
    #[arg(value_name = "INPUTS")]
    inputs: Vec<String>,
    /// As kubectl: a file, a directory (its *.yaml, *.yml, *.json; with -R, recursively) or -
    /// for stdin; repeatable; read after the positional inputs
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    filename: Vec<String>,
    /// With -f: read directories recursively
    #[arg(short = 'R', long, requires = "filename")]
    recursive: bool,
}

impl InputArgs {
    /// Whether no input was named at all.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.filename.is_empty()
    }

    /// The inputs for [`ciguard::workload::expand_inputs`], in order: the positional ones
    /// as given, then each `-f`. Without `-R` an `-f` directory stands for its own
    /// `*.yaml`, `*.yml` and `*.json` files (sorted), as kubectl reads it; with `-R`, for
    /// the whole tree. An error when nothing is named.
    pub fn collect(&self) -> anyhow::Result<Vec<String>> {
        if self.is_empty() {
            anyhow::bail!("no input: name files or directories, -f FILE (repeatable) or - for stdin");
        }
        let mut out = self.inputs.clone();
        for name in &self.filename {
            let path = std::path::Path::new(name);
            if self.recursive || name == "-" || !path.is_dir() {
                out.push(name.clone());
                continue;
            }
            let entries = std::fs::read_dir(path)
                .map_err(|e| anyhow::anyhow!("failed to read directory '{name}': {e}"))?;
            let mut files = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| anyhow::anyhow!("failed to read directory '{name}': {e}"))?;
                let file = entry.path();
                let wanted = file
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
                if wanted && file.is_file() {
                    files.push(file.display().to_string());
                }
            }
            files.sort();
            out.extend(files);
        }
        Ok(out)
    }
}

/// Prints a usage, input or policy error on stderr, `error: ` before each line.
pub fn report_error(e: &anyhow::Error) {
    for line in format!("{e:#}").lines() {
        eprintln!("error: {line}");
    }
}
