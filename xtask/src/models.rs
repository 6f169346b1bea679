//! Placeholder: being written (see the issue tracker).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`models` is not written yet")
}
