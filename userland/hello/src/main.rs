//! hello: the first user program.
//!
//! Prints `hello from user space`, then the result of a small `f64` computation to show
//! that user programs get hardware floating point (SSE2: `mulsd`, `divsd`, `addsd` in the
//! binary) with the same bit-exact result as on a Linux host, then exits with code 0.
//!
//! Expected console output (the in-QEMU test can match it):
//!
//! ```text
//! hello from user space
//! f64: sum 1/k^2 for k=1..1000 = 1.6439345666815615, sqrt(6*sum) = 3.1406380562059946
//! ```
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

libcap::entry!(main);

fn main() {
    libcap::println!("hello from user space");
    // black_box keeps the compiler from folding the computation into a constant, so the
    // float instructions run on the CPU at run time.
    let n = core::hint::black_box(1000u32);
    let sum = basel_sum(n);
    let pi = sqrt(6.0 * sum);
    libcap::println!("f64: sum 1/k^2 for k=1..{n} = {sum}, sqrt(6*sum) = {pi}");
}

/// Sum of 1/k² for k = 1..=n (tends to π²/6).
fn basel_sum(n: u32) -> f64 {
    let mut sum = 0.0;
    for k in 1..=n {
        let k = f64::from(k);
        sum += 1.0 / (k * k);
    }
    sum
}

/// Square root by Newton's iteration (`f64::sqrt` is in `std`, not `core`).
fn sqrt(x: f64) -> f64 {
    let mut y = x;
    for _ in 0..64 {
        y = 0.5 * (y + x / y);
    }
    y
}
