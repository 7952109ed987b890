//! `sipshield reload`: re-read the config file (like SIGHUP). An invalid
//! config is rejected with its error and the running one stays.

use std::process::ExitCode;

use sipshield::control::Request;

use super::connection::Connection;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let v = args.conn.require(&Request::Reload)?;
    println!("{}", v["message"].as_str().unwrap_or("reloaded"));
    Ok(ExitCode::SUCCESS)
}
