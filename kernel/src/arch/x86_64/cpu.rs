//! CPU features: what the processor offers, and switching on the ones the kernel enforces.
//!
//! Security: NX (set by the boot stub, required), CR0.WP (the kernel honours read-only
//! pages), SMEP (the kernel never executes user pages), SMAP (the kernel touches user pages
//! only inside checked copies), UMIP (user code cannot read descriptor-table registers).
//! Floating point: x87/SSE on, and XSAVE with every state component the CPU has among
//! x87, SSE, AVX and AVX-512, so threads can keep their own vector state.

use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use kcore::xsave;
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    pub smep: bool,
    pub smap: bool,
    pub umip: bool,
    pub xsave: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub rdrand: bool,
    pub rdseed: bool,
    pub pcid: bool,
    pub gigabyte_pages: bool,
    pub invariant_tsc: bool,
    pub hypervisor: bool,
    /// Bytes of XSAVE area the enabled state components need (0 without XSAVE).
    pub xsave_area: u32,
    pub xcr0: u64,
}

fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    // SAFETY: CPUID exists on every x86_64 CPU and only reads identification registers.
    #[allow(unused_unsafe)]
    unsafe {
        if subleaf == 0 { __cpuid(leaf) } else { __cpuid_count(leaf, subleaf) }
    }
}

pub fn detect() -> Features {
    let max_leaf = cpuid(0, 0).eax;
    let max_extended = cpuid(0x8000_0000, 0).eax;
    let leaf1 = cpuid(1, 0);
    let leaf7 = if max_leaf >= 7 { cpuid(7, 0) } else { CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 } };
    let extended1 = if max_extended >= 0x8000_0001 { cpuid(0x8000_0001, 0).edx } else { 0 };
    let power = if max_extended >= 0x8000_0007 { cpuid(0x8000_0007, 0).edx } else { 0 };
    let bit = |value: u32, bit: u32| value & (1 << bit) != 0;
    Features {
        smep: bit(leaf7.ebx, 7),
        smap: bit(leaf7.ebx, 20),
        umip: bit(leaf7.ecx, 2),
        xsave: bit(leaf1.ecx, 26),
        avx: bit(leaf1.ecx, 28),
        fma: bit(leaf1.ecx, 12),
        avx2: bit(leaf7.ebx, 5),
        avx512f: bit(leaf7.ebx, 16),
        rdrand: bit(leaf1.ecx, 30),
        rdseed: bit(leaf7.ebx, 18),
        pcid: bit(leaf1.ecx, 17),
        gigabyte_pages: bit(extended1, 26),
        invariant_tsc: bit(power, 8),
        hypervisor: bit(leaf1.ecx, 31),
        xsave_area: 0,
        xcr0: 0,
    }
}

/// Switches on the protection and floating-point features this CPU has. Returns what is
/// now in force.
pub fn enable(mut features: Features) -> Features {
    let mut cr0 = Cr0::read();
    cr0.insert(Cr0Flags::WRITE_PROTECT | Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR);
    cr0.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
    // SAFETY: WP makes the kernel honour read-only pages (its own tables already map
    // everything it writes as writable); MP/NE/!EM/!TS select native x87/SSE behaviour.
    unsafe { Cr0::write(cr0) };

    let mut cr4 = Cr4::read();
    cr4.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::PAGE_GLOBAL);
    for (present, flag) in [
        (features.xsave, Cr4Flags::OSXSAVE),
        (features.smep, Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        (features.smap, Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
        (features.umip, Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION),
    ] {
        if present {
            cr4.insert(flag);
        }
    }
    // SAFETY: each bit is set only if CPUID reports the feature. No user pages exist yet,
    // so SMEP/SMAP cannot trip on kernel code; SSE state handling is what the kernel
    // provides per thread.
    unsafe { Cr4::write(cr4) };

    let supported = if features.xsave { u64::from(cpuid(0xd, 0).eax) | (u64::from(cpuid(0xd, 0).edx) << 32) } else { 0 };
    let offer = xsave::Offer { xsave: features.xsave, avx: features.avx, avx512f: features.avx512f, supported_xcr0: supported };
    let layout = |bit: u32| {
        let leaf = cpuid(0xd, bit);
        xsave::Layout { size: leaf.eax, offset: leaf.ebx }
    };
    if let Some(choice) = xsave::choose(offer, layout) {
        let xcr0 = XCr0Flags::from_bits_truncate(choice.xcr0);
        // SAFETY: OSXSAVE is set, every component enabled is one CPUID reports, and their
        // image fits the frame each thread saves it in (`xsave::choose`).
        unsafe { XCr0::write(xcr0) };
        if choice.avx512_refused {
            log::warn!("CPU: AVX-512 state laid out past {} bytes; AVX-512 left off", xsave::AREA_BYTES);
        }
        features.xcr0 = xcr0.bits();
        // The CPU's own figure for the XCR0 just written; `choose` bounded the same image.
        features.xsave_area = cpuid(0xd, 0).ebx;
        features.avx512f &= choice.xcr0 & xsave::component::AVX512 != 0;
    }
    features
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the counter (CR4.TSD is clear, and we are in ring 0).
    unsafe { core::arch::x86_64::_rdtsc() }
}
