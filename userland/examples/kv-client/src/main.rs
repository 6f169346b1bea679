//! kv-client: stores a value of 1,000 bytes and a short one under keys every client uses,
//! reads them back, deletes one. Run twice (tests/manifests/kv.toml), it shows that each
//! client sees only its own namespace.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use kv_api::{Key, KvError, Value, kv};
use libcap::{ErrorCode, println};

libcap::entry!(main, caps);

libcap::caps!();
const KV: kv::Client = kv::Client::new(caps::KV);

fn key(text: &str) -> Key {
    text.chars().collect()
}

fn main() -> Result<(), ErrorCode> {
    let me = KV.who_am_i()?;
    let long: Value = (0..1000u32).map(|i| (i as u64 * me) as u8).collect();
    let short: Value = Value::from_slice(&me.to_le_bytes()).map_err(|()| ErrorCode::MessageTooLong)?;
    // Both clients write the same keys: each must read back its own values.
    for _ in 0..3 {
        KV.put(key("long"), long.clone())?.map_err(|_| ErrorCode::OutOfQuota)?;
        KV.put(key("mine"), short.clone())?.map_err(|_| ErrorCode::OutOfQuota)?;
        libcap::sys::yield_now()?;
        if KV.get(key("long"))? != Ok(long.clone()) || KV.get(key("mine"))? != Ok(short.clone()) {
            println!("kv-client {me}: read back another client's value");
            return Err(ErrorCode::InvalidArgument);
        }
    }
    KV.delete(key("mine"))?.map_err(|_| ErrorCode::InvalidArgument)?;
    if KV.get(key("mine"))? != Err(KvError::NotFound) {
        println!("kv-client {me}: a deleted key is still there");
        return Err(ErrorCode::InvalidArgument);
    }
    println!("kv-client {me}: my 1000-byte value and my key came back mine; deleted is gone");
    Ok(())
}
