//! A file of Kubernetes objects: one pod (a Pod, or the template of a
//! Deployment or a Job) and the ConfigMaps and Secrets it may use, in any
//! order. Anything else is refused, naming its kind.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::Value;

/// The pod a file describes.
#[derive(Debug)]
pub struct KubePod {
    /// `Pod`, `Deployment` or `Job`.
    pub kind: String,
    /// The pod's metadata (a template's, with the object's name when the
    /// template has none).
    pub metadata: Value,
    /// The pod's spec, untyped, for [`super::fields`].
    pub spec: Value,
    /// Its path in the document, for warnings (`spec`, `spec.template.spec`).
    pub spec_path: &'static str,
    /// Which document of the file it is (1-based).
    pub document: usize,
    /// The whole object it came from.
    pub object: Value,
}

/// ConfigMaps and Secrets by name: their keys' values (a Secret's decoded).
#[derive(Debug, Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Parses `text` (`origin` names it in errors): the one pod and the
/// sources.
pub fn read(text: &str, origin: &str) -> Result<(KubePod, Sources)> {
    let text = &yaml11_octal(text);
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| {
        let message = e.to_string();
        let first = message.lines().next().unwrap_or("invalid YAML").trim_start_matches("error: ");
        // The parser's own "line L column C: " prefix gives way to ours.
        let msg = first.split_once(": ").filter(|(p, _)| p.starts_with("line ")).map_or(first, |(_, m)| m);
        match e.location() {
            Some(l) => anyhow!("{origin}:{}:{}: {msg}", l.line(), l.column()),
            None => anyhow!("{origin}: {msg}"),
        }
    })?;
    let mut pod: Option<KubePod> = None;
    let mut sources = Sources::default();
    for (i, doc) in docs.into_iter().enumerate() {
        let n = i + 1;
        if doc.is_null() {
            continue;
        }
        let at = || format!("{origin}: document {n}");
        let kind = doc["kind"].as_str().with_context(|| format!("{}: no kind", at()))?.to_string();
        let name = doc["metadata"]["name"].as_str().map(str::to_string);
        let found = match kind.as_str() {
            "ConfigMap" | "Secret" => {
                let name = name.with_context(|| format!("{}: a {kind} needs metadata.name", at()))?;
                let data = source_data(&doc, &kind).with_context(at)?;
                let table = if kind == "Secret" { &mut sources.secrets } else { &mut sources.config_maps };
                table.insert(name, data);
                None
            }
            "Pod" => Some(KubePod {
                kind: kind.clone(),
                metadata: doc["metadata"].clone(),
                spec: doc["spec"].clone(),
                spec_path: "spec",
                document: n,
                object: doc.clone(),
            }),
            "Deployment" | "Job" => {
                if kind == "Deployment" {
                    match doc["spec"]["replicas"].as_i64() {
                        None | Some(1) => {}
                        Some(r) => bail!(
                            "{}: Deployment {} asks for {r} replicas; skiff runs one pod (replicas: 1)",
                            at(),
                            name.as_deref().unwrap_or("")
                        ),
                    }
                }
                let template = &doc["spec"]["template"];
                let mut metadata = template["metadata"].clone();
                if metadata["name"].is_null() {
                    if let Some(n) = &name {
                        metadata["name"] = Value::String(n.clone());
                    }
                }
                Some(KubePod {
                    kind: kind.clone(),
                    metadata,
                    spec: template["spec"].clone(),
                    spec_path: "spec.template.spec",
                    document: n,
                    object: doc.clone(),
                })
            }
            other => {
                bail!("{}: kind {other} is not something skiff runs (Pod, Deployment, Job, ConfigMap, Secret)", at())
            }
        };
        if let Some(p) = found {
            if let Some(first) = &pod {
                bail!(
                    "{}: a second pod ({kind}); skiff plays one pod per file (the first is document {})",
                    at(),
                    first.document
                );
            }
            pod = Some(p);
        }
    }
    let pod = pod.ok_or_else(|| anyhow!("{origin}: no Pod, Deployment or Job"))?;
    if !pod.spec.is_object() {
        bail!("{origin}: document {}: the {} has no {}", pod.document, pod.kind, pod.spec_path);
    }
    Ok((pod, sources))
}

/// Kubernetes reads YAML 1.1, where a plain `0644` is octal (file modes are
/// written so); a YAML 1.2 parser reads 644. Such values after a key are
/// rewritten as `0o644`, which both read as octal. Quoted strings and
/// comments are left alone.
fn yaml11_octal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        let mut quote: Option<char> = None;
        while let Some((i, c)) =
            rest.char_indices().find(|&(_, c)| quote.map_or(matches!(c, ':' | '\'' | '"' | '#'), |q| c == q))
        {
            let (before, after) = rest.split_at(i + c.len_utf8());
            out.push_str(before);
            rest = after;
            match (quote, c) {
                (Some(_), _) => quote = None,
                (None, '#') => break,
                (None, ':') => {
                    let value = rest.trim_start_matches(' ');
                    let end = value.find([',', '}', ']', ' ', '\n', '\r', '#']).unwrap_or(value.len());
                    let token = &value[..end];
                    if value.len() < rest.len()
                        && token.len() > 1
                        && token.starts_with('0')
                        && token.bytes().all(|b| (b'0'..=b'7').contains(&b))
                    {
                        out.push_str(&rest[..rest.len() - value.len()]);
                        out.push_str("0o");
                        out.push_str(&token[1..]);
                        rest = &value[end..];
                    }
                }
                (None, q) => quote = Some(q),
            }
        }
        out.push_str(rest);
    }
    out
}

/// A ConfigMap's `data`, or a Secret's `data` (base64) and `stringData`.
fn source_data(doc: &Value, kind: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let strings = |field: &str| -> Result<Vec<(String, String)>> {
        let Some(map) = doc[field].as_object() else { return Ok(Vec::new()) };
        map.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => bail!("{field}.{k}: not a string"),
                };
                Ok((k.clone(), s))
            })
            .collect()
    };
    if kind == "Secret" {
        for (k, v) in strings("data")? {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|e| anyhow!("data.{k}: not base64: {e}"))?;
            out.insert(k.clone(), String::from_utf8(bytes).map_err(|_| anyhow!("data.{k}: not UTF-8 text"))?);
        }
        out.extend(strings("stringData")?);
    } else {
        out.extend(strings("data")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_and_its_sources_in_any_order() {
        let text = "kind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: x}]}\n---\n\
                    kind: Secret\nmetadata: {name: s}\ndata: {pw: aHVudGVyMg==}\nstringData: {user: bob}\n---\n\
                    kind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1', b: 2}\n";
        let (pod, src) = read(text, "f.yaml").unwrap();
        assert_eq!((pod.kind.as_str(), pod.metadata["name"].as_str()), ("Pod", Some("web")));
        assert_eq!(src.secrets["s"]["pw"], "hunter2");
        assert_eq!(src.secrets["s"]["user"], "bob");
        assert_eq!(src.config_maps["c"]["b"], "2");
    }

    #[test]
    fn octal_modes_read_as_kubernetes_reads_them() {
        assert_eq!(yaml11_octal("defaultMode: 0644\n"), "defaultMode: 0o644\n");
        assert_eq!(yaml11_octal("x: {mode: 0400, b: 0}\n"), "x: {mode: 0o400, b: 0}\n");
        for same in [
            "a: '0644'\n",
            "a: \"x: 0644\"\n",
            "a: 0644x\n",
            "a: 089\n",
            "a: 10644\n",
            "# b: 0644\n",
            "a: b # c: 0644\n",
        ] {
            assert_eq!(yaml11_octal(same), same);
        }
        let v: Value = serde_saphyr::from_str(&yaml11_octal("m: 0644\n")).unwrap();
        assert_eq!(v["m"], 420);
    }

    #[test]
    fn templates_take_their_objects_name_and_replicas_must_be_one() {
        let d = "kind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 1\n  template:\n    spec: {containers: [{name: c, image: x}]}\n";
        let (pod, _) = read(d, "d").unwrap();
        assert_eq!((pod.metadata["name"].as_str(), pod.spec_path), (Some("api"), "spec.template.spec"));
        let e = read(&d.replace("replicas: 1", "replicas: 3"), "d").unwrap_err().to_string();
        assert!(e.contains("3 replicas"), "{e}");
    }

    #[test]
    fn hostile_and_wrong_files_are_refused_clearly() {
        let cases = [
            ("kind: Service\nmetadata: {name: s}\n", "kind Service is not something skiff runs"),
            ("kind: ConfigMap\nmetadata: {name: c}\n", "no Pod, Deployment or Job"),
            ("metadata: {name: c}\n", "document 1: no kind"),
            ("kind: Pod\nspec: {containers: [\n- x: 1\n", "f:"),
            ("kind: Pod\nspec: {}\n---\nkind: Pod\nspec: {}\n", "a second pod"),
            ("kind: Secret\nmetadata: {name: s}\ndata: {k: '%%%'}\n", "not base64"),
            ("kind: Pod\n", "has no spec"),
        ];
        for (text, want) in cases {
            let e = read(text, "f").err().map(|e| format!("{e:#}")).unwrap_or_default();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // A billion laughs is refused by the parser's budget, not expanded.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 0 { "a".to_string() } else { format!("b{}", i - 1) }
            ));
        }
        bomb.push_str("kind: Pod\n");
        assert!(read(&bomb, "f").is_err());
    }
}
