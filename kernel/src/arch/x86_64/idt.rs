//! Interrupt entry: the IDT, one naked stub per vector, and the common trap path.
//!
//! Every stub pushes its vector (and a zero where the CPU pushes no error code) and jumps to
//! `trap_common`, which saves the general registers into a [`TrapFrame`] and calls
//! [`trap_dispatch`]. Every exception the kernel does not expect becomes a report on the
//! console (vector, error code, RIP, CR2, registers), never a silent triple fault.

use core::arch::naked_asm;
use spin::Once;
use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;

use super::{apic, gdt};
use crate::arch::hooks::{self, print_emergency};

/// The registers at the time of the trap, as `trap_common` lays them out on the stack.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub const TIMER_VECTOR: u8 = 32;
pub const SPURIOUS_VECTOR: u8 = 0xff;

#[unsafe(naked)]
extern "C" fn trap_common() {
    naked_asm!(
        "push r15", "push r14", "push r13", "push r12", "push r11", "push r10", "push r9", "push r8",
        "push rbp", "push rdi", "push rsi", "push rdx", "push rcx", "push rbx", "push rax",
        "cld",
        "mov rdi, rsp",
        "call {dispatch}",
        "jmp {trap_return}",
        dispatch = sym trap_dispatch,
        trap_return = sym trap_return,
    )
}

/// Restores a [`TrapFrame`] at the stack pointer and returns to it with `iretq`: the one
/// way back from traps, syscalls and the first entry of a new thread.
///
/// Single CPU, no user GS: the kernel never uses GS, so no `swapgs` is needed (see
/// `syscall.rs` for the per-CPU data it uses instead).
#[unsafe(naked)]
pub extern "C" fn trap_return() {
    naked_asm!(
        "pop rax", "pop rbx", "pop rcx", "pop rdx", "pop rsi", "pop rdi", "pop rbp",
        "pop r8", "pop r9", "pop r10", "pop r11", "pop r12", "pop r13", "pop r14", "pop r15",
        "add rsp, 16",
        "iretq",
    )
}

macro_rules! stubs {
    ($($name:ident = $vector:literal $(, $error:ident)?;)*) => {
        $(
            #[unsafe(naked)]
            extern "C" fn $name() {
                naked_asm!(
                    stubs!(@zero $($error)?),
                    "push {vector}",
                    "jmp {common}",
                    vector = const $vector,
                    common = sym trap_common,
                )
            }
        )*
        const STUBS: &[(u8, extern "C" fn())] = &[$(($vector, $name)),*];
    };
    (@zero error_code) => { "" };
    (@zero) => { "push 0" };
}

stubs! {
    divide_error = 0;
    debug = 1;
    nmi = 2;
    breakpoint = 3;
    overflow = 4;
    bound_range = 5;
    invalid_opcode = 6;
    device_not_available = 7;
    double_fault = 8, error_code;
    coprocessor_segment = 9;
    invalid_tss = 10, error_code;
    segment_not_present = 11, error_code;
    stack_segment = 12, error_code;
    general_protection = 13, error_code;
    page_fault = 14, error_code;
    reserved_15 = 15;
    x87_floating_point = 16;
    alignment_check = 17, error_code;
    machine_check = 18;
    simd_floating_point = 19;
    virtualization = 20;
    control_protection = 21, error_code;
    reserved_22 = 22;
    reserved_23 = 23;
    reserved_24 = 24;
    reserved_25 = 25;
    reserved_26 = 26;
    reserved_27 = 27;
    hypervisor_injection = 28;
    vmm_communication = 29, error_code;
    security = 30, error_code;
    reserved_31 = 31;
    timer = 32;
    irq0 = 0x30;
    irq1 = 0x31;
    irq2 = 0x32;
    irq3 = 0x33;
    irq4 = 0x34;
    irq5 = 0x35;
    irq6 = 0x36;
    irq7 = 0x37;
    irq8 = 0x38;
    irq9 = 0x39;
    irq10 = 0x3a;
    irq11 = 0x3b;
    irq12 = 0x3c;
    irq13 = 0x3d;
    irq14 = 0x3e;
    irq15 = 0x3f;
    spurious = 255;
}

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Points an IDT entry at one of this module's stubs.
fn install<F>(
    entry: &mut x86_64::structures::idt::Entry<F>,
    stub: VirtAddr,
) -> &mut x86_64::structures::idt::EntryOptions {
    // SAFETY: only called by `init` with the address of a stub from `STUBS`: a naked
    // function that saves all registers, calls the dispatcher with a correct frame and
    // returns with iretq, pushing a zero error code exactly where the CPU pushes none.
    unsafe { entry.set_handler_addr(stub) }
}

pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        for &(vector, stub) in STUBS {
            let address = VirtAddr::new(stub as usize as u64);
            let options = match vector {
                8 => install(&mut idt.double_fault, address),
                10 => install(&mut idt.invalid_tss, address),
                11 => install(&mut idt.segment_not_present, address),
                12 => install(&mut idt.stack_segment_fault, address),
                13 => install(&mut idt.general_protection_fault, address),
                14 => install(&mut idt.page_fault, address),
                17 => install(&mut idt.alignment_check, address),
                18 => install(&mut idt.machine_check, address),
                21 => install(&mut idt.cp_protection_exception, address),
                29 => install(&mut idt.vmm_communication_exception, address),
                30 => install(&mut idt.security_exception, address),
                // The crate keeps the architecturally reserved entries private.
                15 | 22..=27 | 31 => continue,
                _ => install(&mut idt[vector], address),
            };
            let stack = match vector {
                8 => Some(gdt::DOUBLE_FAULT_IST),
                2 => Some(gdt::NMI_IST),
                18 => Some(gdt::MACHINE_CHECK_IST),
                _ => None,
            };
            if let Some(index) = stack {
                // SAFETY: `gdt::init` put a mapped, guarded stack in this IST slot, used
                // by no other vector.
                unsafe { options.set_stack_index(index) };
            }
        }
        idt
    });
    idt.load();
}

pub fn vector_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range exceeded",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack-segment fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 floating-point error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating-point error",
        20 => "#VE virtualization exception",
        21 => "#CP control protection",
        _ => "reserved exception",
    }
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        0..=31 if frame.cs & 3 == 3 => hooks::user_exception(frame, Cr2::read_raw()),
        0..=31 => exception(frame),
        v if v == u64::from(TIMER_VECTOR) => {
            apic::end_of_interrupt();
            hooks::timer();
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {} // no EOI for spurious interrupts
        0x30..=0x3f => hooks::irq((frame.vector - 0x30) as usize),
        _ => {}
    }
}

fn exception(frame: &mut TrapFrame) {
    let cr2 = Cr2::read_raw();
    if hooks::kernel_exception(frame, cr2) {
        return;
    }
    report(frame, cr2);
    match frame.vector {
        // Breakpoints and NMIs are reported and execution goes on.
        2 | 3 => {}
        _ => super::halt_forever(),
    }
}

/// Prints everything known about a trap.
pub fn report(frame: &TrapFrame, cr2: u64) {
    let f = frame;
    print_emergency(format_args!(
        "\n!!! KERNEL EXCEPTION: {} (vector {}), error code {:#x}{}\n",
        vector_name(f.vector),
        f.vector,
        f.error_code,
        if f.vector == 14 { page_fault_cause(f.error_code) } else { "" },
    ));
    print_emergency(format_args!(
        "    RIP {:016x}  CS {:04x}  RFLAGS {:016x}\n    RSP {:016x}  SS {:04x}  CR2 {:016x}\n",
        f.rip, f.cs, f.rflags, f.rsp, f.ss, cr2
    ));
    print_emergency(format_args!(
        "    RAX {:016x} RBX {:016x} RCX {:016x} RDX {:016x}\n    RSI {:016x} RDI {:016x} RBP {:016x} R8  {:016x}\n",
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.r8
    ));
    print_emergency(format_args!(
        "    R9  {:016x} R10 {:016x} R11 {:016x} R12 {:016x}\n    R13 {:016x} R14 {:016x} R15 {:016x}\n",
        f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15
    ));
}

fn page_fault_cause(error_code: u64) -> &'static str {
    match error_code & 0b1_1111 {
        0b00000 => " (kernel read, page not present)",
        0b00010 => " (kernel write, page not present)",
        0b00001 => " (kernel read, protection violation)",
        0b00011 => " (kernel write, protection violation)",
        0b10000 | 0b10001 => " (kernel instruction fetch)",
        code if code & 0b100 != 0 => " (user access)",
        code if code & 0b1000 != 0 => " (reserved bit set in a page-table entry)",
        _ => "",
    }
}
