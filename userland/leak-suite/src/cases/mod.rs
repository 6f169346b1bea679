//! The cases, by area. Each module exports `CASES`, a table of [`Case`]s with stable IDs;
//! [`all`] runs them in this order (the boot audit first: it judges the state every later
//! case must leave behind).

use alloc::vec::Vec;

use crate::world::Case;

mod boot;
mod cnode;
mod ipc;
mod memory;
mod privilege;

pub fn all() -> Vec<&'static Case> {
    let areas: &[&[Case]] = &[boot::CASES, cnode::CASES, ipc::CASES, memory::CASES, privilege::CASES];
    areas.iter().flat_map(|cases| cases.iter()).collect()
}
