//! Request templates: strings with `{placeholders}`, compiled once into
//! segments so rendering a request only appends bytes to a reused buffer.
//!
//! Placeholders: `{vu}`, `{iter}`, `{index}` (the user's number in the
//! pool), `{user}`, `{password}`, `{host}` (the target's `host:port`),
//! `{random_hex:N}`, `{pad:BYTES}` and the name of a captured variable or
//! of a `[users] file` column. `{{` and `}}` are literal braces.

use super::rng::Rng;
use super::vars::{Slot, VarStore};

/// The largest `{random_hex:N}`.
const MAX_HEX: u32 = 4096;
/// The largest `{pad:BYTES}`: big enough for any claims experiment, small
/// enough that a typo cannot make every request a gigabyte.
const MAX_PAD: usize = 16 << 20;
/// Listed in "unknown placeholder" errors.
pub(crate) const BUILTINS: &str =
    "vu, iter, index, user, password, host, random_hex:N, pad:BYTES, a [users] file column, or a variable captured by an earlier step";

/// Everything a template may draw on while rendering one request.
pub(crate) struct RenderCtx<'a> {
    /// The virtual user's number, from 0.
    pub(crate) vu: u32,
    /// The virtual user's iteration number, from 0.
    pub(crate) iter: u64,
    /// The number of the pool user this iteration runs as (`{index}`).
    pub(crate) user_index: u64,
    /// The rendered username of that user (`{user}`).
    pub(crate) user: &'a [u8],
    /// Its rendered password (`{password}`).
    pub(crate) password: &'a [u8],
    /// The virtual user's captured variables.
    pub(crate) vars: &'a VarStore,
    /// The virtual user's generator, for `{random_hex:N}`.
    pub(crate) rng: &'a Rng,
    /// The target's `host[:port]` as the Host header carries it (`{host}`),
    /// for headers such as `Referer` and `Origin` that CSRF checks read.
    pub(crate) host: &'a [u8],
}

/// How a template writes substituted values (and its literal text), for
/// the context it renders into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Paths and headers: as they are.
    Verbatim,
    /// Inside a JSON string (a `body`).
    Json,
    /// A value of an `application/x-www-form-urlencoded` body (a `form`):
    /// what a browser sends for a form field.
    Form,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Bytes copied as they are (already JSON-escaped in a JSON template).
    Lit(Box<[u8]>),
    Vu,
    Iter,
    Index,
    User,
    Password,
    Host,
    RandomHex(u32),
    Var(Slot),
}

/// A compiled template. In a JSON template (a `body`) `{user}`,
/// `{password}`, `{host}` and variables are JSON-string-escaped as they
/// are written, in a form template (a `form` value) percent-encoded; the
/// other placeholders only ever produce digits, hex or filler letters,
/// which need no escaping. Path and header templates insert values as
/// they are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    segs: Box<[Segment]>,
    escape: Escape,
}

/// A template that does not compile: `offset` is the byte offset of the
/// problem within the template's source string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TemplateError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

impl Template {
    /// Compile `src`. `resolve` maps a placeholder that is not a built-in
    /// to the slot of a captured variable, or says why it cannot.
    pub(crate) fn compile(
        src: &str,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Template, TemplateError> {
        Template::compile_as(src, Escape::Verbatim, resolve)
    }

    /// A template that renders variable `slot` as it is (a `[users] file`
    /// column that is the username or password).
    pub(crate) fn of_var(slot: Slot) -> Template {
        Template {
            segs: Box::new([Segment::Var(slot)]),
            escape: Escape::Verbatim,
        }
    }

    /// Compile `src` for a context that escapes as `escape` says.
    pub(crate) fn compile_as(
        src: &str,
        escape: Escape,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Template, TemplateError> {
        let mut b = Builder::new(escape);
        b.push_template(src, resolve)?;
        Ok(b.finish())
    }

    /// Append this template's text for `ctx` to `out` (it does not clear
    /// `out`). An unset variable renders as nothing: scenario compilation
    /// guarantees an earlier step captures it, so it is unset only if that
    /// capture failed, which the engine already counted as an error.
    pub(crate) fn render(&self, ctx: &RenderCtx<'_>, out: &mut Vec<u8>) {
        for seg in self.segs.iter() {
            match seg {
                Segment::Lit(b) => out.extend_from_slice(b),
                Segment::Vu => push_u64(out, u64::from(ctx.vu)),
                Segment::Iter => push_u64(out, ctx.iter),
                Segment::Index => push_u64(out, ctx.user_index),
                Segment::User => self.push_value(out, ctx.user),
                Segment::Password => self.push_value(out, ctx.password),
                Segment::Host => self.push_value(out, ctx.host),
                Segment::RandomHex(n) => push_hex(out, ctx.rng, *n),
                Segment::Var(slot) => self.push_value(out, ctx.vars.get(*slot).unwrap_or_default()),
            }
        }
    }

    /// The text, when the template has no placeholders, so the engine can
    /// skip rendering.
    #[cfg(test)]
    pub(crate) fn as_static(&self) -> Option<&[u8]> {
        match &*self.segs {
            [] => Some(b""),
            [Segment::Lit(b)] => Some(b),
            _ => None,
        }
    }

    /// The captured variables this template reads.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.segs.iter().filter_map(|s| match s {
            Segment::Var(slot) => Some(*slot),
            _ => None,
        })
    }

    /// Whether the template reads `{user}` or `{password}`.
    pub(crate) fn reads_user(&self) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Segment::User | Segment::Password))
    }

    fn push_value(&self, out: &mut Vec<u8>, value: &[u8]) {
        push_escaped(self.escape, out, value);
    }
}

/// Append `value` to `out` escaped as `escape` says.
fn push_escaped(escape: Escape, out: &mut Vec<u8>, value: &[u8]) {
    match escape {
        Escape::Verbatim => out.extend_from_slice(value),
        Escape::Json => push_json_escaped(out, value),
        Escape::Form => form_urlencoded::byte_serialize(value)
            .for_each(|piece| out.extend_from_slice(piece.as_bytes())),
    }
}

/// Builds a template piece by piece; a JSON body is a mix of fixed JSON
/// syntax and template strings.
pub(crate) struct Builder {
    segs: Vec<Segment>,
    lit: Vec<u8>,
    escape: Escape,
}

impl Builder {
    /// `escape`: how substituted values and template literals are written
    /// (for use inside a JSON string, a form value, or as they are).
    pub(crate) fn new(escape: Escape) -> Builder {
        Builder {
            segs: Vec::new(),
            lit: Vec::new(),
            escape,
        }
    }

    /// Append bytes verbatim (the caller has made them valid in context).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.lit.extend_from_slice(bytes);
    }

    fn push_text(&mut self, text: &str) {
        push_escaped(self.escape, &mut self.lit, text.as_bytes());
    }

    fn push_seg(&mut self, seg: Segment) {
        if !self.lit.is_empty() {
            self.segs
                .push(Segment::Lit(std::mem::take(&mut self.lit).into()));
        }
        self.segs.push(seg);
    }

    /// Compile template `src` onto the end.
    pub(crate) fn push_template(
        &mut self,
        src: &str,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<(), TemplateError> {
        let mut rest = 0;
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    self.push_text(&src[rest..=i]);
                    i += 2;
                    rest = i;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    self.push_text(&src[rest..=i]);
                    i += 2;
                    rest = i;
                }
                b'}' => {
                    return Err(err(i, "unmatched `}`: write `}}` for a literal brace"));
                }
                b'{' => {
                    self.push_text(&src[rest..i]);
                    let close = src[i..].find('}').map(|c| i + c).ok_or_else(|| {
                        err(i, "unclosed `{`: expected a placeholder such as `{vu}` closed by `}` (write `{{` for a literal brace)")
                    })?;
                    self.placeholder(src, i + 1, close, resolve)?;
                    i = close + 1;
                    rest = i;
                }
                _ => i += 1,
            }
        }
        self.push_text(&src[rest..]);
        Ok(())
    }

    /// Compile the placeholder `src[start..end]` (between the braces).
    fn placeholder(
        &mut self,
        src: &str,
        start: usize,
        end: usize,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<(), TemplateError> {
        let body = &src[start..end];
        let (name, arg) = match body.find(':') {
            Some(c) => (&body[..c], Some((start + c + 1, &body[c + 1..]))),
            None => (body, None),
        };
        let no_arg = |seg: Segment| match arg {
            None => Ok(seg),
            Some((at, _)) => Err(err(at - 1, format!("`{{{name}}}` takes no argument"))),
        };
        let seg = match name {
            "" => {
                return Err(err(
                    start - 1,
                    format!("empty placeholder: expected one of {BUILTINS}"),
                ))
            }
            "vu" => no_arg(Segment::Vu)?,
            "iter" => no_arg(Segment::Iter)?,
            "index" => no_arg(Segment::Index)?,
            "user" => no_arg(Segment::User)?,
            "password" => no_arg(Segment::Password)?,
            "host" => no_arg(Segment::Host)?,
            "random_hex" => {
                let (at, arg) =
                    arg.ok_or_else(|| err(start, "`{random_hex:N}` needs a digit count N"))?;
                match arg.parse::<u32>() {
                    Ok(n) if (1..=MAX_HEX).contains(&n) => Segment::RandomHex(n),
                    _ => {
                        return Err(err(
                            at,
                            format!("expected a hex digit count 1..={MAX_HEX} after `random_hex:`, found `{arg}`"),
                        ))
                    }
                }
            }
            "pad" => {
                let (at, arg) =
                    arg.ok_or_else(|| err(start, "`{pad:BYTES}` needs a size, e.g. `{pad:4096}`"))?;
                let n = parse_size(arg).ok_or_else(|| {
                    err(at, format!("expected a byte count such as 4096 or 4KiB (at most 16MiB) after `pad:`, found `{arg}`"))
                })?;
                self.push_raw(&filler(n));
                return Ok(());
            }
            _ if arg.is_some() => {
                return Err(err(
                    start,
                    format!("unknown placeholder `{body}`: expected one of {BUILTINS}"),
                ))
            }
            _ if !is_identifier(name) => {
                return Err(err(
                    start,
                    format!("`{name}` is not a placeholder name: expected one of {BUILTINS}"),
                ))
            }
            _ => Segment::Var(resolve(name).map_err(|m| err(start, m))?),
        };
        self.push_seg(seg);
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Template {
        if !self.lit.is_empty() {
            self.segs.push(Segment::Lit(self.lit.into()));
        }
        Template {
            segs: self.segs.into(),
            escape: self.escape,
        }
    }
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

/// Whether `s` can name a captured variable.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names a capture may not take, because a built-in placeholder owns them.
pub(crate) fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "vu" | "iter" | "index" | "user" | "password" | "host" | "random_hex" | "pad"
    )
}

/// `4096`, `4KiB`, `1MiB` (also `4K`, `1M`).
fn parse_size(s: &str) -> Option<usize> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: usize = s[..digits].parse().ok()?;
    let mult = match &s[digits..] {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&n| n <= MAX_PAD)
}

/// `n` bytes of letters: JSON-, header- and URL-safe. Varied rather than
/// one repeated byte so the payload resembles real claims to a compressor.
fn filler(n: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..n)
        .map(|i| ALPHABET[(i * 7 + i / ALPHABET.len()) % ALPHABET.len()])
        .collect()
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_hex(out: &mut Vec<u8>, rng: &Rng, n: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut left = n;
    while left > 0 {
        let mut bits = rng.next_u64();
        for _ in 0..left.min(16) {
            out.push(HEX[(bits & 15) as usize]);
            bits >>= 4;
        }
        left = left.saturating_sub(16);
    }
}

/// Escape `value` for the inside of a JSON string. Works byte-wise: every
/// byte that needs escaping is ASCII, and UTF-8 continuation bytes never are.
pub(crate) fn push_json_escaped(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests;
