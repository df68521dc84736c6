//! `routec fmt`: rewrite policies in canonical form, keeping comments; with
//! `--check`, only say which files would change.

use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use policy_lang::SourceFile;

use crate::exit;

// Output that ignores a closed pipe (`routec check | head`) instead of
// panicking as `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Arguments of `routec fmt`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when every file is (now) formatted, 1 with --check when a file would \
                        change or when a file does not parse, 2 on usage or I/O errors."
)]
pub struct Args {
    /// Policy files or directories [default: policies/]
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that would change and exit 1 if any
    #[arg(long)]
    pub check: bool,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("policies")]
    } else {
        args.paths.clone()
    };
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::default()).with_links(false);
    let render = |report: &policy_lang::CheckReport| {
        for d in report.diagnostics() {
            let mut out = String::new();
            if handler.render_report(&mut out, d).is_ok() {
                err!("{out}");
            } else {
                err!("{d}");
            }
        }
    };
    let mut code = exit::OK;
    let mut changed = 0usize;
    for path in &paths {
        let files = match policy_lang::load(&[path]) {
            Ok(files) => files,
            Err(report) => {
                render(&report);
                code = exit::USAGE;
                continue;
            }
        };
        for file in files {
            match policy_lang::format(&file) {
                Ok(formatted) if formatted == file.text() => {}
                Ok(formatted) => {
                    changed += 1;
                    if args.check {
                        out!("would reformat {}", file.name());
                        code = code.max(exit::FAILED);
                    } else if let Err(e) = write(&file, &formatted) {
                        err!("error: cannot write `{}`: {e}", file.name());
                        code = exit::USAGE;
                    } else {
                        out!("formatted {}", file.name());
                    }
                }
                Err(report) => {
                    render(&report);
                    code = code.max(exit::FAILED);
                }
            }
        }
    }
    if args.check && changed == 0 && code == exit::OK {
        err!("all files formatted");
    }
    code
}

fn write(file: &SourceFile, text: &str) -> std::io::Result<()> {
    std::fs::write(Path::new(file.name()), text)
}
