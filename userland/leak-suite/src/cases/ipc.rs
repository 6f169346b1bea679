//! Endpoints and notifications between puppets: messages, badges, call and reply (twice,
//! stale, to the dead), servers that die or restart, and caps that travel only with Grant.
//!
//! Every message here goes between two puppets, each holding only the caps the case gives
//! it; the suite only hands them their operations and reads the registers they got.

use libcap::abi::ipc_buffer::{RECV_CAPS_OFFSET, SEND_CAPS_OFFSET};
use libcap::sys;
use libcap::{CapSlot, ErrorCode, MessageInfo, ObjectType, Rights, Sysno};

use crate::audit;
use crate::puppet::{End, IPC_BUFFER, Options, Puppet, STEP_TICKS, Step, expect_ret};
use crate::world::{ALL, Case, Fail, G, Outcome, R, RW, W, World, create, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "IPC-SEND-001", what: "send/receive between processes: label, words and the sender's badge arrive", run: send_receive },
    Case { id: "IPC-SEND-002", what: "registers beyond the message length arrive zeroed (no leak of the sender's registers)", run: send_zeroes_rest },
    Case { id: "IPC-SEND-003", what: "send through a read-only cap, a notification or an empty slot: InsufficientRights, WrongObjectType, EmptySlot", run: send_errors },
    Case { id: "IPC-SEND-004", what: "a non-blocking send with no receiver: WouldBlock, nothing delivered later", run: send_would_block },
    Case { id: "IPC-RECV-001", what: "receive through a write-only cap: InsufficientRights; non-blocking with no sender: WouldBlock; timeout: TimedOut", run: receive_errors },
    Case { id: "IPC-MSG-001", what: "a malformed info word: reserved bits InvalidArgument, length 481 or 5 caps MessageTooLong", run: message_info_errors },
    Case { id: "IPC-MSG-002", what: "a 20-word message travels through both IPC buffers intact", run: long_message },
    Case { id: "IPC-MSG-003", what: "a long message from a thread without an IPC buffer: MessageTooLong", run: long_without_buffer },
    Case { id: "IPC-CALL-001", what: "call and reply with only Write on the caller's cap (no GrantReply): the caller gets the answer, with no badge and zeroed extra registers", run: call_reply },
    Case { id: "IPC-REPLY-001", what: "reply with no call pending: IllegalOperation", run: reply_none },
    Case { id: "IPC-REPLY-002", what: "replying twice: the second reply is IllegalOperation, the caller got exactly one", run: reply_twice },
    Case { id: "IPC-REPLY-003", what: "a stale reply (the caller was killed meanwhile) reaches nobody: PeerGone", run: reply_stale },
    Case { id: "IPC-REPLY-004", what: "a server that takes a second call before replying answers the second; the first caller waits, and gets PeerGone when the server dies", run: reply_dropped },
    Case { id: "IPC-REPLY-005", what: "ReplyRecv with nothing to reply to still receives", run: reply_recv_without_call },
    Case { id: "IPC-REPLY-006", what: "a plain message received between a call and its reply does not end the reply right", run: reply_survives_send },
    Case { id: "IPC-REPLY-007", what: "ReplyRecv whose reply the caller cannot take (caps without GrantReply) is reported to the server at once, without receiving, and the call stays pending until a reply that fits", run: reply_recv_refused },
    Case { id: "IPC-DEAD-001", what: "calling a server that dies holding the call: PeerGone", run: server_dies },
    Case { id: "IPC-DEAD-002", what: "a caller queued on an endpoint whose caps are revoked and deleted: Revoked (its own cap went first), never delivered", run: endpoint_destroyed_sender },
    Case { id: "IPC-DEAD-003", what: "a receiver blocked on an endpoint whose last cap goes: PeerGone", run: endpoint_destroyed_receiver },
    Case { id: "IPC-DEAD-004", what: "a restarted server: the old caller gets PeerGone, new calls reach the new incarnation", run: server_restarted },
    Case { id: "IPC-TIMEOUT-001", what: "a call bounded by SetCallTimeout to an endpoint nobody receives on ends with TimedOut and leaves the queue: a receiver then finds no sender", run: call_times_out_unreceived },
    Case { id: "IPC-TIMEOUT-002", what: "a server holding a bounded call past its deadline: the caller gets TimedOut, the server's late reply PeerGone (it never reaches the caller), and with the bound lifted the caller's next call is answered", run: call_times_out_unanswered },
    Case { id: "IPC-GRANT-001", what: "caps in a message without Grant: InsufficientRights, the receiver gets nothing", run: grant_refused },
    Case { id: "IPC-GRANT-002", what: "with Grant the cap lands in the receiver's named slot, same object and rights, derived from the sender's", run: grant_works },
    Case { id: "IPC-GRANT-003", what: "a granted cap never has more rights than the sender's", run: grant_attenuated },
    Case { id: "IPC-GRANT-004", what: "a receive slot that is occupied: the send is refused with SlotOccupied, nothing arrives, the slot is unchanged, the receiver keeps waiting", run: grant_slot_occupied },
    Case { id: "IPC-GRANT-005", what: "sending an empty slot or one beyond 32 bits: EmptySlot, InvalidSlot, nothing delivered", run: grant_bad_slot },
    Case { id: "IPC-GRANT-006", what: "a reply carrying caps to a caller whose cap lacks GrantReply: InsufficientRights", run: grant_reply_needs_right },
    Case { id: "IPC-REVOKE-001", what: "revoking and deleting a badged cap while a send through a copy of it is queued (carrying a cap) cancels the send with Revoked: the receiver never sees the revoked badge nor the cap", run: revoke_cancels_send },
    Case { id: "IPC-REVOKE-002", what: "revoking the copy a queued sender uses, while the parent badged cap stays, still cancels that send (Revoked); a send through the kept cap is delivered", run: revoke_copy_cancels_send },
    Case { id: "IPC-GRANT-007", what: "a cspace cap sent by message to a space that is not its ancestor does not travel: the send is refused with IllegalOperation", run: grant_cspace_refused },
    Case { id: "IPC-BADGE-001", what: "a client cannot change its badge: re-minting fails, copies keep it, the server sees the original", run: badge_fixed },
    Case { id: "NTFN-001", what: "signals from two badged caps OR into the word a waiter in another process receives", run: notify_badges },
    Case { id: "NTFN-002", what: "an unbadged signal delivers 1; poll with nothing pending returns 0; a wait times out", run: notify_plain },
    Case { id: "NTFN-003", what: "signal without write, wait without read, either on an endpoint: InsufficientRights, WrongObjectType", run: notify_errors },
];

fn info(label: u32, length: usize, caps: usize) -> u64 {
    MessageInfo::new(label, length, caps).map_or(0, MessageInfo::encode)
}

fn code(ret: &crate::puppet::Ret) -> Result<(), ErrorCode> {
    audit::code(ret.rax)
}

/// An endpoint and two puppets holding it at slot 5: a receiver (`R`) and a sender with
/// `sender_rights` and `badge`.
fn pair(world: &mut World, sender_rights: Rights, badge: u64) -> Result<(CapSlot, Puppet, Puppet), Fail> {
    let e = create(world, ObjectType::Endpoint)?;
    let server = Puppet::new(world)?;
    expect_ok("give the server its cap", server.give(e, 5, R, 0))?;
    let client = Puppet::new(world)?;
    expect_ok("give the client its cap", client.give(e, 5, sender_rights, badge))?;
    Ok((e, server, client))
}

fn done(world: &mut World, puppets: impl IntoIterator<Item = Puppet>) -> Outcome {
    for puppet in puppets {
        puppet.teardown(world)?;
    }
    Ok(())
}

fn blocked(what: &str, puppet: &Puppet) -> Outcome {
    match puppet.finish(5)? {
        Step::Blocked => Ok(()),
        other => fail!("{what}: expected it still waiting, got {other:?}"),
    }
}

fn receive_op(slot: u64) -> [u64; 8] {
    [slot, 0, 0, 0, 0, 0, 0, 0]
}

fn send_receive(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0x42)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send", Sysno::Send, &[5, info(7, 3, 0), 11, 22, 33])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    expect_ok("receive", got.result())?;
    ensure!(got.rdi() == 0x42, "badge {:#x}, not 0x42", got.rdi());
    ensure!(got.rsi() == info(7, 3, 0), "info {:#x}", got.rsi());
    ensure!([got.word(0), got.word(1), got.word(2)] == [11, 22, 33], "words {:?}", got.regs);
    done(world, [server, client])
}

fn send_zeroes_rest(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send", Sysno::Send, &[5, info(0, 1, 0), 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.word(0) == 0x1111, "word 0 is {:#x}", got.word(0));
    ensure!((1..6).all(|i| got.word(i) == 0), "registers beyond the length arrived: {:x?}", got.regs);
    done(world, [server, client])
}

fn send_errors(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, R, 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("give notification", client.give(n, 6, ALL, 0))?;
    client.sys_err("send through R", Sysno::Send, &[5, 0], ErrorCode::InsufficientRights)?;
    client.sys_err("send on a notification", Sysno::Send, &[6, 0], ErrorCode::WrongObjectType)?;
    client.sys_err("send through an empty slot", Sysno::Send, &[7, 0], ErrorCode::EmptySlot)?;
    client.sys_err("call through R", Sysno::Call, &[5, 0], ErrorCode::InsufficientRights)?;
    expect_err_step("nothing reached the server", server.sys(Sysno::NbRecv, &[5]), ErrorCode::WouldBlock)?;
    done(world, [server, client])
}

fn expect_err_step(what: &str, ret: Result<crate::puppet::Ret, Fail>, want: ErrorCode) -> Outcome {
    let ret = ret?;
    match code(&ret) {
        Err(got) if got == want => Ok(()),
        other => fail!("{what}: expected {want:?}, got {other:?}"),
    }
}

fn send_would_block(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    client.sys_err("non-blocking send", Sysno::NbSend, &[5, info(1, 1, 0), 9], ErrorCode::WouldBlock)?;
    server.sys_err("nothing queued", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    done(world, [server, client])
}

fn receive_errors(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    client.sys_err("receive through W", Sysno::Recv, &[5], ErrorCode::InsufficientRights)?;
    client.sys_err("non-blocking receive through W", Sysno::NbRecv, &[5], ErrorCode::InsufficientRights)?;
    server.sys_err("non-blocking receive, no sender", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    server.sys_err("receive with a 2-tick timeout", Sysno::Recv, &[5, 2], ErrorCode::TimedOut)?;
    server.sys_err("receive through an empty slot", Sysno::Recv, &[9], ErrorCode::EmptySlot)?;
    server.sys_err("receive through slot 2^32", Sysno::NbRecv, &[1 << 32], ErrorCode::InvalidSlot)?;
    done(world, [server, client])
}

fn message_info_errors(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W.union(G), 0)?;
    client.sys_err("reserved bit 13", Sysno::NbSend, &[5, 1 << 13], ErrorCode::InvalidArgument)?;
    client.sys_err("reserved bit 31", Sysno::NbSend, &[5, 1 << 31], ErrorCode::InvalidArgument)?;
    client.sys_err("length 481", Sysno::NbSend, &[5, 481], ErrorCode::MessageTooLong)?;
    client.sys_err("length 1023", Sysno::NbSend, &[5, 1023], ErrorCode::MessageTooLong)?;
    client.sys_err("5 caps", Sysno::NbSend, &[5, 5 << 10], ErrorCode::MessageTooLong)?;
    server.sys_err("nothing was delivered", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    done(world, [server, client])
}

fn long_message(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    for index in 8..20u64 {
        expect_ret("store a buffer word", client.store(IPC_BUFFER + index * 8, 0x1000 + index)?)?;
    }
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send 20 words", Sysno::Send, &[5, info(3, 20, 0), 0, 1, 2, 3, 4, 5])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rsi() == info(3, 20, 0), "info {:#x}: not 20 words", got.rsi());
    for index in 8..20u64 {
        let word = expect_ret("read a buffer word", server.load(IPC_BUFFER + index * 8)?)?.rdi();
        ensure!(word == 0x1000 + index, "buffer word {index} is {word:#x}");
    }
    done(world, [server, client])
}

fn long_without_buffer(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let client = Puppet::with(world, Options { ipc_buffer: 0, ..Options::default() })?;
    expect_ok("give", client.give(e, 5, W, 0))?;
    client.sys_err("9 words without a buffer", Sysno::NbSend, &[5, info(0, 9, 0)], ErrorCode::MessageTooLong)?;
    client.teardown(world)
}

fn call_reply(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 7)?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(1, 1, 0), 41, 0, 0, 0, 0, 0])?;
    let request = server.sys_ok("receive the call", Sysno::Recv, &[5])?;
    ensure!(request.rdi() == 7 && request.word(0) == 41, "the server got badge {} word {}", request.rdi(), request.word(0));
    server.sys_ok("reply", Sysno::Reply, &[0, info(2, 1, 0), 42, 0xdead, 0xbeef])?;
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    expect_ok("the call", answer.result())?;
    ensure!(answer.rdi() == 0, "a reply carried badge {:#x}", answer.rdi());
    ensure!(answer.rsi() == info(2, 1, 0) && answer.word(0) == 42, "answer {:x?}", answer.regs);
    ensure!(answer.word(1) == 0 && answer.word(2) == 0, "registers beyond the reply's length arrived: {:x?}", answer.regs);
    done(world, [server, client])
}

fn reply_none(world: &mut World) -> Outcome {
    let server = Puppet::new(world)?;
    server.sys_err("reply with nothing pending", Sysno::Reply, &[0, info(0, 0, 0)], ErrorCode::IllegalOperation)?;
    server.teardown(world)
}

fn reply_twice(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive", Sysno::Recv, &[5])?;
    server.sys_ok("first reply", Sysno::Reply, &[0, info(0, 1, 0), 1])?;
    server.sys_err("second reply", Sysno::Reply, &[0, info(0, 1, 0), 2], ErrorCode::IllegalOperation)?;
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    ensure!(answer.word(0) == 1, "the caller got {:x?}", answer.regs);
    done(world, [server, client])
}

fn reply_stale(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive", Sysno::Recv, &[5])?;
    client.teardown(world)?;
    server.sys_err("reply to the dead caller", Sysno::Reply, &[0, info(0, 1, 0), 1], ErrorCode::PeerGone)?;
    // The lost reply is reported once; after that there is simply nothing to reply to.
    server.sys_err("reply again", Sysno::Reply, &[0, info(0, 1, 0), 1], ErrorCode::IllegalOperation)?;
    server.teardown(world)
}

fn reply_dropped(world: &mut World) -> Outcome {
    let (e, server, first) = pair(world, W, 1)?;
    let second = Puppet::new(world)?;
    expect_ok("give", second.give(e, 5, W, 2))?;
    first.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive the first call", Sysno::Recv, &[5])?;
    second.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    let got = server.sys_ok("receive the second call", Sysno::Recv, &[5])?;
    ensure!(got.rdi() == 2, "the server got badge {}", got.rdi());
    server.sys_ok("reply", Sysno::Reply, &[0, info(0, 1, 0), 22])?;
    let answer = expect_ret("the second call", second.finish(STEP_TICKS)?)?;
    ensure!(answer.rax == 0 && answer.word(0) == 22, "the second caller got {answer:x?}");
    server.sys_err("nothing left to reply to", Sysno::Reply, &[0, 0], ErrorCode::IllegalOperation)?;
    blocked("the first caller", &first)?;
    server.teardown(world)?;
    let answer = expect_ret("the first call", first.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::PeerGone), "the first caller got {:?}", code(&answer));
    done(world, [first, second])
}

fn reply_survives_send(world: &mut World) -> Outcome {
    let (e, server, caller) = pair(world, W, 1)?;
    let sender = Puppet::new(world)?;
    expect_ok("give", sender.give(e, 5, W, 2))?;
    caller.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive the call", Sysno::Recv, &[5])?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    sender.sys_ok("send", Sysno::Send, &[5, 0])?;
    let got = expect_ret("receive the message", server.finish(STEP_TICKS)?)?;
    ensure!(got.rdi() == 2, "the server got badge {}", got.rdi());
    // abi::Sysno::Recv: the reply right lasts until the reply or the next call.
    server.sys_ok("reply to the first caller", Sysno::Reply, &[0, info(0, 1, 0), 11])?;
    let answer = expect_ret("the call", caller.finish(STEP_TICKS)?)?;
    ensure!(answer.rax == 0 && answer.word(0) == 11, "the caller got {answer:x?}");
    done(world, [server, caller, sender])
}

fn reply_recv_without_call(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 3)?;
    server.begin(Sysno::ReplyRecv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    client.sys_ok("send", Sysno::Send, &[5, info(0, 1, 0), 77])?;
    let got = expect_ret("reply-receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rax == 0 && got.rdi() == 3 && got.word(0) == 77, "got {got:x?}");
    done(world, [server, client])
}

fn server_dies(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive", Sysno::Recv, &[5])?;
    match server.op(Sysno::ThreadExit.as_u64() as u32, [0; 8])? {
        Step::Ended(End::Exit(0)) => {}
        other => fail!("the server did not exit: {other:?}"),
    }
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::PeerGone), "the caller got {:?}", code(&answer));
    done(world, [server, client])
}

/// Ticks a bounded call waits in the IPC-TIMEOUT cases: far below `STEP_TICKS`, so a call
/// that ignores its bound is seen still blocked, not mistaken for a timeout.
const CALL_BOUND_TICKS: u64 = 3;

fn call_times_out_unreceived(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    client.sys_ok("bound its calls", Sysno::SetCallTimeout, &[CALL_BOUND_TICKS])?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(0, 1, 0), 7, 0, 0, 0, 0, 0])?;
    let answer = expect_ret("the bounded call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::TimedOut), "the caller got {:?}", code(&answer));
    server.sys_err("a receive after the timeout", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    done(world, [server, client])
}

fn call_times_out_unanswered(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 1)?;
    client.sys_ok("bound its calls", Sysno::SetCallTimeout, &[CALL_BOUND_TICKS])?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(0, 1, 0), 7, 0, 0, 0, 0, 0])?;
    let request = server.sys_ok("the server takes the call and sits on it", Sysno::Recv, &[5])?;
    ensure!(request.word(0) == 7, "the server got {:#x}", request.word(0));
    let answer = expect_ret("the bounded call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::TimedOut), "the caller got {:?}", code(&answer));
    server.sys_err("the late reply", Sysno::Reply, &[0, info(0, 1, 0), 99], ErrorCode::PeerGone)?;
    client.sys_ok("lift the bound", Sysno::SetCallTimeout, &[0])?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(0, 1, 0), 8, 0, 0, 0, 0, 0])?;
    let request = server.sys_ok("the next call arrives", Sysno::Recv, &[5])?;
    ensure!(request.word(0) == 8, "the server got {:#x}", request.word(0));
    server.sys_ok("answer it", Sysno::Reply, &[0, info(0, 1, 0), 42])?;
    let answer = expect_ret("the unbounded call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer).is_ok() && answer.word(0) == 42, "the caller got {:?}, word {:#x}", code(&answer), answer.word(0));
    done(world, [server, client])
}

fn endpoint_destroyed_sender(world: &mut World) -> Outcome {
    let (e, server, client) = pair(world, W, 1)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    blocked("the queued caller", &client)?;
    expect_ok("revoke every other cap", sys::cap_revoke(e))?;
    expect_ok("delete the last", sys::cap_delete(e))?;
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::Revoked), "the caller got {:?}", code(&answer));
    done(world, [server, client])
}

fn endpoint_destroyed_receiver(world: &mut World) -> Outcome {
    let (e, server, client) = pair(world, W, 1)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    blocked("the receiver", &server)?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    expect_ok("delete", sys::cap_delete(e))?;
    let got = expect_ret("the receive", server.finish(STEP_TICKS)?)?;
    ensure!(code(&got) == Err(ErrorCode::PeerGone), "the receiver got {:?}", code(&got));
    done(world, [server, client])
}

fn server_restarted(world: &mut World) -> Outcome {
    let (e, old, client) = pair(world, W, 1)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    old.sys_ok("the old server takes the call", Sysno::Recv, &[5])?;
    old.teardown(world)?;
    let answer = expect_ret("the call to the old server", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::PeerGone), "the caller got {:?}", code(&answer));
    let new = Puppet::new(world)?;
    expect_ok("the new server's cap", new.give(e, 5, R, 0))?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(0, 1, 0), 5, 0, 0, 0, 0, 0])?;
    let request = new.sys_ok("the new server receives", Sysno::Recv, &[5])?;
    ensure!(request.word(0) == 5, "request {:x?}", request.regs);
    new.sys_ok("reply", Sysno::Reply, &[0, info(0, 1, 0), 6])?;
    let answer = expect_ret("the call to the new server", client.finish(STEP_TICKS)?)?;
    ensure!(answer.rax == 0 && answer.word(0) == 6, "got {answer:x?}");
    done(world, [new, client])
}

/// Puts `slot` as the first cap to send in the puppet's IPC buffer.
fn send_cap(puppet: &Puppet, slot: u64) -> Outcome {
    expect_ret("send-cap slot", puppet.store(IPC_BUFFER + SEND_CAPS_OFFSET as u64, slot)?).map(drop)
}

/// Names `slot` as where the first received cap goes.
fn receive_cap_into(puppet: &Puppet, slot: u64) -> Outcome {
    expect_ret("receive-cap slot", puppet.store(IPC_BUFFER + RECV_CAPS_OFFSET as u64, slot)?).map(drop)
}

fn grant_refused(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("the cap to pass", client.give(n, 6, ALL, 0))?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    client.sys_err("send a cap without Grant", Sysno::NbSend, &[5, info(0, 0, 1)], ErrorCode::InsufficientRights)?;
    client.sys_err("blocking, too", Sysno::Send, &[5, info(0, 0, 1)], ErrorCode::InsufficientRights)?;
    server.sys_err("nothing arrived", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    ensure!(server.slot(9)?.is_none(), "a cap arrived anyway");
    done(world, [server, client])
}

fn grant_works(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W.union(G), 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("the cap to pass", client.give(n, 6, RW, 0x9))?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send with a cap", Sysno::Send, &[5, info(0, 0, 1)])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rsi() == info(0, 0, 1), "info {:#x}: the cap did not travel", got.rsi());
    let sent = client.slot(6)?;
    let arrived = server.slot(9)?;
    match (sent, arrived) {
        (Some(a), Some(b)) if a == b => {}
        other => fail!("sent and arrived differ: {other:?}"),
    }
    server.sys_ok("the received cap works", Sysno::Signal, &[9])?;
    expect_ok("revoke the original", sys::cap_revoke(n))?;
    ensure!(server.slot(9)?.is_none() && client.slot(6)?.is_none(), "the revoke missed the granted cap");
    done(world, [server, client])
}

fn grant_attenuated(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W.union(G), 0)?;
    let frame = create(world, ObjectType::Frame)?;
    expect_ok("a read-only frame cap", client.give(frame, 6, R, 0))?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send", Sysno::Send, &[5, info(0, 0, 1)])?;
    expect_ret("receive", server.finish(STEP_TICKS)?)?;
    let arrived = server.slot(9)?;
    ensure!(arrived.is_some_and(|c| c.rights == u64::from(R.bits())), "arrived as {arrived:?}");
    done(world, [server, client])
}

fn grant_slot_occupied(world: &mut World) -> Outcome {
    let (e, server, client) = pair(world, W.union(G), 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("the cap to pass", client.give(n, 6, ALL, 0))?;
    expect_ok("the receiver's slot 9 is taken", server.give(e, 9, R, 0))?;
    let before = server.slot(9)?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_err("send", Sysno::Send, &[5, info(4, 0, 1)], ErrorCode::SlotOccupied)?;
    ensure!(server.finish(20)? == Step::Blocked, "the refused message arrived");
    ensure!(server.slot(9)? == before, "the occupied slot changed");
    ensure!(client.slot(6)?.is_some(), "the sender lost the cap it tried to send");
    client.sys_ok("without the cap it goes", Sysno::Send, &[5, info(4, 0, 0)])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rsi() == info(4, 0, 0), "info {:#x}", got.rsi());
    done(world, [server, client])
}

fn grant_bad_slot(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W.union(G), 0)?;
    send_cap(&client, 6)?;
    client.sys_err("send an empty slot", Sysno::NbSend, &[5, info(0, 0, 1)], ErrorCode::EmptySlot)?;
    send_cap(&client, 1 << 32)?;
    client.sys_err("send slot 2^32", Sysno::NbSend, &[5, info(0, 0, 1)], ErrorCode::InvalidSlot)?;
    server.sys_err("nothing arrived", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    done(world, [server, client])
}

fn grant_reply_needs_right(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("the server's cap to pass back", server.give(n, 6, ALL, 0))?;
    send_cap(&server, 6)?;
    client.begin(Sysno::Call.as_u64() as u32, receive_op(5))?;
    server.sys_ok("receive", Sysno::Recv, &[5])?;
    server.sys_err("reply with a cap", Sysno::Reply, &[0, info(0, 0, 1)], ErrorCode::InsufficientRights)?;
    server.sys_ok("reply without", Sysno::Reply, &[0, info(0, 0, 0)])?;
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    ensure!(answer.rax == 0 && answer.rsi() == info(0, 0, 0), "got {answer:x?}");
    let caps = client.caps()?;
    ensure!(caps.len() == 2, "the client holds {} caps", caps.len());
    done(world, [server, client])
}

fn grant_cspace_refused(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W.union(G), 0)?;
    client.sys_ok("the sender makes a cspace of its own", Sysno::ObjectCreate, &[u64::from(ObjectType::CSpace.as_u32()), 6, 0])?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_err("send", Sysno::Send, &[5, info(0, 0, 1)], ErrorCode::IllegalOperation)?;
    ensure!(server.finish(20)? == Step::Blocked, "the refused message arrived");
    ensure!(server.slot(9)?.is_none(), "the cspace cap arrived");
    client.sys_ok("a plain message still goes", Sysno::Send, &[5, info(0, 0, 0)])?;
    expect_ret("receive", server.finish(STEP_TICKS)?)?;
    done(world, [server, client])
}

fn badge_fixed(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0x42)?;
    client.sys_err("re-badge", Sysno::CapMint, &[5, 6, u64::from(W.bits()), 0x43], ErrorCode::BadgeAlreadySet)?;
    client.sys_ok("mint badge 0", Sysno::CapMint, &[5, 7, u64::from(W.bits()), 0])?;
    client.sys_ok("copy", Sysno::CapCopy, &[7, 8])?;
    ensure!(client.slot(6)?.is_none(), "the re-badge left a cap");
    ensure!(client.slot(8)?.is_some_and(|c| c.badge == 0x42), "the copy's badge changed: {:?}", client.slot(8)?);
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    client.sys_ok("send through the copy", Sysno::Send, &[8, 0])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rdi() == 0x42, "the server saw badge {:#x}", got.rdi());
    done(world, [server, client])
}

fn notify_badges(world: &mut World) -> Outcome {
    let n = create(world, ObjectType::Notification)?;
    let waiter = Puppet::new(world)?;
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_ok("waiter", waiter.give(n, 5, R, 0))?;
    expect_ok("a", a.give(n, 5, W, 0x1))?;
    expect_ok("b", b.give(n, 5, W, 0x4))?;
    a.sys_ok("signal a", Sysno::Signal, &[5])?;
    b.sys_ok("signal b", Sysno::Signal, &[5])?;
    let got = waiter.sys_ok("wait", Sysno::Wait, &[5])?;
    ensure!(got.rdi() == 0x5, "the waiter got {:#x}", got.rdi());
    let again = waiter.sys_ok("poll", Sysno::Poll, &[5])?;
    ensure!(again.rdi() == 0, "the word was not cleared: {:#x}", again.rdi());
    done(world, [waiter, a, b])
}

fn notify_plain(world: &mut World) -> Outcome {
    let n = create(world, ObjectType::Notification)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(n, 5, RW, 0))?;
    let empty = p.sys_ok("poll", Sysno::Poll, &[5])?;
    ensure!(empty.rdi() == 0, "poll got {:#x}", empty.rdi());
    p.sys_err("wait 2 ticks", Sysno::Wait, &[5, 2], ErrorCode::TimedOut)?;
    p.sys_ok("signal", Sysno::Signal, &[5])?;
    let got = p.sys_ok("wait", Sysno::Wait, &[5])?;
    ensure!(got.rdi() == 1, "an unbadged signal delivered {:#x}", got.rdi());
    p.teardown(world)
}

fn notify_errors(world: &mut World) -> Outcome {
    let n = create(world, ObjectType::Notification)?;
    let e = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    expect_ok("R", p.give(n, 5, R, 0))?;
    expect_ok("W", p.give(n, 6, W, 0))?;
    expect_ok("endpoint", p.give(e, 7, ALL, 0))?;
    p.sys_err("signal through R", Sysno::Signal, &[5], ErrorCode::InsufficientRights)?;
    p.sys_err("wait through W", Sysno::Wait, &[6], ErrorCode::InsufficientRights)?;
    p.sys_err("poll through W", Sysno::Poll, &[6], ErrorCode::InsufficientRights)?;
    p.sys_err("signal an endpoint", Sysno::Signal, &[7], ErrorCode::WrongObjectType)?;
    p.sys_err("wait on an endpoint", Sysno::Wait, &[7], ErrorCode::WrongObjectType)?;
    p.sys_err("signal an empty slot", Sysno::Signal, &[8], ErrorCode::EmptySlot)?;
    p.teardown(world)
}

fn reply_recv_refused(world: &mut World) -> Outcome {
    let (_, server, client) = pair(world, W, 0)?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("a cap for the reply", server.give(n, 6, ALL, 0))?;
    send_cap(&server, 6)?;
    client.begin(Sysno::Call.as_u64() as u32, [5, info(1, 0, 0), 0, 0, 0, 0, 0, 0])?;
    let request = server.sys_ok("receive the call", Sysno::Recv, &[5])?;
    ensure!(request.rsi() == info(1, 0, 0), "request info {:#x}", request.rsi());
    // The client's cap has no GrantReply, so a reply may not carry caps.
    server.sys_err("ReplyRecv with a cap", Sysno::ReplyRecv, &[5, info(2, 0, 1)], ErrorCode::InsufficientRights)?;
    blocked("the caller, still waiting for its answer", &client)?;
    server.sys_ok("a reply that fits", Sysno::Reply, &[0, info(3, 1, 0), 0x77])?;
    let answer = expect_ret("the call", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer).is_ok() && answer.rsi() == info(3, 1, 0) && answer.word(0) == 0x77, "the caller got {answer:x?}");
    done(world, [server, client])
}

/// A client queued in a badged send carrying a cap (slot 6), through the copy at its slot 5
/// of the suite's badged cap `badged`.
fn queued_badged_send(world: &mut World) -> Result<(CapSlot, CapSlot, Puppet, Puppet), Fail> {
    let e = create(world, ObjectType::Endpoint)?;
    let badged = world.slot()?;
    expect_ok("a badged cap", sys::cap_mint(e, badged, W.union(G), libcap::Badge::new(0x77)))?;
    let server = Puppet::new(world)?;
    expect_ok("the server's cap", server.give(e, 5, R, 0))?;
    let client = Puppet::new(world)?;
    expect_ok("the client's copy", client.give(badged, 5, ALL, 0))?;
    let n = create(world, ObjectType::Notification)?;
    expect_ok("the cap to pass", client.give(n, 6, ALL, 0))?;
    send_cap(&client, 6)?;
    receive_cap_into(&server, 9)?;
    if let Some(end) = client.begin(Sysno::Send.as_u64() as u32, [5, info(4, 1, 1), 0x5e, 0, 0, 0, 0, 0])? {
        fail!("the client ended: {end:?}");
    }
    blocked("the queued sender", &client)?;
    Ok((e, badged, server, client))
}

fn revoke_cancels_send(world: &mut World) -> Outcome {
    let (_, badged, server, client) = queued_badged_send(world)?;
    expect_ok("revoke the badged cap", sys::cap_revoke(badged))?;
    expect_ok("and delete it", sys::cap_delete(badged))?;
    let answer = expect_ret("the send", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::Revoked), "the sender got {:?}", code(&answer));
    server.sys_err("nothing was delivered", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    ensure!(server.slot(9)?.is_none(), "the cap arrived");
    done(world, [server, client])
}

fn revoke_copy_cancels_send(world: &mut World) -> Outcome {
    let (_, badged, server, client) = queued_badged_send(world)?;
    expect_ok("revoke the badged cap (the client's copy goes, ours stays)", sys::cap_revoke(badged))?;
    let answer = expect_ret("the send", client.finish(STEP_TICKS)?)?;
    ensure!(code(&answer) == Err(ErrorCode::Revoked), "the sender got {:?}", code(&answer));
    server.sys_err("nothing was delivered", Sysno::NbRecv, &[5], ErrorCode::WouldBlock)?;
    server.begin(Sysno::Recv.as_u64() as u32, receive_op(5))?;
    expect_ok("a send through the kept cap", sys::send(badged, &sys::Message::new(8, &[]).map_err(Fail::from)?))?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rdi() == 0x77 && got.rsi() == info(8, 0, 0), "the server got badge {:#x} info {:#x}", got.rdi(), got.rsi());
    done(world, [server, client])
}
