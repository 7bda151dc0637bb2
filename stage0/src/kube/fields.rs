//! Which fields of a pod skiff honours (docs/kube.md has the table). Every
//! other field present in the file is named by its path, so nothing is
//! ignored silently: `play kube` warns of each, `--strict` refuses them.

use serde_json::Value;

use super::documents::KubePod;

/// Fields of the object's and the pod's metadata that are honoured (with
/// everything below them).
const METADATA: &[&str] = &["name", "namespace", "labels", "annotations"];

/// Fields of a pod spec that are honoured. `[]` stands for any index; a
/// field listed is honoured with everything below it, unless it ends in
/// `{}` (only the field itself: `emptyDir: {}`).
const POD_SPEC: &[&str] = &[
    "containers[].name",
    "containers[].image",
    "containers[].imagePullPolicy",
    "containers[].command",
    "containers[].args",
    "containers[].workingDir",
    "containers[].env[].name",
    "containers[].env[].value",
    "containers[].env[].valueFrom.configMapKeyRef",
    "containers[].env[].valueFrom.secretKeyRef",
    "containers[].env[].valueFrom.fieldRef",
    "containers[].env[].valueFrom.resourceFieldRef",
    "containers[].envFrom[].prefix",
    "containers[].envFrom[].configMapRef",
    "containers[].envFrom[].secretRef",
    "containers[].ports[].containerPort",
    "containers[].ports[].hostPort",
    "containers[].ports[].hostIP",
    "containers[].ports[].protocol",
    "containers[].ports[].name",
    "containers[].volumeMounts[].name",
    "containers[].volumeMounts[].mountPath",
    "containers[].volumeMounts[].readOnly",
    "containers[].volumeMounts[].subPath",
    "containers[].resources.limits.memory",
    "containers[].resources.limits.cpu",
    "containers[].resources.requests.cpu",
    "containers[].resources.requests.memory",
    "containers[].securityContext.runAsUser",
    "containers[].securityContext.runAsGroup",
    "containers[].securityContext.readOnlyRootFilesystem",
    "containers[].securityContext.allowPrivilegeEscalation",
    "containers[].securityContext.capabilities.add",
    "containers[].securityContext.capabilities.drop",
    "containers[].securityContext.privileged",
    "containers[].terminationMessagePath",
    "containers[].terminationMessagePolicy",
    "volumes[].name",
    "volumes[].hostPath.path",
    "volumes[].hostPath.type",
    "volumes[].emptyDir{}",
    "volumes[].emptyDir.medium",
    "volumes[].emptyDir.sizeLimit",
    "volumes[].configMap.name",
    "volumes[].configMap.items",
    "volumes[].configMap.defaultMode",
    "volumes[].configMap.optional",
    "volumes[].secret.secretName",
    "volumes[].secret.items",
    "volumes[].secret.defaultMode",
    "volumes[].secret.optional",
    "volumes[].persistentVolumeClaim.claimName",
    "volumes[].persistentVolumeClaim.readOnly",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "hostNetwork",
    "hostname",
    "hostAliases[].ip",
    "hostAliases[].hostnames",
    "dnsConfig.nameservers",
    "dnsConfig.searches",
    "dnsConfig.options[].name",
    "dnsConfig.options[].value",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.supplementalGroups",
];

/// Fields of the object around the pod spec that are honoured (or mean
/// nothing for one pod on one machine), by kind.
fn outer(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" => &[
            "apiVersion",
            "kind",
            "metadata",
            "spec.replicas",
            "spec.selector",
            "spec.template.metadata",
            "spec.template.spec",
        ],
        "Job" => &["apiVersion", "kind", "metadata", "spec.template.metadata", "spec.template.spec"],
        _ => &["apiVersion", "kind", "metadata", "spec"],
    }
}

/// Whether `path` (indices as `[]`) is honoured: listed, or below a listed
/// field. `Some(false)`: not listed, but fields below it are (descend).
fn honoured(list: &[&str], path: &str) -> Option<bool> {
    if list.iter().any(|p| p.strip_suffix("{}") == Some(path)) {
        return Some(false);
    }
    let below = |p: &str| path.strip_prefix(p).is_some_and(|rest| rest.starts_with(['.', '[']));
    if list.iter().filter(|p| !p.ends_with("{}")).any(|p| *p == path || below(p)) {
        return Some(true);
    }
    list.iter().any(|p| p.strip_prefix(path).is_some_and(|rest| rest.starts_with(['.', '[']))).then_some(false)
}

/// The paths (with their indices) of the fields of the object `pod` came
/// from that skiff does not honour.
pub fn unhonoured(pod: &KubePod) -> Vec<String> {
    let doc = &pod.object;
    let mut out = Vec::new();
    walk(doc, "", "", &mut |generic, shown, _| match honoured(outer(&pod.kind), generic) {
        Some(true) => Walk::Skip,
        Some(false) => Walk::Descend,
        None => {
            out.push(shown.to_string());
            Walk::Skip
        }
    });
    let mut metadata = vec!["metadata"];
    if pod.kind != "Pod" {
        metadata.push("spec.template.metadata");
    }
    for base in metadata {
        if let Some(meta) = at(doc, base) {
            walk(meta, "", base, &mut |generic, shown, _| {
                if honoured(METADATA, generic).is_some() {
                    Walk::Skip
                } else {
                    out.push(shown.to_string());
                    Walk::Skip
                }
            });
        }
    }
    // Init containers take what containers take.
    let spec_field = |generic: &str| match generic.strip_prefix("initContainers") {
        Some(rest) => honoured(POD_SPEC, &format!("containers{rest}")),
        None => honoured(POD_SPEC, generic),
    };
    walk(&pod.spec, "", pod.spec_path, &mut |generic, shown, _| match spec_field(generic) {
        Some(true) => Walk::Skip,
        Some(false) => Walk::Descend,
        None => {
            out.push(shown.to_string());
            Walk::Skip
        }
    });
    out
}

fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

enum Walk {
    Descend,
    Skip,
}

/// Calls `f` with each field's generic path (`a[].b`) and shown path
/// (`prefix.a[0].b`), descending where it says so.
fn walk(v: &Value, generic: &str, shown: &str, f: &mut dyn FnMut(&str, &str, &Value) -> Walk) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let g = if generic.is_empty() { k.clone() } else { format!("{generic}.{k}") };
                // An empty key (`! : x` in YAML) is named, not left blank
                // (fuzzing found a field named by an empty path).
                let name = if k.is_empty() { "\"\"" } else { k.as_str() };
                let s = if shown.is_empty() { name.to_string() } else { format!("{shown}.{name}") };
                if let Walk::Descend = f(&g, &s, child) {
                    walk(child, &g, &s, f);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{generic}[]"), &format!("{shown}[{i}]"), f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> KubePod {
        super::super::documents::read(yaml, "t").unwrap().0
    }

    #[test]
    fn an_empty_key_is_named_not_blank() {
        let p = pod("kind: Pod\nspec:\n  containers: [{name: a, image: i}]\n! : x\n");
        assert_eq!(unhonoured(&p), ["\"\""]);
    }

    #[test]
    fn every_field_not_honoured_is_named_with_its_index() {
        let p = pod(
            "kind: Pod\nmetadata: {name: a, labels: {x: y}, generateName: g}\nspec:\n  containers:\n  - name: c\n    image: i\n    env: [{name: A, value: b}]\n    livenessProbe: {exec: {command: [x]}}\n  - name: d\n    image: i\n    resources: {limits: {memory: 1Gi, hugepages-2Mi: 1Gi}}\n  nodeSelector: {disk: ssd}\n  volumes: [{name: v, emptyDir: {medium: Memory}}]\n",
        );
        let mut got = unhonoured(&p);
        got.sort();
        assert_eq!(
            got,
            [
                "metadata.generateName",
                "spec.containers[0].livenessProbe",
                "spec.containers[1].resources.limits.hugepages-2Mi",
                "spec.nodeSelector",
            ]
        );
    }

    #[test]
    fn init_containers_take_what_containers_take() {
        let p = pod("kind: Pod\nspec:\n  initContainers: [{name: i, image: x, command: [a], startupProbe: {}}]\n  containers: [{name: c, image: i}]\n");
        assert_eq!(unhonoured(&p), ["spec.initContainers[0].startupProbe"]);
    }

    #[test]
    fn a_templates_object_fields_are_checked_by_kind() {
        let p = pod(
            "kind: Job\nmetadata: {name: j}\nspec:\n  backoffLimit: 2\n  template:\n    metadata: {labels: {a: b}, finalizers: [x]}\n    spec: {containers: [{name: c, image: i}], restartPolicy: Never}\n",
        );
        assert_eq!(unhonoured(&p), ["spec.backoffLimit", "spec.template.metadata.finalizers"]);
    }
}
