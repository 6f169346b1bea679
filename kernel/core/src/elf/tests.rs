//! Tests of the ELF loader logic: the real `hello` program, one hand-made ELF per refusal,
//! and property tests that no input makes the parser panic or return a plan that breaks
//! its invariants.

use super::*;
use proptest::prelude::*;

/// `userland/hello` as built by `cargo xtask` (dev profile, user flags). Regenerate with
/// `cargo xtask run` (or any command that builds the initrd) and copy
/// `target/user/x86_64-unknown-linux-gnu/debug/hello` here.
const HELLO: &[u8] = include_bytes!("../../tests/data/hello.elf");

/// Every property a returned plan promises (the invariants on `LoadPlan`).
fn assert_plan_invariants(bytes: &[u8], plan: &LoadPlan<'_>) {
    let segments = plan.segments();
    assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    for (i, s) in segments.iter().enumerate() {
        let p = s.permissions();
        assert!(!(p.writable() && p.executable()));
        assert!(s.data().len() as u64 <= s.mem_size());
        assert!(s.vaddr() + s.mem_size() <= MAX_IMAGE_SIZE);
        assert!(s.page_end() <= MAX_IMAGE_SIZE && s.page_start() < s.page_end());
        // data is a sub-slice of the input
        let (start, end) = (bytes.as_ptr() as usize, bytes.as_ptr() as usize + bytes.len());
        let d = s.data().as_ptr() as usize;
        assert!(s.data().is_empty() || (d >= start && d + s.data().len() <= end));
        for t in &segments[i + 1..] {
            assert!(s.page_end() <= t.page_start() || t.page_end() <= s.page_start());
        }
    }
    assert!(segments.iter().any(|s| s.permissions().executable()
        && plan.entry() >= s.vaddr()
        && plan.entry() < s.vaddr() + s.data().len() as u64));
    assert!(plan.image_size() <= MAX_IMAGE_SIZE);
    for r in plan.relocations() {
        assert!(segments.iter().any(|s| s.permissions().writable()
            && r.offset() >= s.vaddr()
            && r.offset() + 8 <= s.vaddr() + s.mem_size()));
    }
    if let Some(relro) = plan.relro() {
        assert!(segments.iter().any(|s| s.permissions().writable()
            && relro.start >= s.vaddr()
            && relro.end <= s.vaddr() + s.mem_size()));
    }
}

/// Loads `plan` into a buffer at `base` as the kernel would; returns the image.
fn load(plan: &LoadPlan<'_>, base: u64) -> Vec<u8> {
    let mut image = vec![0u8; plan.image_size() as usize];
    for s in plan.segments() {
        let at = s.vaddr() as usize;
        image[at..at + s.data().len()].copy_from_slice(s.data());
    }
    for r in plan.relocations() {
        let at = r.offset() as usize;
        image[at..at + 8].copy_from_slice(&r.value(base).to_le_bytes());
    }
    image
}

#[test]
fn hello_parses_into_the_expected_plan() {
    let plan = parse(HELLO).expect("hello is a valid user program");
    assert_plan_invariants(HELLO, &plan);
    let kinds: Vec<(bool, bool, bool)> = plan
        .segments()
        .iter()
        .map(|s| (s.permissions().readable(), s.permissions().writable(), s.permissions().executable()))
        .collect();
    // lld's layout: rodata (R), text (RX), relro (RW), data+bss (RW).
    assert_eq!(kinds, [(true, false, false), (true, false, true), (true, true, false), (true, true, false)]);
    // The .bss holds libcap's 256 KiB heap.
    assert!(plan.segments()[3].mem_size() >= 256 * 1024);
    // `readelf -d` says RELACOUNT 106, all of them relative.
    assert_eq!(plan.relocations().len(), 106);
    let relro = plan.relro().expect("lld emits PT_GNU_RELRO");
    assert_eq!(relro.start, plan.segments()[2].vaddr());
}

#[test]
fn hello_loads_at_any_base_and_enters_at_start() {
    for base in [0x40_0000u64, 0x7f12_3456_7000] {
        let plan = parse(HELLO).unwrap();
        let image = load(&plan, base);
        // libcap's `_start`: xor ebp,ebp; and rsp,-16; call rel32.
        let entry = plan.entry() as usize;
        assert_eq!(&image[entry..entry + 7], &[0x31, 0xed, 0x48, 0x83, 0xe4, 0xf0, 0xe8]);
        // Every relocated pointer points into the image, at the chosen base.
        for r in plan.relocations() {
            let at = r.offset() as usize;
            let value = u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
            assert!(value >= base && value <= base + plan.image_size(), "{value:#x}");
        }
    }
}

// ---- A hand-made minimal program, and one mutation per refusal -------------------------

/// Offsets in the hand-made ELF.
const PH: usize = 64; // program headers: LOAD RX, LOAD RW, DYNAMIC, GNU_STACK, GNU_RELRO
const TEXT: usize = 0x1000; // 16 bytes of code, vaddr 0x1000
const DATA: usize = 0x2000; // vaddr 0x2000, file 0x100, memory 0x2000
const DYNAMIC: usize = DATA; // RELA, RELASZ, RELAENT, NULL
const RELA: usize = DATA + 0x80; // two relative relocations
const FILE_LEN: usize = DATA + 0x100;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
/// Offset of field `field` (byte offset within a program header) of program header `n`.
fn ph(n: usize, field: usize) -> usize {
    PH + n * 56 + field
}
const P_TYPE: usize = 0;
const P_FLAGS: usize = 4;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

fn phdr(b: &mut [u8], n: usize, kind: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) {
    put32(b, ph(n, P_TYPE), kind);
    put32(b, ph(n, P_FLAGS), flags);
    put64(b, ph(n, P_OFFSET), offset);
    put64(b, ph(n, P_VADDR), vaddr);
    put64(b, ph(n, 24), vaddr);
    put64(b, ph(n, P_FILESZ), filesz);
    put64(b, ph(n, P_MEMSZ), memsz);
    put64(b, ph(n, 48), 0x1000);
}

fn dynamic_entry(b: &mut [u8], n: usize, tag: u64, value: u64) {
    put64(b, DYNAMIC + 16 * n, tag);
    put64(b, DYNAMIC + 16 * n + 8, value);
}

fn rela_entry(b: &mut [u8], n: usize, offset: u64, info: u64, addend: u64) {
    put64(b, RELA + 24 * n, offset);
    put64(b, RELA + 24 * n + 8, info);
    put64(b, RELA + 24 * n + 16, addend);
}

fn minimal() -> Vec<u8> {
    let mut b = vec![0u8; FILE_LEN];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    put16(&mut b, 16, 3); // ET_DYN
    put16(&mut b, 18, 62); // EM_X86_64
    put32(&mut b, 20, 1);
    put64(&mut b, 24, 0x1000); // entry
    put64(&mut b, 32, PH as u64);
    put16(&mut b, 52, 64);
    put16(&mut b, 54, 56);
    put16(&mut b, 56, 5);
    phdr(&mut b, 0, 1, 4 | 1, TEXT as u64, 0x1000, 16, 16);
    phdr(&mut b, 1, 1, 4 | 2, DATA as u64, 0x2000, 0x100, 0x2000);
    phdr(&mut b, 2, 2, 4 | 2, DYNAMIC as u64, 0x2000, 64, 64);
    phdr(&mut b, 3, 0x6474_e551, 4 | 2, 0, 0, 0, 0);
    phdr(&mut b, 4, 0x6474_e552, 4, DATA as u64, 0x2000, 0x80, 0x80);
    b[TEXT..TEXT + 2].copy_from_slice(&[0x0f, 0x0b]); // ud2
    dynamic_entry(&mut b, 0, 7, RELA as u64); // DT_RELA (vaddr = file offset here)
    dynamic_entry(&mut b, 1, 8, 48); // DT_RELASZ
    dynamic_entry(&mut b, 2, 9, 24); // DT_RELAENT
    dynamic_entry(&mut b, 3, 0, 0); // DT_NULL
    rela_entry(&mut b, 0, 0x2040, 8, 0x1000);
    rela_entry(&mut b, 1, 0x2048, 8, 0x2000);
    b
}

#[test]
fn minimal_program_parses() {
    let b = minimal();
    let plan = parse(&b).unwrap();
    assert_plan_invariants(&b, &plan);
    assert_eq!(plan.entry(), 0x1000);
    assert_eq!(plan.image_size(), 0x4000);
    assert_eq!(plan.relro(), Some(0x2000..0x2080));
    let relocations: Vec<_> = plan.relocations().map(|r| (r.offset(), r.addend())).collect();
    assert_eq!(relocations, [(0x2040, 0x1000), (0x2048, 0x2000)]);
    let image = load(&plan, 0x1_0000_0000);
    assert_eq!(&image[0x2040..0x2048], &0x1_0000_1000u64.to_le_bytes());
    assert_eq!(&image[0x1000..0x1002], &[0x0f, 0x0b]);
    assert!(image[0x2100..0x4000].iter().all(|&x| x == 0), "bss is zero");
}

/// Applies `mutate` to the minimal program and checks that parsing fails with `expected`.
fn check(name: &str, mutate: impl FnOnce(&mut Vec<u8>), expected: ElfError) {
    let mut b = minimal();
    mutate(&mut b);
    assert_eq!(parse(&b).map(|_| ()), Err(expected), "{name}");
}

#[test]
fn each_refusal_names_its_check() {
    use ElfError::*;
    check("empty", |b| b.clear(), TooShort);
    check("truncated header", |b| b.truncate(63), TooShort);
    check("magic", |b| b[1] = b'e', BadMagic);
    check("32-bit", |b| b[4] = 1, NotElf64);
    check("big-endian", |b| b[5] = 2, NotLittleEndian);
    check("ident version", |b| b[6] = 0, BadVersion);
    check("e_version", |b| put32(b, 20, 2), BadVersion);
    check("os abi", |b| b[7] = 9, BadOsAbi);
    check("machine", |b| put16(b, 18, 3), NotX86_64);
    check("ET_EXEC", |b| put16(b, 16, 2), NotPositionIndependent);
    check("ET_REL", |b| put16(b, 16, 1), NotPositionIndependent);
    check("ehsize", |b| put16(b, 52, 52), BadHeaderSize);
    check("phentsize", |b| put16(b, 54, 32), BadHeaderSize);
    check("no program headers", |b| put16(b, 56, 0), BadProgramHeaderTable);
    check("too many program headers", |b| put16(b, 56, 65), BadProgramHeaderTable);
    check("PN_XNUM", |b| put16(b, 56, 0xffff), BadProgramHeaderTable);
    check("table past the end", |b| put64(b, 32, FILE_LEN as u64 - 100), BadProgramHeaderTable);
    check("table offset overflows", |b| put64(b, 32, u64::MAX - 8), BadProgramHeaderTable);
    check("interpreter", |b| put32(b, ph(4, P_TYPE), 3), InterpreterRequested);
    check("tls", |b| put32(b, ph(4, P_TYPE), 7), TlsUnsupported);
    check("segment past the end", |b| put64(b, ph(1, P_FILESZ), 0x101), SegmentOutsideFile);
    check("segment offset overflows", |b| put64(b, ph(0, P_OFFSET), u64::MAX), SegmentOutsideFile);
    check("filesz > memsz", |b| put64(b, ph(0, P_MEMSZ), 8), FileSizeExceedsMemSize);
    check("misaligned", |b| put64(b, ph(0, P_VADDR), 0x1008), MisalignedSegment);
    check("above 1 GiB", |b| {
        put64(b, ph(1, P_MEMSZ), MAX_IMAGE_SIZE);
    }, ImageTooLarge);
    check("vaddr + memsz overflows", |b| {
        put64(b, ph(1, P_VADDR), !0xfff);
        put64(b, ph(1, P_MEMSZ), 0x2000);
    }, ImageTooLarge);
    check("W+X", |b| put32(b, ph(0, P_FLAGS), 7), WritableAndExecutable);
    check("same address", |b| put64(b, ph(1, P_VADDR), 0x1000), OverlappingSegments);
    check("overlap in a shared page", |b| {
        put64(b, ph(1, P_OFFSET), 0x1010);
        put64(b, ph(1, P_VADDR), 0x1010);
    }, OverlappingSegments);
    check("too many segments", |b| {
        put16(b, 56, 9);
        for n in 0..9 {
            phdr(b, n, 1, 4, 0, 0x10_0000 * (n as u64 + 1), 16, 16);
        }
    }, TooManySegments);
    check("no loadable segment", |b| {
        put32(b, ph(0, P_TYPE), 4);
        put32(b, ph(1, P_TYPE), 4);
    }, NoLoadableSegment);
    check("only empty segments", |b| {
        put64(b, ph(0, P_FILESZ), 0);
        put64(b, ph(0, P_MEMSZ), 0);
        put64(b, ph(1, P_FILESZ), 0);
        put64(b, ph(1, P_MEMSZ), 0);
    }, NoLoadableSegment);
    check("entry in data", |b| put64(b, 24, 0x2000), EntryNotExecutable);
    check("entry past the code", |b| put64(b, 24, 0x1010), EntryNotExecutable);
    check("entry unmapped", |b| put64(b, 24, 0), EntryNotExecutable);
    check("executable stack", |b| put32(b, ph(3, P_FLAGS), 7), ExecutableStack);
    check("no stack header", |b| put32(b, ph(3, P_TYPE), 4), MissingStackHeader);
    check("two stack headers", |b| put32(b, ph(4, P_TYPE), 0x6474_e551), DuplicateProgramHeader);
    check("two dynamic headers", |b| {
        put32(b, ph(4, P_TYPE), 2);
        put64(b, ph(4, P_FILESZ), 64);
    }, DuplicateProgramHeader);
    check("dynamic past the end", |b| put64(b, ph(2, P_FILESZ), 0x200), DynamicOutsideFile);
    check("dynamic unterminated", |b| dynamic_entry(b, 3, 0x6fff_fff9, 2), MalformedDynamicTable);
    check("dynamic repeats RELA", |b| dynamic_entry(b, 2, 7, RELA as u64), MalformedDynamicTable);
    check("needs a library", |b| dynamic_entry(b, 0, 1, 1), NeedsSharedLibrary);
    check("DT_TEXTREL", |b| dynamic_entry(b, 2, 22, 0), TextRelocations);
    check("DF_TEXTREL", |b| dynamic_entry(b, 2, 30, 4), TextRelocations);
    check("DT_INIT", |b| dynamic_entry(b, 2, 12, 0x1000), Initializers);
    check("init array", |b| dynamic_entry(b, 2, 27, 8), Initializers);
    check("preinit array", |b| dynamic_entry(b, 2, 33, 8), Initializers);
    check("DT_REL", |b| dynamic_entry(b, 2, 18, 16), UnsupportedRelocationTable);
    check("DT_RELR", |b| dynamic_entry(b, 2, 35, 8), UnsupportedRelocationTable);
    check("PLT relocations", |b| dynamic_entry(b, 2, 2, 24), UnsupportedRelocationTable);
    check("RELA without size", |b| dynamic_entry(b, 1, 0x6fff_fff9, 2), IncompleteRelocationTable);
    check("size without RELA", |b| dynamic_entry(b, 0, 0x6fff_fff9, 2), IncompleteRelocationTable);
    check("RELAENT", |b| dynamic_entry(b, 2, 9, 16), BadRelocationEntrySize);
    check("RELASZ not a multiple", |b| dynamic_entry(b, 1, 8, 47), BadRelocationEntrySize);
    check("RELA outside", |b| dynamic_entry(b, 0, 7, 0x9000), RelocationTableOutsideImage);
    check("RELA past the file bytes", |b| dynamic_entry(b, 1, 8, 24 * 6), RelocationTableOutsideImage);
    check("RELA address overflows", |b| dynamic_entry(b, 0, 7, u64::MAX - 8), RelocationTableOutsideImage);
    check("R_X86_64_64", |b| rela_entry(b, 1, 0x2048, 1, 0), UnsupportedRelocation { index: 1, info: 1 });
    check("relative with a symbol", |b| rela_entry(b, 0, 0x2040, (1 << 32) | 8, 0), UnsupportedRelocation {
        index: 0,
        info: (1 << 32) | 8,
    });
    check("relocation in code", |b| rela_entry(b, 0, 0x1000, 8, 0), RelocationOutsideWritableSegment { index: 0 });
    check("relocation straddles the end", |b| rela_entry(b, 1, 0x3ffc, 8, 0), RelocationOutsideWritableSegment {
        index: 1,
    });
    check("relocation offset overflows", |b| rela_entry(b, 1, u64::MAX - 3, 8, 0), RelocationOutsideWritableSegment {
        index: 1,
    });
    check("relro in code", |b| put64(b, ph(4, P_VADDR), 0x1000), RelroOutsideWritableSegment);
    check("relro past the segment", |b| put64(b, ph(4, P_MEMSZ), 0x2001), RelroOutsideWritableSegment);
}

#[test]
fn accepted_variations() {
    // No dynamic table at all: no relocations.
    let mut b = minimal();
    put32(&mut b, ph(2, P_TYPE), 4); // PT_DYNAMIC -> PT_NOTE
    let plan = parse(&b).unwrap();
    assert_eq!(plan.relocations().len(), 0);
    // A dynamic table without relocations; a zero-sized PT_LOAD is skipped; OS ABI GNU.
    let mut b = minimal();
    dynamic_entry(&mut b, 0, 0x6fff_fffb, 0x0800_0001); // DT_FLAGS_1
    dynamic_entry(&mut b, 1, 0, 0);
    put32(&mut b, ph(4, P_TYPE), 1);
    put64(&mut b, ph(4, P_MEMSZ), 0);
    put64(&mut b, ph(4, P_FILESZ), 0);
    b[7] = 3;
    let plan = parse(&b).unwrap();
    assert_plan_invariants(&b, &plan);
    assert_eq!((plan.segments().len(), plan.relocations().len(), plan.relro()), (2, 0, None));
}

// ---- Property tests ----------------------------------------------------------------------

fn check_no_panic(bytes: &[u8]) {
    if let Ok(plan) = parse(bytes) {
        assert_plan_invariants(bytes, &plan);
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_no_panic(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut b = minimal()[..64].to_vec();
        b.extend_from_slice(&tail);
        check_no_panic(&b);
    }

    #[test]
    fn mutated_minimal_programs_never_panic(
        edits in proptest::collection::vec((0usize..FILE_LEN, any::<u8>()), 1..8),
    ) {
        let mut b = minimal();
        for (at, value) in edits {
            b[at] = value;
        }
        check_no_panic(&b);
    }

    #[test]
    fn mutated_headers_of_hello_never_panic(
        edits in proptest::collection::vec((0usize..0x300, any::<u8>()), 1..8),
        truncate in proptest::option::of(0usize..HELLO.len()),
    ) {
        let mut b = HELLO.to_vec();
        for (at, value) in edits {
            b[at] = value;
        }
        if let Some(len) = truncate {
            b.truncate(len);
        }
        check_no_panic(&b);
    }

    #[test]
    fn mutated_hello_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut b = HELLO.to_vec();
        for (at, value) in edits {
            let i = at.index(b.len());
            b[i] = value;
        }
        check_no_panic(&b);
    }

    #[test]
    fn mutated_relocation_fields_never_panic(
        n in 0usize..2, field in 0usize..3, value in any::<u64>(),
    ) {
        let mut b = minimal();
        put64(&mut b, RELA + 24 * n + 8 * field, value);
        check_no_panic(&b);
    }
}
