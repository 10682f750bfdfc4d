//! The `warmcache` binary: parses flags and environment, sets up logging and
//! runs the reference service (`warmcache` or `warmcache serve`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use tracing_subscriber::EnvFilter;
use warmcache::service::{self, RunOptions};
use warmcache::{Config, LogFormat, SETTINGS};

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let matches = matches.subcommand_matches("serve").unwrap_or(&matches);
    // Flags (which clap also fills from their variables) first; settings
    // without a flag, such as the Redis password, from the environment.
    let lookup = |name: &str| {
        matches
            .get_one::<String>(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    };
    let config = match Config::from_lookup(lookup) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("warmcache: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    // The process's rustls crypto provider is the binary's to choose, not the
    // library's. Only ring is compiled in today, and rustls would pick it by
    // itself; naming it keeps Redis TLS working should a dependency ever
    // bring in a second provider. An error means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The binary, not the library, installs the recorder: before anything
    // registers its metric handles.
    let metrics = match warmcache::metrics::prometheus_builder().and_then(|b| b.install_recorder())
    {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("warmcache: cannot install the metrics recorder: {e}");
            return ExitCode::FAILURE;
        }
    };
    warmcache::metrics::describe();
    let options = RunOptions {
        bench_baseline: matches.get_flag("bench-baseline"),
        metrics: Some(metrics),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warmcache: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let stop = service::shutdown::signal();
        service::run(config, options, stop).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warmcache: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line: every setting of [`SETTINGS`] as a flag that also reads
/// its environment variable, on the top level and on `serve`.
fn cli() -> Command {
    let mut args: Vec<Arg> = SETTINGS
        .iter()
        .map(|s| {
            let help = match s.default {
                Some(default) => format!("{} [default: {default}]", s.help),
                None => s.help.to_owned(),
            };
            Arg::new(s.env)
                .long(s.flag)
                .env(s.env)
                .value_name("VALUE")
                .help(help)
        })
        .collect();
    args.push(
        Arg::new("bench-baseline")
            .long("bench-baseline")
            .action(ArgAction::SetTrue)
            .hide(true),
    );
    Command::new("warmcache")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Serves BigQuery-backed dashboard data from a warm in-process snapshot")
        .args(args.clone())
        .subcommand(
            Command::new("serve")
                .about("Run the HTTP service (the default)")
                .args(args),
        )
        .args_conflicts_with_subcommands(true)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ArgMatches;

    fn matches_of(args: &[&str]) -> ArgMatches {
        cli().try_get_matches_from(args).expect("parses")
    }

    #[test]
    fn flags_work_at_top_level_and_after_serve() {
        for args in [
            &["warmcache", "--ttl-ms", "5000"][..],
            &["warmcache", "serve", "--ttl-ms", "5000"],
        ] {
            let m = matches_of(args);
            let m = m.subcommand_matches("serve").unwrap_or(&m);
            assert_eq!(
                m.get_one::<String>("BQ_CACHE_TTL_MS").map(String::as_str),
                Some("5000")
            );
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        cli().debug_assert();
    }
}
