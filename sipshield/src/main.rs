//! The `sipshield` binary: CLI front end over the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
