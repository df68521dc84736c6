//! `fake-upstream --listen 127.0.0.1:0 --flavor openai`: a fake provider as a
//! separate process, for end-to-end tests of the gateway. The first stdout
//! line is the bound address; control it over `/__fake/*` (see the library docs).

use std::net::SocketAddr;

use clap::Parser;
use fake_upstream::{FakeUpstream, Flavor};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "A fake LLM provider server for tests")]
struct Args {
    /// Address to bind; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Wire format: openai, anthropic or gemini.
    #[arg(long, default_value = "openai", value_parser = parse_flavor)]
    flavor: Flavor,
}

fn parse_flavor(name: &str) -> Result<Flavor, String> {
    Flavor::from_name(name).ok_or_else(|| format!("unknown flavor `{name}` (openai, anthropic, gemini)"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let fake = FakeUpstream::bind(args.flavor, args.listen).await?;
    announce(fake.addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[expect(
    clippy::print_stdout,
    reason = "the bound address on stdout is this binary's interface"
)]
fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("{addr}");
    // Tests read this line through a pipe, which is block-buffered.
    let _ = std::io::stdout().flush();
}
