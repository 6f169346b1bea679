//! `cargo xtask new NAME [--server]`: a new user program, ready to boot and to test.
//!
//! Writes, and refuses to overwrite anything:
//! - `userland/NAME` (a program printing `NAME: done`); with `--server`, three crates:
//!   `userland/NAME-api` (the interface, with `libcap::interface!`), `userland/NAME` (the
//!   server) and `userland/NAME-client` (calls it, prints `NAME-client: done`);
//! - their lines in the workspace's `members`;
//! - `tests/manifests/NAME.toml`, a boot manifest with exactly the caps they need and the
//!   security policy of `system.toml`, checked as every manifest is;
//! - `tests/manifests/NAME.expect`, the lines the console must print, which makes it the test
//!   `qemu::NAME` of `cargo xtask test` (see `test::declared_manifest_tests`).

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use crate::build::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// The program's name: lowercase letters, digits and dashes, starting with a letter.
    name: String,
    /// A server with its interface crate and a client, instead of a single program.
    #[arg(long)]
    server: bool,
}

pub fn run(args: Args) -> Result<()> {
    let name = args.name.as_str();
    check_name(name)?;
    let root = workspace_root();
    let crates: Vec<String> = if args.server { vec![format!("{name}-api"), name.to_owned(), format!("{name}-client")] } else { vec![name.to_owned()] };
    for krate in &crates {
        for dir in crate::userland::PROGRAM_DIRS {
            ensure!(!root.join(dir).join(krate).exists(), "{dir}/{krate} exists already: choose another name");
        }
    }
    let manifest = root.join(format!("tests/manifests/{name}.toml"));
    let expect = manifest.with_extension("expect");
    for path in [&manifest, &expect] {
        ensure!(!path.exists(), "{} exists already: choose another name", path.display());
    }
    let policy = policy_of_system_toml(&root.join("system.toml"))?;
    if args.server {
        let api = format!("{name}-api");
        let client = format!("{name}-client");
        write(&root, &format!("userland/{api}/Cargo.toml"), &api_cargo(&api, name))?;
        write(&root, &format!("userland/{api}/src/lib.rs"), &api_source(name))?;
        write(&root, &format!("userland/{name}/Cargo.toml"), &program_cargo(name, &format!("The {name} server."), Some(&api)))?;
        write(&root, &format!("userland/{name}/src/main.rs"), &server_source(name))?;
        write(&root, &format!("userland/{client}/Cargo.toml"), &program_cargo(&client, &format!("A client of the {name} server."), Some(&api)))?;
        write(&root, &format!("userland/{client}/src/main.rs"), &client_source(name))?;
        write(&root, &format!("tests/manifests/{name}.toml"), &server_manifest(name, &policy))?;
        write(&root, &format!("tests/manifests/{name}.expect"), &format!(
            "# what: the {name} server answers {client}\n{name}: serving\n{client}: the server said \"hello, {client}\"\n{client}: done\ninit: {client} exited (code 0)\n"
        ))?;
    } else {
        write(&root, &format!("userland/{name}/Cargo.toml"), &program_cargo(name, &format!("The {name} program."), None))?;
        write(&root, &format!("userland/{name}/src/main.rs"), &program_source(name))?;
        write(&root, &format!("tests/manifests/{name}.toml"), &program_manifest(name, &policy))?;
        write(&root, &format!("tests/manifests/{name}.expect"), &format!("# what: {name} runs and exits 0\n{name}: done\ninit: {name} exited (code 0)\n"))?;
    }
    add_members(&root.join("Cargo.toml"), &crates)?;
    crate::manifest::compile_file(&manifest).with_context(|| format!("the new manifest {} does not check (a bug in `cargo xtask new`)", manifest.display()))?;
    println!("created {} and tests/manifests/{name}.{{toml,expect}}", crates.iter().map(|c| format!("userland/{c}")).collect::<Vec<_>>().join(", "));
    let last = if args.server { format!("{name}-client: done") } else { format!("{name}: done") };
    println!("boot it:  cargo xtask run --manifest tests/manifests/{name}.toml --until \"{last}\"");
    println!("test it:  cargo xtask test {}", name.replace('-', "_"));
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 32;
    ensure!(well_formed, "\"{name}\" is not a program name: lowercase letters, digits and dashes, starting with a letter, at most 32");
    ensure!(name != "init", "\"init\" is the first process, started by the kernel");
    Ok(())
}

fn write(root: &Path, relative: &str, text: &str) -> Result<()> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The `[security.*]` tables of system.toml, whose sandbox may call no service here.
fn policy_of_system_toml(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut policy = String::new();
    let mut inside = false;
    for line in text.lines() {
        let header = line.trim_start().starts_with('[');
        if header {
            inside = line.trim_start().starts_with("[security.");
        }
        if inside {
            let line = if line.trim_start().starts_with("allowed_services") { "allowed_services = []" } else { line };
            policy.push_str(line);
            policy.push('\n');
        }
    }
    ensure!(!policy.is_empty(), "{} has no [security.*] tables to copy", path.display());
    Ok(policy.trim_end().to_owned() + "\n")
}

/// Inserts the crates into `[workspace] members`, before `"xtask"`.
fn add_members(path: &Path, crates: &[String]) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Some(at) = text.find("    \"xtask\",\n]") else { bail!("{}: no `\"xtask\",` closing [workspace] members to insert before", path.display()) };
    let lines: String = crates.iter().map(|c| format!("    \"userland/{c}\",\n")).collect();
    let updated = format!("{}{lines}{}", &text[..at], &text[at..]);
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

/// libcap's folder as a crate made under `userland/` names it: two levels up, written out at
/// run time because the path is relative to that crate, not to xtask (the checkout's own
/// hermetic test counts climbs from the file that holds them).
fn libcap_from_new_crate() -> String {
    format!("{}libcap", "../".repeat(2))
}

fn program_cargo(name: &str, description: &str, api: Option<&str>) -> String {
    let api = api.map(|api| format!("# The interface it serves or calls.\n{api} = {{ path = \"../{api}\" }}\n")).unwrap_or_default();
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"{description}\"\nedition.workspace = true\nlicense.workspace = true\npublish = false\n\n\
         # Built only by `cargo xtask` for the user target (xtask/src/userland.rs); never a host test.\n\
         [[bin]]\nname = \"{name}\"\ntest = false\nbench = false\n\n\
         [dependencies]\nlibcap = {{ path = \"{libcap}\" }}\n{api}\n[lints]\nworkspace = true\n",
        libcap = libcap_from_new_crate()
    )
}

fn api_cargo(api: &str, name: &str) -> String {
    format!(
        "[package]\nname = \"{api}\"\nversion = \"0.1.0\"\ndescription = \"The {name} service's interface.\"\nedition.workspace = true\nlicense.workspace = true\npublish = false\n\n\
         [dependencies]\n# `libcap::interface!` generates the types and stubs; they derive serde's traits.\n\
         libcap = {{ path = \"{libcap}\" }}\nserde = {{ version = \"1\", default-features = false, features = [\"derive\"] }}\n\n[lints]\nworkspace = true\n",
        libcap = libcap_from_new_crate()
    )
}

fn module(name: &str) -> String {
    name.replace('-', "_")
}

fn program_source(name: &str) -> String {
    format!(
        "//! {name}: made by `cargo xtask new {name}`; its manifest is tests/manifests/{name}.toml.\n\
         #![no_std]\n#![no_main]\n#![forbid(unsafe_code)]\n\n\
         use libcap::{{ErrorCode, println}};\n\nlibcap::entry!(main);\n\n\
         fn main() -> Result<(), ErrorCode> {{\n    println!(\"{name}: done\");\n    Ok(())\n}}\n"
    )
}

fn api_source(name: &str) -> String {
    let module = module(name);
    format!(
        "//! The {name} service's interface, for the server and its clients alike.\n\
         #![no_std]\n#![forbid(unsafe_code)]\n\n\
         use libcap::heapless::String;\n\n\
         /// The longest name `hello` takes and greeting it answers.\npub const MAX_NAME: usize = 64;\n\n\
         libcap::interface! {{\n    /// The {name} service.\n    pub interface {module} (label = 1) {{\n        \
         /// Answers a greeting for `name`.\n        fn hello(name: String<MAX_NAME>) -> String<MAX_NAME>;\n    }}\n}}\n"
    )
}

fn server_source(name: &str) -> String {
    let (module, api) = (module(name), module(&format!("{name}-api")));
    format!(
        "//! {name}: the server made by `cargo xtask new {name} --server`. It receives on its `service` cap\n\
         //! (tests/manifests/{name}.toml) and answers each request of `{name}-api`'s interface.\n\
         #![no_std]\n#![no_main]\n#![forbid(unsafe_code)]\n\n\
         use core::fmt::Write;\n\n\
         use {api}::{{MAX_NAME, {module}}};\nuse libcap::heapless::String;\nuse libcap::{{Badge, ErrorCode, println}};\n\n\
         // The manifest's named caps, as typed constants (caps::SERVICE) checked at start.\nlibcap::caps!();\nlibcap::entry!(main, caps);\n\n\
         struct Server;\n\n\
         impl {module}::Server for Server {{\n    fn hello(&mut self, _badge: Badge, name: String<MAX_NAME>) -> String<MAX_NAME> {{\n        \
         let mut greeting = String::new();\n        // A greeting longer than MAX_NAME is cut short: the client named itself at length.\n        \
         let _ = write!(greeting, \"hello, {{name}}\");\n        greeting\n    }}\n}}\n\n\
         fn main() -> Result<(), ErrorCode> {{\n    println!(\"{name}: serving\");\n    // `serve` returns only if the endpoint fails.\n    Err({module}::serve(caps::SERVICE, &mut Server))\n}}\n"
    )
}

fn client_source(name: &str) -> String {
    let (module, api) = (module(name), module(&format!("{name}-api")));
    let client = format!("{name}-client");
    format!(
        "//! {client}: calls the {name} server (its `server` cap, tests/manifests/{name}.toml), made by\n\
         //! `cargo xtask new {name} --server`.\n\
         #![no_std]\n#![no_main]\n#![forbid(unsafe_code)]\n\n\
         use {api}::{module};\nuse libcap::heapless::String;\nuse libcap::{{ErrorCode, println}};\n\n\
         // The manifest's named caps, as typed constants (caps::SERVER) checked at start.\nlibcap::caps!();\nlibcap::entry!(main, caps);\n\nconst SERVER: {module}::Client = {module}::Client::new(caps::SERVER);\n\n\
         fn main() -> Result<(), ErrorCode> {{\n    let name: String<{{ {api}::MAX_NAME }}> = \"{client}\".chars().collect();\n    \
         let greeting = SERVER.hello(name)?;\n    println!(\"{client}: the server said \\\"{{greeting}}\\\"\");\n    println!(\"{client}: done\");\n    Ok(())\n}}\n"
    )
}

const INIT: &str = "[init]\nconsole = [\"write\"]\nmemory_quota = 16_777_216\ncpus = 2\n";

fn program_entry(name: &str, on_crash: &str, caps: &str) -> String {
    let backoff = if on_crash == "restart" { "max_backoff_ms = 1_000\n" } else { "" };
    format!(
        "[[programs]]\nname = \"{name}\"\npriority = 10\nbudget_us = 1_000\nperiod_us = 10_000\nmemory_quota = 262_144\non_crash = \"{on_crash}\"\n{backoff}console = [\"write\"]\n{caps}"
    )
}

fn program_manifest(name: &str, policy: &str) -> String {
    format!(
        "# The boot manifest of `{name}` (made by `cargo xtask new`); `{name}.expect` beside it makes\n# it the test qemu::{}.\n\n{INIT}\n{}\n# The security policy, as in system.toml.\n{policy}",
        module(name),
        program_entry(name, "restart", "")
    )
}

fn server_manifest(name: &str, policy: &str) -> String {
    let endpoint = module(name);
    format!(
        "# The boot manifest of the `{name}` server and its client (made by `cargo xtask new --server`);\n# `{name}.expect` beside it makes it the test qemu::{endpoint}.\n\n{INIT}\n[endpoints.{endpoint}]\n\n{}\n{}\n# The security policy, as in system.toml.\n{policy}",
        program_entry(name, "restart", &format!("caps = [{{ name = \"service\", endpoint = \"{endpoint}\", rights = [\"read\"] }}]\n")),
        program_entry(&format!("{name}-client"), "restart", &format!("caps = [{{ name = \"server\", endpoint = \"{endpoint}\", rights = [\"write\"], badge = 1 }}]\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["kv", "kv-store", "a1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Kv", "1kv", "kv-", "kv_store", "k v", "init", &"x".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_generated_manifests_check_with_system_tomls_policy() {
        let policy = policy_of_system_toml(&workspace_root().join("system.toml")).unwrap();
        // The manifest check knows the programs by name; the new crates do not exist here.
        for (name, source, programs) in [
            ("solo", program_manifest("solo", &policy), vec!["solo"]),
            ("kv", server_manifest("kv", &policy), vec!["kv", "kv-client"]),
        ] {
            ::manifest::compile_with(&source, &programs, &[]).unwrap_or_else(|e| panic!("{name}: {e}\n{source}"));
        }
    }
}
