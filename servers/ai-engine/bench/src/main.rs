//! Placeholder: the candle comparison benchmark is being written (`cargo xtask bench ai`).
fn main() {}
