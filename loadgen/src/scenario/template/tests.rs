use super::*;

fn ctx_render(t: &Template, vars: &VarStore, rng: &Rng) -> String {
    let ctx = RenderCtx {
        vu: 12,
        iter: 345,
        user_index: 7,
        user: b"user-7",
        password: b"clw-load-test",
        vars,
        rng,
        host: b"127.0.0.1:8443",
    };
    let mut out = b"prefix:".to_vec();
    t.render(&ctx, &mut out);
    String::from_utf8(out).unwrap()
}

fn no_vars(name: &str) -> Result<Slot, String> {
    Err(format!("undefined variable `{name}`"))
}

fn compile(src: &str) -> Result<Template, TemplateError> {
    Template::compile(src, &mut no_vars)
}

#[test]
fn renders_every_builtin_and_appends() {
    let vars = VarStore::new(0);
    let rng = Rng::for_vu(1, 12);
    let t = compile("/{vu}/{iter}/{index}/{user}/{password}").unwrap();
    assert_eq!(
        ctx_render(&t, &vars, &rng),
        "prefix:/12/345/7/user-7/clw-load-test"
    );
}

#[test]
fn random_hex_has_the_length_and_is_seeded() {
    let vars = VarStore::new(0);
    let t = compile("{random_hex:40}").unwrap();
    let a = ctx_render(&t, &vars, &Rng::for_vu(9, 1));
    let b = ctx_render(&t, &vars, &Rng::for_vu(9, 1));
    let c = ctx_render(&t, &vars, &Rng::for_vu(9, 2));
    let hex = a.strip_prefix("prefix:").unwrap();
    assert_eq!(hex.len(), 40);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a, b, "same seed and vu, same output");
    assert_ne!(a, c, "another vu, another output");
}

#[test]
fn pad_is_filler_of_exact_size() {
    let vars = VarStore::new(0);
    let rng = Rng::for_vu(0, 0);
    for (src, n) in [
        ("{pad:4096}", 4096),
        ("{pad:4KiB}", 4096),
        ("{pad:1K}", 1024),
        ("{pad:0}", 0),
    ] {
        let out = ctx_render(&compile(src).unwrap(), &vars, &rng);
        let pad = out.strip_prefix("prefix:").unwrap();
        assert_eq!(pad.len(), n, "{src}");
        assert!(pad.bytes().all(|b| b.is_ascii_alphabetic()), "{src}");
    }
    assert!(
        compile("a{pad:8}b").unwrap().as_static().is_some(),
        "pad is compiled into a literal"
    );
}

#[test]
fn variables_render_by_slot_and_unset_is_empty() {
    let t = Template::compile("Bearer {token}", &mut |n| {
        assert_eq!(n, "token");
        Ok(Slot(1))
    })
    .unwrap();
    assert_eq!(t.slots().collect::<Vec<_>>(), vec![Slot(1)]);
    let mut vars = VarStore::new(2);
    let rng = Rng::for_vu(0, 0);
    assert_eq!(ctx_render(&t, &vars, &rng), "prefix:Bearer ");
    vars.set(Slot(1), b"abc");
    assert_eq!(ctx_render(&t, &vars, &rng), "prefix:Bearer abc");
}

#[test]
fn doubled_braces_are_literal() {
    let t = compile("{{x}} {{{vu}}}").unwrap();
    assert_eq!(
        ctx_render(&t, &VarStore::new(0), &Rng::for_vu(0, 0)),
        "prefix:{x} {12}"
    );
    assert_eq!(compile("plain").unwrap().as_static(), Some(&b"plain"[..]));
}

#[test]
fn errors_point_at_the_problem() {
    let cases: [(&str, usize, &str); 9] = [
        ("ab{nope}", 3, "undefined variable `nope`"),
        ("{pad:x}", 5, "expected a byte count"),
        ("{pad:32MiB}", 5, "at most 16MiB"),
        ("x{random_hex:0}", 13, "hex digit count"),
        ("/a/{vu", 3, "unclosed `{`"),
        ("a}b", 1, "unmatched `}`"),
        ("{}", 0, "empty placeholder"),
        ("{vu:3}", 3, "takes no argument"),
        ("{what:3}", 1, "unknown placeholder `what:3`"),
    ];
    for (src, offset, msg) in cases {
        let e = compile(src).unwrap_err();
        assert_eq!(e.offset, offset, "{src}: {}", e.message);
        assert!(e.message.contains(msg), "{src}: {}", e.message);
    }
    assert!(compile("{a-b}")
        .unwrap_err()
        .message
        .contains("not a placeholder name"));
}

#[test]
fn json_escaping_covers_quotes_backslashes_and_controls() {
    let mut out = Vec::new();
    push_json_escaped(&mut out, "a\"b\\c\n\u{1}é".as_bytes());
    assert_eq!(String::from_utf8(out).unwrap(), r#"a\"b\\c\n\u0001é"#);
}

#[test]
fn reads_user_detects_user_and_password() {
    assert!(compile("{user}").unwrap().reads_user());
    assert!(compile("x{password}").unwrap().reads_user());
    assert!(!compile("user-{index}").unwrap().reads_user());
}
