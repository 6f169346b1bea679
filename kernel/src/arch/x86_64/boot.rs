//! The first instructions: the Multiboot2 header, the Xen PVH note and the 32-bit entry stub.
//!
//! Both boot protocols enter at `_start32` in 32-bit protected mode with paging off:
//! Multiboot2 (GRUB) with `eax = 0x36d76289` and `ebx` = the boot information, PVH (QEMU
//! `-kernel`) with `ebx` = the `hvm_start_info`. The stub records which it was, builds
//! throw-away page tables that map the first 4 GiB three times (identity, so the stub
//! survives turning paging on; at the direct map; and the first 2 GiB at the kernel's link
//! address), enters long mode and calls [`super::super::kernel_entry`] on the boot stack.
//!
//! The stub checks for long mode and NX before using them and, if either is missing, says
//! so on COM1 and halts: a kernel that enforces W^X cannot run without NX.

use core::arch::global_asm;

/// Entry-time facts the stub hands to Rust.
#[repr(C)]
pub struct BootHandoff {
    /// `eax` at entry: the Multiboot2 magic, or anything else for PVH.
    pub magic: u32,
    /// `ebx` at entry: physical address of the boot information.
    pub info: u32,
    /// The time-stamp counter at the first instruction, for the boot-time report.
    pub entry_tsc: u64,
}


global_asm!(
    r#"
    .section .multiboot2_header, "a"
    .balign 8
mb2_header_start:
    .long 0xE85250D6                       /* magic */
    .long 0                                /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (0xE85250D6 + (mb2_header_end - mb2_header_start))
    .balign 8
    .short 0                               /* end tag */
    .short 0
    .long 8
mb2_header_end:

    /* PVH: XEN_ELFNOTE_PHYS32_ENTRY (18). QEMU 7.2 wants 4-byte alignment and a
       64-bit address field in a 64-bit ELF. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad _start32
    .balign 4

    .section .boot.text, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov edi, eax
    mov esi, ebx
    rdtsc
    mov dword ptr [boot_handoff + 8], eax
    mov dword ptr [boot_handoff + 12], edx
    mov dword ptr [boot_handoff], edi
    mov dword ptr [boot_handoff + 4], esi

    /* Long mode (bit 29) and NX (bit 20) in CPUID 0x80000001 EDX. */
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz no_long_mode
    test edx, 1 << 20
    jz no_long_mode

    /* 2048 2-MiB pages: the first 4 GiB. */
    mov edi, offset boot_pd
    xor ecx, ecx
1:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83                           /* present, writable, 2 MiB */
    mov dword ptr [edi + ecx * 8], eax
    mov dword ptr [edi + ecx * 8 + 4], 0
    inc ecx
    cmp ecx, 2048
    jb 1b

    /* One PDPT for the identity map and the direct map: four 1-GiB slots. */
    mov eax, offset boot_pd
    or eax, 3
    mov dword ptr [boot_pdpt_low], eax
    add eax, 0x1000
    mov dword ptr [boot_pdpt_low + 8], eax
    add eax, 0x1000
    mov dword ptr [boot_pdpt_low + 16], eax
    add eax, 0x1000
    mov dword ptr [boot_pdpt_low + 24], eax
    /* The kernel's link window: -2 GiB maps physical 0..2 GiB. */
    mov eax, offset boot_pd
    or eax, 3
    mov dword ptr [boot_pdpt_high + 510 * 8], eax
    add eax, 0x1000
    mov dword ptr [boot_pdpt_high + 511 * 8], eax

    mov eax, offset boot_pdpt_low
    or eax, 3
    mov dword ptr [boot_pml4], eax             /* identity */
    mov dword ptr [boot_pml4 + 256 * 8], eax   /* direct map at 0xffff800000000000 */
    mov eax, offset boot_pdpt_high
    or eax, 3
    mov dword ptr [boot_pml4 + 511 * 8], eax

    mov eax, cr4
    or eax, 1 << 5                         /* PAE */
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080                    /* EFER */
    rdmsr
    or eax, (1 << 8) | (1 << 11)           /* LME, NXE */
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1      /* PG, WP, PE */
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    jmp fword ptr [boot_far_jump]

no_long_mode:
    mov esi, offset no_long_mode_message
2:
    mov al, byte ptr [esi]
    test al, al
    jz 3f
    mov dx, 0x3f8
    out dx, al
    inc esi
    jmp 2b
3:
    hlt
    jmp 3b

    .code64
start64_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rsp, offset boot_stack_top
    movabs rdi, offset boot_handoff
    movabs rax, offset {entry}
    call rax
4:
    hlt
    jmp 4b

    .section .boot.data, "aw"
no_long_mode_message:
    .asciz "Democratizing AI OS needs a 64-bit CPU with NX; halting.\r\n"
    .balign 8
boot_handoff:
    .quad 0
    .quad 0
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF               /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF               /* 0x10: data */
boot_gdt_pointer:
    .short boot_gdt_pointer - boot_gdt - 1
    .long boot_gdt
boot_far_jump:
    .long start64_low
    .short 0x08
    .balign 4096
boot_pml4:
    .space 4096
boot_pdpt_low:
    .space 4096
boot_pdpt_high:
    .space 4096
boot_pd:
    .space 4096 * 4

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .space 16384
boot_stack_top:
    "#,
    entry = sym crate::kernel_entry,
);
