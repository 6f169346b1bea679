//! Sizing the per-thread XSAVE area: which state components the kernel turns on in XCR0,
//! and whether the standard-form image of them fits the one frame each thread has for it.
//!
//! The kernel saves a thread's vector state with `XSAVE` into a 4 KiB frame. The image's
//! size depends on the components enabled in XCR0 and on where the CPU puts them (CPUID
//! leaf 0xD: sub-leaf 0 gives the size for the current XCR0, sub-leaf `i` the size and
//! offset of component `i`). AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM) takes the standard image
//! from 832 to 2,688 bytes; components the kernel does not enable (AMX tile data is 8 KiB)
//! would not fit, so they are never turned on. If a CPU ever lays out even these
//! components past the frame, AVX-512 is left off rather than letting `XSAVE` write past it.

/// Bytes the kernel gives each thread for its XSAVE image: one frame.
pub const AREA_BYTES: u32 = 4096;

/// The legacy FXSAVE region plus the XSAVE header: where component 2 can start at the
/// earliest, and the image size with only x87 and SSE.
pub const LEGACY_AND_HEADER_BYTES: u32 = 512 + 64;

/// XCR0 bits of the components the kernel knows how to switch, by group.
pub mod component {
    /// x87 state (bit 0); must always be on.
    pub const X87: u64 = 1 << 0;
    /// SSE: XMM registers and MXCSR (bit 1).
    pub const SSE: u64 = 1 << 1;
    /// AVX: the upper halves of YMM0-15 (bit 2).
    pub const AVX: u64 = 1 << 2;
    /// AVX-512: opmask k0-7 (bit 5), upper halves of ZMM0-15 (bit 6), ZMM16-31 (bit 7).
    /// Enabled all three together or not at all (the SDM requires it).
    pub const AVX512: u64 = (1 << 5) | (1 << 6) | (1 << 7);
}

/// Where the CPU puts one state component in the standard-form image (CPUID 0xD, sub-leaf
/// = the component's bit): `eax` its size, `ebx` its offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub size: u32,
    pub offset: u32,
}

/// What the CPU offers, as CPUID reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The CPU has XSAVE (CPUID 1.ECX[26]).
    pub xsave: bool,
    /// AVX (CPUID 1.ECX[28]).
    pub avx: bool,
    /// AVX-512 Foundation (CPUID 7.EBX[16]).
    pub avx512f: bool,
    /// The XCR0 bits the CPU supports (CPUID 0xD.0 EDX:EAX).
    pub supported_xcr0: u64,
}

/// What to write to XCR0 and how big the image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub xcr0: u64,
    /// Bytes of the standard-form image of `xcr0`'s components.
    pub area: u32,
    /// AVX-512 was offered but left off because its image would not fit [`AREA_BYTES`].
    pub avx512_refused: bool,
}

/// The end of the standard-form image of `xcr0`'s components, laid out by `layout`
/// (called with each enabled component's bit number from 2 up).
pub fn image_bytes(xcr0: u64, layout: impl Fn(u32) -> Layout) -> u32 {
    (2..64)
        .filter(|bit| xcr0 & (1u64 << bit) != 0)
        .map(|bit| {
            let Layout { size, offset } = layout(bit);
            offset.saturating_add(size)
        })
        .fold(LEGACY_AND_HEADER_BYTES, u32::max)
}

/// The components to enable: x87, SSE, AVX if offered, AVX-512 if all three of its
/// components are offered and the image still fits [`AREA_BYTES`]. `None` without XSAVE
/// (the kernel then uses FXSAVE, 512 bytes).
pub fn choose(offer: Offer, layout: impl Fn(u32) -> Layout) -> Option<Choice> {
    if !offer.xsave {
        return None;
    }
    let mut xcr0 = component::X87 | component::SSE;
    if offer.avx && offer.supported_xcr0 & component::AVX != 0 {
        xcr0 |= component::AVX;
    }
    let mut avx512_refused = false;
    let avx512_offered = offer.avx512f && xcr0 & component::AVX != 0 && offer.supported_xcr0 & component::AVX512 == component::AVX512;
    if avx512_offered {
        if image_bytes(xcr0 | component::AVX512, &layout) <= AREA_BYTES {
            xcr0 |= component::AVX512;
        } else {
            avx512_refused = true;
        }
    }
    Some(Choice { xcr0, area: image_bytes(xcr0, &layout), avx512_refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard layout every Intel and AMD CPU with these components reports (SDM
    /// vol. 1, 13.4.3; an AMD EPYC family 26 and QEMU's TCG report the same offsets).
    fn standard(bit: u32) -> Layout {
        match bit {
            2 => Layout { size: 256, offset: 576 },
            5 => Layout { size: 64, offset: 1088 },
            6 => Layout { size: 512, offset: 1152 },
            7 => Layout { size: 1024, offset: 1664 },
            9 => Layout { size: 8, offset: 2688 },
            _ => Layout::default(),
        }
    }

    const ALL_OFFERED: u64 = component::X87 | component::SSE | component::AVX | component::AVX512 | (1 << 9);

    #[test]
    fn avx512_image_is_2688_bytes_and_fits_the_frame() {
        let offer = Offer { xsave: true, avx: true, avx512f: true, supported_xcr0: ALL_OFFERED };
        let choice = choose(offer, standard).unwrap();
        assert_eq!(choice.xcr0, 0xe7, "x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM; never PKRU");
        assert_eq!(choice.area, 2688);
        assert!(choice.area <= AREA_BYTES);
        assert!(!choice.avx512_refused);
    }

    #[test]
    fn avx_alone_is_832_bytes() {
        let offer = Offer { xsave: true, avx: true, avx512f: false, supported_xcr0: ALL_OFFERED };
        assert_eq!(choose(offer, standard).unwrap(), Choice { xcr0: 0x7, area: 832, avx512_refused: false });
    }

    #[test]
    fn without_avx_only_the_legacy_region_and_header() {
        let offer = Offer { xsave: true, avx: false, avx512f: true, supported_xcr0: ALL_OFFERED };
        let choice = choose(offer, standard).unwrap();
        assert_eq!(choice.xcr0, 0x3, "AVX-512 state needs AVX state enabled as well");
        assert_eq!(choice.area, LEGACY_AND_HEADER_BYTES);
    }

    #[test]
    fn no_xsave_means_fxsave() {
        assert_eq!(choose(Offer { xsave: false, avx: true, avx512f: true, supported_xcr0: ALL_OFFERED }, standard), None);
    }

    #[test]
    fn avx512_needs_all_three_components() {
        let partial = component::X87 | component::SSE | component::AVX | (1 << 5) | (1 << 6);
        let offer = Offer { xsave: true, avx: true, avx512f: true, supported_xcr0: partial };
        assert_eq!(choose(offer, standard).unwrap().xcr0, 0x7);
    }

    #[test]
    fn avx512_laid_out_past_the_frame_is_refused_not_overflowed() {
        let far = |bit| match bit {
            7 => Layout { size: 1024, offset: 3584 },
            other => standard(other),
        };
        let offer = Offer { xsave: true, avx: true, avx512f: true, supported_xcr0: ALL_OFFERED };
        let choice = choose(offer, far).unwrap();
        assert_eq!(choice.xcr0, 0x7);
        assert_eq!(choice.area, 832);
        assert!(choice.avx512_refused);
    }

    #[test]
    fn image_ends_at_the_furthest_component_whatever_the_order() {
        let reversed = |bit| match bit {
            2 => Layout { size: 256, offset: 2000 },
            5 => Layout { size: 64, offset: 576 },
            _ => Layout::default(),
        };
        assert_eq!(image_bytes(0x27, reversed), 2256);
        assert_eq!(image_bytes(0x3, reversed), LEGACY_AND_HEADER_BYTES);
        let hostile = |_| Layout { size: u32::MAX, offset: u32::MAX };
        assert_eq!(image_bytes(0x7, hostile), u32::MAX, "saturates, so it never fits");
    }
}
