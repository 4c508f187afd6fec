//! Policy text → [`Policy`] → [`ValidPolicy`], with every error at file:line:column.

use std::fmt;

use crate::value::{Map, Value};
use serde::{
    Deserialize,
    de::{self, IntoDeserializer},
};

use super::{
    API_VERSION, Contexts, IdSet, KIND, Policy, PolicySpec, Role, ValidPolicy,
    allowlist::MAX_ID,
    exception::{self, ImagePattern, ValidException},
};
use crate::{
    error::Location,
    merge::fields,
    pss::{Level, LevelVersion, Version},
    source::{self, LocationIndex, SyntaxError},
};

/// One problem with a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("failed to read policy '{path}'")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML/JSON, has a wrong type or an unknown key.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A value is invalid.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the value is.
        location: Location,
        /// What is wrong with it and what was expected.
        message: String,
    },
    /// A value is invalid, and the reason is not obvious from the value: `lint` shows the
    /// help too.
    #[error("{location}: {message}")]
    Explained {
        /// Where the value is.
        location: Location,
        /// What is wrong with it and what was expected.
        message: String,
        /// Why, and how to write it instead.
        help: String,
    },
}

impl PolicyError {
    /// Where the problem is, when it has a position.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Read { .. } => None,
            PolicyError::Syntax(e) => Some(&e.location),
            PolicyError::Invalid { location, .. } | PolicyError::Explained { location, .. } => Some(location),
        }
    }
}

/// Every problem found in a policy, in file order.
#[derive(Debug)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
            if let PolicyError::Read { source, .. } = e {
                write!(f, ": {source}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl From<PolicyError> for PolicyErrors {
    fn from(e: PolicyError) -> Self {
        PolicyErrors(vec![e])
    }
}

/// Reads and validates a policy file.
///
/// ```
/// let policy = ciguard::policy::load::from_file("examples/policies/tekton.yaml")?;
/// assert_eq!(policy.name(), "tekton");
/// # Ok::<(), ciguard::policy::load::PolicyErrors>(())
/// ```
pub fn from_file(path: &str) -> Result<ValidPolicy, PolicyErrors> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.into(),
        source,
    })?;
    from_str(&text, path)
}

/// Parses and validates policy text; `file` names it in errors.
///
/// Every problem is reported, each at its line and column:
///
/// ```
/// let errors = ciguard::policy::load::from_str(
///     "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n  onViolaton: deny\n",
///     "policy.yaml",
/// )
/// .unwrap_err();
/// let text = errors.to_string();
/// assert!(text.contains("policy.yaml:4:3"), "{text}");
/// assert!(text.contains("onViolaton"), "{text}");
/// ```
pub fn from_str(text: &str, file: &str) -> Result<ValidPolicy, PolicyErrors> {
    let policy: Policy = source::from_str(text, file).map_err(PolicyError::from)?;
    let index = LocationIndex::build(text);
    let mut v = Validator {
        file,
        index: &index,
        errors: Vec::new(),
    };
    v.unknown_context_keys(text);
    v.strings_for_scalars(&policy);
    let valid = v.validate(policy, file);
    if v.errors.is_empty()
        && let Some(valid) = valid
    {
        return Ok(valid);
    }
    v.errors.sort_by(|a, b| a.location().cmp(&b.location()));
    Err(PolicyErrors(v.errors))
}

/// Validates a policy built in code (e.g. by an importer). Errors are located at the
/// field path, line 0.
pub fn from_policy(policy: Policy, name: &str) -> Result<ValidPolicy, PolicyErrors> {
    // Round-trip through YAML so positions and unknown-key checks are the file's own.
    let text = serde_saphyr::to_string(&policy).map_err(|e| PolicyError::Invalid {
        location: Location {
            file: name.into(),
            line: 1,
            col: 1,
        },
        message: e.to_string(),
    })?;
    from_str(&text, name)
}

/// A policy with nothing in it (no defaults, nothing enforced, no PSS target).
pub fn empty() -> ValidPolicy {
    ValidPolicy {
        policy: Policy {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: None,
            spec: PolicySpec::default(),
        },
        source: "empty".into(),
        pss: LevelVersion {
            level: Level::Privileged,
            version: Version::Latest,
        },
        allowed_users: None,
        allowed_groups: None,
        pod: Contexts::default(),
        containers: Contexts::default(),
        roles: Default::default(),
        workdir_init: Default::default(),
        exceptions: Vec::new(),
    }
}

struct Validator<'a> {
    file: &'a str,
    index: &'a LocationIndex,
    errors: Vec<PolicyError>,
}

/// The five security-context sections and the JSON pointer of each.
const SECTIONS: [(&str, bool); 6] = [
    ("pod", true),
    ("containers", false),
    ("build", false),
    ("helper", false),
    ("service", false),
    ("init", false),
];

impl Validator<'_> {
    fn at_value(&self, path: &str) -> Location {
        let (line, col) = self
            .index
            .value(path)
            .unwrap_or_else(|| self.index.key_or_ancestor(path));
        Location {
            file: self.file.into(),
            line,
            col,
        }
    }

    fn at_key(&self, path: &str) -> Location {
        let (line, col) = self.index.key_or_ancestor(path);
        Location {
            file: self.file.into(),
            line,
            col,
        }
    }

    fn invalid(&mut self, location: Location, message: impl Into<String>) {
        self.errors.push(PolicyError::Invalid {
            location,
            message: message.into(),
        });
    }

    /// A quoted value where a number or a boolean is expected is an error, never converted:
    /// the YAML reader would turn `'0x10'` into 16, `' 7'` into 7 and `'0x0'` into 0 (root).
    /// Every number and boolean of the typed policy is checked against how its scalar was
    /// written.
    fn strings_for_scalars(&mut self, policy: &Policy) {
        fn walk(v: &Value, path: &mut String, out: &mut Vec<(String, &'static str)>) {
            match v {
                Value::Number(n) => {
                    let what = if n.is_f64() { "a number" } else { "an integer" };
                    out.push((path.clone(), what));
                }
                Value::Bool(_) => out.push((path.clone(), "true or false")),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("/{i}"));
                        walk(item, path, out);
                        path.truncate(len);
                    }
                }
                Value::Object(map) => {
                    for (k, item) in map {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&source::escape(k));
                        walk(item, path, out);
                        path.truncate(len);
                    }
                }
                Value::Null | Value::String(_) => {}
            }
        }
        let Ok(value) = crate::value::to_value(policy) else {
            return;
        };
        let mut typed = Vec::new();
        walk(&value, &mut String::new(), &mut typed);
        for (path, expected) in typed {
            let Some(written) = self.index.string_at(&path) else {
                continue;
            };
            let written = written.to_string();
            let location = self.at_value(&path);
            // `/spec/pod/default/supplementalGroups/1` → `spec.pod.default.supplementalGroups[1]`.
            let mut field = String::new();
            for segment in path.trim_start_matches('/').split('/') {
                if segment.bytes().all(|b| b.is_ascii_digit()) {
                    field.push_str(&format!("[{segment}]"));
                } else {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(&segment.replace("~1", "/").replace("~0", "~"));
                }
            }
            let last = path.rsplit('/').next().unwrap_or("");
            let (example, quoted) = if last.bytes().all(|b| b.is_ascii_digit()) {
                ("- 1000".to_string(), "- \"1000\"".to_string())
            } else {
                (format!("{last}: 1000"), format!("{last}: \"1000\""))
            };
            let help = if expected == "true or false" {
                "write true or false without quotes; a quoted value is text, and ciguard never converts text to a boolean".to_string()
            } else {
                format!(
                    "write the number without quotes, in decimal (`{example}`, not `{quoted}`); a quoted value is text, and readers disagree on what text such as \"0x10\", \" 7\" or \"0x0\" means as a number, so ciguard refuses it instead of guessing"
                )
            };
            self.errors.push(PolicyError::Explained {
                location,
                message: format!(
                    "{field}: {written:?} is a quoted string, expected {expected} (a quoted value is never converted)"
                ),
                help,
            });
        }
    }

    /// The k8s-openapi types ignore unknown keys; find them and report each at its key.
    fn unknown_context_keys(&mut self, text: &str) {
        let Ok(value) = source::from_str::<Value>(text, self.file) else {
            return;
        };
        let mut unknown = Vec::new();
        let _ = serde_ignored::deserialize(value.into_deserializer(), |path| unknown.push(pointer(&path)))
            .map(|p: Policy| p);
        for (ptr, key) in unknown {
            let parent = ptr.rsplit_once('/').map_or("", |(p, _)| p);
            let expected = expected_fields(parent);
            let mut message = format!("unknown field \"{key}\" in {}", dotted(parent));
            if !expected.is_empty() {
                message.push_str(&format!(", expected one of {}", expected.join(", ")));
            }
            let location = self.at_key(&ptr);
            self.invalid(location, message);
        }
    }

    fn validate(&mut self, policy: Policy, file: &str) -> Option<ValidPolicy> {
        if policy.api_version != API_VERSION {
            let loc = self.at_value("/apiVersion");
            self.invalid(
                loc,
                format!(
                    "apiVersion \"{}\": expected \"{API_VERSION}\"",
                    policy.api_version
                ),
            );
        }
        if policy.kind != KIND {
            let loc = self.at_value("/kind");
            self.invalid(loc, format!("kind \"{}\": expected \"{KIND}\"", policy.kind));
        }
        let spec = &policy.spec;
        let pss = self.pss(spec);
        let allowed_users = self.allowlist("allowedUsers", spec.allowed_users.as_deref());
        let allowed_groups = self.allowlist("allowedGroups", spec.allowed_groups.as_deref());
        for (i, m) in spec.roles.iter().enumerate() {
            if m.container_names.is_empty() {
                let loc = self.at_key(&format!("/spec/roles/{i}/containerNames"));
                self.invalid(
                    loc,
                    format!("roles[{i}].containerNames is empty, expected at least one name or glob"),
                );
            }
            for (j, g) in m.container_names.iter().enumerate() {
                if g.is_empty() {
                    let loc = self.at_value(&format!("/spec/roles/{i}/containerNames/{j}"));
                    self.invalid(
                        loc,
                        format!("roles[{i}].containerNames[{j}] is empty, expected a name or glob"),
                    );
                }
            }
        }
        if let Some(w) = &spec.workdir_init
            && w.image.trim().is_empty()
        {
            let loc = self.at_value("/spec/workdirInit/image");
            self.invalid(loc, "workdirInit.image is empty, expected an image reference");
        }
        self.match_selectors(spec);
        for (i, cap) in spec.allowed_capabilities.iter().flatten().enumerate() {
            let name = cap.trim().to_ascii_uppercase();
            let name = name.strip_prefix("CAP_").unwrap_or(&name);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                let loc = self.at_value(&format!("/spec/allowedCapabilities/{i}"));
                self.invalid(
                    loc,
                    format!(
                        "allowedCapabilities[{i}] {cap:?}: expected a capability name such as NET_BIND_SERVICE or CAP_NET_BIND_SERVICE"
                    ),
                );
            }
        }
        if let Some(home) = spec.forced_user.as_ref().and_then(|f| f.home.as_deref())
            && !home.starts_with('/')
        {
            let loc = self.at_value("/spec/forcedUser/home");
            self.invalid(
                loc,
                format!("forcedUser.home {home:?}: expected an absolute path"),
            );
        }
        let exceptions = self.exceptions(spec);
        let mut maps: Vec<Contexts> = Vec::new();
        for (name, pod_level) in SECTIONS {
            let (default, enforced) = match name {
                "pod" => (to_map(&spec.pod.default), to_map(&spec.pod.enforced)),
                "containers" => (
                    to_map(&spec.containers.default),
                    to_map(&spec.containers.enforced),
                ),
                _ => {
                    let role = Role::ALL
                        .iter()
                        .copied()
                        .find(|r| r.as_str() == name)
                        .unwrap_or(Role::Build);
                    let s = spec.role(role);
                    (to_map(&s.default), to_map(&s.enforced))
                }
            };
            self.context(&format!("/spec/{name}/default"), &default, pod_level);
            self.context(&format!("/spec/{name}/enforced"), &enforced, pod_level);
            maps.push(Contexts { default, enforced });
        }
        let mut maps = maps.into_iter();
        let pod = maps.next().unwrap_or_default();
        let containers = maps.next().unwrap_or_default();
        let roles = [
            maps.next().unwrap_or_default(),
            maps.next().unwrap_or_default(),
            maps.next().unwrap_or_default(),
            maps.next().unwrap_or_default(),
        ];
        let workdir_init = spec.workdir_init.clone().unwrap_or_default();
        Some(ValidPolicy {
            source: file.into(),
            pss: pss?,
            allowed_users: allowed_users?,
            allowed_groups: allowed_groups?,
            pod,
            containers,
            roles,
            workdir_init,
            exceptions,
            policy,
        })
    }

    /// `spec.exceptions`: unique names, image patterns, the `allow` context.
    fn exceptions(&mut self, spec: &PolicySpec) -> Vec<ValidException> {
        let mut out = Vec::new();
        for (i, x) in spec.exceptions.iter().enumerate() {
            let base = format!("/spec/exceptions/{i}");
            if x.name.trim().is_empty() {
                let loc = self.at_value(&format!("{base}/name"));
                self.invalid(loc, format!("exceptions[{i}].name is empty, expected a name"));
            } else if let Some(first) = spec.exceptions[..i].iter().position(|e| e.name == x.name) {
                let loc = self.at_value(&format!("{base}/name"));
                self.invalid(
                    loc,
                    format!(
                        "exceptions[{i}].name \"{}\" is already the name of exceptions[{first}], expected a unique name",
                        x.name
                    ),
                );
            }
            let mut images = Vec::new();
            for (j, text) in x.images.iter().enumerate() {
                match text.parse::<ImagePattern>() {
                    Ok(p) => images.push(p),
                    Err(e) => {
                        let loc = self.at_value(&format!("{base}/images/{j}"));
                        self.invalid(loc, format!("exceptions[{i}].images[{j}] {text:?} {e}"));
                    }
                }
            }
            let allow = to_map(&x.allow);
            self.context(&format!("{base}/allow"), &allow, false);
            for (ptr, message) in exception::allow_problems(&allow) {
                let loc = self.at_key(&format!("{base}/allow{ptr}"));
                self.invalid(loc, format!("exceptions[{i}].allow.{message}"));
            }
            out.push(ValidException {
                name: exception::intern(&x.name),
                roles: x.roles.clone(),
                images,
                allow,
                exempt_checks: x.exempt_checks.clone(),
            });
        }
        out
    }

    /// `spec.match`: label selectors as the API server checks them.
    fn match_selectors(&mut self, spec: &PolicySpec) {
        let Some(m) = &spec.match_ else { return };
        let selectors = [
            ("namespaceSelector", &m.namespace_selector),
            ("objectSelector", &m.object_selector),
        ];
        for (name, selector) in selectors {
            let Some(selector) = selector else { continue };
            for e in super::selector::check(&format!("match.{name}"), selector) {
                let ptr = format!("/spec/match/{name}{}", e.pointer);
                let loc = if e.at_value {
                    self.at_value(&ptr)
                } else {
                    self.at_key(&ptr)
                };
                self.invalid(loc, e.message);
            }
        }
    }

    fn pss(&mut self, spec: &PolicySpec) -> Option<LevelVersion> {
        let Some(p) = &spec.pss else {
            return Some(LevelVersion {
                level: Level::Privileged,
                version: Version::Latest,
            });
        };
        let level = p.level.parse::<Level>();
        let version = p.version.parse::<Version>();
        if let Err(e) = &level {
            let loc = self.at_value("/spec/pss/level");
            self.invalid(loc, format!("pss.level: {e}"));
        }
        if let Err(e) = &version {
            let loc = self.at_value("/spec/pss/version");
            self.invalid(loc, format!("pss.version: {e}"));
        }
        Some(LevelVersion {
            level: level.ok()?,
            version: version.ok()?,
        })
    }

    fn allowlist(&mut self, key: &str, entries: Option<&[String]>) -> Option<Option<IdSet>> {
        let Some(entries) = entries else { return Some(None) };
        match IdSet::parse_all(entries) {
            Ok(set) => Some(Some(set)),
            Err(errors) => {
                for (i, e) in errors {
                    let location = self.at_value(&format!("/spec/{key}/{i}"));
                    let message = format!("{key}[{i}] \"{}\": {e}", entries[i]);
                    match e.help() {
                        Some(help) => self.errors.push(PolicyError::Explained {
                            location,
                            message,
                            help,
                        }),
                        None => self.invalid(location, message),
                    }
                }
                None
            }
        }
    }

    /// Values the API server would reject, checked where the policy states them.
    fn context(&mut self, base: &str, ctx: &Map<String, Value>, pod_level: bool) {
        let section = dotted(base);
        for f in fields::FIELDS.iter().filter(|f| f.ids.is_some()) {
            let key = f.name;
            match ctx.get(key) {
                Some(Value::Array(ids)) => {
                    for (i, g) in ids.iter().enumerate() {
                        if let Some(n) = g.as_i64()
                            && !(0..=MAX_ID).contains(&n)
                        {
                            let loc = self.at_value(&format!("{base}/{key}/{i}"));
                            self.invalid(
                                loc,
                                format!("{section}.{key}[{i}] {n} is out of range, expected 0…{MAX_ID}"),
                            );
                        }
                    }
                }
                Some(v) => {
                    if let Some(n) = v.as_i64()
                        && !(0..=MAX_ID).contains(&n)
                    {
                        let loc = self.at_value(&format!("{base}/{key}"));
                        self.invalid(
                            loc,
                            format!("{section}.{key} {n} is out of range, expected 0…{MAX_ID}"),
                        );
                    }
                }
                None => {}
            }
        }
        for f in fields::FIELDS {
            for (sub, allowed) in f.values {
                let path = if sub.is_empty() {
                    f.name.to_string()
                } else {
                    format!("{}/{sub}", f.name)
                };
                let ptr = format!("/{path}");
                if let Some(v) = Value::Object(ctx.clone()).pointer(&ptr).and_then(Value::as_str)
                    && !allowed.contains(&v)
                {
                    let field = path.replace('/', ".");
                    let (loc, what) = if v.is_empty() {
                        (self.at_key(&format!("{base}{ptr}")), "is missing".to_string())
                    } else {
                        (self.at_value(&format!("{base}{ptr}")), format!("\"{v}\""))
                    };
                    self.invalid(
                        loc,
                        format!("{section}.{field} {what}: expected one of {}", allowed.join(", ")),
                    );
                }
            }
        }
        for profile in ["seccompProfile", "appArmorProfile"] {
            if let Some(p) = ctx.get(profile)
                && p.get("type").and_then(Value::as_str) == Some("Localhost")
                && p.get("localhostProfile")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                let loc = self.at_key(&format!("{base}/{profile}"));
                self.invalid(
                    loc,
                    format!("{section}.{profile}: type Localhost needs localhostProfile"),
                );
            }
        }
        if !pod_level
            && ctx.get("privileged") == Some(&Value::Bool(true))
            && ctx.get("allowPrivilegeEscalation") == Some(&Value::Bool(false))
        {
            let loc = self.at_key(&format!("{base}/allowPrivilegeEscalation"));
            self.invalid(
                loc,
                format!("{section}: allowPrivilegeEscalation false cannot stand with privileged true (the API server rejects the pair)"),
            );
        }
    }
}

fn to_map<T: serde::Serialize>(ctx: &Option<T>) -> Map<String, Value> {
    match ctx.as_ref().map(crate::value::to_value) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    }
}

/// `/spec/containers/default` → `spec.containers.default`.
fn dotted(ptr: &str) -> String {
    ptr.trim_start_matches('/').replace('/', ".")
}

/// A serde_ignored path as a JSON pointer, and its last key.
fn pointer(path: &serde_ignored::Path<'_>) -> (String, String) {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
        use serde_ignored::Path;
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                out.push(index.to_string());
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                out.push(source::escape(key).into_owned());
            }
            Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
                walk(parent, out)
            }
        }
    }
    let mut segments = Vec::new();
    walk(path, &mut segments);
    let last = segments
        .last()
        .cloned()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~");
    let ptr = segments.iter().fold(String::new(), |acc, s| acc + "/" + s);
    (ptr, last)
}

/// The field names a k8s-openapi struct accepts, read from its `Deserialize` impl.
pub(crate) fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Capture(Option<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for &mut Capture {
        type Error = de::value::Error;
        fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("capture"))
        }
        fn deserialize_struct<V: de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("capture"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut c = Capture(None);
    let _ = T::deserialize(&mut c);
    c.0.unwrap_or(&[])
}

/// What keys are expected at a path where an unknown key was found.
fn expected_fields(parent: &str) -> Vec<&'static str> {
    use k8s_openapi::{api::core::v1 as core, apimachinery::pkg::apis::meta::v1 as meta};
    let last = parent.rsplit('/').next().unwrap_or("");
    let grand = parent.rsplit('/').nth(1).unwrap_or("");
    let mut fields: Vec<&str> = match (grand, last) {
        ("pod", "default" | "enforced") => {
            let mut f = fields_of::<core::PodSecurityContext>().to_vec();
            f.push(super::pod_context::HOST_USERS);
            f
        }
        (_, "default" | "enforced" | "allow") => fields_of::<core::SecurityContext>().to_vec(),
        (_, "capabilities") => fields_of::<core::Capabilities>().to_vec(),
        (_, "seccompProfile") => fields_of::<core::SeccompProfile>().to_vec(),
        (_, "appArmorProfile") => fields_of::<core::AppArmorProfile>().to_vec(),
        (_, "seLinuxOptions") => fields_of::<core::SELinuxOptions>().to_vec(),
        (_, "windowsOptions") => fields_of::<core::WindowsSecurityContextOptions>().to_vec(),
        ("sysctls", _) => fields_of::<core::Sysctl>().to_vec(),
        (_, "namespaceSelector" | "objectSelector") => fields_of::<meta::LabelSelector>().to_vec(),
        ("matchExpressions", _) => fields_of::<meta::LabelSelectorRequirement>().to_vec(),
        _ => Vec::new(),
    };
    fields.sort_unstable();
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        from_str(text, "p.yaml").unwrap_err().to_string()
    }

    const HEAD: &str = "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n";

    #[test]
    fn builtin_loads() {
        let p = from_str(super::super::BUILTIN_POLICY, "builtin").unwrap();
        assert_eq!(p.pss.to_string(), "restricted:latest");
        assert_eq!(p.pod.default["runAsUser"], 1000);
        assert_eq!(p.name(), "builtin");
    }

    #[test]
    fn unknown_top_level_key() {
        let e = errors(&format!("{HEAD}  bogus: 1\n"));
        assert!(e.starts_with("p.yaml:4:3: unknown field `bogus`"), "{e}");
    }

    #[test]
    fn unknown_key_inside_security_context() {
        let e = errors(&format!("{HEAD}  containers:\n    default:\n      runAsUsr: 5\n"));
        assert!(e.starts_with("p.yaml:6:7: unknown field \"runAsUsr\" in spec.containers.default, expected one of allowPrivilegeEscalation"), "{e}");
        let e = errors(&format!(
            "{HEAD}  pod:\n    enforced:\n      seccompProfile: {{typ: RuntimeDefault}}\n"
        ));
        assert!(e.contains("p.yaml:6:24: unknown field \"typ\" in spec.pod.enforced.seccompProfile, expected one of localhostProfile, type"), "{e}");
    }

    #[test]
    fn wrong_type() {
        let e = errors(&format!(
            "{HEAD}  containers:\n    default:\n      runAsUser: abc\n"
        ));
        assert!(e.starts_with("p.yaml:6:18: "), "{e}");
    }

    #[test]
    fn every_bad_value_is_reported() {
        let e = errors(&format!(
            "{HEAD}  allowedUsers: [\"1000\", \"2000-1000\"]\n  allowedGroups: [\"x\"]\n  pss: {{level: strict, version: v2}}\n"
        ));
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        assert_eq!(
            lines[0],
            "p.yaml:4:26: allowedUsers[1] \"2000-1000\": range start 2000 > end 1000"
        );
        assert!(lines[1].starts_with("p.yaml:5:19: allowedGroups[0] \"x\""), "{e}");
        assert!(
            lines[2].starts_with("p.yaml:6:16: pss.level: unknown level \"strict\""),
            "{e}"
        );
        assert!(
            lines[3].starts_with("p.yaml:6:33: pss.version: malformed version \"v2\""),
            "{e}"
        );
    }

    #[test]
    fn contradictory_section() {
        let e = errors(&format!(
            "{HEAD}  build:\n    enforced: {{privileged: true, allowPrivilegeEscalation: false}}\n"
        ));
        assert!(
            e.contains(
                "spec.build.enforced: allowPrivilegeEscalation false cannot stand with privileged true"
            ),
            "{e}"
        );
    }

    #[test]
    fn enum_values_and_ranges() {
        let e = errors(&format!(
            "{HEAD}  pod:\n    default: {{fsGroup: -1, fsGroupChangePolicy: Sometimes, seccompProfile: {{type: Localhost}}}}\n"
        ));
        assert!(e.contains("spec.pod.default.fsGroup -1 is out of range"), "{e}");
        assert!(
            e.contains("spec.pod.default.fsGroupChangePolicy \"Sometimes\""),
            "{e}"
        );
        assert!(e.contains("type Localhost needs localhostProfile"), "{e}");
    }

    #[test]
    fn wrong_api_version() {
        let e = errors("apiVersion: v1\nkind: SecurityPolicy\n");
        assert_eq!(
            e,
            "p.yaml:1:13: apiVersion \"v1\": expected \"ciguard.io/v1alpha1\""
        );
    }

    #[test]
    fn json_policy() {
        let p = from_str(
            r#"{"apiVersion":"ciguard.io/v1alpha1","kind":"SecurityPolicy","spec":{"onViolation":"deny"}}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(p.spec().on_violation, super::super::OnViolation::Deny);
    }

    #[test]
    fn exceptions_are_checked_with_positions() {
        let e = errors(&format!(
            "{HEAD}  exceptions:\n    - name: dind\n      images: [\"docker:\", \"docker:*-dind\"]\n      allow: {{privileged: true, runAsUsr: 0, capabilities: {{drop: [ALL]}}}}\n    - name: dind\n      roles: [builder]\n      images: [\"docker\"]\n"
        ));
        let lines: Vec<_> = e.lines().collect();
        assert!(
            lines[0].starts_with("p.yaml:9:15: unknown variant `builder`"),
            "{e}"
        );
        let e = errors(&format!(
            "{HEAD}  exceptions:\n    - name: dind\n      images: [\"docker:\", \"docker:*-dind\"]\n      allow: {{privileged: true, runAsUsr: 0, capabilities: {{drop: [ALL]}}}}\n    - name: dind\n      images: [\"docker\"]\n"
        ));
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "p.yaml:6:16: exceptions[0].images[0] \"docker:\" has an empty tag, expected an image reference glob such as \"docker:*-dind\"",
                "p.yaml:7:33: unknown field \"runAsUsr\" in spec.exceptions.0.allow, expected one of allowPrivilegeEscalation, appArmorProfile, capabilities, privileged, procMount, readOnlyRootFilesystem, runAsGroup, runAsNonRoot, runAsUser, seLinuxOptions, seccompProfile, windowsOptions",
                "p.yaml:7:61: exceptions[0].allow.capabilities.drop cannot be allowed: dropping a capability never needs an exception; allow capabilities.add instead",
                "p.yaml:8:13: exceptions[1].name \"dind\" is already the name of exceptions[0], expected a unique name",
            ],
            "{e}"
        );
        let ok = from_str(
            &format!("{HEAD}  exceptions:\n    - {{name: dind, roles: [service], images: [\"docker:*-dind\"], allow: {{privileged: true}}, exemptChecks: [privileged]}}\n"),
            "p.yaml",
        )
        .unwrap();
        assert_eq!(ok.exceptions[0].name, "dind");
        assert!(ok.exceptions[0].applies(Role::Service, "docker.io/library/docker:27-dind"));
        assert!(!ok.exceptions[0].applies(Role::Build, "docker:27-dind"));
    }
}
