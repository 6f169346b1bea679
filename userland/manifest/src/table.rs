//! The process/capability table: what init prints at boot and `cargo xtask manifest` prints.
//!
//! One implementation, `core::fmt` only, so the build-time and boot-time tables cannot drift.
//! Rights are printed as five columns `RWGgX` (read, write, grant, grant_reply, execute), a
//! `-` for each right not held, as `abi::Rights`'s `Debug` does.

use alloc::format;
use core::fmt;

use abi::Rights;

use crate::{CompiledManifest, RestartPolicy};

/// Displays a [`CompiledManifest`] as a table; see [`CompiledManifest::table`].
pub struct Table<'a> {
    manifest: &'a CompiledManifest,
}

impl<'a> Table<'a> {
    pub(crate) fn new(manifest: &'a CompiledManifest) -> Table<'a> {
        Table { manifest }
    }
}

/// Five fixed columns, `RWGgX`.
struct RightsColumns(Rights);

impl fmt::Display for RightsColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (right, c) in [
            (Rights::READ, 'R'),
            (Rights::WRITE, 'W'),
            (Rights::GRANT, 'G'),
            (Rights::GRANT_REPLY, 'g'),
            (Rights::EXECUTE, 'X'),
        ] {
            fmt::Write::write_char(f, if self.0.contains(right) { c } else { '-' })?;
        }
        Ok(())
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.manifest;
        let init = &m.init;
        writeln!(
            f,
            "boot manifest: {} processes, {} endpoints, {} notifications",
            m.programs.len(),
            m.endpoints.len(),
            m.notifications.len()
        )?;
        write!(
            f,
            "init holds: console {}, memory quota {} bytes, {} cpus, irqs [",
            RightsColumns(init.console()),
            init.memory_quota,
            init.cpus
        )?;
        for (i, irq) in init.irqs.iter().enumerate() {
            write!(f, "{}{irq}", if i == 0 { "" } else { " " })?;
        }
        f.write_str("], io ports [")?;
        for (i, range) in init.io_ports.iter().enumerate() {
            write!(f, "{}{range}", if i == 0 { "" } else { " " })?;
        }
        writeln!(f, "]")?;
        writeln!(
            f,
            "{:<16} {:>3} {:>19} {:>12}  {:<22} AUDIT",
            "PROCESS", "PRI", "BUDGET/PERIOD us", "MEMORY bytes", "ON CRASH"
        )?;
        for p in &m.programs {
            let budget = BudgetColumn(p.budget_us, p.period_us);
            let on_crash = CrashColumn(p.on_crash);
            let audit = if p.audit { "yes" } else { "no" };
            writeln!(
                f,
                "{:<16} {:>3} {:>19} {:>12}  {:<22} {}",
                p.name, p.priority, budget, p.memory_quota, on_crash, audit
            )?;
            if p.caps.is_empty() {
                writeln!(f, "    (no caps)")?;
            }
            for cap in &p.caps {
                write!(
                    f,
                    "    slot {:>3}  {}  ",
                    cap.slot,
                    RightsColumns(cap.rights())
                )?;
                write!(f, "{}", m.object_name(cap.object))?;
                let client = memory_api::ClientBadge::decode(cap.badge)
                    .filter(|_| m.memory_server.is_some_and(|e| cap.object == crate::ObjectRef::Endpoint(e)));
                if let Some(client) = client {
                    write!(f, "  memory client {}, quota {} pages", client.id(), client.quota_pages())?;
                } else if cap.object == crate::ObjectRef::Supervisor {
                    let level = match cap.badge {
                        init_api::CONTROL_BADGE => "control",
                        init_api::REPORT_BADGE => "report",
                        _ => "status",
                    };
                    write!(f, "  {level}")?;
                } else if cap.badge != 0 {
                    write!(f, "  badge {}", cap.badge)?;
                }
                writeln!(f)?;
            }
            if let Some(slot) = p.audit_slot() {
                writeln!(f, "    slot {:>3}  {}  the authority audit", slot.index(), RightsColumns(abi::Rights::READ))?;
            }
        }
        Ok(())
    }
}

/// `budget/period`, padded as one column.
struct BudgetColumn(u32, u32);

impl fmt::Display for BudgetColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Width applies to the whole column, so format it first, then pad.
        f.pad(&format!("{}/{}", self.0, self.1))
    }
}

struct CrashColumn(RestartPolicy);

impl fmt::Display for CrashColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RestartPolicy::Fatal => f.pad("fatal"),
            RestartPolicy::Restart { max_backoff_ms } => {
                f.pad(&format!("restart (<= {max_backoff_ms} ms)"))
            }
        }
    }
}
