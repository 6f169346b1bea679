//! kv-server: serves `kv-api` on slot 2, keeping each client's keys apart by its badge.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;

use kv_api::{Key, KvError, Value, kv};
use libcap::{Badge, ErrorCode, println};

libcap::caps!();
libcap::entry!(main, caps);

/// Keys one client may hold.
const KEYS_PER_CLIENT: usize = 64;

/// (client badge, key) to value: a client names only its own keys.
struct Store(BTreeMap<(u64, Key), Value>);

impl kv::Server for Store {
    fn put(&mut self, badge: Badge, key: Key, value: Value) -> Result<(), KvError> {
        let client = badge.value();
        let held = self.0.range((client, Key::new())..).take_while(|((owner, _), _)| *owner == client).count();
        if held >= KEYS_PER_CLIENT && !self.0.contains_key(&(client, key.clone())) {
            return Err(KvError::Full);
        }
        self.0.insert((client, key), value);
        Ok(())
    }

    fn get(&mut self, badge: Badge, key: Key) -> Result<Value, KvError> {
        self.0.get(&(badge.value(), key)).cloned().ok_or(KvError::NotFound)
    }

    fn delete(&mut self, badge: Badge, key: Key) -> Result<(), KvError> {
        self.0.remove(&(badge.value(), key)).map(drop).ok_or(KvError::NotFound)
    }

    fn who_am_i(&mut self, badge: Badge) -> u64 {
        badge.value()
    }
}

fn main() -> Result<(), ErrorCode> {
    println!("kv-server: serving");
    Err(kv::serve(caps::KV, &mut Store(BTreeMap::new())))
}
