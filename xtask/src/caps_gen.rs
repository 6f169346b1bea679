//! The named caps of the boot manifests, as typed constants for each program crate.
//!
//! A `caps` entry may carry a `name`. Before the user programs are built, this reads every
//! manifest xtask boots (system.toml and tests/manifests/*.toml), and writes for each
//! program crate `target/user/caps/<crate>.rs`: one constant per named cap, typed by its
//! kind (`pub const KV: libcap::caps::Endpoint = ...`), and `EXPECTED` for the start-up
//! check. `libcap::caps!()` includes it (through `DAIOS_CAPS_DIR`). So a program names its
//! caps, not slot numbers; reordering a manifest changes nothing; a name it uses that the
//! manifests do not give, or give as another kind, fails its build. A crate that several
//! manifests run must get the same named caps, in the same slots and kinds, from every one
//! of them: otherwise this refuses, naming both manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use abi::ObjectType;
use anyhow::{Context, Result, bail};

use crate::build::workspace_root;

/// Where the generated files go; the user build gets it as `DAIOS_CAPS_DIR`.
pub fn dir() -> PathBuf {
    crate::userland::user_target_dir().join("caps")
}

/// One named cap as one manifest gives it.
#[derive(Clone, PartialEq, Eq)]
struct Given {
    slot: u32,
    kind: ObjectType,
}

/// What the manifests name for one crate: cap name to (slot, kind), the manifest that set it.
type Names = BTreeMap<String, Given>;

/// Writes the constants of every program crate (an empty module for a crate whose caps no
/// manifest names); returns the directory.
pub fn generate() -> Result<PathBuf> {
    let root = workspace_root();
    let mut manifests = vec![root.join("system.toml")];
    let tests = root.join("tests/manifests");
    let mut listed: Vec<PathBuf> = std::fs::read_dir(&tests).with_context(|| format!("listing {}", tests.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    listed.sort();
    manifests.extend(listed.into_iter().filter(|p| p.extension().is_some_and(|e| e == "toml")));
    let crates = crate::userland::programs()?;
    let known: Vec<&str> = crates.iter().map(String::as_str).collect();
    // crate -> (its names, the manifest they came from first)
    let mut by_crate: BTreeMap<String, (Names, PathBuf)> = BTreeMap::new();
    for path in &manifests {
        let source = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // The policy is checked where a manifest is booted; here only the caps matter.
        let Ok(compiled) = ::manifest::compile_with(&source, &known, &::manifest::Key::ALL) else { continue };
        for program in &compiled.programs {
            let krate = program.binary.trim_start_matches("bin/").to_owned();
            let mut names = Names::new();
            for named in &program.cap_names {
                let kind = program.caps.iter().find(|cap| cap.slot == named.slot).map(|cap| cap.kind()).context("a named cap's slot")?;
                names.insert(named.name.clone(), Given { slot: named.slot, kind });
            }
            match by_crate.get(&krate) {
                None => {
                    by_crate.insert(krate, (names, path.clone()));
                }
                Some((first, first_path)) if *first != names => bail!(
                    "{krate}: the manifests name its caps differently: {} gives {}, {} gives {} (a crate run by several manifests must get the same named caps in the same slots from each)",
                    relative(first_path),
                    describe(first),
                    relative(path),
                    describe(&names)
                ),
                Some(_) => {}
            }
        }
    }
    let dir = dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for krate in &crates {
        let (names, from) = by_crate.get(krate).map_or((Names::new(), None), |(names, path)| (names.clone(), Some(path)));
        let text = render(krate, &names, from.map(|p| relative(p)).as_deref())?;
        let path = dir.join(format!("{krate}.rs"));
        // Rewritten only when it changes: cargo rebuilds the crate when the file's time moves.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(dir)
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root()).unwrap_or(path).display().to_string()
}

fn describe(names: &Names) -> String {
    if names.is_empty() {
        return "no named caps".into();
    }
    names.iter().map(|(name, given)| format!("{name} = {:?} in slot {}", given.kind, given.slot)).collect::<Vec<_>>().join(", ")
}

/// The libcap type of a cap of `kind`.
fn type_of(kind: ObjectType) -> Option<&'static str> {
    Some(match kind {
        ObjectType::Endpoint => "Endpoint",
        ObjectType::Notification => "Notification",
        ObjectType::IrqHandler => "IrqHandler",
        ObjectType::IoPortRange => "IoPorts",
        ObjectType::AddressSpace => "AddressSpace",
        ObjectType::Console => "Console",
        ObjectType::Frame => "Frame",
        ObjectType::Pci => "Pci",
        _ => return None,
    })
}

fn render(krate: &str, names: &Names, from: Option<&str>) -> Result<String> {
    let mut text = format!(
        "// Generated by `cargo xtask` from the boot manifests{}: the caps they name for `{krate}`.\n\
         // Do not edit: name, rename or move a cap in the manifest instead.\n",
        from.map(|f| format!(" (first {f})")).unwrap_or_default()
    );
    let mut expected = String::new();
    for (name, given) in names {
        let Some(ty) = type_of(given.kind) else { bail!("{krate}: cap \"{name}\" is a {:?}, which has no typed constant", given.kind) };
        let constant = name.to_uppercase();
        text.push_str(&format!(
            "/// `{name}` in the manifest: a {:?} cap in slot {}.\npub const {constant}: libcap::caps::{ty} = libcap::caps::{ty}::at({});\n",
            given.kind, given.slot, given.slot
        ));
        expected.push_str(&format!("    libcap::caps::Expected {{ name: \"{constant}\", slot: {}, kind: libcap::caps::{ty}::KIND }},\n", given.slot));
    }
    text.push_str(&format!(
        "/// Every constant above, for the start-up check (`libcap::entry!(main, caps)`).\npub const EXPECTED: &[libcap::caps::Expected] = &[\n{expected}];\n"
    ));
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_typed_by_kind_and_listed_for_the_check() {
        let mut names = Names::new();
        names.insert("kv".into(), Given { slot: 2, kind: ObjectType::Endpoint });
        names.insert("bell".into(), Given { slot: 3, kind: ObjectType::Notification });
        let text = render("kv-client", &names, Some("tests/manifests/kv.toml")).unwrap();
        assert!(text.contains("pub const KV: libcap::caps::Endpoint = libcap::caps::Endpoint::at(2);"), "{text}");
        assert!(text.contains("pub const BELL: libcap::caps::Notification = libcap::caps::Notification::at(3);"), "{text}");
        assert!(text.contains("Expected { name: \"KV\", slot: 2, kind: libcap::caps::Endpoint::KIND }"), "{text}");
        names.insert("thread".into(), Given { slot: 4, kind: ObjectType::Thread });
        assert!(render("kv-client", &names, None).is_err());
    }

    #[test]
    fn every_manifest_names_its_crates_caps_alike() {
        // The tree's own manifests: generation must succeed (and does not write outside
        // target/).
        generate().unwrap();
    }
}
