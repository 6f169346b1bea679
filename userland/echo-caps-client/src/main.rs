//! echo-caps-client: caps through a typed interface (`qemu::echo_caps`). It sends its
//! notification cap to the echo server with `bounce`; the copy that comes back lands in an
//! empty slot of its own; signalling through that copy wakes its wait on the original.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use echo_api::echo;
use libcap::ipc::Caps;
use libcap::{CapSlot, ErrorCode, ObjectType, println, sys};

libcap::caps!();
libcap::entry!(main, caps);

const ECHO: echo::Client = echo::Client::new(caps::ECHO);
/// Where the bounced copy lands.
const RETURNED: CapSlot = CapSlot::new(40);

fn main() -> Result<(), ErrorCode> {
    let bell = caps::BELL.slot();
    let (counted, arrived) = ECHO.bounce(Caps { send: &[bell], receive: &[RETURNED] })?;
    let kind = sys::cap_identify(RETURNED)?.object_type;
    if counted != 1 || arrived != 1 || kind != ObjectType::Notification {
        println!("echo-caps-client: sent 1 cap; the server counted {counted}, {arrived} came back, a {kind:?}");
        return Err(ErrorCode::InvalidArgument);
    }
    sys::signal(RETURNED)?;
    let bits = sys::wait(bell)?;
    println!("echo-caps-client: my notification went to the server and came back; signalling the copy woke me (bits {bits:#x})");
    Ok(())
}
