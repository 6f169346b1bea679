//! `[security.process] dep = true` at build time: no program packed into the initrd asks
//! for a writable and executable mapping.
//!
//! A program's mappings are requested by its ELF: each `PT_LOAD` segment's flags, and
//! `PT_GNU_STACK` for the stack. The loaders (the kernel's for init, `libcap::loader` for
//! the rest) refuse a W+X segment or an executable stack when they load it, through
//! `kcore::elf::parse`; this runs the same parser over every `bin/*` file before the image
//! is built, so such a program stops the build, named, instead of failing at boot. The
//! manifest itself has no notion of a mapping: the ELF is where a program asks for one.

use anyhow::{Result, bail};
use kcore::elf::{self, ElfError};

/// Checks every `bin/<name>` of `files` (initrd path, bytes) if `dep` is enforced.
pub fn check(policy: &manifest::Policy, files: &[(String, Vec<u8>)]) -> Result<()> {
    if policy.state(manifest::Key::Dep) != manifest::KeyState::Enforced {
        return Ok(());
    }
    for (path, bytes) in files.iter().filter(|(path, _)| path.starts_with("bin/")) {
        let why = match elf::parse(bytes) {
            Ok(_) => continue,
            Err(ElfError::WritableAndExecutable) => "a loadable segment is writable and executable",
            Err(ElfError::ExecutableStack) => "its PT_GNU_STACK asks for an executable stack",
            Err(ElfError::MissingStackHeader) => "it has no PT_GNU_STACK, so it does not say its stack is not executable",
            Err(other) => bail!("{path} is not a program the loader accepts: {other:?}"),
        };
        bail!("[security.process] dep = true: {path} is refused: {why}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &[u8] = include_bytes!("../../kernel/core/tests/data/hello.elf");

    /// The policy of system.toml, compiled, with `dep` as given.
    fn policy(dep: bool) -> manifest::Policy {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.toml");
        let source = std::fs::read_to_string(path).expect("system.toml");
        let source = if dep { source } else { source.replacen("dep = true", "dep = false", 1) };
        let known = ["memory", "hello", "echo-server", "echo-client", "shell", "ai", "model-sandbox"];
        manifest::compile(&source, &known).expect("system.toml compiles").policy
    }

    /// hello.elf with its first executable `PT_LOAD` segment made writable too.
    fn writable_text() -> Vec<u8> {
        let mut elf = HELLO.to_vec();
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
        let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
        let (size, count) = (u16_at(&elf, 0x36), u16_at(&elf, 0x38));
        let header = (0..count)
            .map(|i| phoff + i * size)
            .find(|&h| elf[h..h + 4] == 1u32.to_le_bytes() && elf[h + 4] & 1 != 0)
            .expect("an executable PT_LOAD");
        elf[header + 4] |= 2; // PF_W
        elf
    }

    #[test]
    fn dep_check_refuses_a_writable_executable_segment() {
        let good = vec![("bin/hello".to_string(), HELLO.to_vec())];
        assert!(check(&policy(true), &good).is_ok());
        let bad = vec![("etc/version".to_string(), b"x".to_vec()), ("bin/hello".to_string(), writable_text())];
        let error = check(&policy(true), &bad).expect_err("refused").to_string();
        assert_eq!(error, "[security.process] dep = true: bin/hello is refused: a loadable segment is writable and executable");
        // dep = false asks for nothing at build time (the loader still refuses it at boot).
        assert!(check(&policy(false), &bad).is_ok());
    }
}
