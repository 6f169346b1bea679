//! Democratizing AI OS kernel (being written).
#![no_std]
#![no_main]

mod arch;

use core::fmt::Write;

#[unsafe(no_mangle)]
extern "C" fn kernel_entry(handoff: &arch::x86_64::boot::BootHandoff) -> ! {
    let mut serial = arch::x86_64::serial::Serial::init();
    let _ = writeln!(serial, "hello magic={:#x} info={:#x} tsc={}", handoff.magic, handoff.info, handoff.entry_tsc);
    arch::x86_64::exit_qemu(abi::qemu_exit::SUCCESS);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
