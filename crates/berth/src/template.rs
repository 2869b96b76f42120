//! `--format` Go templates with docker's functions, the `table` directive and JSON data.
//!
//! Data reaches templates as [`gotmpl::Value`]s. Maps there are sorted, but docker prints
//! `{{json .Config}}` in the daemon's field order, so [`from_json`] parses raw JSON itself
//! and remembers each object's key order (keyed by the map's allocation) for the `json`
//! function. Rows of `ps`/`images` are maps built by their commands; `json` of such a row
//! prints sorted keys, as docker's `MarshalJSON` of a map does.

use gotmpl::{Template, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

thread_local! {
    static KEY_ORDER: RefCell<HashMap<usize, Vec<Arc<str>>>> = RefCell::new(HashMap::new());
}

/// A parsed `--format` value: template text, and whether it is a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub table: bool,
    pub text: String,
}

impl Format {
    /// Docker's `preFormat`: `table` prefix, `json` shorthand, `\t` and `\n` escapes.
    pub fn new(source: &str) -> Self {
        let (table, text) = if let Some(rest) = source.strip_prefix("table") {
            (true, rest.to_string())
        } else if source == "json" {
            (false, "{{json .}}".to_string())
        } else {
            (false, source.to_string())
        };
        let text = text
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Self { table, text }
    }
}

fn arg_str(args: &[Value], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn arg_int(args: &[Value], i: usize) -> i64 {
    args.get(i)
        .and_then(|v| {
            v.as_int()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

fn s(v: impl Into<Arc<str>>) -> Value {
    Value::String(v.into())
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of every word.
fn go_title(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    let mut prev_letter = false;
    for c in x.chars() {
        let is_letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_letter && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = is_letter;
    }
    out
}

fn with_docker_funcs(t: Template) -> Template {
    t.func("json", |a| Ok(s(to_json(a.first().unwrap_or(&Value::Nil)))))
        .func("split", |a| {
            let (x, sep) = (arg_str(a, 0), arg_str(a, 1));
            let parts: Vec<Value> = if sep.is_empty() {
                x.chars().map(|c| s(c.to_string())).collect()
            } else {
                x.split(sep.as_str()).map(s).collect()
            };
            Ok(Value::List(parts.into()))
        })
        .func("join", |a| {
            let sep = arg_str(a, 1);
            let items: Vec<String> = match a.first() {
                Some(Value::List(l)) => l
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect(),
                Some(Value::Nil) | None => Vec::new(),
                Some(v) => vec![v.to_string()],
            };
            Ok(s(items.join(&sep)))
        })
        .func("title", |a| Ok(s(go_title(&arg_str(a, 0)))))
        .func("lower", |a| Ok(s(arg_str(a, 0).to_lowercase())))
        .func("upper", |a| Ok(s(arg_str(a, 0).to_uppercase())))
        .func("pad", |a| {
            let x = arg_str(a, 0);
            if x.is_empty() {
                return Ok(s(x));
            }
            let (p, q) = (arg_int(a, 1).max(0) as usize, arg_int(a, 2).max(0) as usize);
            Ok(s(format!("{}{x}{}", " ".repeat(p), " ".repeat(q))))
        })
        .func("truncate", |a| {
            let x = arg_str(a, 0);
            let n = arg_int(a, 1).max(0) as usize;
            Ok(s(if x.len() < n {
                x
            } else {
                x.get(..n).unwrap_or(&x).to_string()
            }))
        })
        .func("__label", |a| {
            let key = arg_str(a, 1);
            let v = a
                .first()
                .and_then(|row| row.field("__labels"))
                .and_then(|m| m.field(&key))
                .cloned();
            Ok(v.unwrap_or_else(|| s("")))
        })
}

/// Header functions return their first argument unchanged, as docker's `HeaderFunctions`.
fn with_header_funcs(t: Template) -> Template {
    let pass: fn(&[Value]) -> gotmpl::Result<Value> =
        |a| Ok(a.first().cloned().unwrap_or(Value::Nil));
    t.func("json", pass)
        .func("split", pass)
        .func("join", pass)
        .func("title", pass)
        .func("lower", pass)
        .func("upper", pass)
        .func("truncate", pass)
        .func("pad", pass)
        .func("__label", |_| Ok(s("")))
}

/// `.Label "key"` is a method call in Go; gotmpl has no methods, so it becomes a function.
fn rewrite_label_calls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(".Label ") {
        let before_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b' ' | b'(' | b'{' | b'|');
        out.push_str(&rest[..i]);
        if before_ok {
            out.push_str("__label . ");
        } else {
            out.push_str(".Label ");
        }
        rest = &rest[i + ".Label ".len()..];
    }
    out.push_str(rest);
    out
}

/// A compiled template, ready to render values.
pub struct Renderer {
    tmpl: Template,
    header: Option<Template>,
}

pub fn template_error(e: gotmpl::TemplateError) -> anyhow::Error {
    anyhow::anyhow!(
        "template parsing error: {}",
        go_template_error(&e.to_string())
    )
}

/// Go names the template in parse errors (`template: :1: unclosed action`); gotmpl prints
/// `template: 1:7: ...`.
fn go_template_error(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("template: ") {
        let mut parts = rest.splitn(3, ':');
        if let (Some(line), Some(col), Some(tail)) = (parts.next(), parts.next(), parts.next()) {
            if line.parse::<u32>().is_ok()
                && col.parse::<u32>().is_ok()
                && !tail.contains("executing")
            {
                return format!("template: :{line}:{tail}");
            }
        }
    }
    msg.to_string()
}

impl Renderer {
    /// Parses `text` as docker's `templates.Parse` does.
    pub fn new(text: &str) -> anyhow::Result<Self> {
        let text = rewrite_label_calls(text);
        let tmpl = with_docker_funcs(Template::new(""))
            .parse(&text)
            .map_err(template_error)?;
        Ok(Self { tmpl, header: None })
    }

    /// A renderer for a [`Format`]; tables also get a header template.
    pub fn for_format(f: &Format) -> anyhow::Result<Self> {
        let mut r = Self::new(&f.text)?;
        if f.table {
            let text = rewrite_label_calls(&f.text);
            r.header = with_header_funcs(Template::new("")).parse(&text).ok();
        }
        Ok(r)
    }

    pub fn render(&self, data: &Value) -> anyhow::Result<String> {
        self.tmpl.execute_to_string(data).map_err(template_error)
    }

    pub fn render_header(&self, headers: &Value) -> String {
        match &self.header {
            Some(h) => h.execute_to_string(headers).unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// Renders rows as docker's formatter context does: each row followed by a newline, and for
/// tables a header row, all through the tabwriter.
pub fn render_rows(format: &Format, headers: &Value, rows: &[Value]) -> anyhow::Result<String> {
    let r = Renderer::for_format(format)?;
    let mut body = String::new();
    for row in rows {
        body.push_str(&r.render(row)?);
        body.push('\n');
    }
    if !format.table {
        return Ok(body);
    }
    let mut tw = crate::tabwriter::TabWriter::docker();
    tw.write(&r.render_header(headers));
    tw.write("\n");
    tw.write(&body);
    Ok(tw.finish())
}

/// Builds a map value from string pairs (rows and headers).
pub fn map<K: Into<Arc<str>>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    let m: BTreeMap<Arc<str>, Value> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
    Value::Map(Arc::new(m))
}

pub fn str_value(x: impl Into<Arc<str>>) -> Value {
    s(x)
}

// ---- JSON in and out -------------------------------------------------------------------

/// Parses raw JSON into a template value, remembering object key order for `json`.
pub fn from_json(raw: &[u8]) -> anyhow::Result<Value> {
    let text = std::str::from_utf8(raw)?;
    let mut p = JsonParser {
        s: text.as_bytes(),
        i: 0,
        src: text,
    };
    p.ws();
    let v = p.value()?;
    Ok(v)
}

/// Converts a parsed serde value (keys sorted) into a template value.
pub fn from_serde(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::Uint))
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(x) => s(x.as_str()),
        serde_json::Value::Array(a) => {
            Value::List(a.iter().map(from_serde).collect::<Vec<_>>().into())
        }
        serde_json::Value::Object(o) => map(o.iter().map(|(k, v)| (k.as_str(), from_serde(v)))),
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err(&self) -> anyhow::Error {
        anyhow::anyhow!("invalid JSON at offset {}", self.i)
    }
    fn expect(&mut self, c: u8) -> anyhow::Result<()> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn value(&mut self) -> anyhow::Result<Value> {
        self.ws();
        match self.s.get(self.i).copied() {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                let mut order = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let k: Arc<str> = self.string()?.into();
                        self.expect(b':')?;
                        let v = self.value()?;
                        order.push(k.clone());
                        m.insert(k, v);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err()),
                        }
                    }
                }
                let arc = Arc::new(m);
                KEY_ORDER.with(|k| k.borrow_mut().insert(Arc::as_ptr(&arc) as usize, order));
                Ok(Value::Map(arc))
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err()),
                        }
                    }
                }
                Ok(Value::List(items.into()))
            }
            Some(b'"') => Ok(s(self.string()?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Value::Nil)
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let num = &self.src[start..self.i];
                if let Ok(n) = num.parse::<i64>() {
                    Ok(Value::Int(n))
                } else if let Ok(n) = num.parse::<u64>() {
                    Ok(Value::Uint(n))
                } else {
                    num.parse::<f64>().map(Value::Float).map_err(|_| self.err())
                }
            }
            None => Err(self.err()),
        }
    }
    fn string(&mut self) -> anyhow::Result<String> {
        self.ws();
        if self.s.get(self.i) != Some(&b'"') {
            return Err(self.err());
        }
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Ok(serde_json::from_str(&self.src[start..self.i])?);
                }
                _ => self.i += 1,
            }
        }
        Err(self.err())
    }
}

/// Go's `json.Marshal` without HTML escaping, keeping a parsed object's key order.
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, false);
    out
}

/// Go escapes `<`, `>` and `&` when a value marshals itself with `json.Marshal`, as docker's
/// list rows do; `html` is set inside such maps (those not parsed from daemon JSON).
fn write_json_str(out: &mut String, x: &str, html: bool) {
    let mut enc = serde_json::to_string(x)
        .unwrap_or_default()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    if html {
        enc = enc
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
    }
    out.push_str(&enc);
}

fn write_json(out: &mut String, v: &Value, html: bool) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Uint(n) => out.push_str(&n.to_string()),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e21 {
                out.push_str(&format!("{}", *f as i64));
            } else {
                out.push_str(&f.to_string());
            }
        }
        Value::String(x) => write_json_str(out, x, html),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, html);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let order = KEY_ORDER.with(|k| k.borrow().get(&(Arc::as_ptr(m) as usize)).cloned());
            let (keys, html): (Vec<Arc<str>>, bool) = match order {
                Some(o) if o.len() == m.len() && o.iter().all(|k| m.contains_key(k)) => (o, html),
                _ => (m.keys().cloned().collect(), true),
            };
            out.push('{');
            let mut first = true;
            for k in keys.iter().filter(|k| !k.starts_with("__")) {
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_str(out, k, html);
                out.push(':');
                write_json(out, &m[k], html);
            }
            out.push('}');
        }
        Value::Function(_) => out.push_str("null"),
    }
}

/// Go's `json.Indent(dst, src, "", "    ")` on raw JSON: re-indents without reordering or
/// re-encoding anything.
pub fn indent_json(raw: &[u8]) -> String {
    let src = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    for c in src.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_prefix_and_escapes_are_handled_like_docker() {
        let f = Format::new("table {{.ID}}\\t{{.Names}}");
        assert!(f.table);
        assert_eq!(f.text, "{{.ID}}\t{{.Names}}");
        assert_eq!(Format::new("json").text, "{{json .}}");
    }

    #[test]
    fn docker_functions_are_available() {
        let data = map([
            ("Name", str_value("Hello World")),
            (
                "Tags",
                Value::List(vec![str_value("a"), str_value("b")].into()),
            ),
        ]);
        let r = |t: &str| Renderer::new(t).unwrap().render(&data).unwrap();
        assert_eq!(r("{{lower .Name}}"), "hello world");
        assert_eq!(r("{{upper .Name}}"), "HELLO WORLD");
        assert_eq!(r("{{title \"hello world\"}}"), "Hello World");
        assert_eq!(r("{{join .Tags \",\"}}"), "a,b");
        assert_eq!(r("{{split .Name \" \"}}"), "[Hello World]");
        assert_eq!(r("{{truncate .Name 5}}"), "Hello");
        assert_eq!(r("{{pad .Name 1 2}}|"), " Hello World  |");
        assert_eq!(r("{{json .Tags}}"), "[\"a\",\"b\"]");
        assert_eq!(r("{{println .Name}}"), "Hello World\n");
    }

    #[test]
    fn json_keeps_the_daemon_key_order() {
        let v = from_json(br#"{"Zeta":1,"Alpha":{"b":true,"a":null},"S":"<x>"}"#).unwrap();
        assert_eq!(
            to_json(&v),
            r#"{"Zeta":1,"Alpha":{"b":true,"a":null},"S":"<x>"}"#
        );
        assert_eq!(
            Renderer::new("{{.Alpha.b}} {{.Zeta}}")
                .unwrap()
                .render(&v)
                .unwrap(),
            "true 1"
        );
    }

    #[test]
    fn parse_errors_are_worded_like_go() {
        assert_eq!(
            go_template_error("template: 1:7: unclosed action"),
            "template: :1: unclosed action"
        );
        let e = Renderer::new("{{json .Config").err().unwrap().to_string();
        assert!(
            e.starts_with("template parsing error: template: :1:"),
            "{e}"
        );
    }

    #[test]
    fn missing_fields_print_no_value() {
        let v = from_json(br#"{"A":1}"#).unwrap();
        assert_eq!(
            Renderer::new("{{.B}}").unwrap().render(&v).unwrap(),
            "<no value>"
        );
    }

    #[test]
    fn label_method_calls_read_the_row_labels() {
        let labels = map([("com.x", str_value("1"))]);
        let row = map([("__labels", labels)]);
        assert_eq!(
            Renderer::new("{{.Label \"com.x\"}}|{{.Label \"nope\"}}")
                .unwrap()
                .render(&row)
                .unwrap(),
            "1|"
        );
    }

    #[test]
    fn tables_get_a_header_row_and_aligned_columns() {
        let f = Format::new("table {{.ID}}\t{{.Name}}");
        let headers = map([
            ("ID", str_value("CONTAINER ID")),
            ("Name", str_value("NAMES")),
        ]);
        let rows = vec![map([("ID", str_value("abc")), ("Name", str_value("x"))])];
        assert_eq!(
            render_rows(&f, &headers, &rows).unwrap(),
            "CONTAINER ID   NAMES\nabc            x\n"
        );
    }

    #[test]
    fn indenting_matches_go_json_indent() {
        let raw = br#"{"a":[1,2],"b":{},"c":[],"d":"x, y: {z}"}"#;
        assert_eq!(indent_json(raw), "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": {},\n    \"c\": [],\n    \"d\": \"x, y: {z}\"\n}");
    }
}
