//! Boot information from either boot protocol, parsed into one [`BootInfo`].
//!
//! Firmware data is untrusted input: every length is bounded, every read goes through
//! [`PhysRead`] (which may fail), and a malformed structure is an error, never a panic.
//! The kernel implements [`PhysRead`] over its direct map; tests implement it over a `Vec`.

use crate::memmap::{MemoryMap, PhysRange, RegionKind};

pub const MAX_MODULES: usize = 16;
pub const MAX_CMDLINE: usize = 512;
pub const MAX_NAME: usize = 64;
/// Sanity bound on firmware memory-map entries and Multiboot2 info size.
const MAX_MEMMAP_ENTRIES: u32 = 1024;
const MAX_MB2_INFO: u32 = 1 << 20;

pub const PVH_MAGIC: u32 = 0x336e_c578;
pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;

/// Reads physical memory on behalf of the parser.
pub trait PhysRead {
    /// Fills `buffer` from physical `address`, or fails if that memory is not readable.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), BootInfoError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    Unreadable { address: u64 },
    BadMagic { found: u32 },
    Malformed(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Pvh,
    Multiboot2,
}

/// A bounded string copied out of firmware memory.
#[derive(Clone, Copy, Debug)]
pub struct BoundedStr<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for BoundedStr<N> {
    fn default() -> Self {
        BoundedStr { bytes: [0; N], len: 0 }
    }
}

impl<const N: usize> BoundedStr<N> {
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
    /// The text, or `"<not UTF-8>"`.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("<not UTF-8>")
    }
    fn push_until_nul(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            if byte == 0 || self.len == N {
                return true;
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
            }
            self.len += 1;
        }
        false
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Module {
    pub range: PhysRange,
    pub name: BoundedStr<MAX_NAME>,
}

#[derive(Clone, Debug)]
pub struct BootInfo {
    pub protocol: Protocol,
    /// Usable RAM as the firmware reported it (nothing reserved yet).
    pub memory: MemoryMap,
    /// How many firmware memory-map entries there were, of every kind.
    pub firmware_entries: u32,
    /// Bytes the firmware called ACPI-reclaimable, NVS or reserved, for the boot report.
    pub reserved_bytes: u64,
    pub cmdline: BoundedStr<MAX_CMDLINE>,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    /// Modules past [`MAX_MODULES`], not loaded.
    pub modules_dropped: usize,
    /// Physical address of an RSDP (ACPI), if the boot protocol gave one.
    pub rsdp: Option<u64>,
    /// The boot-information structures themselves, which must not be reused before parsing
    /// is done (only Multiboot2 gives one contiguous block; PVH lists are small and low).
    pub info_range: PhysRange,
}

impl BootInfo {
    fn empty(protocol: Protocol) -> Self {
        BootInfo {
            protocol,
            memory: MemoryMap::new(),
            firmware_entries: 0,
            reserved_bytes: 0,
            cmdline: BoundedStr::default(),
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            modules_dropped: 0,
            rsdp: None,
            info_range: PhysRange::default(),
        }
    }

    pub fn modules(&self) -> &[Module] {
        self.modules.get(..self.module_count).unwrap_or(&[])
    }

    fn push_module(&mut self, module: Module) {
        match self.modules.get_mut(self.module_count) {
            Some(slot) => {
                *slot = module;
                self.module_count += 1;
            }
            None => self.modules_dropped += 1,
        }
    }

    fn add_region(&mut self, start: u64, len: u64, kind: u32) {
        self.firmware_entries = self.firmware_entries.saturating_add(1);
        match RegionKind::from_e820(kind) {
            RegionKind::Usable => self.memory.add_usable(start, len),
            _ => self.reserved_bytes = self.reserved_bytes.saturating_add(len),
        }
    }

    /// Parses the boot information the entry stub found, by protocol.
    pub fn parse(memory: &impl PhysRead, magic: u32, info: u64) -> Result<Self, BootInfoError> {
        if magic == MULTIBOOT2_MAGIC { Self::parse_multiboot2(memory, info) } else { Self::parse_pvh(memory, info) }
    }

    /// Parses a Xen PVH `hvm_start_info` (version 1: it must carry a memory map).
    pub fn parse_pvh(memory: &impl PhysRead, address: u64) -> Result<Self, BootInfoError> {
        let mut header = [0u8; 56];
        memory.read(address, &mut header)?;
        let magic = u32_at(&header, 0);
        if magic != PVH_MAGIC {
            return Err(BootInfoError::BadMagic { found: magic });
        }
        if u32_at(&header, 4) < 1 {
            return Err(BootInfoError::Malformed("PVH start info older than version 1 has no memory map"));
        }
        let mut info = BootInfo::empty(Protocol::Pvh);
        info.info_range = PhysRange::new(address, address.saturating_add(56));
        let module_count = u32_at(&header, 12);
        let modlist = u64_at(&header, 16);
        let cmdline = u64_at(&header, 24);
        let rsdp = u64_at(&header, 32);
        let memmap = u64_at(&header, 40);
        let memmap_entries = u32_at(&header, 48);
        if memmap_entries > MAX_MEMMAP_ENTRIES {
            return Err(BootInfoError::Malformed("PVH memory map has too many entries"));
        }
        if cmdline != 0 {
            read_c_string(memory, cmdline, &mut info.cmdline)?;
        }
        if rsdp != 0 {
            info.rsdp = Some(rsdp);
        }
        for index in 0..memmap_entries {
            let mut entry = [0u8; 24];
            memory.read(memmap.saturating_add(u64::from(index) * 24), &mut entry)?;
            info.add_region(u64_at(&entry, 0), u64_at(&entry, 8), u32_at(&entry, 16));
        }
        for index in 0..module_count.min(MAX_MEMMAP_ENTRIES) {
            let mut entry = [0u8; 32];
            memory.read(modlist.saturating_add(u64::from(index) * 32), &mut entry)?;
            let start = u64_at(&entry, 0);
            let mut module = Module { range: PhysRange::new(start, start.saturating_add(u64_at(&entry, 8))), ..Module::default() };
            let name = u64_at(&entry, 16);
            if name != 0 {
                read_c_string(memory, name, &mut module.name)?;
            }
            info.push_module(module);
        }
        Ok(info)
    }

    /// Parses a Multiboot2 information structure.
    pub fn parse_multiboot2(memory: &impl PhysRead, address: u64) -> Result<Self, BootInfoError> {
        let mut header = [0u8; 8];
        memory.read(address, &mut header)?;
        let total = u32_at(&header, 0);
        if !(16..=MAX_MB2_INFO).contains(&total) {
            return Err(BootInfoError::Malformed("Multiboot2 info size out of range"));
        }
        let mut info = BootInfo::empty(Protocol::Multiboot2);
        info.info_range = PhysRange::new(address, address.saturating_add(u64::from(total)));
        let end = address.saturating_add(u64::from(total));
        let mut tag = address.saturating_add(8);
        let mut saw_end = false;
        while tag.saturating_add(8) <= end {
            let mut tag_header = [0u8; 8];
            memory.read(tag, &mut tag_header)?;
            let kind = u32_at(&tag_header, 0);
            let size = u64::from(u32_at(&tag_header, 4));
            if size < 8 || tag.saturating_add(size) > end {
                return Err(BootInfoError::Malformed("Multiboot2 tag overruns the info structure"));
            }
            let body = tag + 8;
            let body_len = size - 8;
            match kind {
                0 => {
                    saw_end = true;
                    break;
                }
                1 => read_c_string(memory, body, &mut info.cmdline)?,
                3 => {
                    if body_len < 8 {
                        return Err(BootInfoError::Malformed("Multiboot2 module tag too short"));
                    }
                    let mut bounds = [0u8; 8];
                    memory.read(body, &mut bounds)?;
                    let (start, module_end) = (u64::from(u32_at(&bounds, 0)), u64::from(u32_at(&bounds, 4)));
                    if module_end < start {
                        return Err(BootInfoError::Malformed("Multiboot2 module ends before it starts"));
                    }
                    let mut module = Module { range: PhysRange::new(start, module_end), ..Module::default() };
                    read_c_string(memory, body + 8, &mut module.name)?;
                    info.push_module(module);
                }
                6 => {
                    let mut mmap_header = [0u8; 8];
                    memory.read(body, &mut mmap_header)?;
                    let entry_size = u64::from(u32_at(&mmap_header, 0));
                    if entry_size < 24 {
                        return Err(BootInfoError::Malformed("Multiboot2 memory-map entries too small"));
                    }
                    let mut entry_address = body + 8;
                    while entry_address.saturating_add(24) <= body + body_len {
                        let mut entry = [0u8; 24];
                        memory.read(entry_address, &mut entry)?;
                        info.add_region(u64_at(&entry, 0), u64_at(&entry, 8), u32_at(&entry, 16));
                        entry_address += entry_size;
                    }
                }
                // ACPI 2.0+ RSDP copy wins over the 1.0 one.
                14 if info.rsdp.is_none() => info.rsdp = Some(body),
                15 => info.rsdp = Some(body),
                _ => {}
            }
            tag = tag.saturating_add((size + 7) & !7);
        }
        if !saw_end {
            return Err(BootInfoError::Malformed("Multiboot2 info has no end tag"));
        }
        Ok(info)
    }
}

fn read_c_string<const N: usize>(memory: &impl PhysRead, address: u64, out: &mut BoundedStr<N>) -> Result<(), BootInfoError> {
    let mut chunk = [0u8; 64];
    let mut offset = 0u64;
    while offset < N as u64 + 64 {
        memory.read(address.saturating_add(offset), &mut chunk)?;
        if out.push_until_nul(&chunk) {
            return Ok(());
        }
        offset += chunk.len() as u64;
    }
    Ok(())
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(source) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(source);
    }
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(source) = bytes.get(offset..offset + 8) {
        word.copy_from_slice(source);
    }
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Physical memory starting at address 0.
    struct FakeMemory(Vec<u8>);

    impl PhysRead for FakeMemory {
        fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), BootInfoError> {
            let start = usize::try_from(address).map_err(|_| BootInfoError::Unreadable { address })?;
            let source = start
                .checked_add(buffer.len())
                .and_then(|end| self.0.get(start..end))
                .ok_or(BootInfoError::Unreadable { address })?;
            buffer.copy_from_slice(source);
            Ok(())
        }
    }

    fn put(memory: &mut Vec<u8>, at: usize, bytes: &[u8]) {
        if memory.len() < at + bytes.len() {
            memory.resize(at + bytes.len(), 0);
        }
        memory[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn pvh_image() -> Vec<u8> {
        let mut m = vec![0u8; 0x2000];
        let mut header = Vec::new();
        header.extend(PVH_MAGIC.to_le_bytes());
        header.extend(1u32.to_le_bytes()); // version
        header.extend(0u32.to_le_bytes()); // flags
        header.extend(1u32.to_le_bytes()); // modules
        header.extend(0x200u64.to_le_bytes()); // modlist
        header.extend(0x300u64.to_le_bytes()); // cmdline
        header.extend(0u64.to_le_bytes()); // rsdp
        header.extend(0x400u64.to_le_bytes()); // memmap
        header.extend(2u32.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        put(&mut m, 0x100, &header);
        let mut module = Vec::new();
        module.extend(0x80_0000u64.to_le_bytes());
        module.extend(0x1234u64.to_le_bytes());
        module.extend(0x380u64.to_le_bytes());
        module.extend(0u64.to_le_bytes());
        put(&mut m, 0x200, &module);
        put(&mut m, 0x300, b"ktest=boot quiet\0");
        put(&mut m, 0x380, b"initrd\0");
        let mut map = Vec::new();
        for (start, len, kind) in [(0u64, 0x9fc00u64, 1u32), (0x100000, 0x1ff00000, 1)] {
            map.extend(start.to_le_bytes());
            map.extend(len.to_le_bytes());
            map.extend(kind.to_le_bytes());
            map.extend(0u32.to_le_bytes());
        }
        put(&mut m, 0x400, &map);
        m
    }

    #[test]
    fn parses_pvh() {
        let info = BootInfo::parse(&FakeMemory(pvh_image()), 0x2bad_b002, 0x100).unwrap();
        assert_eq!(info.protocol, Protocol::Pvh);
        assert_eq!(info.cmdline.as_str(), "ktest=boot quiet");
        assert_eq!(info.modules().len(), 1);
        assert_eq!(info.modules()[0].name.as_str(), "initrd");
        assert_eq!(info.modules()[0].range, PhysRange::new(0x80_0000, 0x80_1234));
        assert_eq!(info.memory.ranges(), &[PhysRange::new(0, 0x9f000), PhysRange::new(0x100000, 0x2000_0000)]);
    }

    #[test]
    fn pvh_with_wrong_magic_is_refused() {
        let mut image = pvh_image();
        image[0x100] ^= 1;
        assert!(matches!(BootInfo::parse_pvh(&FakeMemory(image), 0x100), Err(BootInfoError::BadMagic { .. })));
    }

    fn tag(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend(kind.to_le_bytes());
        t.extend((8 + body.len() as u32).to_le_bytes());
        t.extend(body);
        while t.len() % 8 != 0 {
            t.push(0);
        }
        t
    }

    fn mb2_image() -> Vec<u8> {
        let mut tags = Vec::new();
        tags.extend(tag(1, b"ktest=wx\0"));
        let mut module = Vec::new();
        module.extend(0x40_0000u32.to_le_bytes());
        module.extend(0x40_2000u32.to_le_bytes());
        module.extend(b"initrd\0");
        tags.extend(tag(3, &module));
        let mut mmap = Vec::new();
        mmap.extend(24u32.to_le_bytes());
        mmap.extend(0u32.to_le_bytes());
        for (start, len, kind) in [(0x100000u64, 0x100000u64, 1u32), (0xfee00000, 0x1000, 2)] {
            mmap.extend(start.to_le_bytes());
            mmap.extend(len.to_le_bytes());
            mmap.extend(kind.to_le_bytes());
            mmap.extend(0u32.to_le_bytes());
        }
        tags.extend(tag(6, &mmap));
        tags.extend(tag(15, &[0u8; 36]));
        tags.extend(tag(0, &[]));
        let mut info = Vec::new();
        info.extend((8 + tags.len() as u32).to_le_bytes());
        info.extend(0u32.to_le_bytes());
        info.extend(tags);
        let mut memory = vec![0u8; 0x1000];
        put(&mut memory, 0x1000, &info);
        memory
    }

    #[test]
    fn parses_multiboot2() {
        let info = BootInfo::parse(&FakeMemory(mb2_image()), MULTIBOOT2_MAGIC, 0x1000).unwrap();
        assert_eq!(info.protocol, Protocol::Multiboot2);
        assert_eq!(info.cmdline.as_str(), "ktest=wx");
        assert_eq!(info.modules()[0].range, PhysRange::new(0x40_0000, 0x40_2000));
        assert_eq!(info.memory.ranges(), &[PhysRange::new(0x100000, 0x200000)]);
        assert_eq!(info.firmware_entries, 2);
        assert!(info.rsdp.is_some());
    }

    #[test]
    fn multiboot2_tag_overrun_is_malformed() {
        let mut image = mb2_image();
        // Make the first tag claim to be larger than the whole structure.
        image[0x1000 + 12..0x1000 + 16].copy_from_slice(&0xffffu32.to_le_bytes());
        assert!(matches!(
            BootInfo::parse_multiboot2(&FakeMemory(image), 0x1000),
            Err(BootInfoError::Malformed(_))
        ));
    }

    proptest! {
        /// Arbitrary firmware bytes give a result or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), at in 0u64..600, mb2 in any::<bool>()) {
            let memory = FakeMemory(bytes);
            let _ = BootInfo::parse(&memory, if mb2 { MULTIBOOT2_MAGIC } else { 0 }, at);
        }

        #[test]
        fn corrupted_multiboot2_never_panics(flips in prop::collection::vec((0usize..0x200, any::<u8>()), 1..8)) {
            let mut image = mb2_image();
            let len = image.len() - 0x1000;
            for (offset, value) in flips { image[0x1000 + offset % len] = value; }
            let _ = BootInfo::parse_multiboot2(&FakeMemory(image), 0x1000);
        }
    }
}
