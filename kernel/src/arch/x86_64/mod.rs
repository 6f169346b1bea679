pub mod boot;
pub mod serial;

pub fn exit_qemu(code: u32) -> ! {
    let mut port = ::x86_64::instructions::port::Port::<u32>::new(abi::qemu_exit::PORT);
    // SAFETY: isa-debug-exit ends the VM; on real hardware port 0xf4 is unused.
    unsafe { port.write(code) };
    loop {
        ::x86_64::instructions::hlt();
    }
}
