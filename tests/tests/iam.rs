//! Each function's IAM policy in template.yaml covers exactly the AWS calls its code makes
//! (issue 7). Nothing about the calls is written down here: they are derived from the sources and
//! from the template, then compared with the policies.
//!
//! # How the calls are derived
//!
//! 1. **Functions.** The `AWS::Serverless::Function` resources of template.yaml, each with its
//!    binary (`Metadata.BuildProperties.Binary` → `functions/<binary>`) and its role
//!    (`Role: !GetAtt <Role>.Arn`). The template is read with the tools venv's cfn-lint loader (as
//!    infra/scripts/check_template.py does), which turns `!Ref` / `!GetAtt` / ... into JSON.
//! 2. **Sources.** For function `f`: `functions/f/src/**/*.rs` and `shared/src/**/*.rs`, with
//!    comments blanked, string literals neutralised and `#[cfg(test)]` items removed.
//! 3. **Call graph.** Every `fn` item, with its owner (the `impl` / `trait` block around it).
//!    A call `a::b::name(..)` resolves to the free fns `name` of module file `b` (or to none when
//!    no such module exists: an external crate); `Type::name(..)` to the fns `name` of `impl Type`;
//!    `.name(..)` to every method called `name` (trait objects such as `ctx.queue.send_tasks` thus
//!    reach every implementation, e.g. `SqsQueues::send_tasks`); a bare `name(..)` to the free fns
//!    `name` of the same file, else of any file. This over-approximates (names are not types) and
//!    never under-approximates for the code patterns the project uses; reachability starts at
//!    `functions/f/src/main.rs::main`.
//! 4. **SDK calls.** Adapters are the structs with an `aws_sdk_<service>::Client` field. In every
//!    reachable fn, a method chain `self.<client>.<op>(..)...send()` (or `<x>.<accessor>().<op>(..)
//!    ...send()` for an adapter fn that returns the client) is one SDK call: service from the field's
//!    crate, IAM action from the operation (`SendMessageBatch` → `sqs:SendMessage`, `Invoke` →
//!    `lambda:InvokeFunction`, else the operation's PascalCase name). Anything the scan cannot see
//!    through fails the test instead of passing silently: an SDK client built outside an adapter's
//!    constructor, or a client field used other than as the head of a chain ending in `.send()`.
//!    The calls of an adapter whose constructor the function never calls are left out: it has no
//!    instance (the API's `LambdaPlanner` is in `shared/src` too, and other functions reach its
//!    `start` only through the method name).
//! 5. **Resources.** The chain's builder argument naming the target (`.queue_url(&self.work_url)`,
//!    `.secret_id(&self.secret_id)`, `.function_name(&self.function_name)`) gives the adapter field;
//!    the adapter's constructor maps it to a parameter; the constructor's call sites in the
//!    function's reachable code give the argument (`settings.work_queue_url`, or a fn such as
//!    `planner_function_name()`); `shared/src/config.rs` (or that fn) gives the environment variable
//!    (`WORK_QUEUE_URL`); the template's function environment gives its value (`!Ref WorkQueue`).
//! 6. **Trigger and logs.** From the template: an `SQS` event source needs `sqs:ReceiveMessage`,
//!    `sqs:DeleteMessage` and `sqs:GetQueueAttributes` on its queue; `LoggingConfig.LogGroup` needs
//!    `logs:CreateLogStream` and `logs:PutLogEvents` on that log group.
//!
//! Resources are compared as logical ids (`!Ref X`, `!GetAtt X.Arn` → `X`; a Lambda ARN or name
//! built with `!Sub` → the function whose `FunctionName` it is; `!If` kept as such), actions as
//! `service:Action`, both as sets of (action, resource) pairs: the policy must equal
//! code ∪ trigger ∪ logs. Every statement must be `Allow` without `NotAction` / `NotResource` /
//! `Condition`, and no action or resource may contain `*`.
//!
//! Needs the tools venv (`infra/scripts/install.sh tools`). Run:
//! `. infra/scripts/env.sh && cargo test -p e2e --test iam -- --nocapture` (prints the derivation).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

// ================================================================================================
// Template
// ================================================================================================

/// template.yaml as JSON (cfn-lint's loader writes the short-form intrinsics in their long form).
fn load_template() -> Value {
    let cache = std::env::var_os("NOTION_ES_CACHE").map(PathBuf::from).unwrap_or_else(|| root().join(".cache"));
    let python = cache.join("venv-tools/bin/python");
    assert!(python.exists(), "{} is missing: run infra/scripts/install.sh tools", python.display());
    let script = "import json, sys\nfrom cfnlint.decode import cfn_yaml\nprint(json.dumps(cfn_yaml.load(sys.argv[1])))";
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(root().join("template.yaml"))
        .output()
        .expect("the tools venv's python runs");
    assert!(out.status.success(), "loading template.yaml failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("template JSON")
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// A resource reference as a comparable name: `!Ref X` / `!GetAtt X.Arn` → `X`; a Lambda function
/// ARN or name built with `!Sub` → that function's logical id; `!If [c, a, b]` → `If(c, a, b)`.
fn norm(v: &Value, t: &Value) -> String {
    let function_named = |name: &str| -> Option<String> {
        t["Resources"].as_object()?.iter().find_map(|(id, r)| {
            let fname = &r["Properties"]["FunctionName"];
            let same = fname.as_str() == Some(name) || fname["Fn::Sub"].as_str() == Some(name);
            (r["Type"] == "AWS::Serverless::Function" && same).then(|| id.clone())
        })
    };
    let lambda_arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:";
    match v {
        Value::String(s) => function_named(s).unwrap_or_else(|| s.clone()),
        Value::Object(m) if m.contains_key("Ref") => m["Ref"].as_str().unwrap_or_default().to_string(),
        Value::Object(m) if m.contains_key("Fn::GetAtt") => {
            let (id, attr) = match &m["Fn::GetAtt"] {
                Value::Array(a) => {
                    (a[0].as_str().unwrap_or_default().to_string(), a[1].as_str().unwrap_or_default().to_string())
                }
                Value::String(s) => {
                    let (id, attr) = s.split_once('.').unwrap_or((s, ""));
                    (id.to_string(), attr.to_string())
                }
                other => panic!("unexpected Fn::GetAtt {other}"),
            };
            if attr == "Arn" {
                id
            } else {
                format!("{id}.{attr}")
            }
        }
        Value::Object(m) if m.contains_key("Fn::If") => {
            let a = m["Fn::If"].as_array().expect("Fn::If list");
            format!("If({}, {}, {})", a[0].as_str().unwrap_or_default(), norm(&a[1], t), norm(&a[2], t))
        }
        Value::Object(m) if m.get("Fn::Sub").is_some_and(Value::is_string) => {
            let s = m["Fn::Sub"].as_str().unwrap();
            let name = s.strip_prefix(lambda_arn).unwrap_or(s);
            function_named(name).unwrap_or_else(|| format!("Sub({s})"))
        }
        other => other.to_string(),
    }
}

type Pair = (String, String); // (service:Action, resource)

struct TemplateFunction {
    logical: String,
    binary: String,
    role: String,
    env: BTreeMap<String, Value>,
    /// From the event sources and the logging config: (pair, why).
    platform: BTreeMap<Pair, String>,
}

fn template_functions(t: &Value) -> Vec<TemplateFunction> {
    let res = t["Resources"].as_object().expect("Resources");
    let mut out = Vec::new();
    for (logical, r) in res {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let p = &r["Properties"];
        let binary = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{logical}: no Binary"))
            .to_string();
        assert!(p.get("Policies").is_none(), "{logical}: SAM Policies bypass the function's role");
        let role = p["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{logical}: Role is not !GetAtt <Role>.Arn"))
            .to_string();
        let mut env: BTreeMap<String, Value> = BTreeMap::new();
        for src in [&t["Globals"]["Function"]["Environment"]["Variables"], &p["Environment"]["Variables"]] {
            if let Some(m) = src.as_object() {
                env.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut platform = BTreeMap::new();
        let group = p["LoggingConfig"]["LogGroup"].clone();
        assert!(!group.is_null(), "{logical}: no LoggingConfig.LogGroup (the log permissions need an explicit group)");
        for a in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            platform.insert((a.to_string(), norm(&group, t)), "logging (LoggingConfig.LogGroup)".to_string());
        }
        for (name, ev) in p["Events"].as_object().into_iter().flatten() {
            match ev["Type"].as_str().unwrap_or_default() {
                "SQS" => {
                    let q = norm(&ev["Properties"]["Queue"], t);
                    for a in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
                        platform.insert((a.to_string(), q.clone()), format!("event source {name} (SQS)"));
                    }
                }
                // Pushed to the function by the service (resource-based permissions): nothing in the role.
                "HttpApi" | "Api" | "Schedule" | "ScheduleV2" | "CloudWatchEvent" | "EventBridgeRule" | "SNS"
                | "S3" => {}
                other => panic!("{logical}: event source type {other} is not handled by this test; extend it"),
            }
        }
        out.push(TemplateFunction { logical: logical.clone(), binary, role, env, platform });
    }
    out.sort_by(|a, b| a.binary.cmp(&b.binary));
    out
}

/// The role's inline policy as (action, resource) pairs, plus the problems found on the way.
fn role_pairs(t: &Value, role: &str) -> (BTreeSet<Pair>, Vec<String>) {
    let r = &t["Resources"][role];
    let mut problems = Vec::new();
    assert_eq!(r["Type"], "AWS::IAM::Role", "{role} is not an AWS::IAM::Role");
    for key in ["ManagedPolicyArns", "PermissionsBoundary"] {
        if r["Properties"].get(key).is_some() {
            problems.push(format!("{role}: {key} grants permissions this test cannot see"));
        }
    }
    let mut pairs = BTreeSet::new();
    for pol in r["Properties"]["Policies"].as_array().into_iter().flatten() {
        for st in as_list(&pol["PolicyDocument"]["Statement"]) {
            let sid = st["Sid"].as_str().unwrap_or("?");
            if st["Effect"] != "Allow" {
                problems.push(format!("{role}/{sid}: Effect is not Allow"));
            }
            for key in ["NotAction", "NotResource", "Condition"] {
                if st.get(key).is_some() {
                    problems.push(format!("{role}/{sid}: {key} is not supported by this test"));
                }
            }
            let actions: Vec<String> =
                as_list(&st["Action"]).iter().map(|a| a.as_str().unwrap_or_default().to_string()).collect();
            let resources: Vec<&Value> = as_list(&st["Resource"]);
            for a in &actions {
                if a.contains('*') {
                    problems.push(format!("{role}/{sid}: wildcard action {a}"));
                }
            }
            for res in &resources {
                if res.to_string().contains('*') {
                    problems.push(format!("{role}/{sid}: '*' in resource {res}"));
                }
            }
            for a in &actions {
                for res in &resources {
                    pairs.insert((a.clone(), norm(res, t)));
                }
            }
        }
    }
    (pairs, problems)
}

// ================================================================================================
// Rust sources
// ================================================================================================

/// Blanks comments, neutralises string / char literal contents (only letters, digits, `_` and
/// spaces are kept, so `"WORK_QUEUE_URL"` survives but a `{` inside a string does not), keeping
/// every byte offset.
fn mask(src: &str) -> String {
    let b = src.as_bytes();
    let n = b.len();
    let mut out = b.to_vec();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let neutral = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(n)] {
            if c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b' ' || *c == b'\n') {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < n {
        let next = b.get(i + 1).copied().unwrap_or(0);
        if b[i] == b'/' && next == b'/' {
            while i < n && b[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if b[i] == b'/' && next == b'*' {
            let mut depth = 0;
            while i < n {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (i == 0 || !ident(b[i - 1]) || (b[i - 1] == b'b' && (i < 2 || !ident(b[i - 2]))))
            && (next == b'"' || next == b'#')
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while j < n && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < n && b[j] == b'"' {
                let start = j + 1;
                let mut k = start;
                let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                while k < n && !b[k..].starts_with(&closing) {
                    k += 1;
                }
                neutral(&mut out, start, k);
                i = k + closing.len();
            } else {
                i += 1;
            }
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < n && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            neutral(&mut out, i + 1, j);
            i = j + 1;
        } else if b[i] == b'\'' {
            if next == b'\\' {
                let end = (i + 2..(i + 14).min(n)).find(|&k| b[k] == b'\'').unwrap_or(i + 1);
                neutral(&mut out, i + 1, end);
                i = end + 1;
            } else {
                let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + len) == Some(&b'\'') {
                    neutral(&mut out, i + 1, i + 1 + len);
                    i += 2 + len;
                } else {
                    i += 1; // a lifetime
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("masking keeps UTF-8")
}

/// Index of the bracket closing the one at `open`.
fn matching(s: &str, open: usize) -> usize {
    let b = s.as_bytes();
    let (o, c) = match b[open] {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        b'{' => (b'{', b'}'),
        other => panic!("not a bracket: {}", other as char),
    };
    let mut depth = 0;
    for (k, &x) in b.iter().enumerate().skip(open) {
        if x == o {
            depth += 1;
        } else if x == c {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    panic!("unbalanced bracket at {open}");
}

/// From `from`, the first `{` or `;` outside parentheses / brackets: (offset, is_brace).
fn item_end(s: &str, from: usize) -> (usize, bool) {
    let mut depth = 0i32;
    for (k, &x) in s.as_bytes().iter().enumerate().skip(from) {
        match x {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'{' if depth <= 0 => return (k, true),
            b';' if depth <= 0 => return (k, false),
            _ => {}
        }
    }
    (s.len(), false)
}

/// Splits on commas outside brackets.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(ch);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[derive(Debug, Clone)]
struct FnItem {
    name: String,
    file: PathBuf,
    module: String,
    owner: Option<String>,
    signature: String,
    body: String,
}

struct Sources {
    files: BTreeMap<PathBuf, String>,
    fns: Vec<FnItem>,
    /// fn name → indices into `fns`
    by_name: HashMap<String, Vec<usize>>,
    modules: BTreeSet<String>,
    /// adapter struct → [(client field, service crate)]
    clients: BTreeMap<String, Vec<(String, String)>>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn load_sources(dirs: &[PathBuf]) -> Sources {
    let mut paths = Vec::new();
    for d in dirs {
        rust_files(d, &mut paths);
    }
    paths.sort();
    let re_cfg_test = Regex::new(r"#\[cfg\(test\)\]").unwrap();
    let re_container = Regex::new(r"(?m)^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?(impl|trait)\b").unwrap();
    let re_fn = Regex::new(r"\bfn\s+(\w+)").unwrap();
    let re_struct = Regex::new(r"\bstruct\s+(\w+)[^{;(]*\{").unwrap();
    let re_client_field = Regex::new(r"(\w+)\s*:\s*(aws_sdk_\w+)\s*::\s*Client\b").unwrap();
    let mut sources = Sources {
        files: BTreeMap::new(),
        fns: Vec::new(),
        by_name: HashMap::new(),
        modules: BTreeSet::new(),
        clients: BTreeMap::new(),
    };
    for path in paths {
        let raw = std::fs::read_to_string(&path).unwrap();
        let mut s = mask(&raw);
        // Drop #[cfg(test)] items.
        while let Some(m) = re_cfg_test.find(&s) {
            let (end, brace) = item_end(&s, m.end());
            let stop = if brace { matching(&s, end) } else { end };
            let blank: String =
                s[m.start()..=stop.min(s.len() - 1)].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
            s.replace_range(m.start()..=stop.min(s.len() - 1), &blank);
        }
        // The module a `path::to::module::name(..)` call names: the file stem, the directory of a
        // mod.rs, the crate of a lib.rs; main.rs is the binary's root (`main`).
        let module = match path.file_stem().unwrap().to_str().unwrap() {
            "mod" => path.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string(),
            "lib" => path.parent().unwrap().parent().unwrap().file_name().unwrap().to_str().unwrap().to_string(),
            stem => stem.to_string(),
        };
        // Containers: impl / trait blocks with their type.
        let mut containers: Vec<(usize, usize, String)> = Vec::new();
        for c in re_container.captures_iter(&s) {
            let kw = c.get(1).unwrap();
            let (open, brace) = item_end(&s, kw.end());
            if !brace {
                continue;
            }
            let header = s[kw.end()..open].trim().to_string();
            let name = if kw.as_str() == "trait" {
                header.split(|ch: char| !(ch.is_alphanumeric() || ch == '_')).next().unwrap_or_default().to_string()
            } else {
                let mut h = header.as_str();
                if h.starts_with('<') {
                    let mut depth = 0;
                    let mut cut = 0;
                    for (k, ch) in h.char_indices() {
                        if ch == '<' {
                            depth += 1
                        } else if ch == '>' {
                            depth -= 1;
                            if depth == 0 {
                                cut = k + 1;
                                break;
                            }
                        }
                    }
                    h = h[cut..].trim();
                }
                let h = h.split(" where").next().unwrap();
                let h =
                    h.rsplit(" for ").next().unwrap().trim().trim_start_matches('&').trim_start_matches("dyn ").trim();
                let path = h.split(['<', ' ']).next().unwrap();
                path.rsplit("::").next().unwrap().to_string()
            };
            containers.push((open, matching(&s, open), name));
        }
        for c in re_fn.captures_iter(&s) {
            let m = c.get(0).unwrap();
            let (open, brace) = item_end(&s, m.end());
            if !brace {
                continue; // a declaration without a body
            }
            let close = matching(&s, open);
            let owner = containers
                .iter()
                .filter(|(o, e, _)| *o < m.start() && m.start() < *e)
                .max_by_key(|(o, _, _)| *o)
                .map(|(_, _, n)| n.clone());
            sources.fns.push(FnItem {
                name: c[1].to_string(),
                file: path.clone(),
                module: module.clone(),
                owner,
                signature: s[m.start()..open].to_string(),
                body: s[open..=close].to_string(),
            });
        }
        for c in re_struct.captures_iter(&s) {
            let open = c.get(0).unwrap().end() - 1;
            let body = &s[open..=matching(&s, open)];
            for f in re_client_field.captures_iter(body) {
                sources.clients.entry(c[1].to_string()).or_default().push((f[1].to_string(), f[2].to_string()));
            }
        }
        sources.files.insert(path, s);
    }
    for (i, f) in sources.fns.iter().enumerate() {
        sources.by_name.entry(f.name.clone()).or_default().push(i);
        sources.modules.insert(f.module.clone());
    }
    sources
}

/// The fns a body calls (indices into `src.fns`).
fn callees(src: &Sources, caller: &FnItem) -> BTreeSet<usize> {
    static CALL: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = CALL.get_or_init(|| Regex::new(r"(\.\s*)?((?:\w+\s*::\s*)*)(\w+)\s*(?:::\s*<[^()]*?>\s*)?(\()?").unwrap());
    let mut out = BTreeSet::new();
    for c in re.captures_iter(&caller.body) {
        let name = &c[3];
        let is_call = c.get(4).is_some();
        let method = c.get(1).is_some();
        let quals: Vec<&str> = c[2].split("::").map(str::trim).filter(|q| !q.is_empty()).collect();
        let start = c.get(0).unwrap().start();
        if caller.body[..start].trim_end().ends_with("fn") || (!is_call && quals.is_empty()) {
            continue; // a definition, or a plain identifier
        }
        let named = |pred: &dyn Fn(&FnItem) -> bool| -> Vec<usize> {
            src.by_name.get(name).into_iter().flatten().copied().filter(|&i| pred(&src.fns[i])).collect()
        };
        let found = if method {
            if !is_call {
                continue; // a field access
            }
            named(&|f| f.owner.is_some())
        } else if let Some(q) = quals.last() {
            let q = if *q == "Self" { caller.owner.as_deref().unwrap_or("Self") } else { q };
            if q.starts_with(char::is_uppercase) {
                named(&|f| f.owner.as_deref() == Some(q))
            } else if src.modules.contains(q) {
                named(&|f| f.owner.is_none() && f.module == q)
            } else if matches!(q, "self" | "super" | "crate") {
                named(&|f| f.owner.is_none())
            } else {
                Vec::new() // an external crate's fn
            }
        } else {
            let same = named(&|f| f.owner.is_none() && f.file == caller.file);
            if same.is_empty() {
                named(&|f| f.owner.is_none())
            } else {
                same
            }
        };
        out.extend(found);
    }
    out
}

/// Reachable fns from `main` of `functions/<binary>/src/main.rs`, each with its caller.
fn reachable(src: &Sources, main_file: &Path) -> BTreeMap<usize, Option<usize>> {
    let start = src.fns.iter().position(|f| f.name == "main" && f.file == main_file).expect("a main fn");
    let mut seen = BTreeMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for j in callees(src, &src.fns[i]) {
            if let std::collections::btree_map::Entry::Vacant(e) = seen.entry(j) {
                e.insert(Some(i));
                queue.push_back(j);
            }
        }
    }
    seen
}

fn path_to(src: &Sources, reach: &BTreeMap<usize, Option<usize>>, mut i: usize) -> String {
    let mut names = vec![];
    loop {
        let f = &src.fns[i];
        names.push(match &f.owner {
            Some(o) => format!("{o}::{}", f.name),
            None => format!("{}::{}", f.module, f.name),
        });
        match reach[&i] {
            Some(p) => i = p,
            None => break,
        }
    }
    names.reverse();
    names.join(" → ")
}

/// After `at` (just past a receiver): the chain `.m(args).m2(args)...` as (name, args) pairs.
fn chain(s: &str, mut at: usize) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    loop {
        let mut k = at;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if b.get(k) != Some(&b'.') {
            return out;
        }
        k += 1;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        let name_start = k;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
            k += 1;
        }
        let name = s[name_start..k].to_string();
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if b.get(k) != Some(&b'(') {
            out.push((name, String::new())); // `.await`, a field
            return out;
        }
        let close = matching(s, k);
        out.push((name, s[k + 1..close].to_string()));
        at = close + 1;
    }
}

fn pascal(op: &str) -> String {
    op.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// The IAM action of an SDK operation.
fn iam_action(service_crate: &str, op: &str) -> String {
    let service = service_crate.trim_start_matches("aws_sdk_");
    let op = pascal(op);
    let action = match (service, op.as_str()) {
        ("sqs", "SendMessageBatch") => "SendMessage".to_string(),
        ("sqs", "DeleteMessageBatch") => "DeleteMessage".to_string(),
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility".to_string(),
        ("lambda", "Invoke" | "InvokeAsync" | "InvokeWithResponseStream") => "InvokeFunction".to_string(),
        _ => op,
    };
    format!("{service}:{action}")
}

#[derive(Debug)]
struct SdkCall {
    action: String,
    op: String,
    adapter: String,
    field: String,
    via: String,
}

/// SDK calls in the reachable fns, with the adapter field naming their target.
fn sdk_calls(src: &Sources, reach: &BTreeMap<usize, Option<usize>>) -> Vec<SdkCall> {
    let mut calls = Vec::new();
    let re_ctor = Regex::new(r"aws_sdk_(\w+)\s*::\s*Client\s*::\s*(\w+)").unwrap();
    // Adapter fns handing their client out: chains on their result are SDK calls too.
    let re_returns_client = Regex::new(r"->\s*&?\s*(aws_sdk_\w+)::Client").unwrap();
    let re_self_field = Regex::new(r"self\s*\.\s*(\w+)").unwrap();
    let mut accessors: Vec<(String, String, String, Regex)> = Vec::new(); // (adapter, fn, service crate, call pattern)
    for f in &src.fns {
        if let (Some(owner), Some(svc)) = (&f.owner, re_returns_client.captures(&f.signature)) {
            let call = Regex::new(&format!(r"\.\s*{}\s*\(\s*\)", f.name)).unwrap();
            accessors.push((owner.clone(), f.name.clone(), svc[1].to_string(), call));
        }
    }
    let field_heads: BTreeMap<&str, Regex> = src
        .clients
        .values()
        .flatten()
        .map(|(field, _)| (field.as_str(), Regex::new(&format!(r"self\s*\.\s*{field}\b(\s*\(\s*\))?")).unwrap()))
        .collect();
    for &i in reach.keys() {
        let f = &src.fns[i];
        let clients = f.owner.as_ref().and_then(|o| src.clients.get(o));
        // SDK clients are made only in their adapter's constructor.
        for c in re_ctor.captures_iter(&f.body) {
            let ok = clients.is_some_and(|cs| cs.iter().any(|(_, svc)| svc == &format!("aws_sdk_{}", &c[1])));
            assert!(
                ok,
                "{}: {} builds an SDK client outside an adapter; extend tests/tests/iam.rs",
                f.file.display(),
                f.name
            );
        }
        let accessor = accessors.iter().any(|(a, n, _, _)| Some(a) == f.owner.as_ref() && n == &f.name);
        // (offset after the head, service crate, adapter, head is the adapter's own field)
        let mut heads: Vec<(usize, String, String, bool)> = Vec::new();
        for (field, svc) in clients.into_iter().flatten() {
            for m in field_heads[field.as_str()].find_iter(&f.body) {
                heads.push((m.end(), svc.clone(), f.owner.clone().unwrap(), true));
            }
        }
        for (adapter, _, svc, call) in &accessors {
            for m in call.find_iter(&f.body) {
                heads.push((m.end(), svc.clone(), adapter.clone(), false));
            }
        }
        for (at, svc, adapter, own) in heads {
            let ch = chain(&f.body, at);
            let sends = ch.iter().any(|(n, _)| n == "send");
            if !sends {
                // Allowed: the accessor returning the field; a call of a same-named method of another
                // type (names are not types) whose result is not sent as an SDK request.
                assert!(
                    if own { ch.is_empty() && accessor } else { true },
                    "{}: {} uses the {svc} client of {adapter} other than as `.op(..)...send()` ({ch:?}); extend tests/tests/iam.rs",
                    f.file.display(),
                    f.name
                );
                continue;
            }
            assert!(
                own,
                "{}: {} sends a request through {adapter}'s client accessor; extend tests/tests/iam.rs",
                f.file.display(),
                f.name
            );
            let op = ch[0].0.clone();
            let fields: BTreeSet<String> = ch[1..]
                .iter()
                .flat_map(|(_, args)| re_self_field.captures_iter(args).map(|c| c[1].to_string()).collect::<Vec<_>>())
                .collect();
            assert_eq!(fields.len(), 1, "{adapter}::{}: {op} names no single target field ({fields:?})", f.name);
            calls.push(SdkCall {
                action: iam_action(&svc, &op),
                op,
                adapter,
                field: fields.into_iter().next().unwrap(),
                via: path_to(src, reach, i),
            });
        }
    }
    calls
}

/// The environment variables an adapter field comes from, through the adapter's constructor and
/// its call sites in the reachable code.
fn field_env(
    src: &Sources,
    reach: &BTreeMap<usize, Option<usize>>,
    adapter: &str,
    field: &str,
    template_env: &BTreeMap<String, Value>,
) -> BTreeSet<String> {
    let lit = Regex::new(&format!(r"\b(?:{adapter}|Self)\s*\{{")).unwrap();
    let ctor = src
        .fns
        .iter()
        .find(|f| f.owner.as_deref() == Some(adapter) && lit.is_match(&f.body))
        .unwrap_or_else(|| panic!("no constructor of {adapter}"));
    let m = lit.find(&ctor.body).unwrap();
    let entries = split_top(&ctor.body[m.end()..matching(&ctor.body, m.end() - 1)]);
    let param = entries
        .iter()
        .find_map(|e| match e.split_once(':') {
            Some((k, v)) if k.trim() == field => Some(v.trim().to_string()),
            None if e.trim() == field => Some(field.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{adapter}::{}: field {field} not set", ctor.name));
    let sig_open = ctor.signature.find('(').unwrap();
    let params: Vec<String> = split_top(&ctor.signature[sig_open + 1..matching(&ctor.signature, sig_open)])
        .into_iter()
        .filter(|p| !p.contains("self"))
        .map(|p| p.split(':').next().unwrap().trim().to_string())
        .collect();
    let index = params
        .iter()
        .position(|p| *p == param)
        .unwrap_or_else(|| panic!("{adapter}::{}: {field} is not from a parameter", ctor.name));

    let call = Regex::new(&format!(r"\b{adapter}\s*::\s*{}\s*\(", ctor.name)).unwrap();
    let settings_file =
        src.files.iter().find(|(_, s)| s.contains("pub struct Settings")).map(|(p, s)| (p.clone(), s.clone()));
    let re_settings = Regex::new(r"settings\s*\.\s*(\w+)").unwrap();
    let re_upper_lit = Regex::new(r#""([A-Z][A-Z0-9_]*)""#).unwrap();
    let re_nullary_call = Regex::new(r"(\w+)\s*\(\s*\)").unwrap();
    let re_env_var = Regex::new(r#"env\s*::\s*var(?:_os)?\s*\(\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut envs = BTreeSet::new();
    let mut sites = 0;
    for &i in reach.keys() {
        let body = &src.fns[i].body;
        for m in call.find_iter(body) {
            sites += 1;
            let args = split_top(&body[m.end()..matching(body, m.end() - 1)]);
            let arg =
                args.get(index).unwrap_or_else(|| panic!("{adapter}::{} called with too few arguments", ctor.name));
            let mut names: Vec<String> = Vec::new();
            if let Some(c) = re_settings.captures(arg) {
                let (file, text) = settings_file.as_ref().expect("the file of `struct Settings`");
                let decl = Regex::new(&format!(r"\blet\s+{}\s*=", &c[1]))
                    .unwrap()
                    .find(text)
                    .unwrap_or_else(|| panic!("{}: no `let {}`", file.display(), &c[1]));
                let (end, _) = item_end(text, decl.end());
                let stmt_end = text[decl.end()..].find(';').map_or(end, |k| decl.end() + k);
                names.extend(re_upper_lit.captures_iter(&text[decl.end()..stmt_end]).map(|c| c[1].to_string()));
            } else if let Some(c) = re_nullary_call.captures(arg) {
                let f = src
                    .fns
                    .iter()
                    .find(|f| f.name == c[1])
                    .unwrap_or_else(|| panic!("cannot trace {adapter} argument {arg}"));
                names.extend(re_env_var.captures_iter(&f.body).map(|c| c[1].to_string()));
            }
            // Variables the deployment does not set (Lambda's own, local fallbacks) do not name a resource.
            let set: Vec<String> = names.into_iter().filter(|n| template_env.contains_key(n)).collect();
            assert!(
                !set.is_empty(),
                "cannot trace {adapter}'s {field} (argument `{arg}`) to a variable of the template"
            );
            envs.extend(set);
        }
    }
    assert!(sites > 0, "{adapter} is used but never constructed in the reachable code");
    envs
}

/// Whether the reachable code calls a constructor of `adapter` (an fn of its `impl` that builds
/// `adapter { .. }` / `Self { .. }`). Without one the function has no instance of it: its methods
/// are reached only through a method name other types share (`.start(..)`), and cannot run.
fn constructed(src: &Sources, reach: &BTreeMap<usize, Option<usize>>, adapter: &str) -> bool {
    let lit = Regex::new(&format!(r"\b(?:{adapter}|Self)\s*\{{")).unwrap();
    src.fns.iter().filter(|f| f.owner.as_deref() == Some(adapter) && lit.is_match(&f.body)).any(|ctor| {
        let call = Regex::new(&format!(r"\b{adapter}\s*::\s*{}\s*\(", ctor.name)).unwrap();
        reach.keys().any(|&i| call.is_match(&src.fns[i].body))
    })
}

/// Everything derived for one function.
struct Derived {
    expected: BTreeMap<Pair, String>,
}

fn derive(t: &Value, f: &TemplateFunction) -> Derived {
    derive_in(t, f, &root().join("functions"), &root().join("shared/src"))
}

fn derive_in(t: &Value, f: &TemplateFunction, functions: &Path, shared: &Path) -> Derived {
    let dir = functions.join(&f.binary).join("src");
    let src = load_sources(&[dir.clone(), shared.to_path_buf()]);
    let reach = reachable(&src, &dir.join("main.rs"));
    let mut expected = f.platform.clone();
    for call in sdk_calls(&src, &reach) {
        if !constructed(&src, &reach, &call.adapter) {
            eprintln!(
                "  (left out: {}::{} via {}; {} is never constructed here)",
                call.adapter, call.op, call.via, call.adapter
            );
            continue;
        }
        for env in field_env(&src, &reach, &call.adapter, &call.field, &f.env) {
            let resource = norm(&f.env[&env], t);
            let why =
                format!("{}::{} via {} ({}.{} ← {env})", call.adapter, call.op, call.via, call.adapter, call.field);
            expected.entry((call.action.clone(), resource)).or_insert(why);
        }
    }
    Derived { expected }
}

fn compare(t: &Value, f: &TemplateFunction, d: &Derived) -> Vec<String> {
    let (actual, mut problems) = role_pairs(t, &f.role);
    for (pair, why) in &d.expected {
        if !actual.contains(pair) {
            problems.push(format!("{}: {} lacks {} on {} (needed by {why})", f.logical, f.role, pair.0, pair.1));
        }
    }
    for pair in &actual {
        if !d.expected.contains_key(pair) {
            problems.push(format!(
                "{}: {} grants {} on {}, which the function never uses",
                f.logical, f.role, pair.0, pair.1
            ));
        }
    }
    problems
}

// ================================================================================================
// Tests
// ================================================================================================

#[test]
fn each_policy_covers_exactly_the_calls_of_its_function() {
    let t = load_template();
    let functions = template_functions(&t);
    assert!(functions.len() >= 4, "expected the planner, worker, reaper and api functions");
    let mut problems = Vec::new();
    for f in &functions {
        let d = derive(&t, f);
        eprintln!("{} (functions/{}, role {}):", f.logical, f.binary, f.role);
        for ((action, resource), why) in &d.expected {
            eprintln!("  {action:<32} {resource:<48} {why}");
        }
        assert!(
            d.expected.keys().any(|(a, _)| !a.starts_with("logs:")),
            "{}: no AWS call derived from the code at all — the scan is broken",
            f.logical
        );
        problems.extend(compare(&t, f, &d));
    }
    assert!(problems.is_empty(), "IAM policies differ from the derived calls:\n  {}", problems.join("\n  "));
}

/// The comparison catches a missing and an extra permission, and wildcards.
#[test]
fn a_policy_change_is_caught() {
    let t = load_template();
    let functions = template_functions(&t);
    let worker = functions.iter().find(|f| f.binary == "worker").expect("a worker function");
    let d = derive(&t, worker);
    assert!(compare(&t, worker, &d).is_empty());

    let statements = |t: &mut Value| -> Vec<Value> {
        t["Resources"][&worker.role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone()
    };
    let set = |t: &mut Value, st: Vec<Value>| {
        t["Resources"][&worker.role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] = Value::Array(st);
    };

    // Missing: drop the statement granting sqs:SendMessage.
    let mut m = t.clone();
    let st: Vec<Value> = statements(&mut m).into_iter().filter(|s| s["Action"] != "sqs:SendMessage").collect();
    set(&mut m, st);
    let p = compare(&m, worker, &d);
    assert!(p.iter().any(|p| p.contains("lacks sqs:SendMessage on WorkQueue")), "{p:?}");

    // Extra: the worker sends finalize messages but never consumes them.
    let mut m = t.clone();
    let mut st = statements(&mut m);
    st.push(serde_json::json!({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": {"Fn::GetAtt": ["FinalizeQueue", "Arn"]}}));
    set(&mut m, st);
    let p = compare(&m, worker, &d);
    assert!(p.iter().any(|p| p.contains("grants sqs:ReceiveMessage on FinalizeQueue")), "{p:?}");

    // Wildcards.
    let mut m = t.clone();
    let mut st = statements(&mut m);
    st.push(serde_json::json!({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}));
    set(&mut m, st);
    let p = compare(&m, worker, &d);
    assert!(
        p.iter().any(|p| p.contains("wildcard action")) && p.iter().any(|p| p.contains("'*' in resource")),
        "{p:?}"
    );
}

/// A call the code makes that its policy does not grant is caught: the reaper queues verification tasks, so a
/// template without its `sqs:SendMessage` on the work queue fails the check.
#[test]
fn a_code_change_is_caught() {
    let mut t = load_template();
    let policies = t.pointer_mut("/Resources/ReaperRole/Properties/Policies").and_then(Value::as_array_mut).unwrap();
    for policy in policies {
        if let Some(statements) = policy.pointer_mut("/PolicyDocument/Statement").and_then(Value::as_array_mut) {
            statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some("QueueVerification"));
        }
    }
    let functions = template_functions(&t);
    let reaper = functions.iter().find(|f| f.binary == "reaper").expect("a reaper function");
    let d = derive_in(&t, reaper, &root().join("functions"), &root().join("shared/src"));
    let p = compare(&t, reaper, &d);
    assert!(p.iter().any(|p| p.contains("lacks sqs:SendMessage on WorkQueue")), "{p:?}");
}

/// The source scanner sees through strings and comments, and the chain parser finds SDK calls.
#[test]
fn scanner_basics() {
    let s = mask("let a = \"{ ( // \"; // fn nope() {\n/* fn no() { */ let c = '{'; fn f<'a>(x: &'a str) {}");
    assert!(!s.contains("nope") && !s.contains("no()"), "{s}");
    assert_eq!(s.matches('{').count(), 1, "{s}");
    let body = "self.client.send_message().queue_url(&self.finalize_url).message_body(x.encode()).send().await";
    let ch = chain(body, "self.client".len());
    assert_eq!(
        ch.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["send_message", "queue_url", "message_body", "send", "await"]
    );
    assert_eq!(iam_action("aws_sdk_sqs", "send_message_batch"), "sqs:SendMessage");
    assert_eq!(iam_action("aws_sdk_lambda", "invoke"), "lambda:InvokeFunction");
    assert_eq!(iam_action("aws_sdk_secretsmanager", "put_secret_value"), "secretsmanager:PutSecretValue");
}
