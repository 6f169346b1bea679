//! The `[security.*]` sections of `system.toml`, read with their line numbers (`std` only).
//!
//! serde's derive would accept the shape, but its messages for a missing key or a wrong
//! type name neither the section nor the line. So the policy is read from the span-keeping
//! TOML tree (`toml::de::DeTable`) by hand: every unknown section or key, every value of the
//! wrong type or out of range, and every key or section the file leaves out is a
//! [`ManifestError::Policy`] with the line it is on (a missing key: the line of its
//! section's header; a missing section: the line of the first `[security.*]` header, or the
//! last line if there is none). Duplicate sections and keys are refused by the TOML parser
//! itself, with their line, before this runs. Errors come in file order: the first problem
//! in the file is the one reported.

use std::borrow::ToOwned;
use std::format;
use std::string::String;
use std::vec::Vec;

use toml::de::{DeTable, DeValue};

use crate::ManifestError;
use crate::policy::{Key, SECTIONS};

/// The sections of `[security]`, in the order the file is expected to give them.
pub(crate) const SECTION_NAMES: [&str; 5] = ["hardware", "process", "network", "ai", "sandbox"];

/// The keys of `[security.sandbox]`.
const SANDBOX_KEYS: [&str; 6] =
    ["network", "max_priority", "max_cpu_percent", "max_memory_quota", "max_heap_pages", "allowed_services"];

/// The policy as the file gives it, with lines.
pub(crate) struct SecuritySource {
    /// Every key of [`Key::ALL`], in that order: its value and line.
    pub keys: Vec<(Key, bool, usize)>,
    pub sandbox: SandboxSource,
}

/// `[security.sandbox]` as the file gives it.
pub(crate) struct SandboxSource {
    pub network: bool,
    pub network_line: usize,
    pub max_priority: u8,
    pub max_cpu_percent: u32,
    pub max_memory_quota: u64,
    pub max_heap_pages: u32,
    /// Endpoint names, each with its line.
    pub allowed_services: Vec<(String, usize)>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

fn error(line: usize, message: String) -> ManifestError {
    ManifestError::Policy { line, message }
}

/// A table's entries in file order: (key, key line, value, value line).
fn entries<'a, 'i>(text: &str, table: &'a DeTable<'i>) -> Vec<(&'a str, usize, &'a DeValue<'i>, usize)> {
    let mut out: Vec<_> = table
        .iter()
        .map(|(key, value)| {
            let key_at = key.span().start;
            (key.get_ref().as_ref(), key_at, value.get_ref(), value.span().start)
        })
        .collect();
    out.sort_by_key(|entry| entry.1);
    out.into_iter().map(|(key, key_at, value, value_at)| (key, line_of(text, key_at), value, line_of(text, value_at))).collect()
}

/// `a, b, c`.
fn list(names: &[&str]) -> String {
    names.join(", ")
}

/// Reads `[security.*]` out of `text` (a file that already parsed as TOML).
pub(crate) fn parse(text: &str) -> Result<SecuritySource, ManifestError> {
    let last_line = line_of(text, text.len());
    let root = DeTable::parse(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
    let root = root.get_ref();
    let security = root.iter().find(|(key, _)| key.get_ref().as_ref() == "security");
    let Some((security_key, security)) = security else {
        return Err(error(
            last_line,
            format!(
                "no [security.*] policy: the manifest must give every section ([security.{}])",
                SECTION_NAMES.join("], [security.")
            ),
        ));
    };
    let security_line = line_of(text, security_key.span().start);
    let DeValue::Table(security) = security.get_ref() else {
        return Err(error(security_line, "security must be a table of sections ([security.hardware] ...)".into()));
    };
    let sections = entries(text, security);
    for (name, line, value, _) in &sections {
        if !SECTION_NAMES.contains(name) {
            return Err(error(
                *line,
                format!("unknown section [security.{name}] (the sections are {})", list(&SECTION_NAMES)),
            ));
        }
        if !matches!(value, DeValue::Table(_)) {
            return Err(error(*line, format!("security.{name} must be a section ([security.{name}]), not {}", article(value))));
        }
    }
    let first_line = sections.first().map_or(security_line, |s| s.1);
    let section = |name: &str| -> Result<(&DeTable<'_>, usize), ManifestError> {
        match sections.iter().find(|s| s.0 == name) {
            Some((_, line, DeValue::Table(table), _)) => Ok((table, *line)),
            _ => Err(error(
                first_line,
                format!("no [security.{name}] section (the policy gives every section: {})", list(&SECTION_NAMES)),
            )),
        }
    };

    let mut keys = Vec::new();
    for (name, section_keys) in SECTIONS {
        let (table, header) = section(name)?;
        let names: Vec<&str> = section_keys.iter().map(|k| k.name()).collect();
        let given = entries(text, table);
        for (key, line, value, _) in &given {
            if !names.contains(key) {
                return Err(error(
                    *line,
                    format!("[security.{name}] has no key `{key}` (its keys are {})", list(&names)),
                ));
            }
            if !matches!(value, DeValue::Boolean(_)) {
                return Err(error(
                    *line,
                    format!("[security.{name}] {key} must be true or false, not {}", article(value)),
                ));
            }
        }
        for key in section_keys.iter() {
            match given.iter().find(|g| g.0 == key.name()) {
                Some((_, line, DeValue::Boolean(value), _)) => keys.push((*key, *value, *line)),
                _ => {
                    return Err(error(
                        header,
                        format!(
                            "[security.{name}] leaves out `{}` (every key must be given: {})",
                            key.name(),
                            list(&names)
                        ),
                    ));
                }
            }
        }
    }
    // SECTIONS lists the keys in `Key::ALL` order.
    debug_assert!(keys.iter().map(|k| k.0).eq(Key::ALL));

    let (table, header) = section("sandbox")?;
    let given = entries(text, table);
    for (key, line, _, _) in &given {
        if !SANDBOX_KEYS.contains(key) {
            return Err(error(
                *line,
                format!("[security.sandbox] has no key `{key}` (its keys are {})", list(&SANDBOX_KEYS)),
            ));
        }
    }
    let get = |key: &str| {
        given.iter().find(|g| g.0 == key).map(|g| (g.2, g.1)).ok_or_else(|| {
            error(
                header,
                format!("[security.sandbox] leaves out `{key}` (every key must be given: {})", list(&SANDBOX_KEYS)),
            )
        })
    };
    let int = |key: &str, low: u64, high: u64| -> Result<u64, ManifestError> {
        let (value, line) = get(key)?;
        let DeValue::Integer(i) = value else {
            return Err(error(line, format!("[security.sandbox] {key} must be an integer, not {}", article(value))));
        };
        let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
        match i128::from_str_radix(&digits, i.radix()) {
            Ok(n) if n >= i128::from(low) && n <= i128::from(high) => Ok(n as u64),
            Ok(n) => Err(error(line, format!("[security.sandbox] {key} = {n} is out of range {low}..={high}"))),
            Err(_) => Err(error(line, format!("[security.sandbox] {key} is out of range {low}..={high}"))),
        }
    };
    // In file order, so that the first wrong value in the file is the one reported.
    let mut order: Vec<&str> = SANDBOX_KEYS.to_vec();
    order.sort_by_key(|key| given.iter().find(|g| g.0 == *key).map_or(usize::MAX, |g| g.1));
    let mut network = None;
    let mut numbers = [0u64; 4];
    let mut services = Vec::new();
    for key in order {
        match key {
            "network" => {
                let (value, line) = get(key)?;
                let DeValue::Boolean(b) = value else {
                    return Err(error(line, format!("[security.sandbox] network must be true or false, not {}", article(value))));
                };
                network = Some((*b, line));
            }
            "max_priority" => numbers[0] = int(key, u64::from(crate::MIN_PRIORITY), u64::from(crate::MAX_PRIORITY))?,
            "max_cpu_percent" => numbers[1] = int(key, 1, 100)?,
            "max_memory_quota" => numbers[2] = int(key, 0, u64::MAX)?,
            "max_heap_pages" => numbers[3] = int(key, 0, u64::from(u32::MAX))?,
            _ => {
                let (value, line) = get(key)?;
                let DeValue::Array(array) = value else {
                    return Err(error(
                        line,
                        format!("[security.sandbox] allowed_services must be an array of endpoint names, not {}", article(value)),
                    ));
                };
                for item in array.iter() {
                    let item_line = line_of(text, item.span().start);
                    let DeValue::String(name) = item.get_ref() else {
                        return Err(error(
                            item_line,
                            format!("[security.sandbox] allowed_services must list endpoint names, not {}", article(item.get_ref())),
                        ));
                    };
                    services.push((name.as_ref().to_owned(), item_line));
                }
            }
        }
    }
    let (network, network_line) = network.unwrap_or((false, header));
    Ok(SecuritySource {
        keys,
        sandbox: SandboxSource {
            network,
            network_line,
            max_priority: numbers[0] as u8,
            max_cpu_percent: numbers[1] as u32,
            max_memory_quota: numbers[2],
            max_heap_pages: numbers[3] as u32,
            allowed_services: services,
        },
    })
}

/// "an integer", "a string", ...
fn article(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    let a = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{a} {kind}")
}
