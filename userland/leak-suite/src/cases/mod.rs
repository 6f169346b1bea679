//! The cases, by area. Each module exports `CASES`, a table of [`Case`]s with stable IDs;
//! [`all`] runs them in this order (the boot audit first: it judges the state every later
//! case must leave behind).

use alloc::vec::Vec;

use crate::world::Case;

mod amplify;
mod auditops;
mod boot;
mod budget;
mod budget_loans;
mod cnode;
mod differential;
mod exhaust;
mod forge;
mod device;
mod frame_slice;
mod ipc;
mod lifetime;
mod memory;
mod pointers;
mod privilege;
mod thread;

pub fn all() -> Vec<&'static Case> {
    let areas: &[&[Case]] = &[
        boot::CASES,
        auditops::CASES,
        cnode::CASES,
        forge::CASES,
        amplify::CASES,
        ipc::CASES,
        memory::CASES,
        frame_slice::CASES,
        device::CASES,
        pointers::CASES,
        privilege::CASES,
        thread::CASES,
        exhaust::CASES,
        lifetime::CASES,
        budget::CASES,
        budget_loans::CASES,
        differential::CASES,
    ];
    areas.iter().flat_map(|cases| cases.iter()).collect()
}
