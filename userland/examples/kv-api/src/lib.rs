//! The key-value service: each client has its own namespace, told apart by its badge.
#![no_std]
#![forbid(unsafe_code)]

pub use libcap::heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Longest key, in bytes.
pub const MAX_KEY: usize = 32;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 1024;

pub type Key = String<MAX_KEY>;
pub type Value = Vec<u8, MAX_VALUE>;

/// What the service itself refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// No such key in the caller's namespace.
    NotFound,
    /// The caller's namespace is full.
    Full,
}

libcap::interface! {
    /// Store, fetch and delete values by key, in the caller's own namespace.
    pub interface kv (label = 1) {
        /// Stores `value` under `key`, replacing what was there.
        fn put(key: Key, value: Value) -> Result<(), KvError>;
        /// The value under `key`.
        fn get(key: Key) -> Result<Value, KvError>;
        /// Removes `key`.
        fn delete(key: Key) -> Result<(), KvError>;
        /// The caller's badge: the namespace it works in.
        fn who_am_i() -> u64;
    }
}
