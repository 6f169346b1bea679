//! The kernel command line: space-separated `key=value` words and bare flags.

/// The value of the first `key=value` word, or `Some("")` for a bare `key`.
pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|word| match word.split_once('=') {
        Some((name, value)) if name == key => Some(value),
        None if word == key => Some(""),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_values_and_flags() {
        let line = "ktest=page_fault  quiet log=debug";
        assert_eq!(super::value(line, "ktest"), Some("page_fault"));
        assert_eq!(super::value(line, "quiet"), Some(""));
        assert_eq!(super::value(line, "log"), Some("debug"));
        assert_eq!(super::value(line, "missing"), None);
        assert_eq!(super::value("", "ktest"), None);
    }
}
