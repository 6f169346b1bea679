"""Proves the leak suite catches breakage: breaks one kernel check at a time in a scratch
copy of a commit, runs `cargo xtask test suite --qemu-only` there, and reports which cases
failed (tests/README.md, "Proof that the suite catches breakage", is its output).

    python3 tests/break-kernel.py            # every experiment, on HEAD
    python3 tests/break-kernel.py revoke-noop map-wx
    BASE=<commit> SCRATCH=/tmp/x python3 tests/break-kernel.py

The working tree is never touched: each experiment is `git archive BASE` unpacked into
SCRATCH (default /tmp/leak-scratch) and built in its own target directory. The broken
kernels exist only there. Logs: SCRATCH-results/<name>.log; one summary per experiment in
SCRATCH-results/results.txt.
"""
import os, re, shutil, subprocess, sys

ROOT = subprocess.run(['git', 'rev-parse', '--show-toplevel'], capture_output=True, text=True, check=True).stdout.strip()
SCRATCH = os.environ.get('SCRATCH', '/tmp/leak-scratch')
TARGET = os.environ.get('TARGET', SCRATCH + '-target')
OUT = SCRATCH + '-results'
BASE = os.environ.get('BASE', 'HEAD')

B = {
 'none': ('control: nothing broken', []),
 'mint-keeps-rights': ("mint (and so copy, give and message transfer) keeps all the source's rights", [
   ('kernel/core/src/cap/ops.rs', 'rights: from.rights.intersection(rights), badge };', 'rights: { let _ = rights; from.rights }, badge };')]),
 'give-skips-placement': ("CapGive skips check_placement (a cspace cap may go anywhere)", [
   ('kernel/src/syscall.rs', '    caps::derive(from, to, rights, Badge::new(args.a4))?;\n    Ok(Reply::default())\n}\n\nfn io_ports_cap',
    '    caps::with(|store| store.decode_mint(from, to, rights, Badge::new(args.a4)).map(|op| op.perform()))?;\n    Ok(Reply::default())\n}\n\nfn io_ports_cap')]),
 'map-wx-syscall-only': ("Map's own W+X check removed (vspace::map still refuses)", [
   ('kernel/src/syscall.rs', 'if args.a3 & !map_perms::ALL != 0 || args.a3 == map_perms::ALL {', 'if args.a3 & !map_perms::ALL != 0 {')]),
 'map-wx': ("W+X allowed: Map's check and vspace::map's both removed", [
   ('kernel/src/syscall.rs', 'if args.a3 & !map_perms::ALL != 0 || args.a3 == map_perms::ALL {', 'if args.a3 & !map_perms::ALL != 0 {'),
   ('kernel/src/vspace.rs', '    if perms.write && perms.execute {\n        return Err(ErrorCode::InvalidArgument);\n    }\n', '')]),
 'no-grant-check': ("caps travel in messages without the Grant right", [
   ('kernel/src/ipc.rs', '        if !grant {\n            return Err(ErrorCode::InsufficientRights);\n        }\n', '')]),
 'badge-changeable': ("mint may re-badge a badged cap", [
   ('kernel/core/src/cap/ops.rs', '            if from.badge.is_set() {\n                return Err(ErrorCode::BadgeAlreadySet);\n            }\n', '')]),
 'revoke-noop': ("revoke deletes nothing", [
   ('kernel/core/src/cap/ops.rs', '        self.store.delete_descendants(self.slot, &mut |_, _| {});', '        let _ = (&self.store, self.slot);')]),
 'delete-leaks-object': ("CapDelete of the last cap forgets to destroy the object (the kernel memory leaks)", [
   ('kernel/src/syscall.rs', '    caps::with(|store| store.decode_delete(slot).map(|op| op.perform(&mut reaped)))?;\n    reaped.finish();', '    caps::with(|store| store.decode_delete(slot).map(|op| op.perform(&mut reaped)))?;\n    let _ = reaped;')]),
 'map-ignores-frame-rights': ("Map ignores the frame cap's rights", [
   ('kernel/src/syscall.rs', 'ObjectType::Frame, needed)?', 'ObjectType::Frame, { let _ = needed; Rights::NONE })?')]),
 'usercopy-unchecked': ("copy_from_user reads any mapped address, kernel half included (no user/permission check)", [
   ('kernel/src/vspace.rs', '        let phys = translate(pml4, virt, false).ok_or(ErrorCode::InvalidArgument)?;', '        let phys = translate_any(pml4, virt).ok_or(ErrorCode::InvalidArgument)?;')]),
 'no-quota-check': ("ObjectCreate does not check the quota", [
   ('kernel/core/src/cap/ops.rs', '        quota.check(cost)?;', '        let _ = quota.check(cost);')]),
 'reply-twice': ("the reply right is not consumed by a reply", [
   ('kernel/src/ipc.rs', '        let info = decode_message(sched, me, frame.rsi, grant)?;\n        sched.thread(me).reply_to = None;\n', '        let info = decode_message(sched, me, frame.rsi, grant)?;\n')]),
 'registers-leak': ("registers beyond a message's length are not zeroed (fast path)", [
   ('kernel/src/ipc.rs', '        for register in registers.iter_mut().skip(length) {\n            *register = 0;\n        }\n', '        let _ = length;\n')]),
 'audit-any-cap': ("AuditCap/AuditThread accept any cap, not only an audit cap with read", [
   ('kernel/src/syscall.rs', '    caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::Audit, Rights::READ).map(|_| ())', '    caps::with(|store| store.lookup(caps::slot(my_space()?, slot_arg(slot)?)).map(|_| ()))')]),
 'frame-destroy-keeps-mappings': ("a frame whose last cap goes is freed without being unmapped (use after free)", [
   ('kernel/src/frame.rs', '    for mapping in entry.mappings.iter().flatten() {\n        crate::vspace::unmap_object(mapping.space, mapping.address);\n    }\n', '')]),
 'slice-destroy-keeps-mappings': ("a borrowed frame (a FrameSlice) whose last cap goes keeps its mappings", [
   ('kernel/src/frame.rs', '    for mapping in entry.mappings.iter().flatten() {\n        if let Some(pml4) = vspace::root(mapping.space) {', '    for mapping in entry.mappings.iter().flatten().filter(|_| entry.memory == Memory::Owned) {\n        if let Some(pml4) = vspace::root(mapping.space) {')]),
 'slice-all-rights': ("a FrameSlice's cap gets all rights, not its source cap's", [
   ('kernel/src/object.rs', 'op.perform_with_rights(object, rights))', 'op.perform_with_rights(object, Rights::ALL))')]),
 'slice-bound-by-pages': ("a FrameSlice is bounded by its source's pages, not its byte length", [
   ('kernel/src/frame.rs', 'end > entry.bytes {', 'end > entry.pages * PAGE_BYTES {')]),
 'slice-range-wraps': ("FrameSlice's offset + length wraps instead of being refused", [
   ('kernel/src/frame.rs', 'let end = offset.checked_add(length).ok_or(ErrorCode::InvalidArgument)?;', 'let end = offset.wrapping_add(length);')]),
 'slice-of-ram': ("FrameSlice accepts an owned (allocated) frame", [
   ('kernel/src/frame.rs', 'if entry.memory != Memory::Borrowed {\n            return Err(ErrorCode::IllegalOperation);', 'if false {\n            return Err(ErrorCode::IllegalOperation);')]),
 'borrowed-map-writable': ("frame::map maps a borrowed frame writable or executable when asked (the cap's rights still refuse it)", [
   ('kernel/src/frame.rs', 'if entry.memory == Memory::Borrowed && (perms.write || perms.execute) {', 'if false && (perms.write || perms.execute) {')]),
 'priority-unchecked': ("ThreadConfigure lets a thread be given a priority above its configurer's", [
   ('kernel/src/sched.rs', '    if priority > mine {\n        return Err(abi::ErrorCode::InsufficientRights);\n    }\n', '    let _ = mine;\n')]),
}

def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, **kw)

def fresh():
    shutil.rmtree(SCRATCH, ignore_errors=True)
    os.makedirs(SCRATCH)
    sh(f'cd {ROOT} && git archive {BASE} | tar -x -C {SCRATCH}', check=True)
    # git archive stamps files with the commit's time, older than the last build's outputs:
    # touch the kernel so cargo rebuilds whatever the previous experiment broke.
    sh(f'find {SCRATCH}/kernel -type f -exec touch {{}} +', check=True)

def run(name):
    what, edits = B[name]
    fresh()
    for path, old, new in edits:
        p = os.path.join(SCRATCH, path)
        s = open(p).read()
        n = s.count(old)
        if n != 1:
            return f'{name}: PATCH FAILED ({path}: {n} matches)'
        open(p, 'w').write(s.replace(old, new))
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    r = sh(f'cd {SCRATCH} && timeout 900 cargo xtask test suite --qemu-only', env=env, capture_output=True, text=True)
    log = r.stdout + r.stderr
    os.makedirs(OUT, exist_ok=True)
    open(f'{OUT}/{name}.log', 'w').write(log)
    failed = re.findall(r'^test suite::(\S+) \.\.\. FAILED', log, re.M)
    summary = re.findall(r'^(\d+ passed, \d+ failed)$', log, re.M)
    build_failed = 'error[' in log or 'error:' in log and not summary
    census = 'census' in log and 'LEAK' in log
    line = f'{name}: {what}\n  caught by {len(failed)}: {" ".join(failed) or "-"}\n  xtask: {summary[-1] if summary else "no summary"}{" BUILD FAILED" if build_failed and not summary else ""}'
    return line

if __name__ == '__main__':
    names = sys.argv[1:] or list(B)
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        line = run(name)
        print(line, flush=True)
        with open(f'{OUT}/results.txt', 'a') as f:
            f.write(line + '\n')
