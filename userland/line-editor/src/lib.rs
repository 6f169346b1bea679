//! The shell's line editor: terminal bytes in, the echo to print and finished lines out.
//!
//! A VT100/xterm-style terminal sends printable UTF-8, control bytes (Enter is `\r`,
//! Backspace is DEL or BS) and escape sequences (arrows are `ESC [ A`..`D`, or `ESC O A`..
//! in application mode). [`Editor::feed`] takes them one byte at a time, keeps the line and
//! the cursor, and writes to its `echo` exactly what redraws the terminal: the editor owns
//! the screen line, so the shell never has to know where the cursor is.
//!
//! Nothing a person (or a program on the other end of the serial line) sends can break it:
//! - a line holds at most [`LINE_MAX`] characters; more are refused with a bell, and the
//!   line reports that it was cut ([`Submitted::truncated`]);
//! - invalid UTF-8 becomes U+FFFD, one per bad sequence;
//! - control bytes it does not use, and escape sequences it does not know (of any length),
//!   are dropped without echo;
//! - history keeps the last [`HISTORY`] lines; all memory is fixed-size (`heapless`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt::Write;

use heapless::{Deque, String, Vec};

/// The most characters a line holds.
pub const LINE_MAX: usize = 160;
/// How many earlier lines Up and Down go through.
pub const HISTORY: usize = 16;
/// Parameter bytes of an escape sequence are counted up to this (and otherwise ignored).
const ESCAPE_MAX: usize = 16;

/// A line's characters.
type Chars = Vec<char, LINE_MAX>;

/// A finished line, as UTF-8 (four bytes per character at most).
pub type Text = String<{ LINE_MAX * 4 }>;

/// What Enter (or Ctrl-C) gives the shell.
#[allow(clippy::large_enum_variant, reason = "one at a time, on the stack, and no heap to box it in")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Enter: the line, and whether characters past [`LINE_MAX`] were refused.
    Line { text: Text, truncated: bool },
    /// Ctrl-C: the line was thrown away.
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// After `ESC [` or `ESC O`, with this many bytes of parameters so far.
    Sequence(usize),
}

/// A partial UTF-8 sequence: the code point so far and the continuation bytes still due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Utf8 {
    value: u32,
    due: u8,
}

/// The line being edited, its cursor and the history.
#[derive(Debug)]
pub struct Editor {
    line: Chars,
    /// Index in `line` (0..=len).
    cursor: usize,
    history: Deque<Chars, HISTORY>,
    /// Which history entry Up/Down show, counted from the newest (`None`: the new line).
    browsing: Option<usize>,
    /// The line being typed before Up was pressed, restored by Down past the newest.
    draft: Chars,
    escape: Escape,
    utf8: Utf8,
    /// A `\r` came last: a `\n` right after it is the same Enter.
    after_cr: bool,
    truncated: bool,
}

impl Default for Editor {
    fn default() -> Editor {
        Editor::new()
    }
}

impl Editor {
    pub const fn new() -> Editor {
        Editor {
            line: Vec::new(),
            cursor: 0,
            history: Deque::new(),
            browsing: None,
            draft: Vec::new(),
            escape: Escape::None,
            utf8: Utf8 { value: 0, due: 0 },
            after_cr: false,
            truncated: false,
        }
    }

    /// Takes one byte from the terminal, writes its echo, and returns a line when one is
    /// finished. Errors of `echo` are ignored: the line is kept whether it could be shown
    /// or not.
    pub fn feed(&mut self, byte: u8, echo: &mut impl Write) -> Option<Submitted> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        // A control byte ends any escape sequence and counts on its own (as terminals
        // do), so Enter always works.
        if self.escape != Escape::None && byte >= 0x20 {
            self.escape_byte(byte, echo);
            return None;
        }
        self.escape = Escape::None;
        if self.utf8.due > 0 {
            if byte & 0xc0 == 0x80 {
                self.utf8.value = (self.utf8.value << 6) | u32::from(byte & 0x3f);
                self.utf8.due -= 1;
                if self.utf8.due == 0 {
                    let c = char::from_u32(self.utf8.value).unwrap_or(char::REPLACEMENT_CHARACTER);
                    self.insert(c, echo);
                }
                return None;
            }
            // The sequence ended early: one replacement, then this byte on its own.
            self.utf8 = Utf8::default();
            self.insert(char::REPLACEMENT_CHARACTER, echo);
        }
        match byte {
            b'\r' => {
                self.after_cr = true;
                Some(self.submit(echo))
            }
            b'\n' if after_cr => None,
            b'\n' => Some(self.submit(echo)),
            0x7f | 0x08 => {
                self.backspace(echo);
                None
            }
            0x1b => {
                self.escape = Escape::Started;
                None
            }
            0x03 => {
                let _ = echo.write_str("^C\n");
                self.clear_state();
                Some(Submitted::Cancelled)
            }
            0x15 => {
                self.replace_line(Vec::new(), echo);
                None
            }
            0x00..=0x1f => None,
            0x20..=0x7e => {
                self.insert(char::from(byte), echo);
                None
            }
            0xc2..=0xdf => self.start_utf8(u32::from(byte & 0x1f), 1),
            0xe0..=0xef => self.start_utf8(u32::from(byte & 0x0f), 2),
            0xf0..=0xf4 => self.start_utf8(u32::from(byte & 0x07), 3),
            // A continuation byte with nothing before it, or a byte UTF-8 never uses.
            _ => {
                self.insert(char::REPLACEMENT_CHARACTER, echo);
                None
            }
        }
    }

    /// The line as typed so far (for tests and redraws).
    pub fn line(&self) -> Text {
        let mut text = Text::new();
        for &c in &self.line {
            // LINE_MAX characters of at most 4 bytes each always fit.
            let _ = text.push(c);
        }
        text
    }

    /// The cursor, in characters from the start of the line.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn start_utf8(&mut self, value: u32, due: u8) -> Option<Submitted> {
        self.utf8 = Utf8 { value, due };
        None
    }

    fn escape_byte(&mut self, byte: u8, echo: &mut impl Write) {
        self.escape = match (self.escape, byte) {
            (Escape::Started, b'[' | b'O') => Escape::Sequence(0),
            // ESC then anything else: a sequence we do not follow; drop both.
            (Escape::Started, _) => Escape::None,
            (Escape::Sequence(_), 0x40..=0x7e) => {
                match byte {
                    b'A' => self.history_step(true, echo),
                    b'B' => self.history_step(false, echo),
                    b'C' => self.right(echo),
                    b'D' => self.left(echo),
                    _ => {}
                }
                Escape::None
            }
            // Parameters, however many: the sequence ends at its final byte.
            (Escape::Sequence(length), _) => Escape::Sequence((length + 1).min(ESCAPE_MAX)),
            (Escape::None, _) => Escape::None,
        };
    }

    fn insert(&mut self, c: char, echo: &mut impl Write) {
        if self.line.insert(self.cursor, c).is_err() {
            if !self.truncated {
                let _ = echo.write_char('\x07');
            }
            self.truncated = true;
            return;
        }
        self.cursor += 1;
        let _ = echo.write_char(c);
        self.redraw_tail(0, echo);
    }

    fn backspace(&mut self, echo: &mut impl Write) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.line.remove(self.cursor);
        let _ = echo.write_char('\x08');
        self.redraw_tail(1, echo);
    }

    /// Rewrites the line from the cursor to its end, blanks `erased` cells after it, and
    /// puts the cursor back.
    fn redraw_tail(&self, erased: usize, echo: &mut impl Write) {
        let tail = self.line.get(self.cursor..).unwrap_or(&[]);
        if tail.is_empty() && erased == 0 {
            return;
        }
        for &c in tail {
            let _ = echo.write_char(c);
        }
        for _ in 0..erased {
            let _ = echo.write_char(' ');
        }
        back(tail.len() + erased, echo);
    }

    fn left(&mut self, echo: &mut impl Write) {
        if self.cursor > 0 {
            self.cursor -= 1;
            back(1, echo);
        }
    }

    fn right(&mut self, echo: &mut impl Write) {
        if self.cursor < self.line.len() {
            self.cursor += 1;
            let _ = echo.write_str("\x1b[C");
        }
    }

    /// Up (`older`) or Down through the history.
    fn history_step(&mut self, older: bool, echo: &mut impl Write) {
        let next = match (self.browsing, older) {
            (None, true) if !self.history.is_empty() => {
                self.draft = self.line.clone();
                Some(0)
            }
            (Some(at), true) if at + 1 < self.history.len() => Some(at + 1),
            (Some(at), true) => Some(at),
            (Some(0), false) => None,
            (Some(at), false) => Some(at - 1),
            (None, _) => return,
        };
        self.browsing = next;
        let shown = match next {
            // Newest first: entry 0 is the back of the deque.
            Some(at) => self.history.iter().rev().nth(at).cloned().unwrap_or_default(),
            None => core::mem::take(&mut self.draft),
        };
        self.replace_line(shown, echo);
    }

    /// Shows `line` in place of the current one, cursor at its end.
    fn replace_line(&mut self, line: Chars, echo: &mut impl Write) {
        back(self.cursor, echo);
        self.line = line;
        self.cursor = self.line.len();
        for &c in &self.line {
            let _ = echo.write_char(c);
        }
        let _ = echo.write_str("\x1b[K");
    }

    fn submit(&mut self, echo: &mut impl Write) -> Submitted {
        let _ = echo.write_char('\n');
        let text = self.line();
        let truncated = self.truncated;
        let entered = core::mem::take(&mut self.line);
        let worth_keeping = entered.iter().any(|c| !c.is_whitespace()) && self.history.back() != Some(&entered);
        if worth_keeping {
            if self.history.is_full() {
                self.history.pop_front();
            }
            let _ = self.history.push_back(entered);
        }
        self.clear_state();
        Submitted::Line { text, truncated }
    }

    fn clear_state(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        self.truncated = false;
        self.utf8 = Utf8::default();
        self.escape = Escape::None;
    }
}

/// Moves the terminal's cursor `count` cells left.
fn back(count: usize, echo: &mut impl Write) {
    if count > 0 {
        let _ = write!(echo, "\x1b[{count}D");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input`; returns what was submitted and the echo.
    fn run(editor: &mut Editor, input: &[u8]) -> (std::vec::Vec<Submitted>, std::string::String) {
        let mut echo = std::string::String::new();
        let submitted = input.iter().filter_map(|&b| editor.feed(b, &mut echo)).collect();
        (submitted, echo)
    }

    fn line(text: &str, truncated: bool) -> Submitted {
        let mut t = Text::new();
        t.push_str(text).unwrap();
        Submitted::Line { text: t, truncated }
    }

    #[test]
    fn typing_and_enter() {
        let mut editor = Editor::new();
        let (got, echo) = run(&mut editor, b"ps\r\n");
        assert_eq!(got, [line("ps", false)], "CR LF is one Enter");
        assert_eq!(echo, "ps\n");
        let (got, _) = run(&mut editor, b"help\n");
        assert_eq!(got, [line("help", false)]);
    }

    #[test]
    fn backspace_and_arrows_edit_in_the_middle() {
        let mut editor = Editor::new();
        // "caps", two left (cursor before 'p'), backspace removes 'a', type 'a' back,
        // then right past 'p'.
        run(&mut editor, b"caps");
        run(&mut editor, b"\x1b[D\x1b[D");
        assert_eq!(editor.cursor(), 2);
        run(&mut editor, b"\x7f");
        assert_eq!((editor.line().as_str(), editor.cursor()), ("cps", 1));
        run(&mut editor, b"a\x1bOC");
        assert_eq!((editor.line().as_str(), editor.cursor()), ("caps", 3));
        let (got, _) = run(&mut editor, b"\r");
        assert_eq!(got, [line("caps", false)]);
        // Backspace at the start and arrows past either end do nothing.
        run(&mut editor, b"\x7f\x1b[D\x1b[Cx\x1b[C\x1b[C");
        assert_eq!((editor.line().as_str(), editor.cursor()), ("x", 1));
    }

    #[test]
    fn history_goes_back_and_forth_and_keeps_the_draft() {
        let mut editor = Editor::new();
        run(&mut editor, b"ps\rmem\rmem\r");
        run(&mut editor, b"dra");
        run(&mut editor, b"\x1b[A");
        assert_eq!(editor.line().as_str(), "mem", "a repeated line is kept once");
        run(&mut editor, b"\x1b[A\x1b[A\x1b[A");
        assert_eq!(editor.line().as_str(), "ps", "Up stops at the oldest");
        run(&mut editor, b"\x1b[B\x1b[B");
        assert_eq!(editor.line().as_str(), "dra", "Down past the newest gives the draft back");
        let (got, _) = run(&mut editor, b"\x1b[A\r");
        assert_eq!(got, [line("mem", false)]);
    }

    #[test]
    fn history_is_bounded() {
        let mut editor = Editor::new();
        for i in 0..100 {
            run(&mut editor, std::format!("line {i}\r").as_bytes());
        }
        for _ in 0..200 {
            run(&mut editor, b"\x1b[A");
        }
        assert_eq!(editor.line().as_str(), std::format!("line {}", 100 - HISTORY).as_str());
    }

    #[test]
    fn a_long_line_is_cut_with_one_bell() {
        let mut editor = Editor::new();
        let (got, echo) = run(&mut editor, &[b'x'; 1000]);
        assert!(got.is_empty());
        assert_eq!(echo.matches('\x07').count(), 1);
        let (got, _) = run(&mut editor, b"\r");
        assert_eq!(got, [line(&"x".repeat(LINE_MAX), true)]);
        let (got, _) = run(&mut editor, b"ok\r");
        assert_eq!(got, [line("ok", false)], "the next line starts afresh");
    }

    #[test]
    fn control_bytes_and_unknown_escapes_are_dropped() {
        let mut editor = Editor::new();
        let (got, echo) = run(&mut editor, b"\x01\x02he\x1b[1;5Hl\x1b[999999999999999999999Xl\x1bxo\x00\x07\x1b[12\r");
        assert_eq!(got, [line("hello", false)]);
        assert!(!echo.contains('\x07') && !echo.contains('\x01'));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let mut editor = Editor::new();
        let (got, _) = run(&mut editor, b"a\xff\xc3(\xe2\x82b\xc3\xa9\xf0\x9f\x98\x80\r");
        assert_eq!(got, [line("a\u{fffd}\u{fffd}(\u{fffd}b\u{e9}\u{1f600}", false)]);
    }

    #[test]
    fn ctrl_c_cancels_and_ctrl_u_clears() {
        let mut editor = Editor::new();
        let (got, _) = run(&mut editor, b"abc\x03");
        assert_eq!(got, [Submitted::Cancelled]);
        assert_eq!(editor.line().as_str(), "");
        let (got, _) = run(&mut editor, b"abc\x15x\r");
        assert_eq!(got, [line("x", false)]);
    }

    #[test]
    fn any_bytes_keep_the_editor_within_its_bounds() {
        // A deterministic stream of every byte value in a scrambled order, many times.
        let mut editor = Editor::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut echo = std::string::String::new();
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let _ = editor.feed(state as u8, &mut echo);
            assert!(editor.cursor() <= editor.line().chars().count());
            assert!(editor.line().chars().count() <= LINE_MAX);
            echo.clear();
        }
    }
}
