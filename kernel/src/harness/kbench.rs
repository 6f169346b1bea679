//! `ktest=bench`: the in-QEMU half of `cargo xtask bench`, compiled with the `ktest` feature.
//!
//! Loads `bin/bench-server` and `bin/bench-client` from the initrd (real libcap programs,
//! each in its own address space), gives them the caps the shared protocol file names
//! (`userland/bench-server/src/proto.rs`, included below), starts both at the same priority,
//! waits for both to exit and leaves QEMU with success. The client prints the figures
//! (`DAIOS-BENCH {json}` lines); xtask (`xtask/src/bench_kernel.rs`) parses them.
//!
//! The kernel space (space 0) holds the endpoint and the notifications in slots
//! [`FIRST_KERNEL_SLOT`]`..`; one `ktest=` name runs per boot, so no other test's objects
//! are there.
//!
//! Boot time: the harness prints `DAIOS-BENCH-BOOT` with the TSC at its start (ticks since
//! the virtual CPU's reset, firmware included) and the kernel's own microseconds since its
//! first instruction. Under TCG with `-icount shift=0` ticks are guest instructions.

use abi::{Badge, CapSlot, ObjectType, Rights};
use kcore::cap::SpaceId;

use crate::arch::{cpu, exit_qemu, time};
use crate::println;
use crate::sched::{self, UserStart};
use crate::thread::Exit;

#[path = "../../../userland/bench-server/src/proto.rs"]
mod proto;

use proto::{client_slots, server_slots};

const TEST: &str = "bench";
const KERNEL_SPACE: SpaceId = SpaceId::new(0);
/// Kernel-space slots of the benchmark's objects.
const FIRST_KERNEL_SLOT: u32 = 100;
const ENDPOINT: u32 = FIRST_KERNEL_SLOT;
const PING: u32 = FIRST_KERNEL_SLOT + 1;
const PONG: u32 = FIRST_KERNEL_SLOT + 2;
const GRANTED: u32 = FIRST_KERNEL_SLOT + 3;
/// Both programs run at this priority (the harness thread, at 31, only waits).
const PRIORITY: u8 = 10;
/// Kernel memory each program may spend (the client's address space and frame).
const QUOTA: u64 = 1 << 20;

fn fail(why: core::fmt::Arguments) -> ! {
    println!("KTEST FAIL {TEST}: {why}");
    exit_qemu(abi::qemu_exit::FAILURE)
}

/// Runs the benchmark and ends the VM.
pub fn run() -> ! {
    let harness_tsc = cpu::rdtsc();
    let micros = time::micros_since_boot();
    println!(
        "DAIOS-BENCH-BOOT {{\"reset_to_harness_ticks\":{harness_tsc},\"kernel_entry_to_harness_us\":{micros},\"tsc_khz\":{}}}",
        time::tsc_khz()
    );
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(format_args!("no initrd"));
    };
    let bytes = crate::module_bytes(initrd.range);
    let image = |name: &str| match kcore::ustar::Archive::find(bytes, name) {
        Ok(Some(image)) => image,
        _ => fail(format_args!("{name} is not in the initrd")),
    };
    let (server_image, client_image) = (image("bin/bench-server"), image("bin/bench-client"));

    for (slot, kind) in [
        (ENDPOINT, ObjectType::Endpoint),
        (PING, ObjectType::Notification),
        (PONG, ObjectType::Notification),
        (GRANTED, ObjectType::Notification),
    ] {
        if let Err(error) = crate::object::create(KERNEL_SPACE, CapSlot::new(slot), kind, 0, 0) {
            fail(format_args!("cannot create a {kind:?}: {error:?}"));
        }
    }
    let server = start(
        "bench-server",
        server_image,
        &[
            (ENDPOINT, server_slots::ENDPOINT, Rights::READ),
            (PING, server_slots::PING, Rights::READ),
            (PONG, server_slots::PONG, Rights::WRITE),
        ],
        &[],
        (abi::ipc_buffer::RECV_CAPS_OFFSET, server_slots::RECEIVED),
    );
    let client = start(
        "bench-client",
        client_image,
        &[
            (ENDPOINT, client_slots::ENDPOINT, Rights::WRITE.union(Rights::GRANT).union(Rights::GRANT_REPLY)),
            (PING, client_slots::PING, Rights::WRITE),
            (PONG, client_slots::PONG, Rights::READ),
            (GRANTED, client_slots::GRANTED, Rights::WRITE),
        ],
        &[(client_slots::ADDRESS_SPACE, ObjectType::AddressSpace), (client_slots::FRAME, ObjectType::Frame)],
        (abi::ipc_buffer::SEND_CAPS_OFFSET, client_slots::GRANTED),
    );
    match sched::join(client) {
        Some(Exit::Code(0)) => {}
        other => fail(format_args!("bench-client ended with {other:?}")),
    }
    match sched::join(server) {
        Some(Exit::Code(0)) => {}
        other => fail(format_args!("bench-server ended with {other:?}")),
    }
    super::report_fastpath();
    println!("KTEST PASS {TEST}");
    exit_qemu(abi::qemu_exit::SUCCESS)
}

/// Loads `image` into a fresh address space with a fresh capability space holding the
/// console (slot 1), the kernel-space caps in `caps` (from, to, rights) and new objects in
/// `objects`, writes `buffer_word.1` at offset `buffer_word.0` of its IPC buffer, and starts
/// it at [`PRIORITY`].
fn start(
    name: &str,
    image: &[u8],
    caps: &[(u32, u32, Rights)],
    objects: &[(u32, ObjectType)],
    buffer_word: (usize, u32),
) -> crate::thread::ThreadId {
    let loaded = crate::process::load(image).unwrap_or_else(|error| fail(format_args!("loading {name}: {error:?}")));
    let result = (|| -> Result<crate::thread::ThreadId, abi::ErrorCode> {
        let space = crate::caps::create_space(QUOTA)?;
        crate::caps::grant_console(space, proto::server_slots::CONSOLE, Rights::WRITE)?;
        for &(from, to, rights) in caps {
            crate::caps::mint(KERNEL_SPACE, from, space, to, rights, Badge::NONE)?;
        }
        for &(slot, kind) in objects {
            crate::object::create(space, CapSlot::new(slot), kind, 0, 0)?;
        }
        let (offset, word) = buffer_word;
        crate::vspace::copy_to_user(loaded.pml4, loaded.ipc_buffer + offset as u64, &u64::from(word).to_le_bytes())?;
        sched::spawn_user(name, UserStart {
            pml4: loaded.pml4,
            owns_space: true,
            cspace: Some(space),
            entry: loaded.entry,
            stack: loaded.stack_top,
            argument: 0,
            argument2: 0,
            priority: PRIORITY,
            budget: None,
            ipc_buffer: loaded.ipc_buffer,
        })
        .map_err(|_| abi::ErrorCode::OutOfResources)
    })();
    result.unwrap_or_else(|error| fail(format_args!("starting {name}: {error:?}")))
}
