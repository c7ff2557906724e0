//! Counting lines of Rust code: non-blank lines that are not only comments.
//!
//! A small lexer, so that `//` inside a string (e.g. in `global_asm!`) or a
//! `/*` in a char literal is not mistaken for a comment. Nested block comments,
//! raw strings and lifetimes are handled; string contents count as code.

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Block(u32),
    Str,
    Raw(usize),
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether a raw string starts at `i` (`r"`, `r#"`, `br##"`, …); returns its `#` count.
fn raw_start(chars: &[char], i: usize) -> Option<usize> {
    let before = |k: usize| k.checked_sub(1).and_then(|p| chars.get(p)).copied();
    let prefix_ok = match before(i) {
        None => true,
        Some('b') => !before(i - 1).is_some_and(is_ident),
        Some(p) => !is_ident(p),
    };
    if chars.get(i) != Some(&'r') || !prefix_ok {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// The number of lines of code in `src`.
pub fn code_lines(src: &str) -> usize {
    let chars: Vec<char> = src.chars().collect();
    let (mut state, mut count, mut has_code, mut i) = (State::Code, 0, false, 0);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            count += usize::from(has_code);
            has_code = false;
            i += 1;
            continue;
        }
        if state != State::Code && !matches!(state, State::Block(_)) && !c.is_whitespace() {
            has_code = true;
        }
        match state {
            State::Code => {
                if c == '/' && next == Some('/') {
                    i = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p);
                    continue;
                }
                if c == '/' && next == Some('*') {
                    state = State::Block(1);
                    i += 2;
                    continue;
                }
                if c.is_whitespace() {
                    i += 1;
                    continue;
                }
                has_code = true;
                if c == '"' {
                    state = State::Str;
                } else if let Some(h) = raw_start(&chars, i) {
                    state = State::Raw(h);
                    i += 2 + h;
                    continue;
                } else if c == '\'' && next == Some('\\') {
                    let close =
                        chars[i + 3.min(chars.len() - i)..].iter().position(|&c| c == '\'' || c == '\n');
                    i = close.map_or(chars.len(), |p| i + 3 + p + 1);
                    continue;
                } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                    continue;
                }
                i += 1;
            }
            State::Block(depth) => {
                if c == '/' && next == Some('*') {
                    state = State::Block(depth + 1);
                    i += 2;
                } else if c == '*' && next == Some('/') {
                    state = if depth == 1 { State::Code } else { State::Block(depth - 1) };
                    i += 2;
                } else {
                    i += 1;
                }
            }
            State::Str => {
                if c == '\\' && next != Some('\n') {
                    i += 2;
                } else {
                    if c == '"' {
                        state = State::Code;
                    }
                    i += 1;
                }
            }
            State::Raw(h) => {
                let closes =
                    c == '"' && chars.len() >= i + 1 + h && chars[i + 1..i + 1 + h].iter().all(|&c| c == '#');
                if closes {
                    state = State::Code;
                    i += 1 + h;
                } else {
                    i += 1;
                }
            }
        }
    }
    count + usize::from(has_code)
}

/// `src` without its `#[cfg(test)]` modules (`mod x;` declarations and
/// `mod x { … }` blocks): tests are not the code they test. Relies on
/// rustfmt's layout: a module's closing brace alone on a line at the
/// indentation of its `mod` line.
pub fn without_tests(src: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let is_mod = |l: &str| {
            let t = l.trim_start();
            ["mod ", "pub mod ", "pub(crate) mod "].iter().any(|p| t.starts_with(p))
        };
        if lines[i].trim() == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|l| is_mod(l)) {
            let decl = lines[i + 1];
            i += 2;
            if decl.trim_end().ends_with('{') {
                let indent = &decl[..decl.len() - decl.trim_start().len()];
                let close = format!("{indent}}}");
                while i < lines.len() && lines[i].trim_end() != close {
                    i += 1;
                }
                i += 1;
            }
            continue;
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{code_lines, without_tests};

    #[test]
    fn blank_and_comment_lines_do_not_count() {
        let src = "//! doc\n\n/// item doc\nfn f() {} // trailing\n   \n// x\n";
        assert_eq!(code_lines(src), 1);
    }

    #[test]
    fn block_comments_nest() {
        let src = "/* a\n /* b */\n still comment\n*/\nlet x = 1; /* c */\n/* d */ let y = 2;\n";
        assert_eq!(code_lines(src), 2);
    }

    #[test]
    fn comment_markers_in_strings_are_code() {
        let src = "let s = \"\n// not a comment\n/* nor this\n\";\nlet r = r#\"\n// raw \"\n\"#;\n";
        assert_eq!(code_lines(src), 7);
    }

    #[test]
    fn chars_and_lifetimes() {
        let src = "let a = '\"';\nfn f<'a>(x: &'a str) {}\nlet b = '\\'';\n// done\nlet c = b'/';\n";
        assert_eq!(code_lines(src), 4);
    }

    #[test]
    fn escaped_quote_and_last_line_without_newline() {
        assert_eq!(code_lines("let s = \"a\\\"// b\";\n// c\nx"), 2);
        assert_eq!(code_lines(""), 0);
    }

    #[test]
    fn raw_identifiers_are_not_raw_strings() {
        assert_eq!(code_lines("let r#type = 1;\n// c\nlet bar = \"x\";\n"), 2);
    }

    #[test]
    fn test_modules_do_not_count() {
        let src = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\nfn b() {}\n#[cfg(test)]\nmod more;\n";
        assert_eq!(without_tests(src), "fn a() {}\nfn b() {}\n");
        let nested =
            "mod m {\n    #[cfg(test)]\n    mod tests {\n        fn t() {}\n    }\n    fn c() {}\n}\n";
        assert_eq!(code_lines(&without_tests(nested)), 3);
        assert_eq!(without_tests("#[cfg(test)]\nfn only_test() {}\n"), "#[cfg(test)]\nfn only_test() {}\n");
    }
}
