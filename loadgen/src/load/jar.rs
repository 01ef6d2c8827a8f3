//! A virtual user's cookie jar, as a browser keeps one: RFC 6265 domain
//! and path matching, expiry and `Max-Age`, `Secure`, deletion, all by
//! the `cookie_store` crate (reqwest's), around a URL reused per request.
//!
//! Cookie sessions (Express, Rails, Spring, Keycloak) are why it exists: a
//! login whose reply sets `Set-Cookie` is only followed by a logged-in
//! request if the next request carries `Cookie`. It costs nothing while
//! empty, so API flows that never see a cookie pay only a check.
//!
//! Speed (`make bench-jar`): parsing a `Set-Cookie` and inserting it costs
//! about 1 µs (the crate formats the host, hashes three owned keys and
//! reads the clock), as much as a whole request's user time. Servers send
//! the same header again and again (a session or affinity cookie on every
//! answer, a preference cookie), so each header is parsed once per user
//! ([`Seen`]) and a repeat of a header the store still holds unchanged is
//! skipped. The per-iteration clear is lazy: the store is only marked
//! empty, and when the next answer sets exactly the cookies it still holds
//! (the same login again), it is simply marked full again. The jar sends,
//! captures and stores what it would without these shortcuts (the tests
//! below compare it with the plain crate).

use std::cmp::max;

use cookie_store::{CookieExpiration, CookieStore, StoreAction};
use url::{Position, Url};

use super::http::Response;

/// One virtual user's cookies.
pub(crate) struct Jar {
    store: CookieStore,
    /// The URL of the request being built or answered; only its path and
    /// query change between requests, so its buffer is reused.
    url: Url,
    /// `Set-Cookie` headers already parsed, newest last.
    seen: Vec<Seen>,
    /// Cleared since the last store: empty whatever `store` still holds.
    cleared: bool,
    /// `store` holds a cookie (expired ones included).
    holds: bool,
}

/// At most this many parsed headers per user: a few names per site, each
/// kept once per scope (a new value of a name replaces the old entry). At
/// most 32: `store` marks entries in a `u32`.
const SEEN_MAX: usize = 16;

/// A `Set-Cookie` header parsed once, with what its parse depended on: the
/// origin (scheme for `Secure` and `HttpOnly`, host for the domain) and
/// the default path (RFC 6265 5.1.4, for a cookie without `Path`). Headers
/// with `Max-Age` are never kept: their expiry counts from their arrival.
struct Seen {
    header: Box<[u8]>,
    /// `scheme://host:port` and the default path: [`scope`]'s.
    scope: Box<str>,
    cookie: cookie_store::Cookie<'static>,
    /// `store` holds this very cookie: set when it was stored, unset when
    /// `store` is emptied or a cookie of the same name is stored.
    applied: bool,
}

/// How long a prefix of `url` is its scope for a `Set-Cookie` parse: the
/// origin followed by RFC 6265 5.1.4's default-path, as cookie_store
/// computes it (the path up to its last `/`, or `/`).
fn scope(url: &Url) -> usize {
    let path = url.path();
    let origin = url[..Position::BeforePath].len();
    origin
        + match path.rfind('/') {
            None => 0,
            Some(i) => max(i, 1),
        }
}

fn stored(result: &Result<StoreAction, cookie_store::CookieError>) -> bool {
    matches!(
        result,
        Ok(StoreAction::Inserted | StoreAction::UpdatedExisting)
    )
}

impl Jar {
    /// An empty jar for a target reached at `scheme://authority`.
    pub(crate) fn new(https: bool, authority: &str) -> Jar {
        let scheme = if https { "https" } else { "http" };
        Jar {
            store: CookieStore::default(),
            url: Url::parse(&format!("{scheme}://{authority}/"))
                .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("valid URL")),
            seen: Vec::new(),
            cleared: false,
            holds: false,
        }
    }

    /// Forget every cookie: a new browser session (lazily: see `store`).
    pub(crate) fn clear(&mut self) {
        self.cleared = true;
    }

    /// Point the jar at `origin` (`scheme://host:port`, `None` for the
    /// target's) and `path` (path and query) for the next request or
    /// response.
    pub(crate) fn at(&mut self, origin: Option<&Url>, path: &[u8]) {
        if let Some(o) = origin {
            if o.origin() != self.url.origin() {
                self.url = o.clone();
            }
        }
        let path = String::from_utf8_lossy(path);
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (&*path, None),
        };
        // The answer's URL is the request's: no need to parse it again.
        if self.url.path() != p || self.url.query() != q {
            self.url.set_path(p);
            self.url.set_query(q);
        }
    }

    /// Append a `Cookie:` header line for the current URL, if any cookie
    /// matches it.
    ///
    /// The crate's own lookup (`get_request_values`) re-parses each stored
    /// domain through IDNA and reads the clock per cookie, per request; its
    /// final filter, `Cookie::matches` and the expiry, decides alone, so
    /// that is what runs here, with the clock read only for a cookie that
    /// has an expiry.
    pub(crate) fn write_header(&self, out: &mut Vec<u8>) {
        if self.cleared {
            return;
        }
        let matching = self.store.iter_any().filter(|c| {
            c.matches(&self.url)
                && (matches!(c.expires, CookieExpiration::SessionEnd) || !c.is_expired())
        });
        let mut first = true;
        for (name, value) in matching.map(|c| c.name_value()) {
            out.extend_from_slice(if first { b"Cookie: " } else { b"; " });
            first = false;
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        if !first {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Whether the jar holds no cookie at all (expired ones included), so
    /// a request needs no lookup.
    pub(crate) fn is_empty(&self) -> bool {
        self.cleared || !self.holds
    }

    /// Store the `Set-Cookie` headers of `resp`, the answer to `path` on
    /// `origin` (`None`: the target's). A cookie the crate refuses (bad
    /// syntax, a domain that is not the server's) is ignored, as browsers
    /// ignore it. A response without cookies costs one header scan.
    pub(crate) fn store(&mut self, resp: &Response, origin: Option<&Url>, path: &[u8]) {
        // While cleared: the entries (bit i) this answer sets again that
        // `store` still holds, left in place until the answer is read.
        let mut adopted = 0u32;
        let mut scope_len = None;
        resp.for_each_header("set-cookie", |value| {
            let scope = *scope_len.get_or_insert_with(|| {
                self.at(origin, path);
                scope(&self.url)
            });
            self.store_one(value, scope, &mut adopted)
        });
        if self.cleared && adopted != 0 {
            if self.store.iter_any().count() == adopted.count_ones() as usize {
                // `store` holds these cookies and nothing else.
                self.cleared = false;
            } else {
                self.empty_then_apply(adopted);
            }
        }
    }

    /// One `Set-Cookie` value; `scope` is [`scope`] of the URL.
    fn store_one(&mut self, value: &[u8], scope: usize, adopted: &mut u32) {
        let url = &self.url.as_str()[..scope];
        let hit = self
            .seen
            .iter()
            .position(|s| *s.header == *value && *s.scope == *url);
        if self.cleared {
            match hit {
                Some(i) if self.seen[i].applied => {
                    *adopted |= 1 << i;
                    return;
                }
                _ => self.empty_then_apply(std::mem::take(adopted)),
            }
        }
        match hit {
            Some(i) if self.seen[i].applied => {}
            Some(i) => self.apply(i),
            None => self.parse(value, scope),
        }
    }

    /// Empty `store` for real, then store the entries marked in `adopted`.
    fn empty_then_apply(&mut self, adopted: u32) {
        self.store.clear();
        self.cleared = false;
        self.holds = false;
        for s in &mut self.seen {
            s.applied = false;
        }
        for i in 0..self.seen.len() {
            if adopted & (1 << i) != 0 {
                self.apply(i);
            }
        }
    }

    /// Store entry `i`'s parsed cookie again.
    fn apply(&mut self, i: usize) {
        let ok = stored(&self.store.insert(self.seen[i].cookie.clone(), &self.url));
        for j in 0..self.seen.len() {
            if self.seen[j].cookie.name() == self.seen[i].cookie.name() {
                self.seen[j].applied = false;
            }
        }
        self.seen[i].applied = ok;
        self.holds |= ok;
    }

    /// Parse and store a header not seen before, and keep it parsed.
    fn parse(&mut self, value: &[u8], scope: usize) {
        let Ok(text) = std::str::from_utf8(value) else {
            return;
        };
        let Ok(cookie) = cookie_store::Cookie::parse(text, &self.url) else {
            return;
        };
        let cookie = cookie.into_owned();
        let name = cookie.name();
        for s in self.seen.iter_mut().filter(|s| s.cookie.name() == name) {
            s.applied = false;
        }
        let keep =
            (!value.windows(7).any(|w| w.eq_ignore_ascii_case(b"max-age"))).then(|| cookie.clone());
        if !stored(&self.store.insert(cookie, &self.url)) {
            return;
        }
        self.holds = true;
        if let Some(cookie) = keep {
            let scope = &self.url.as_str()[..scope];
            // A new value of a name replaces its entry for this scope.
            self.seen
                .retain(|s| !(s.cookie.name() == cookie.name() && *s.scope == *scope));
            if self.seen.len() == SEEN_MAX {
                self.seen.remove(0);
            }
            self.seen.push(Seen {
                header: value.into(),
                scope: scope.into(),
                cookie,
                applied: true,
            });
        }
    }

    /// The value of the unexpired cookie `name` (any domain and path),
    /// for `{ cookie = "name" }` captures.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        if self.cleared {
            return None;
        }
        self.store
            .iter_unexpired()
            .find(|c| c.name() == name)
            .map(|c| c.value())
    }
}

/// The value of cookie `name` as `resp` sets it (for captures when the jar
/// is off): the last `Set-Cookie` of that name wins, as in a jar.
pub(crate) fn set_by(resp: &Response, name: &str) -> Option<Vec<u8>> {
    let mut found = None;
    resp.for_each_header("set-cookie", |value| {
        let Ok(text) = std::str::from_utf8(value) else {
            return;
        };
        if let Ok(c) = cookie_store::RawCookie::parse(text) {
            if c.name() == name {
                found = Some(c.value().as_bytes().to_vec());
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(head: &str) -> Response {
        Response::from_head(head.as_bytes())
    }

    #[test]
    fn sends_matching_cookies_and_honours_path_and_deletion() {
        let mut jar = Jar::new(false, "127.0.0.1:3000");
        assert!(jar.is_empty());
        jar.store(&response(
            "HTTP/1.1 302 Found\r\nSet-Cookie: session=s%3Aabc; Path=/; HttpOnly\r\nSet-Cookie: admin=1; Path=/admin\r\n\r\n",
        ), None, b"/login");
        jar.at(None, b"/me?x=1");
        let mut out = Vec::new();
        jar.write_header(&mut out);
        assert_eq!(out, b"Cookie: session=s%3Aabc\r\n");
        jar.at(None, b"/admin/users");
        out.clear();
        jar.write_header(&mut out);
        let line = String::from_utf8(out.clone()).unwrap();
        assert!(
            line.contains("session=s%3Aabc") && line.contains("admin=1"),
            "{line}"
        );
        assert_eq!(jar.get("session"), Some("s%3Aabc"));
        // Deletion: an expiry in the past removes the cookie.
        jar.store(&response(
            "HTTP/1.1 302 Found\r\nSet-Cookie: session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
        ), None, b"/logout");
        jar.at(None, b"/me");
        out.clear();
        jar.write_header(&mut out);
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        assert_eq!(jar.get("session"), None);
    }

    #[test]
    fn secure_cookies_stay_off_plain_http_and_max_age_zero_deletes() {
        // Loopback is a secure context, as browsers treat it (a Secure
        // cookie from http://127.0.0.1 is sent back); another host is not.
        let mut local = Jar::new(false, "127.0.0.1:3000");
        local.store(
            &response("HTTP/1.1 200 OK\r\nSet-Cookie: s=1; Secure\r\n\r\n"),
            None,
            b"/",
        );
        let mut out = Vec::new();
        local.write_header(&mut out);
        assert_eq!(out, b"Cookie: s=1\r\n");
        let mut jar = Jar::new(false, "auth.example:3000");
        jar.store(
            &response("HTTP/1.1 200 OK\r\nSet-Cookie: s=1; Secure\r\nSet-Cookie: t=2\r\n\r\n"),
            None,
            b"/",
        );
        out.clear();
        jar.write_header(&mut out);
        assert_eq!(out, b"Cookie: t=2\r\n");
        jar.store(
            &response("HTTP/1.1 200 OK\r\nSet-Cookie: t=2; Max-Age=0\r\n\r\n"),
            None,
            b"/",
        );
        out.clear();
        jar.write_header(&mut out);
        assert!(out.is_empty());
        jar.clear();
        assert!(jar.is_empty());
    }

    /// The cookies a request carries, as a sorted list of `name=value`.
    fn sent(line: &[u8]) -> Vec<String> {
        let line = String::from_utf8(line.to_vec()).unwrap();
        let mut v: Vec<String> = line
            .strip_prefix("Cookie: ")
            .map(|l| l.trim_end().split("; ").map(str::to_owned).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The jar's shortcuts (headers parsed once, repeats skipped, the lazy
    /// clear) against the plain crate, which parses and inserts every
    /// header and really clears: over a long pseudo-random run of answers,
    /// clears and requests on several paths, both must send the same
    /// cookies and capture the same values at every step.
    #[test]
    fn shortcuts_send_what_the_plain_crate_sends() {
        const HEADERS: [&str; 13] = [
            "session=A; Path=/; HttpOnly",
            "session=B; Path=/; HttpOnly",
            "theme=dark; Path=/",
            "theme=light",
            "session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "sid=1; Max-Age=3600",
            "sid=; Max-Age=0",
            "x=1; Path=/a",
            "x=2",
            "sec=1; Secure",
            "far=1; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
            "not a cookie",
            "other=1; Domain=elsewhere.example",
        ];
        const PATHS: [&str; 5] = ["/login", "/me", "/a/b", "/a/c?x=1", "/a/"];
        let mut jar = Jar::new(false, "127.0.0.1:3000");
        let mut plain = CookieStore::default();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let (mut cleared, mut repeats) = (0, 0);
        let mut last = String::new();
        for step in 0..20_000 {
            let path = PATHS[next(PATHS.len())];
            let url = Url::parse(&format!("http://127.0.0.1:3000{path}")).unwrap();
            match next(10) {
                0 => {
                    jar.clear();
                    plain.clear();
                    cleared += 1;
                }
                1..=5 => {
                    // An answer: often the last one again, as servers do.
                    let head = if next(2) == 0 && !last.is_empty() {
                        repeats += 1;
                        last.clone()
                    } else {
                        let n = next(4);
                        (0..n)
                            .map(|_| format!("Set-Cookie: {}\r\n", HEADERS[next(HEADERS.len())]))
                            .collect()
                    };
                    jar.store(
                        &response(&format!("HTTP/1.1 200 OK\r\n{head}\r\n")),
                        None,
                        path.as_bytes(),
                    );
                    for line in head.lines() {
                        let _ = plain.parse(line.strip_prefix("Set-Cookie: ").unwrap(), &url);
                    }
                    last = head;
                }
                _ => {}
            }
            jar.at(None, path.as_bytes());
            let mut out = Vec::new();
            if !jar.is_empty() {
                jar.write_header(&mut out);
            }
            let mut want: Vec<String> = plain
                .get_request_values(&url)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            want.sort();
            assert_eq!(sent(&out), want, "step {step} at {path}");
            // The whole unexpired content, and captures (a name held
            // for two paths may give either value, in both).
            let held = |cookies: &mut dyn Iterator<Item = &cookie_store::Cookie<'static>>| {
                let mut v: Vec<String> = cookies
                    .map(|c| format!("{}={} {:?} {:?}", c.name(), c.value(), c.path, c.domain))
                    .collect();
                v.sort();
                v
            };
            let mut none = std::iter::empty();
            let mut unexpired = jar.store.iter_unexpired();
            let jar_held = held(if jar.cleared {
                &mut none
            } else {
                &mut unexpired
            });
            assert_eq!(jar_held, held(&mut plain.iter_unexpired()), "step {step}");
            for name in ["session", "theme", "sid", "x", "sec", "far", "other"] {
                let values: Vec<&str> = plain
                    .iter_unexpired()
                    .filter(|c| c.name() == name)
                    .map(|c| c.value())
                    .collect();
                match jar.get(name) {
                    Some(v) => assert!(values.contains(&v), "step {step}: capture {name}"),
                    None => assert!(values.is_empty(), "step {step}: capture {name}"),
                }
            }
        }
        assert!(cleared > 1000 && repeats > 3000, "{cleared} {repeats}");
    }

    #[test]
    fn a_repeated_login_after_a_clear_sends_nothing_first_then_the_cookies() {
        let mut jar = Jar::new(false, "127.0.0.1:3000");
        let login = response(
            "HTTP/1.1 200 OK\r\nSet-Cookie: session=s1; Path=/; HttpOnly\r\nSet-Cookie: theme=dark; Path=/\r\n\r\n",
        );
        for _ in 0..3 {
            jar.clear();
            assert!(jar.is_empty());
            assert_eq!(jar.get("session"), None);
            jar.at(None, b"/login");
            let mut out = Vec::new();
            jar.write_header(&mut out);
            assert!(out.is_empty());
            jar.store(&login, None, b"/login");
            jar.at(None, b"/me");
            jar.write_header(&mut out);
            assert_eq!(sent(&out), ["session=s1", "theme=dark"]);
        }
        // After a clear, an answer setting only one of the two: the other
        // must not come back.
        jar.clear();
        jar.at(None, b"/login");
        jar.store(
            &response("HTTP/1.1 200 OK\r\nSet-Cookie: theme=dark; Path=/\r\n\r\n"),
            None,
            b"/login",
        );
        let mut out = Vec::new();
        jar.write_header(&mut out);
        assert_eq!(sent(&out), ["theme=dark"]);
        assert_eq!(jar.get("session"), None);
    }

    /// A repeated `Max-Age` header renews the cookie's life, as each
    /// arrival counts from then: it must not be skipped as a repeat.
    #[test]
    fn a_repeated_max_age_cookie_lives_from_its_last_arrival() {
        let mut jar = Jar::new(false, "127.0.0.1:3000");
        let answer = response("HTTP/1.1 200 OK\r\nSet-Cookie: sid=1; Max-Age=2\r\n\r\n");
        jar.store(&answer, None, b"/");
        std::thread::sleep(std::time::Duration::from_millis(1200));
        jar.store(&answer, None, b"/");
        std::thread::sleep(std::time::Duration::from_millis(1200));
        // 2.4 s after the first arrival, 1.2 s after the second.
        let mut out = Vec::new();
        jar.write_header(&mut out);
        assert_eq!(sent(&out), ["sid=1"]);
    }

    #[test]
    fn set_by_reads_the_response_without_a_jar() {
        let r =
            response("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: sid=xyz; Path=/\r\n\r\n");
        assert_eq!(set_by(&r, "sid"), Some(b"xyz".to_vec()));
        assert_eq!(set_by(&r, "nope"), None);
    }
}
