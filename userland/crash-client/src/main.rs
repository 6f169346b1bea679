//! crash-client: the client side of the supervision test. Calls crash-server twice, then
//! asks it to crash: the call ends with `PeerGone` (the "peer restarted" error) instead of
//! hanging; calling again through the same cap reaches the new incarnation, whose count
//! starts again at 1.
//!
//! Authority: console (1), call on `crashy` (2).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode, println};

libcap::entry!(main);

const CRASHY: CapSlot = CapSlot::new(2);

fn ask(word: u64) -> Result<u64, ErrorCode> {
    let answer = sys::call(CRASHY, &Message::new(0, &[word])?)?;
    Ok(answer.words().first().copied().unwrap_or(0))
}

fn main() -> Result<(), ErrorCode> {
    let (first, second) = (ask(0)?, ask(0)?);
    println!("crash-client: answers {first}, {second} from the first incarnation");
    match ask(1) {
        Err(ErrorCode::PeerGone) => println!("crash-client: the server died holding my call: PeerGone"),
        other => {
            println!("crash-client: FAILED: a crashing server answered {other:?}, not PeerGone");
            return Err(ErrorCode::IllegalOperation);
        }
    }
    match ask(0) {
        Ok(1) => println!("crash-client: recovered: a new incarnation answered through the same cap (its count restarted at 1)"),
        other => {
            println!("crash-client: FAILED: after the restart: {other:?}");
            return Err(ErrorCode::IllegalOperation);
        }
    }
    Ok(())
}
